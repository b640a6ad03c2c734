//! Exact decisions on the null tails of spec §8 (revision 7).
//!
//! The fast p-values of [`crate::stats`] are binary64 computations in log
//! space, accurate to about 1e−13 of max(1, |ln p|) but not exact. A verdict
//! (`p ≤ α`), Holm's step-down (§10) and the choice of the best window (§9)
//! must not depend on that rounding, so every comparison whose fast operands
//! are closer than [`ln_error_bound`] is decided here on the exact values:
//!
//! - a tail is evaluated as an interval `[lo, hi]` that contains the exact
//!   value, with every operation rounded outward (`Down` for `lo`, `Up` for
//!   `hi`, dashu-float's directed rounding) and every truncated series closed
//!   with a rigorous bound on its remainder;
//! - a comparison raises the working precision until the two intervals are
//!   disjoint (Ziv's strategy);
//! - exact equality, the one case no precision separates, is proven where it
//!   can occur: binomial tails (and `α`) are dyadic rationals with known
//!   denominators `2^D`, so two of them whose intervals lie within `2^−D` are
//!   equal; a Gamma tail at `x > 0` is transcendental (Lindemann: `e^{−x}`
//!   times a non-zero rational), so it never equals a dyadic rational, and
//!   two Gamma tails with the same factor are equal only for the same `(n, x)`.
//!
//! Only basic operations on non-negative values enter the bounds, plus
//! `e^{−x}` (Gamma tails) and `ln` (values reported near 1), which
//! dashu-float rounds correctly; the bounds are widened by 2^16 units of
//! the working precision around them, so they would stay valid even if
//! those functions were off by that much.

use std::cmp::Ordering;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use dashu_float::round::mode::{Down, Up};
use dashu_float::round::Round;
use dashu_float::{Context, FBig, Repr};
use dashu_int::IBig;

/// An exact null tail probability (spec §8), named by its parameters.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub enum Tail {
    /// `P(X ≥ k)` for `X ~ Binomial(n, a/2^b)`, `0 < a < 2^b`, `b ≤ 60`:
    /// kgw (`a/2^b = γ* = T/2^16`), synthid (`a/2^b = 1/2`, `n` = positions
    /// × layers). A dyadic rational with denominator dividing `2^(b·n)`.
    Binomial {
        /// The observed count.
        k: u64,
        /// Trials.
        n: u64,
        /// Numerator of the success probability.
        a: u64,
        /// Binary exponent of its denominator.
        b: u32,
    },
    /// `P(G ≥ x)` for `G ~ Gamma(n, 1)`, `n ≥ 1`: gumbel, with `x` the
    /// statistic (a binary64 value, taken exactly).
    Gamma {
        /// Shape: scored positions.
        n: u64,
        /// The statistic.
        x: f64,
    },
}

impl Tail {
    /// The binomial tail `P(X ≥ k)`, `X ~ Binomial(n, p)`, for a binary64
    /// success probability `p` with `q = 1 − p` exactly; `None` when `p` is
    /// not a dyadic `a/2^b` with `0 < p < 1`, `b ≤ 60` and `q` exact.
    pub fn binomial(k: u64, n: u64, p: f64, q: f64) -> Option<Tail> {
        if !(p > 0.0 && p < 1.0) || p + q != 1.0 {
            return None;
        }
        let (mut a, mut e) = decompose(p);
        while a % 2 == 0 {
            a /= 2;
            e += 1;
        }
        let b = u32::try_from(-e).ok().filter(|&b| (1..=60).contains(&b))?;
        // q exact: 2^b − a must be q·2^b.
        let rest = (1u64 << b) - a;
        ((rest as f64) * (-(b as f64)).exp2() == q).then_some(Tail::Binomial { k, n, a, b })
    }

    /// Whether the tail is exactly 1 (`k = 0`, or `x ≤ 0`).
    pub fn is_one(&self) -> bool {
        match *self {
            Tail::Binomial { k, .. } => k == 0,
            Tail::Gamma { x, .. } => x.is_nan() || x <= 0.0,
        }
    }

