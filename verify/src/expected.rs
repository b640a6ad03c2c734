//! The expected-score reading test (spec §8.5): the suspect's whole
//! next-token distribution, not only its top-1 choice, is tested for the
//! lab's bias, optionally paired against a clean reference model.
//!
//! At a scored position with window `w`, the reader gives key-independent
//! weights `a_v` on a support of tokens `v` (the suspect's probabilities
//! `q_v`, or `q_v − r_v` with a reference's `r_v`). The statistic is
//!
//! ```text
//! T = Σ_(w,v) A_(w,v) · (g(w, v) − μ)
//! ```
//!
//! over distinct (window, token) pairs, `A` the weights of all positions
//! with that window added up, `g` the token value of the scheme
//! ([`provmark_watermark::Schedule::value_tuples`]) and `μ` its mean under
//! a random key. Under the null (the weights do not depend on the key) the
//! `g` of distinct pairs are independent, so `T` has mean 0 and variance
//! `σ² Σ A²`; its p-value is the Chernoff bound computed from the exact
//! cumulant generating function of `g` ([`chernoff_tail`]), valid at any
//! sample size. A student that inherited the lab's bias puts more weight
//! on high-`g` tokens than its base model: `T / positions` estimates that
//! inheritance directly. The key-swap null (spec §8.3) calibrates `T`
//! without any assumption on the PRF.
//!
//! A position is scored only if its window is not the window of an
//! earlier response position of the same text: there, the earlier token
//! was chosen under the same keyed values and is in the prefix the models
//! read, so the weights would depend on the key.

use ahash::{AHashMap, AHashSet};
use provmark_watermark::{Profile, Schedule, Scheme};

use crate::attribution::{key_swap_p, AttributionVerdict, KeySwapP};
use crate::corpus::{null_detector, MAX_CORPUS_CONTEXT};
use crate::stats::PValue;
use crate::Error;

/// The distribution of one token value `g` under a random key (spec §8.5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueLaw {
    /// KGW: Bernoulli(γ*) (1 if green).
    Bernoulli {
        /// γ*, the effective green fraction.
        gamma: f64,
    },
    /// SynthID: Binomial(m, 1/2), the set g-value bits of m layers.
    Binomial {
        /// m.
        layers: u32,
    },
    /// Gumbel: Uniform(0, 1), the uniform r.
    Uniform,
}

impl ValueLaw {
    /// The law of `scheme`'s token value.
    pub fn of(scheme: &Scheme) -> ValueLaw {
        match scheme {
            Scheme::Kgw(p) => ValueLaw::Bernoulli {
                gamma: p.effective_gamma(),
            },
            Scheme::SynthId(p) => ValueLaw::Binomial { layers: p.layers() },
            Scheme::Gumbel => ValueLaw::Uniform,
        }
    }

    /// μ, the mean.
    pub fn mean(self) -> f64 {
        match self {
            ValueLaw::Bernoulli { gamma } => gamma,
            ValueLaw::Binomial { layers } => layers as f64 / 2.0,
            ValueLaw::Uniform => 0.5,
        }
    }

    /// σ², the variance.
    pub fn variance(self) -> f64 {
        match self {
            ValueLaw::Bernoulli { gamma } => gamma * (1.0 - gamma),
            ValueLaw::Binomial { layers } => layers as f64 / 4.0,
            ValueLaw::Uniform => 1.0 / 12.0,
        }
    }

    /// The value's unit for reporting inheritance per position: m for
    /// SynthID (so the figure is per layer's g-value), else 1.
    pub fn unit(self) -> f64 {
        match self {
            ValueLaw::Binomial { layers } => layers as f64,
            _ => 1.0,
        }
    }

