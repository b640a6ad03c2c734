//! Exact tail probabilities in log space (spec §8).
//!
//! Point probabilities use Loader's saddle-point expansion (the algorithm
//! behind R's `dbinom`/`dpois`), which stays accurate for any n; tails are
//! summed term by term from the first term outward with exact ratios, so no
//! value underflows and no normal approximation enters. Accurate to about
//! 1e-13 of max(1, |ln p|) (checked against mpmath in `spec/vectors` and
//! `tests/data/precise_tails.json`); the stated bound that decisions rely
//! on is [`crate::precise::ln_error_bound`], and every decision closer than
//! it is made on the exact value ([`crate::precise`], spec §8 revision 7).

use std::cmp::Ordering;
use std::f64::consts::{LN_10, PI};

use crate::precise::{self, Tail};

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// A p-value kept as its natural logarithm, so 1e-1000 is representable,
/// together with the exact quantity it approximates when that is known:
/// `min(1, min_i factor_i · tail_i)` over at most two terms (spec §8–§10,
/// revision 7). Decisions ([`PValue::le`], [`PValue::scaled_le`],
/// [`PValue::cmp_exact`]) use the exact value; [`PValue::ln`] is the fast
/// binary64 value, within [`crate::precise::ln_error_bound`] of it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PValue {
    ln: f64,
    terms: [Option<Term>; 2],
}

/// One exact term of a [`PValue`]: `factor · tail`, with the fast ln of
/// the tail.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Term {
    /// Integer multiplier (Bonferroni `W`, the text/window `2`, Holm's
    /// `K − j + 1`).
    pub factor: u64,
    /// The exact null tail.
    pub tail: Tail,
    /// Fast ln of the tail (binary64).
    pub ln_tail: f64,
}

/// Values whose ln is above this, after an integer factor ≥ 2, are
/// recomputed by [`crate::precise::ln_scaled`]: `ln(factor) + ln(tail)`
/// cancels there.
const NEAR_ONE_LN: f64 = -0.01;

/// ln 2^−1021 (rounded up): below it, [`PValue::value`] rounds the exact
/// tail instead of `exp(ln p)`.
const SMALL_LN: f64 = -707.7;

impl Term {
    fn ln(&self) -> f64 {
        let l = self.ln_tail + (self.factor as f64).ln();
        // Certainly above 1 (the fast error is below the bound): capped.
        if l > precise::ln_error_bound(self.ln_tail) + 1e-12 {
            return 0.0;
        }
        if self.factor > 1 && l > NEAR_ONE_LN && !self.tail.is_zero() {
            precise::ln_scaled(self.factor, &self.tail)
        } else {
            l.min(0.0)
        }
    }
}

impl PartialOrd for PValue {
    /// By the fast ln (see [`PValue::cmp_exact`] for the exact order).
    fn partial_cmp(&self, other: &PValue) -> Option<Ordering> {
        self.ln.partial_cmp(&other.ln)
    }
}