    /// Whether the tail is exactly 0 (`k > n`).
    pub fn is_zero(&self) -> bool {
        matches!(*self, Tail::Binomial { k, n, .. } if k > n)
    }

    /// `Some(D)` when the value is a dyadic rational whose denominator
    /// divides `2^D`; `None` when it is irrational (a Gamma tail at x > 0).
    fn dyadic_exp(&self) -> Option<u64> {
        if self.is_one() || self.is_zero() {
            return Some(0);
        }
        match *self {
            Tail::Binomial { n, b, .. } => Some(n.saturating_mul(b as u64)),
            Tail::Gamma { .. } => None,
        }
    }

    /// An interval `[lo, hi]` containing the exact tail, computed at `prec`
    /// bits with outward rounding.
    fn bounds(&self, prec: usize) -> (Repr<2>, Repr<2>) {
        if self.is_one() {
            return (Repr::one(), Repr::one());
        }
        if self.is_zero() {
            return (Repr::zero(), Repr::zero());
        }
        match *self {
            Tail::Binomial { k, n, a, b } => binomial_bounds(k, n, a, b, prec),
            Tail::Gamma { n, x } => gamma_bounds(n, x, prec),
        }
    }
}

/// |x| = m · 2^e exactly, for finite x (the sign is dropped).
fn decompose(x: f64) -> (u64, i64) {
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), exp - 1075)
    }
}

fn exact(x: f64) -> Repr<2> {
    let (m, e) = decompose(x);
    Repr::new(IBig::from(m), e as isize)
}

/// Outward-rounded arithmetic at one precision in rounding mode `R`.
struct Arith<R: Round> {
    ctx: Context<R>,
    prec: usize,
}

impl<R: Round> Arith<R> {
    fn new(prec: usize) -> Self {
        Arith {
            ctx: Context::new(prec),
            prec,
        }
    }
    fn mul(&self, a: &Repr<2>, b: &Repr<2>) -> Repr<2> {
        self.ctx.mul(a, b).expect("finite").value().into_repr()
    }
    fn div(&self, a: &Repr<2>, b: &Repr<2>) -> Repr<2> {
        self.ctx.div(a, b).expect("finite").value().into_repr()
    }
    fn add(&self, a: &Repr<2>, b: &Repr<2>) -> Repr<2> {
        self.ctx.add(a, b).expect("finite").value().into_repr()
    }
    fn sub(&self, a: &Repr<2>, b: &Repr<2>) -> Repr<2> {
        self.ctx.sub(a, b).expect("finite").value().into_repr()
    }
    /// `a · num / den` for positive integers.
    fn mul_ratio(&self, a: &Repr<2>, num: u128, den: u128) -> Repr<2> {
        let t = self.mul(a, &int(num));
        self.div(&t, &int(den))
    }
    /// `base^e` by squaring (every step rounded in `R`, all values ≥ 0).
    fn pow(&self, base: &Repr<2>, mut e: u64) -> Repr<2> {
        let mut acc = Repr::one();
        let mut sq = base.clone();
        while e > 0 {
            if e & 1 == 1 {
                acc = self.mul(&acc, &sq);
            }
            e >>= 1;
            if e > 0 {
                sq = self.mul(&sq, &sq);
            }
        }
        acc
    }
    /// `a · Π nums / Π dens` with the integer factors multiplied exactly in
    /// batches (each factor below 2^64).
    fn mul_products(
        &self,
        mut a: Repr<2>,
        nums: impl Iterator<Item = u64>,
        dens: impl Iterator<Item = u64>,
    ) -> Repr<2> {
        let mut batch = 1u128;
        for f in nums {
            if batch > u128::MAX >> 64 {
                a = self.mul(&a, &int(batch));
                batch = 1;
            }
            batch *= f as u128;
        }
        a = self.mul(&a, &int(batch));
        batch = 1;
        for f in dens {
            if batch > u128::MAX >> 64 {
                a = self.div(&a, &int(batch));
                batch = 1;
            }
            batch *= f as u128;
        }
        self.div(&a, &int(batch))
    }
    /// `a · (1 ± 2^−(prec − 16))`: widening around a transcendental.
    fn widen(&self, a: &Repr<2>, up: bool) -> Repr<2> {
        let e = -(self.prec as isize - 16);
        let one = Repr::<2>::one();
        let eps = Repr::new(IBig::ONE, e);
        let f = if up {
            self.add(&one, &eps)
        } else {
            self.sub(&one, &eps)
        };
        self.mul(a, &f)
    }
    /// `2^−(prec + 8)` times `a`: the truncation threshold of a series.
    fn negligible(&self, rem: &Repr<2>, sum: &Repr<2>) -> bool {
        let scaled = Repr::new(
            sum.significand().clone(),
            sum.exponent() - self.prec as isize - 8,
        );
        *rem <= scaled
    }
}