    /// The centred cumulant generating function K(s) = ln E[e^{s(g − μ)}]
    /// and its first two derivatives, computed without overflow.
    pub fn cumulants(self, s: f64) -> (f64, f64, f64) {
        match self {
            ValueLaw::Bernoulli { gamma } => {
                // π(s) = P(g = 1) under the tilt.
                let k = if s > 0.0 {
                    s * (1.0 - gamma) + (gamma + (1.0 - gamma) * (-s).exp()).ln()
                } else {
                    (gamma * s.exp_m1()).ln_1p() - gamma * s
                };
                let pi = 1.0 / (1.0 + (1.0 - gamma) / gamma * (-s).exp());
                (k, pi - gamma, pi * (1.0 - pi))
            }
            ValueLaw::Binomial { layers } => {
                let m = layers as f64;
                let x = s / 2.0;
                let ln_cosh = x.abs() + (-2.0 * x.abs()).exp().ln_1p() - std::f64::consts::LN_2;
                let t = x.tanh();
                (m * ln_cosh, m / 2.0 * t, m / 4.0 * (1.0 - t * t))
            }
            ValueLaw::Uniform => {
                // K(s) = ln(sinh(x)/x), x = s/2.
                let x = s / 2.0;
                let a = x.abs();
                if a < 1e-3 {
                    let x2 = x * x;
                    (
                        x2 / 6.0 - x2 * x2 / 180.0,
                        x / 6.0 - x * x2 / 90.0,
                        1.0 / 12.0 - x2 / 60.0,
                    )
                } else {
                    let k = a + (-(-2.0 * a).exp()).ln_1p() - std::f64::consts::LN_2 - a.ln();
                    let sh = x.sinh();
                    let d1 = 0.5 * (1.0 / x.tanh() - 1.0 / x);
                    let d2 = 0.25 * (1.0 / (x * x) - 1.0 / (sh * sh));
                    (k, d1, d2.max(0.0))
                }
            }
        }
    }
}

/// The (window, token) pairs of a reading and their summed weights, in
/// first-seen order (the order the statistic is summed in, spec §8.5).
#[derive(Clone, Debug)]
pub struct WeightedTuples {
    h: usize,
    index: AHashMap<u128, usize>,
    /// h + 1 ids per pair: window (oldest first), then the token.
    tuples: Vec<u32>,
    weights: Vec<f64>,
    /// Windows of the current text's earlier response positions.
    text_windows: AHashSet<u128>,
    texts: u64,
    positions: u64,
    repeats: u64,
}

impl WeightedTuples {
    /// An empty reading for context width `h` (at most
    /// [`MAX_CORPUS_CONTEXT`], else [`Error::ContextTooWide`]).
    pub fn new(h: usize) -> Result<WeightedTuples, Error> {
        if h > MAX_CORPUS_CONTEXT {
            return Err(Error::ContextTooWide {
                h,
                max: MAX_CORPUS_CONTEXT,
            });
        }
        Ok(WeightedTuples {
            h,
            index: AHashMap::new(),
            tuples: Vec::new(),
            weights: Vec::new(),
            text_windows: AHashSet::new(),
            texts: 0,
            positions: 0,
            repeats: 0,
        })
    }

    /// Context width h.
    pub fn context(&self) -> usize {
        self.h
    }

    /// Starts a new text: windows seen in earlier texts no longer exclude.
    pub fn begin_text(&mut self) {
        self.text_windows.clear();
        self.texts += 1;
    }

    /// Adds one response position with window `window` (h ids, oldest
    /// first) and the reader's weights on tokens. Returns false (and adds
    /// nothing) when the window is that of an earlier response position of
    /// the same text. Zero and non-finite weights are skipped.
    ///
    /// Panics if `window` is not h ids long (a caller's bug).
    pub fn add_position(&mut self, window: &[u32], weights: &[(u32, f64)]) -> bool {
        assert_eq!(window.len(), self.h, "a window is h ids");
        let packed_window = window.iter().fold(0u128, |p, &id| (p << 32) | id as u128);
        if !self.text_windows.insert(packed_window) {
            self.repeats += 1;
            return false;
        }
        self.positions += 1;
        for &(token, weight) in weights {
            if weight == 0.0 || !weight.is_finite() {
                continue;
            }
            let key = (packed_window << 32) | token as u128;
            match self.index.get(&key) {
                Some(&i) => self.weights[i] += weight,
                None => {
                    self.index.insert(key, self.weights.len());
                    self.tuples.extend_from_slice(window);
                    self.tuples.push(token);
                    self.weights.push(weight);
                }
            }
        }
        true
    }