impl PValue {
    /// From ln p (clamped to ≤ 0), with no exact form: decisions on it are
    /// made on this binary64 value.
    pub fn from_ln(ln: f64) -> PValue {
        PValue {
            ln: ln.min(0.0),
            terms: [None, None],
        }
    }
    /// The exact tail `tail` with its fast ln value.
    pub fn of_tail(tail: Tail, ln: f64) -> PValue {
        let ln = if tail.is_one() { 0.0 } else { ln.min(0.0) };
        PValue {
            ln,
            terms: [
                Some(Term {
                    factor: 1,
                    tail,
                    ln_tail: ln,
                }),
                None,
            ],
        }
    }
    /// p = 1.
    pub const ONE: PValue = PValue {
        ln: 0.0,
        terms: [None, None],
    };
    /// Natural logarithm of p.
    pub fn ln(self) -> f64 {
        self.ln
    }
    /// Base-10 logarithm of p.
    pub fn log10(self) -> f64 {
        self.ln / LN_10
    }
    /// p itself as binary64: the nearest value, subnormals included, 0 only
    /// when p is below 2^−1075 (use [`PValue::log10`] below that). Below
    /// 2^−1021 it is taken from the exact tail ([`precise::nearest_scaled`]),
    /// since `exp(ln p)` there carries the relative error of ln p times
    /// |ln p| into a value whose last bits are all that is left.
    pub fn value(self) -> f64 {
        if self.ln < SMALL_LN && self.has_exact() {
            // Nearest is monotone, so the nearest of a min is the min of
            // the nearest values.
            let nearest = self
                .terms()
                .map(|t| precise::nearest_scaled(t.factor, &t.tail))
                .try_fold(1.0f64, |m, v| v.map(|v| m.min(v)));
            if let Some(v) = nearest {
                return v;
            }
        }
        self.ln.exp()
    }
    /// The exact terms (none for a value known only in binary64).
    pub fn terms(&self) -> impl Iterator<Item = &Term> {
        self.terms.iter().flatten()
    }
    /// min(1, factor · p): a Bonferroni-style multiplication. An integer
    /// factor keeps the exact form ([`PValue::times_count`]).
    pub fn times(self, factor: f64) -> PValue {
        if factor >= 1.0 && factor <= 2f64.powi(53) && factor.fract() == 0.0 && self.has_exact() {
            return self.times_count(factor as u64);
        }
        PValue::from_ln(self.ln + factor.ln())
    }
    /// min(1, c · p) for an integer c ≥ 1, exact form kept.
    pub fn times_count(self, c: u64) -> PValue {
        if !self.has_exact() || c == 0 {
            return PValue::from_ln(self.ln + (c as f64).ln());
        }
        let mut terms = self.terms;
        for t in terms.iter_mut().flatten() {
            match t.factor.checked_mul(c) {
                Some(f) => t.factor = f,
                None => return PValue::from_ln(self.ln + (c as f64).ln()),
            }
        }
        PValue::with_terms(terms)
    }
    /// min(p, q), exact form kept (at most two terms in all).
    pub fn min(self, other: PValue) -> PValue {
        let mine: Vec<Term> = self.terms().copied().collect();
        let theirs: Vec<Term> = other.terms().copied().collect();
        if mine.is_empty() || theirs.is_empty() || mine.len() + theirs.len() > 2 {
            return PValue::from_ln(self.ln.min(other.ln));
        }
        PValue::with_terms([Some(mine[0]), Some(theirs[0])])
    }
    fn with_terms(terms: [Option<Term>; 2]) -> PValue {
        let ln = terms.iter().flatten().map(Term::ln).fold(0.0f64, f64::min);
        PValue { ln, terms }
    }
    fn has_exact(&self) -> bool {
        self.terms[0].is_some()
    }
    /// Whether `p ≤ alpha`, decided on the exact p (spec §8, revision 7);
    /// in binary64 (`ln p ≤ ln alpha`) for a value with no exact form.
    pub fn le(&self, alpha: f64) -> bool {
        self.scaled_le(1, alpha)
    }
    /// Whether `min(1, c · p) ≤ alpha` exactly, for an integer c ≥ 1.
    pub fn scaled_le(&self, c: u64, alpha: f64) -> bool {
        if alpha >= 1.0 {
            return true;
        }
        if alpha.is_nan() || alpha <= 0.0 {
            return false;
        }
        if !self.has_exact() {
            return self.ln + (c as f64).ln() <= alpha.ln();
        }
        self.terms().any(|t| match t.factor.checked_mul(c) {
            Some(f) => precise::scaled_le(f, &t.tail, t.ln_tail, alpha),
            None => false,
        })
    }
    /// The exact order of two single-term p-values with equal factors (the
    /// windows of §9); falls back to the fast order otherwise.
    pub fn cmp_exact(&self, other: &PValue) -> Ordering {
        match (self.terms, other.terms) {
            ([Some(a), None], [Some(b), None]) if a.factor == b.factor => {
                precise::tail_cmp(&a.tail, a.ln_tail, &b.tail, b.ln_tail)
            }
            _ => self.ln.total_cmp(&other.ln),
        }
    }
}

/// Stirling's error ln(n!) − ln(√(2πn)(n/e)^n) for integer n ≥ 1.
fn stirlerr(n: f64) -> f64 {
    const S0: f64 = 1.0 / 12.0;
    const S1: f64 = 1.0 / 360.0;
    const S2: f64 = 1.0 / 1260.0;
    const S3: f64 = 1.0 / 1680.0;
    const S4: f64 = 1.0 / 1188.0;
    if n <= 15.0 {
        // n! is exact in binary64 up to 15!, so compute it directly.
        let mut fact = 1.0f64;
        let mut i = 2.0;
        while i <= n {
            fact *= i;
            i += 1.0;
        }
        return fact.ln() - LN_SQRT_2PI - (n + 0.5) * n.ln() + n;
    }
    let nn = n * n;
    if n > 500.0 {
        (S0 - S1 / nn) / n
    } else if n > 80.0 {
        (S0 - (S1 - S2 / nn) / nn) / n
    } else if n > 35.0 {
        (S0 - (S1 - (S2 - S3 / nn) / nn) / nn) / n
    } else {
        (S0 - (S1 - (S2 - (S3 - S4 / nn) / nn) / nn) / nn) / n
    }
}