fn int(v: u128) -> Repr<2> {
    Repr::new(IBig::from(v), 0)
}

/// Σ of binomial terms from x0 in one direction, bounded in `R`; with
/// `upper`, the truncation remainder is added so the result bounds the
/// whole infinite (or finite) sum from above.
#[allow(clippy::too_many_arguments)]
fn binomial_sum<R: Round>(
    x0: u64,
    ascending: bool,
    n: u64,
    a: u64,
    b: u32,
    prec: usize,
    upper: bool,
) -> Repr<2> {
    let ar = Arith::<R>::new(prec);
    let c = (1u64 << b) - a;
    // t(x0) = C(n, x0) a^x0 c^(n−x0) / 2^(b n).
    let j = x0.min(n - x0);
    let binom = ar.mul_products(Repr::one(), (1..=j).map(|i| n - j + i), 1..=j);
    let t = ar.mul(&binom, &ar.pow(&int(a as u128), x0));
    let t = ar.mul(&t, &ar.pow(&int(c as u128), n - x0));
    let shift = (b as u128 * n as u128) as isize;
    let mut term = ar.mul(&t, &Repr::new(IBig::ONE, -shift));
    let mut sum = term.clone();
    let mut x = x0;
    let mut i = 0u64;
    loop {
        let (num, den) = if ascending {
            if x == n {
                return sum;
            }
            ((n - x) as u128 * a as u128, (x + 1) as u128 * c as u128)
        } else {
            if x == 0 {
                return sum;
            }
            (x as u128 * c as u128, (n - x + 1) as u128 * a as u128)
        };
        // The ratios fall along the direction of summation and start below
        // 1, so what remains after this term is at most term·r/(1 − r).
        if i % 8 == 0 && den > num {
            let rem = ar.mul_ratio(&term, num, den - num);
            if ar.negligible(&rem, &sum) {
                return if upper { ar.add(&sum, &rem) } else { sum };
            }
        }
        term = ar.mul_ratio(&term, num, den);
        sum = ar.add(&sum, &term);
        x = if ascending { x + 1 } else { x - 1 };
        i += 1;
    }
}

fn binomial_bounds(k: u64, n: u64, a: u64, b: u32, prec: usize) -> (Repr<2>, Repr<2>) {
    if (k as u128) << b > n as u128 * a as u128 {
        // Above the mean: terms fall from x = k upward.
        let lo = binomial_sum::<Down>(k, true, n, a, b, prec, false);
        let hi = binomial_sum::<Up>(k, true, n, a, b, prec, true);
        (lo, hi.min(Repr::one()))
    } else {
        // 1 − P(X ≤ k − 1); terms fall from x = k − 1 downward.
        let l_lo = binomial_sum::<Down>(k - 1, false, n, a, b, prec, false);
        let l_hi = binomial_sum::<Up>(k - 1, false, n, a, b, prec, true);
        one_minus(l_lo, l_hi, prec)
    }
}