    /// Records `window` (h ids) as the window of a response position of
    /// the current text that is not read itself (reading across
    /// tokenizers, spec §8.6): later positions with that window are
    /// skipped as [`WeightedTuples::add_position`] would skip them.
    pub fn note_window(&mut self, window: &[u32]) {
        assert_eq!(window.len(), self.h, "a window is h ids");
        let packed = window.iter().fold(0u128, |p, &id| (p << 32) | id as u128);
        self.text_windows.insert(packed);
    }

    /// [`WeightedTuples::note_window`] for every position in `positions`
    /// of the lab's tokens `lab` (each needs h tokens before it).
    pub fn note_windows(&mut self, lab: &[u32], positions: std::ops::Range<usize>) {
        for j in positions {
            self.note_window(&lab[j - self.h..j]);
        }
    }

    /// Texts begun.
    pub fn texts(&self) -> u64 {
        self.texts
    }

    /// Positions scored.
    pub fn positions(&self) -> u64 {
        self.positions
    }

    /// Positions skipped because their window repeated within a text.
    pub fn repeats(&self) -> u64 {
        self.repeats
    }

    /// Distinct (window, token) pairs.
    pub fn pairs(&self) -> usize {
        self.weights.len()
    }

    /// The summed weights A, in first-seen order.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// T under `schedule`'s key: Σ A·(g − μ) in first-seen order.
    pub fn statistic(&self, schedule: &Schedule) -> f64 {
        let law = ValueLaw::of(schedule.scheme());
        let mut values = Vec::with_capacity(self.weights.len());
        schedule.value_tuples(self.tuples.chunks_exact(self.h + 1), &mut values);
        let mu = law.mean();
        self.weights
            .iter()
            .zip(&values)
            .fold(0.0, |t, (a, g)| t + a * (g - mu))
    }
}

/// The expected-score test of one reading under the lab's key.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedTest {
    /// Texts read.
    pub texts: u64,
    /// Positions scored.
    pub positions: u64,
    /// Positions skipped (window repeated within its text).
    pub repeats: u64,
    /// Distinct (window, token) pairs.
    pub pairs: u64,
    /// T.
    pub statistic: f64,
    /// σ² Σ A², T's variance under the null.
    pub variance: f64,
    /// T / √variance (orientation; the p-value is not a normal tail).
    pub z: f64,
    /// The Chernoff bound on P(T ≥ t) under the null.
    pub p: PValue,
    /// T / (positions · unit): the reader's mean excess token value per
    /// position, per layer for SynthID (the inherited bias when paired).
    pub inheritance: f64,
    /// T under each key of the key-swap null, in key order.
    pub null_statistics: Vec<f64>,
    /// The key-swap p-value of T.
    pub swap: KeySwapP,
}

impl ExpectedTest {
    /// Both p-values ≤ alpha.
    pub fn attributed(&self, alpha: f64) -> bool {
        self.positions > 0 && self.p.value() <= alpha && self.swap.p_value <= alpha
    }

    /// The test as a JSON object (`--json` output): counts, `statistic`,
    /// `variance`, `z`, `log10_p` and `p_value` (the Chernoff bound),
    /// `inheritance`, `key_swap` {keys, seed, at_least, p_value} and
    /// `attributed` at `alpha`.
    pub fn to_json(&self, null_seed: u64, alpha: f64) -> serde_json::Value {
        serde_json::json!({
            "texts": self.texts,
            "positions": self.positions,
            "repeated_windows": self.repeats,
            "pairs": self.pairs,
            "statistic": self.statistic,
            "variance": self.variance,
            "z": self.z,
            "log10_p": self.p.log10(),
            "p_value": self.p.value(),
            "inheritance": self.inheritance,
            "key_swap": {
                "keys": self.swap.keys, "seed": null_seed,
                "at_least": self.swap.at_least, "p_value": self.swap.p_value,
            },
            "attributed": self.attributed(alpha),
        })
    }
}