/// Deviance term x·ln(x/m) + m − x, computed without cancellation.
fn bd0(x: f64, m: f64) -> f64 {
    if (x - m).abs() < 0.1 * (x + m) {
        let mut v = (x - m) / (x + m);
        let mut s = (x - m) * v;
        let mut ej = 2.0 * x * v;
        v *= v;
        let mut j = 1.0;
        loop {
            ej *= v;
            let s1 = s + ej / (2.0 * j + 1.0);
            if s1 == s {
                return s1;
            }
            s = s1;
            j += 1.0;
        }
    }
    x * (x / m).ln() + m - x
}

/// ln P(X = x) for X ~ Binomial(n, p), with q = 1 − p given exactly.
pub fn ln_binomial_pmf(x: u64, n: u64, p: f64, q: f64) -> f64 {
    if x > n {
        return f64::NEG_INFINITY;
    }
    let (xf, nf) = (x as f64, n as f64);
    if x == 0 {
        return if n == 0 { 0.0 } else { nf * q.ln() };
    }
    if x == n {
        return nf * p.ln();
    }
    let lc =
        stirlerr(nf) - stirlerr(xf) - stirlerr(nf - xf) - bd0(xf, nf * p) - bd0(nf - xf, nf * q);
    let lf = (2.0 * PI).ln() + xf.ln() + (-xf / nf).ln_1p();
    lc - 0.5 * lf
}

/// ln P(X = x) for X ~ Poisson(lambda), lambda > 0.
pub fn ln_poisson_pmf(x: u64, lambda: f64) -> f64 {
    if x == 0 {
        return -lambda;
    }
    let xf = x as f64;
    -stirlerr(xf) - bd0(xf, lambda) - 0.5 * (2.0 * PI * xf).ln()
}

/// Sums 1 + r₁ + r₁r₂ + … until terms stop mattering; `ratio(j)` is the
/// ratio of term j+1 to term j (j from 0), `None` when the series ends.
fn sum_relative(mut ratio: impl FnMut(u64) -> Option<f64>) -> f64 {
    let mut sum = 1.0f64;
    let mut term = 1.0f64;
    let mut j = 0u64;
    while let Some(r) = ratio(j) {
        term *= r;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
        j += 1;
    }
    sum
}

/// P(X ≥ k) for X ~ Binomial(n, p): the KGW and SynthID p-value.
/// `q` must be 1 − p, given exactly by the caller.
pub fn binomial_upper_tail(k: u64, n: u64, p: f64, q: f64) -> PValue {
    let fast = binomial_upper_tail_ln(k, n, p, q);
    match Tail::binomial(k, n, p, q) {
        Some(tail) => PValue::of_tail(tail, fast),
        None => PValue::from_ln(fast),
    }
}

/// Fast ln P(X ≥ k) in binary64.
fn binomial_upper_tail_ln(k: u64, n: u64, p: f64, q: f64) -> f64 {
    if k == 0 {
        return 0.0;
    }
    if k > n {
        return f64::NEG_INFINITY;
    }
    let odds = p / q;
    if k as f64 > n as f64 * p {
        // Terms fall from x = k upward.
        let sum = sum_relative(|j| {
            let x = k + j;
            (x < n).then(|| (n - x) as f64 / (x + 1) as f64 * odds)
        });
        (ln_binomial_pmf(k, n, p, q) + sum.ln()).min(0.0)
    } else {
        // Terms of P(X ≤ k − 1) fall from x = k − 1 downward.
        let top = k - 1;
        let sum = sum_relative(|j| {
            let x = top - j;
            (x > 0).then(|| x as f64 / (n - x + 1) as f64 / odds)
        });
        let lower = (ln_binomial_pmf(top, n, p, q) + sum.ln()).exp();
        (-lower).ln_1p()
    }
}

/// P(G ≥ x) for G ~ Gamma(n, 1), n ≥ 1: the Gumbel p-value.
/// Uses Q(n, x) = P(Poisson(x) ≤ n − 1).
pub fn gamma_upper_tail(n: u64, x: f64) -> PValue {
    assert!(n >= 1, "Gamma shape must be at least 1");
    if x.is_nan() || x <= 0.0 {
        return PValue::ONE;
    }
    PValue::of_tail(Tail::Gamma { n, x }, gamma_upper_tail_ln(n, x))
}