/// `[1 − hi, 1 − lo]` for an interval `[lo, hi]` of a probability.
fn one_minus(lo: Repr<2>, hi: Repr<2>, prec: usize) -> (Repr<2>, Repr<2>) {
    let p_lo = Arith::<Down>::new(prec).sub(&Repr::one(), &hi);
    let p_hi = Arith::<Up>::new(prec).sub(&Repr::one(), &lo);
    (p_lo.max(Repr::zero()), p_hi)
}

/// Σ x^j/j! from j0 in one direction (descending to 0, or ascending for
/// ever), bounded in `R`, with the remainder added when `upper`.
fn poisson_sum<R: Round>(j0: u64, ascending: bool, x: f64, prec: usize, upper: bool) -> Repr<2> {
    let ar = Arith::<R>::new(prec);
    let xr = exact(x);
    let (m, e) = decompose(x);
    let mut term = ar.mul_products(ar.pow(&xr, j0), std::iter::empty(), 1..=j0);
    let mut sum = term.clone();
    let mut j = j0;
    let mut i = 0u64;
    loop {
        if !ascending && j == 0 {
            return sum;
        }
        if i % 8 == 0 {
            // Ratio r = j/x (descending) or x/(j + 1) (ascending), falling
            // along the sum; what remains after this term is at most
            // term · r/(1 − r) = term · j/(x − j) or term · x/(j + 1 − x),
            // when that denominator (computed exactly) is positive.
            let (num, gap) = if ascending {
                (xr.clone(), gap_exact(m, e, j + 1, true))
            } else {
                (int(j as u128), gap_exact(m, e, j, false))
            };
            if let Some(gap) = gap {
                let rem = ar.div(&ar.mul(&term, &num), &gap);
                if ar.negligible(&rem, &sum) {
                    return if upper { ar.add(&sum, &rem) } else { sum };
                }
            }
        }
        if ascending {
            term = ar.div(&ar.mul(&term, &xr), &int((j + 1) as u128));
            j += 1;
        } else {
            term = ar.div(&ar.mul(&term, &int(j as u128)), &xr);
            j -= 1;
        }
        sum = ar.add(&sum, &term);
        i += 1;
    }
}

/// `v − x` (when `v_minus_x`) or `x − v`, exactly, for x = m·2^e; `None`
/// unless positive.
fn gap_exact(m: u64, e: i64, v: u64, v_minus_x: bool) -> Option<Repr<2>> {
    let (xs, vs, exp) = if e >= 0 {
        (IBig::from(m) << (e as usize), IBig::from(v), 0)
    } else {
        (IBig::from(m), IBig::from(v) << (-e as usize), e as isize)
    };
    let gap = if v_minus_x { vs - xs } else { xs - vs };
    (gap > IBig::ZERO).then(|| Repr::new(gap, exp))
}

/// Bounds on e^{−x}.
fn exp_neg_bounds(x: f64, prec: usize) -> (Repr<2>, Repr<2>) {
    let (m, e) = decompose(x);
    let neg = Repr::new(-IBig::from(m), e as isize);
    let lo = Context::<Down>::new(prec)
        .exp(&neg, None)
        .expect("finite")
        .value()
        .into_repr();
    let hi = Context::<Up>::new(prec)
        .exp(&neg, None)
        .expect("finite")
        .value()
        .into_repr();
    (
        Arith::<Down>::new(prec).widen(&lo, false),
        Arith::<Up>::new(prec).widen(&hi, true),
    )
}

fn gamma_bounds(n: u64, x: f64, prec: usize) -> (Repr<2>, Repr<2>) {
    let (e_lo, e_hi) = exp_neg_bounds(x, prec);
    let (dn, up) = (Arith::<Down>::new(prec), Arith::<Up>::new(prec));
    if x >= (n - 1) as f64 {
        // Q(n, x) = e^{−x} Σ_{j<n} x^j/j!, terms falling from j = n − 1.
        let s_lo = poisson_sum::<Down>(n - 1, false, x, prec, false);
        let s_hi = poisson_sum::<Up>(n - 1, false, x, prec, true);
        (dn.mul(&e_lo, &s_lo), up.mul(&e_hi, &s_hi).min(Repr::one()))
    } else {
        // 1 − e^{−x} Σ_{j≥n} x^j/j!, terms falling from j = n.
        let t_lo = poisson_sum::<Down>(n, true, x, prec, false);
        let t_hi = poisson_sum::<Up>(n, true, x, prec, true);
        one_minus(dn.mul(&e_lo, &t_lo), up.mul(&e_hi, &t_hi), prec)
    }
}