/// The verdict of an expected-score audit (spec §8.5): `attributed` needs
/// both of the suspect's p-values ≤ alpha and the reference's test (when
/// one was run) to have scored something and not be attributed, else
/// `inconclusive`; `too_short` when nothing of the suspect was scored.
pub fn verdict(
    suspect: &ExpectedTest,
    reference: Option<&ExpectedTest>,
    alpha: f64,
) -> AttributionVerdict {
    if suspect.positions == 0 {
        AttributionVerdict::TooShort
    } else if !suspect.attributed(alpha) {
        AttributionVerdict::NotAttributed
    } else if reference.is_some_and(|r| r.positions == 0 || r.attributed(alpha)) {
        // A control that flags the watermark, or one that was asked for and
        // scored nothing, leaves nothing to conclude.
        AttributionVerdict::Inconclusive
    } else {
        AttributionVerdict::Attributed
    }
}

/// The Chernoff bound on P(T ≥ t) for T = Σ A_j (g_j − μ) with g_j
/// independent of law `law`: inf over λ ≥ 0 of exp(Σ K(λ A_j) − λ t).
/// 1 when t ≤ 0 or every weight is 0. Terms are summed in the given order;
/// λ is found by safeguarded Newton steps on the convex exponent.
pub fn chernoff_tail(law: ValueLaw, weights: &[f64], t: f64) -> PValue {
    if t <= 0.0 || !t.is_finite() {
        return PValue::from_ln(0.0);
    }
    let exponent = |lambda: f64| {
        let (mut f, mut d1, mut d2) = (-lambda * t, -t, 0.0);
        for &a in weights {
            let (k, k1, k2) = law.cumulants(lambda * a);
            f += k;
            d1 += a * k1;
            d2 += a * a * k2;
        }
        (f, d1, d2)
    };
    let variance: f64 = law.variance() * weights.iter().map(|a| a * a).sum::<f64>();
    if variance <= 0.0 {
        return PValue::from_ln(0.0);
    }
    // The exponent is convex with slope −t at 0; bracket its minimum.
    let mut lo = 0.0;
    let mut hi = t / variance;
    while exponent(hi).1 < 0.0 {
        lo = hi;
        hi *= 2.0;
        if hi > 1e300 {
            break;
        }
    }
    let mut lambda = 0.5 * (lo + hi);
    for _ in 0..200 {
        let (_, d1, d2) = exponent(lambda);
        if d1 < 0.0 {
            lo = lambda;
        } else {
            hi = lambda;
        }
        let newton = lambda - d1 / d2;
        lambda = if d2 > 0.0 && newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        if hi - lo <= 1e-15 * hi || d1.abs() <= 1e-13 * t {
            break;
        }
    }
    PValue::from_ln(exponent(lambda).0.min(0.0))
}

/// Runs the expected-score test of `reading` under `profile`'s key
/// (`schedule`) and under `null_keys` keys of the key-swap null for
/// `null_seed` (spec §8.3); `progress` is called after each null key.
pub fn test(
    profile: &Profile,
    schedule: &Schedule,
    reading: &WeightedTuples,
    null_keys: usize,
    null_seed: u64,
    progress: &(dyn Fn(usize) + Sync),
) -> ExpectedTest {
    let law = ValueLaw::of(schedule.scheme());
    let statistic = reading.statistic(schedule);
    let mut null_statistics = Vec::with_capacity(null_keys);
    for i in 0..null_keys {
        let detector = null_detector(profile, null_seed, i as u64);
        null_statistics.push(reading.statistic(detector.schedule()));
        progress(i + 1);
    }
    let variance = law.variance() * reading.weights.iter().map(|a| a * a).sum::<f64>();
    let positions = reading.positions;
    ExpectedTest {
        texts: reading.texts,
        positions,
        repeats: reading.repeats,
        pairs: reading.weights.len() as u64,
        statistic,
        variance,
        z: if variance > 0.0 {
            statistic / variance.sqrt()
        } else {
            0.0
        },
        p: chernoff_tail(law, &reading.weights, statistic),
        inheritance: if positions > 0 {
            statistic / (positions as f64 * law.unit())
        } else {
            0.0
        },
        swap: key_swap_p(&null_statistics, statistic),
        null_statistics,
    }
}