/// Fast ln P(G ≥ x) in binary64, x > 0.
fn gamma_upper_tail_ln(n: u64, x: f64) -> f64 {
    let top = n - 1;
    if x >= top as f64 {
        // Poisson terms fall from j = n − 1 downward.
        let sum = sum_relative(|i| {
            let j = top - i;
            (j > 0).then(|| j as f64 / x)
        });
        (ln_poisson_pmf(top, x) + sum.ln()).min(0.0)
    } else {
        // 1 − P(Poisson(x) ≥ n); terms fall from j = n upward.
        let sum = sum_relative(|i| Some(x / (n + i + 1) as f64));
        let upper = (ln_poisson_pmf(n, x) + sum.ln()).exp();
        (-upper).ln_1p()
    }
}

/// Holm's step-down adjusted p-values, in the input order (spec §10):
/// `max_{j ≤ i} min(1, (K − j + 1)·p_(j))`, each candidate kept in exact
/// form so that values near 1 stay accurate. The order is the fast one:
/// adjusted values do not depend on how near-ties are ordered beyond the
/// fast error; verdicts are decided exactly by [`holm_rejects`].
pub fn holm_adjust(ps: &[PValue]) -> Vec<PValue> {
    let k = ps.len();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| ps[a].ln.total_cmp(&ps[b].ln).then(a.cmp(&b)));
    let mut adjusted = vec![PValue::ONE; k];
    let mut running: Option<PValue> = None;
    for (rank, &i) in order.iter().enumerate() {
        let candidate = ps[i].times_count((k - rank) as u64);
        let next = match running {
            Some(r) if r.ln >= candidate.ln => r,
            _ => candidate,
        };
        running = Some(next);
        adjusted[i] = next;
    }
    adjusted
}

/// Which hypotheses Holm's procedure at level `alpha` rejects (spec §10),
/// decided on the exact p-values without sorting them: with
/// `c_s = #{j : (K − s + 1)·p_j ≤ α}`, the procedure takes `r` steps, the
/// largest `r` with `c_s ≥ s` for every `s ≤ r`, and rejects exactly
/// `{j : (K − r + 1)·p_j ≤ α}` (a set of `r` hypotheses, whatever the ties).
/// This equals "adjusted p ≤ α" for the exact adjusted values.
pub fn holm_rejects(ps: &[PValue], alpha: f64) -> Vec<bool> {
    let k = ps.len();
    let passes = |s: usize| -> Vec<bool> {
        ps.iter()
            .map(|p| p.scaled_le((k - s + 1) as u64, alpha))
            .collect()
    };
    let mut rejected = vec![false; k];
    for s in 1..=k {
        let pass = passes(s);
        if pass.iter().filter(|&&b| b).count() < s {
            break;
        }
        rejected = pass;
    }
    rejected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binom_direct(k: u64, n: u64, p: f64) -> f64 {
        // Exact for small n by summing binomial coefficients.
        let mut total = 0.0;
        for x in k..=n {
            let mut c = 1.0;
            for i in 0..x {
                c *= (n - i) as f64 / (i + 1) as f64;
            }
            total += c * p.powi(x as i32) * (1.0 - p).powi((n - x) as i32);
        }
        total
    }

    #[test]
    fn binomial_matches_direct_sums() {
        for n in [1u64, 2, 5, 17, 40, 100] {
            for k in 0..=n {
                for p in [0.25, 0.5] {
                    let got = binomial_upper_tail(k, n, p, 1.0 - p).value();
                    let want = binom_direct(k, n, p);
                    assert!(
                        (got - want).abs() <= 1e-12 * want.max(1e-300) + 1e-15,
                        "n={n} k={k} p={p}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn gamma_matches_erlang_closed_form() {
        for n in [1u64, 2, 3, 10, 50] {
            for x in [0.1, 1.0, 2.5, 10.0, 49.0, 80.0] {
                let mut sum = 0.0;
                let mut term = 1.0;
                for j in 0..n {
                    if j > 0 {
                        term *= x / j as f64;
                    }
                    sum += term;
                }
                let want = (-x).exp() * sum;
                let got = gamma_upper_tail(n, x).value();
                assert!(
                    (got - want).abs() <= 1e-12 * want,
                    "n={n} x={x}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn holm_is_monotone_and_bounded() {
        let ps = [0.01, 0.04, 0.03, 0.5].map(|p: f64| PValue::from_ln(p.ln()));
        let adj: Vec<f64> = holm_adjust(&ps).iter().map(|p| p.value()).collect();
        let want = [0.04, 0.09, 0.09, 0.5];
        for (a, w) in adj.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{adj:?}");
        }
    }
}