/// A non-negative real that decisions compare: `factor · tail`, or a
/// binary64 constant such as `α`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Quantity {
    /// `factor · tail`, with an integer factor (Bonferroni `W`, the text and
    /// window `2`, Holm's `K − j + 1`).
    Scaled {
        /// The integer multiplier, at least 1.
        factor: u64,
        /// The exact tail.
        tail: Tail,
    },
    /// A finite binary64 value ≥ 0, exactly.
    Const(f64),
}

impl Quantity {
    fn dyadic_exp(&self) -> Option<u64> {
        match *self {
            Quantity::Scaled { tail, .. } => tail.dyadic_exp(),
            Quantity::Const(0.0) => Some(0),
            Quantity::Const(v) => Some((-decompose(v).1).max(0) as u64),
        }
    }

    fn bounds(&self, prec: usize) -> (Repr<2>, Repr<2>) {
        match *self {
            Quantity::Const(v) => {
                let r = if v == 0.0 { Repr::zero() } else { exact(v) };
                (r.clone(), r)
            }
            Quantity::Scaled { factor, tail } => {
                let (lo, hi) = tail.bounds(prec);
                let f = int(factor as u128);
                (
                    Arith::<Down>::new(prec).mul(&lo, &f),
                    Arith::<Up>::new(prec).mul(&hi, &f),
                )
            }
        }
    }
}

/// First working precision of the slow path, in bits.
pub const START_PRECISION: usize = 128;

/// Largest working precision tried where equality cannot be proven (a
/// Gamma tail is involved); values that agree to this many bits are then
/// taken as equal. No comparison this crate makes can get there: a Gamma
/// tail at x > 0 never equals a dyadic rational, nor another Gamma tail
/// with the same factor and a different `(n, x)`.
pub const MAX_IRRATIONAL_PRECISION: usize = 1 << 16;

static SLOW_CALLS: AtomicU64 = AtomicU64::new(0);

/// How many comparisons the slow path has decided in this process (for
/// measurements and tests).
pub fn slow_calls() -> u64 {
    SLOW_CALLS.load(AtomicOrdering::Relaxed)
}

/// The exact order of two quantities: raises the precision until their
/// intervals are disjoint, and proves equality of dyadic rationals once
/// both lie within `2^−D` of each other.
pub fn compare(a: &Quantity, b: &Quantity) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    SLOW_CALLS.fetch_add(1, AtomicOrdering::Relaxed);
    let dyadic = a.dyadic_exp().zip(b.dyadic_exp()).map(|(x, y)| x.max(y));
    let cap = match dyadic {
        // Past D + 256 bits the intervals are far narrower than 2^−D.
        Some(d) => ((d as usize).saturating_add(256)).next_power_of_two() * 2,
        None => MAX_IRRATIONAL_PRECISION,
    };
    let mut prec = START_PRECISION;
    loop {
        let (alo, ahi) = a.bounds(prec);
        let (blo, bhi) = b.bounds(prec);
        if ahi < blo {
            return Ordering::Less;
        }
        if bhi < alo {
            return Ordering::Greater;
        }
        if let Some(d) = dyadic {
            let lo = alo.min(blo);
            let hi = ahi.max(bhi);
            let width = Arith::<Up>::new(prec).sub(&hi, &lo);
            let unit = Repr::new(IBig::ONE, -(d.min(isize::MAX as u64) as isize));
            if width < unit {
                return Ordering::Equal;
            }
        }
        if prec >= cap {
            return Ordering::Equal;
        }
        prec *= 2;
    }
}