/// The reader's weights at one position (spec §8.5): with a reference,
/// `q_v − r_v` over the union of both top-k supports; without, `q_v` over
/// the suspect's top-k. `suspect` and `reference` are probability rows
/// over the whole vocabulary. Ties at the k-th place are broken by the
/// smaller token id. Weights come out in ascending token order.
pub fn position_weights(suspect: &[f32], reference: Option<&[f32]>, k: usize) -> Vec<(u32, f64)> {
    let mut support = top_k(suspect, k);
    if let Some(r) = reference {
        support.extend(top_k(r, k));
    }
    support.sort_unstable();
    support.dedup();
    support
        .into_iter()
        .map(|v| {
            let q = suspect[v as usize] as f64;
            let w = match reference {
                Some(r) => q - r[v as usize] as f64,
                None => q,
            };
            (v, w)
        })
        .collect()
}

/// Weights moved to other token ids (a vocabulary map, spec §8.6; an
/// API's alternatives, §8.5) in ascending id, those that land on the same
/// id added up (in their given order).
pub fn merge_by_token(mut weights: Vec<(u32, f64)>) -> Vec<(u32, f64)> {
    weights.sort_by_key(|w| w.0);
    weights.dedup_by(|later, first| {
        let same = later.0 == first.0;
        if same {
            first.1 += later.1;
        }
        same
    });
    weights
}