/// The stated error bound of the fast (binary64) path on ln p: its ln p is
/// within `1e−9 · max(1, |ln p|)` of the exact value. Measured errors are
/// below 1e−13 of the same scale (see the tests), so the bound has a wide
/// margin; comparisons closer than it are decided by [`compare`].
pub fn ln_error_bound(ln: f64) -> f64 {
    1e-9 * ln.abs().max(1.0)
}

/// Whether `factor · tail ≤ alpha` exactly (`alpha` a binary64 value in
/// (0, 1)), given the fast `ln_tail`: decided in binary64 when the margin
/// exceeds [`ln_error_bound`], else by [`compare`].
pub fn scaled_le(factor: u64, tail: &Tail, ln_tail: f64, alpha: f64) -> bool {
    let margin = ln_tail + (factor as f64).ln() - alpha.ln();
    let bound = ln_error_bound(ln_tail) + 1e-15 * (alpha.ln().abs() + 64.0);
    if margin < -bound {
        return true;
    }
    if margin > bound {
        return false;
    }
    compare(
        &Quantity::Scaled {
            factor,
            tail: *tail,
        },
        &Quantity::Const(alpha),
    ) != Ordering::Greater
}

/// The exact order of two tails (same factor), given their fast ln values:
/// decided in binary64 when they differ by more than twice the bound.
pub fn tail_cmp(a: &Tail, ln_a: f64, b: &Tail, ln_b: f64) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let bound = ln_error_bound(ln_a) + ln_error_bound(ln_b);
    if ln_a < ln_b - bound {
        return Ordering::Less;
    }
    if ln_a > ln_b + bound {
        return Ordering::Greater;
    }
    let q = |tail: &Tail| Quantity::Scaled {
        factor: 1,
        tail: *tail,
    };
    compare(&q(a), &q(b))
}

/// ln(min(1, factor · tail)) to a relative error below 2^−52 (absolute
/// when the value is 0): for values near 1, where `ln(factor) + ln(tail)`
/// in binary64 loses all relative accuracy.
pub fn ln_scaled(factor: u64, tail: &Tail) -> f64 {
    let q = Quantity::Scaled {
        factor,
        tail: *tail,
    };
    let d = q.dyadic_exp();
    let mut prec = START_PRECISION;
    loop {
        let (lo, hi) = q.bounds(prec);
        let one = Repr::<2>::one();
        if lo >= one {
            return 0.0;
        }
        if hi < one && lo > Repr::zero() {
            let ln_lo = Context::<Down>::new(prec).ln(&lo, None).expect("positive");
            let ln_hi = Context::<Up>::new(prec).ln(&hi, None).expect("positive");
            let l = Arith::<Down>::new(prec).widen(&ln_lo.value().into_repr(), true);
            let h = Arith::<Up>::new(prec).widen(&ln_hi.value().into_repr(), false);
            // Both negative: widening l by (1 + ε) lowers it, h by (1 − ε)
            // raises it.
            let lf = FBig::<Down, 2>::from_repr(l, Context::new(prec))
                .to_f64()
                .value();
            let hf = FBig::<Up, 2>::from_repr(h, Context::new(prec))
                .to_f64()
                .value();
            if (lf - hf).abs() <= f64::EPSILON * hf.abs() {
                return hf;
            }
        }
        if let Some(d) = d {
            let width = Arith::<Up>::new(prec).sub(&hi, &lo);
            if width < Repr::new(IBig::ONE, -(d.min(isize::MAX as u64) as isize))
                && lo <= one
                && one <= hi
            {
                return 0.0;
            }
        }
        if prec >= MAX_IRRATIONAL_PRECISION {
            let hf = FBig::<Up, 2>::from_repr(hi, Context::new(prec))
                .to_f64()
                .value();
            return hf.min(1.0).ln();
        }
        prec *= 2;
    }
}

/// The bounds of a tail as binary64 numbers `(lo, hi)` rounded outward, at
/// `prec` bits (for tests and measurements).
pub fn tail_bounds_f64(tail: &Tail, prec: usize) -> (f64, f64) {
    let (lo, hi) = tail.bounds(prec);
    (
        FBig::<Down, 2>::from_repr(lo, Context::new(prec))
            .to_f64()
            .value(),
        FBig::<Up, 2>::from_repr(hi, Context::new(prec))
            .to_f64()
            .value(),
    )
}