/// The ids of the k largest entries (ties: smaller id first).
pub fn top_k(row: &[f32], k: usize) -> Vec<u32> {
    let k = k.min(row.len());
    if k == 0 {
        return Vec::new();
    }
    let mut ids: Vec<u32> = (0..row.len() as u32).collect();
    let order = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
    ids.select_nth_unstable_by(k - 1, order);
    ids.truncate(k);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulants_match_the_laws() {
        // K(s) against the definition, by summing over the support.
        let s = 0.7;
        let (k, _, _) = ValueLaw::Bernoulli { gamma: 0.25 }.cumulants(s);
        let direct = (0.75f64 + 0.25 * s.exp()).ln() - 0.25 * s;
        assert!((k - direct).abs() < 1e-14);
        let m = 5u32;
        let (k, _, _) = ValueLaw::Binomial { layers: m }.cumulants(s);
        let mut mgf = 0.0;
        for j in 0..=m {
            let c = (1..=j).fold(1.0, |c, i| c * (m - i + 1) as f64 / i as f64);
            mgf += c * 0.5f64.powi(m as i32) * (s * (j as f64 - 2.5)).exp();
        }
        assert!((k - mgf.ln()).abs() < 1e-13);
        for s in [1e-5, 0.5, -3.0, 40.0] {
            let (k, d1, d2) = ValueLaw::Uniform.cumulants(s);
            let direct = (s.exp_m1() / s).ln() - s / 2.0;
            assert!((k - direct).abs() < 1e-9 * direct.abs() + 1e-14, "{s}");
            let h = 1e-5;
            let num = (ValueLaw::Uniform.cumulants(s + h).0 - ValueLaw::Uniform.cumulants(s - h).0)
                / (2.0 * h);
            assert!((d1 - num).abs() < 1e-6, "{s}: {d1} vs {num}");
            assert!((0.0..=1.0 / 12.0 + 1e-12).contains(&d2));
        }
        // Far tails do not overflow.
        for law in [
            ValueLaw::Bernoulli { gamma: 0.25 },
            ValueLaw::Binomial { layers: 30 },
            ValueLaw::Uniform,
        ] {
            for s in [-1e6, 1e6] {
                let (k, d1, d2) = law.cumulants(s);
                assert!(
                    k.is_finite() && d1.is_finite() && d2.is_finite(),
                    "{law:?} {s}"
                );
            }
        }
    }

    #[test]
    fn chernoff_bounds_the_exact_binomial_tail() {
        // 200 unit weights under Bernoulli(1/4): T = X − 50 with X ~ Bin(200, 1/4).
        let weights = vec![1.0; 200];
        let law = ValueLaw::Bernoulli { gamma: 0.25 };
        for x in [55u64, 70, 90, 150] {
            let bound = chernoff_tail(law, &weights, x as f64 - 50.0);
            let exact = crate::stats::binomial_upper_tail(x, 200, 0.25, 0.75);
            assert!(bound.ln() >= exact.ln() - 1e-9, "x={x}");
            // Chernoff is tight to a polynomial factor.
            assert!(
                bound.ln() - exact.ln() < 4.0,
                "x={x}: {} vs {}",
                bound.ln(),
                exact.ln()
            );
        }
        assert_eq!(chernoff_tail(law, &weights, -1.0).value(), 1.0);
        assert_eq!(chernoff_tail(law, &[], 1.0).value(), 1.0);
    }

    #[test]
    fn repeated_windows_within_a_text_are_skipped() {
        let mut r = WeightedTuples::new(2).unwrap();
        r.begin_text();
        assert!(r.add_position(&[1, 2], &[(5, 0.5), (6, 0.25)]));
        assert!(!r.add_position(&[1, 2], &[(5, 0.5)]));
        assert!(r.add_position(&[2, 3], &[(5, 0.1), (7, 0.0)]));
        r.begin_text();
        // Another text may repeat the window: its weights add up.
        assert!(r.add_position(&[1, 2], &[(5, 0.25)]));
        assert_eq!(
            (r.texts(), r.positions(), r.repeats(), r.pairs()),
            (2, 3, 1, 3)
        );
        assert_eq!(r.weights(), &[0.75, 0.25, 0.1]);
    }

    #[test]
    fn a_control_that_scored_nothing_leaves_the_verdict_inconclusive() {
        let key = provmark_watermark::Key::from_bytes([1; 32]);
        let profile = Profile::new(
            Scheme::Gumbel,
            1,
            provmark_watermark::TokenizerDigest::of_bytes(b"t"),
            &key,
        )
        .unwrap();
        let schedule = Schedule::new(&profile, &key).unwrap();
        let mut strong = WeightedTuples::new(1).unwrap();
        strong.begin_text();
        // Weight on the tokens of highest value after each window: attributed.
        for w in 0..400u32 {
            let tuples: Vec<u32> = (0..64).flat_map(|v| [w, v]).collect();
            let mut g = Vec::new();
            schedule.value_tuples(tuples.chunks_exact(2), &mut g);
            let best = (0..64).max_by(|a, b| g[*a].total_cmp(&g[*b])).unwrap() as u32;
            strong.add_position(&[w], &[(best, 1.0)]);
        }
        let s = test(&profile, &schedule, &strong, 19, 0, &|_| {});
        assert!(s.attributed(0.05));
        let empty = test(
            &profile,
            &schedule,
            &WeightedTuples::new(1).unwrap(),
            19,
            0,
            &|_| {},
        );
        assert_eq!(verdict(&s, None, 0.05), AttributionVerdict::Attributed);
        assert_eq!(
            verdict(&s, Some(&empty), 0.05),
            AttributionVerdict::Inconclusive
        );
        assert_eq!(verdict(&empty, None, 0.05), AttributionVerdict::TooShort);
    }

    #[test]
    fn top_k_breaks_ties_by_id() {
        let row = [0.1, 0.3, 0.3, 0.05, 0.25];
        let mut t = top_k(&row, 2);
        t.sort();
        assert_eq!(t, vec![1, 2]);
        let w = position_weights(&row, Some(&[0.5, 0.1, 0.1, 0.1, 0.2]), 1);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].0, 0);
        assert!((w[0].1 - (0.1 - 0.5)).abs() < 1e-7);
        assert_eq!(w[1].0, 1);
    }
}