/// ln of a tail's bounds as binary64 `(lo, hi)` at `prec` bits, for
/// values below binary64's range (tests and measurements); `None` when the
/// lower bound is 0.
pub fn tail_ln_bounds(tail: &Tail, prec: usize) -> Option<(f64, f64)> {
    let (lo, hi) = tail.bounds(prec);
    if lo <= Repr::zero() {
        return None;
    }
    let l = Context::<Down>::new(prec).ln(&lo, None).ok()?.value();
    let h = Context::<Up>::new(prec).ln(&hi, None).ok()?.value();
    Some((l.to_f64().value(), h.to_f64().value()))
}

/// log10 of a tail's bounds as binary64 `(lo, hi)` rounded to nearest, at
/// `prec` bits: equal when both round to the same binary64, which is then
/// the correctly rounded log10 p (tests and measurements). `(−∞, −∞)` when
/// the lower bound is 0.
pub fn tail_log10_bounds(tail: &Tail, prec: usize) -> (f64, f64) {
    let (lo, hi) = tail.bounds(prec);
    if lo <= Repr::zero() {
        return (f64::NEG_INFINITY, f64::NEG_INFINITY);
    }
    let ln10_lo = Context::<Down>::new(prec)
        .ln(&int(10), None)
        .expect("positive")
        .value();
    let ln10_hi = Context::<Up>::new(prec)
        .ln(&int(10), None)
        .expect("positive")
        .value();
    // ln p ≤ 0, so log10 p's lower bound divides ln(lo) by the smaller ln 10.
    let l = Context::<Down>::new(prec)
        .ln(&lo, None)
        .expect("positive")
        .value();
    let h = Context::<Up>::new(prec)
        .ln(&hi, None)
        .expect("positive")
        .value();
    let l = Context::<Down>::new(prec)
        .div(l.repr(), ln10_lo.repr())
        .expect("finite")
        .value();
    let h = Context::<Up>::new(prec)
        .div(h.repr(), ln10_hi.repr())
        .expect("finite")
        .value();
    let round = |x: Repr<2>| {
        FBig::<dashu_float::round::mode::HalfEven, 2>::from_repr(x, Context::new(prec))
            .to_f64()
            .value()
    };
    (round(l.into_repr()), round(h.into_repr()))
}

/// The binary64 nearest to a tail (ties to even, subnormals included, 0
/// below 2^−1075), when its bounds at `prec` bits round to one value.
pub fn tail_nearest_f64(tail: &Tail, prec: usize) -> Option<f64> {
    let (lo, hi) = tail.bounds(prec);
    let round = |x: Repr<2>| {
        FBig::<dashu_float::round::mode::HalfEven, 2>::from_repr(x, Context::new(prec))
            .to_f64()
            .value()
    };
    let (l, h) = (round(lo), round(hi));
    (l == h).then_some(l)
}

/// The binary64 nearest to `min(1, factor · tail)` (ties to even,
/// subnormals included, 0 below 2^−1075), raising the precision until the
/// bounds round alike; `None` if they still differ at 4096 bits (only an
/// exact tie between two binary64 neighbours can do that).
pub fn nearest_scaled(factor: u64, tail: &Tail) -> Option<f64> {
    let q = Quantity::Scaled {
        factor,
        tail: *tail,
    };
    let round = |x: Repr<2>, prec: usize| {
        FBig::<dashu_float::round::mode::HalfEven, 2>::from_repr(x, Context::new(prec))
            .to_f64()
            .value()
    };
    let mut prec = START_PRECISION;
    while prec <= 4096 {
        let (lo, hi) = q.bounds(prec);
        let (l, h) = (round(lo, prec).min(1.0), round(hi, prec).min(1.0));
        if l == h {
            return Some(l);
        }
        prec *= 2;
    }
    None
}
