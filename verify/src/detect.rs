//! Scoring a token sequence and testing it against the scheme's exact null
//! (spec §5, §7, §8).

use ahash::AHashSet;
use provmark_watermark::{Key, Profile, Schedule, Scheme};

use crate::stats::{
    binomial_upper_tail, gamma_upper_tail, ln_binomial_pmf, ln_poisson_pmf, PValue,
};
use crate::Error;

/// How repeated (context window, token) tuples are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dedup {
    /// Each tuple is scored at most once per text (the spec's rule).
    PerText,
    /// Every position is scored. The p-values are then INVALID for any text
    /// that repeats itself; this exists only to demonstrate why the rule is
    /// needed.
    Off,
}

/// Per-position scores of one text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScoredText {
    /// Tokens in the text (the prompt prefix not counted).
    pub tokens: usize,
    /// Token index (in the text) of each scored position, increasing.
    pub positions: Vec<usize>,
    /// Score of each scored position (see
    /// `provmark_watermark::Schedule::token_score`).
    pub scores: Vec<f64>,
    /// Positions skipped because their tuple had been scored already.
    pub duplicates: usize,
}

impl ScoredText {
    /// Sum of the scores in text order: the test statistic; `0` (never
    /// `−0`, which Rust's empty float sum gives) when nothing is scored.
    pub fn statistic(&self) -> f64 {
        self.scores.iter().sum::<f64>() + 0.0
    }
}

/// Result of the exact test on a statistic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TestResult {
    /// Exact p-value.
    pub p: PValue,
    /// Standardised statistic (for orientation only; the p-value is exact).
    pub z: f64,
}

/// Detection result for one text.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Tokens in the text.
    pub tokens: usize,
    /// Positions scored.
    pub scored: usize,
    /// Positions skipped as repeats.
    pub duplicates: usize,
    /// The test statistic.
    pub statistic: f64,
    /// The test, or `None` when nothing could be scored (text too short).
    pub test: Option<TestResult>,
}

/// Scores texts against one profile under its key.
#[derive(Clone)]
pub struct Detector {
    schedule: Schedule,
    dedup: Dedup,
}

impl Detector {
    /// A detector for `profile` under `key`; fails when the key is not the
    /// profile's (`provmark_watermark::Error::KeyMismatch`).
    pub fn new(profile: &Profile, key: &Key) -> Result<Detector, Error> {
        Ok(Detector {
            schedule: Schedule::new(profile, key)?,
            dedup: Dedup::PerText,
        })
    }

    /// Changes the de-duplication rule (see [`Dedup::Off`] before using it).
    pub fn with_dedup(mut self, dedup: Dedup) -> Detector {
        self.dedup = dedup;
        self
    }

    /// The scheme being tested.
    pub fn scheme(&self) -> &Scheme {
        self.schedule.scheme()
    }

    /// Context width h.
    pub fn context_len(&self) -> usize {
        self.schedule.context_len()
    }

    /// The keyed schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Scores `ids`; `prefix` (e.g. the prompt's tokens) supplies context
    /// for the first h positions but is not itself scored.
    pub fn score(&self, prefix: &[u32], ids: &[u32]) -> ScoredText {
        let h = self.schedule.context_len();
        let lead = prefix.len().min(h);
        let mut joined = Vec::with_capacity(lead + ids.len());
        joined.extend_from_slice(&prefix[prefix.len() - lead..]);
        joined.extend_from_slice(ids);
        let mut seen: AHashSet<&[u32]> = AHashSet::with_capacity(ids.len());
        let mut scores = Vec::with_capacity(ids.len());
        let mut positions = Vec::with_capacity(ids.len());
        let mut duplicates = 0;
        let dedup = self.dedup == Dedup::PerText;
        // The schedule scores the surviving tuples in batches (eight seeds,
        // then eight keystream blocks computed together).
        let tuples = (h.max(lead)..joined.len()).filter_map(|end| {
            let tuple = &joined[end - h..=end];
            if dedup && !seen.insert(tuple) {
                duplicates += 1;
                return None;
            }
            positions.push(end - lead);
            Some(tuple)
        });
        self.schedule.score_tuples(tuples, &mut scores);
        ScoredText {
            tokens: ids.len(),
            positions,
            scores,
            duplicates,
        }
    }

    /// Scores `ids` and tests the result.
    pub fn detect(&self, ids: &[u32]) -> Detection {
        self.detect_scored(&self.score(&[], ids))
    }

    /// Tests already-computed scores.
    pub fn detect_scored(&self, scored: &ScoredText) -> Detection {
        let statistic = scored.statistic();
        Detection {
            tokens: scored.tokens,
            scored: scored.scores.len(),
            duplicates: scored.duplicates,
            statistic,
            test: self.test(scored.scores.len() as u64, statistic),
        }
    }

    /// The exact test of `statistic` over `scored` positions; `None` if
    /// nothing was scored.
    pub fn test(&self, scored: u64, statistic: f64) -> Option<TestResult> {
        null_test(self.schedule.scheme(), scored, statistic)
    }
}

/// The exact null distribution of a statistic over `scored` positions
/// (spec §8): what the test's p-value is the upper tail of, and what a
/// report's chart draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NullDistribution {
    /// Binomial(`n`, `p`) green counts, `q` = 1 − `p` exactly (KGW: `n` =
    /// scored positions, `p` = effective γ; SynthID: `n` = positions × m
    /// layers, `p` = ½).
    Binomial {
        /// Trials.
        n: u64,
        /// Success probability.
        p: f64,
        /// 1 − `p`, exactly.
        q: f64,
    },
    /// Gamma(`shape`, 1): the Gumbel sum of −ln(1 − u) over `shape` positions.
    Gamma {
        /// Scored positions.
        shape: u64,
    },
}

impl NullDistribution {
    /// The distribution of `scheme`'s statistic over `scored` positions;
    /// `None` when nothing was scored.
    pub fn of(scheme: &Scheme, scored: u64) -> Option<NullDistribution> {
        if scored == 0 {
            return None;
        }
        Some(match scheme {
            Scheme::Kgw(params) => NullDistribution::Binomial {
                n: scored,
                p: params.effective_gamma(),
                q: params.effective_red(),
            },
            Scheme::SynthId(params) => NullDistribution::Binomial {
                n: scored * params.layers() as u64,
                p: 0.5,
                q: 0.5,
            },
            Scheme::Gumbel => NullDistribution::Gamma { shape: scored },
        })
    }

    /// The mean.
    pub fn mean(&self) -> f64 {
        match *self {
            NullDistribution::Binomial { n, p, .. } => n as f64 * p,
            NullDistribution::Gamma { shape } => shape as f64,
        }
    }

    /// The standard deviation.
    pub fn sd(&self) -> f64 {
        match *self {
            NullDistribution::Binomial { n, p, q } => (n as f64 * p * q).sqrt(),
            NullDistribution::Gamma { shape } => (shape as f64).sqrt(),
        }
    }

    /// ln of the probability mass (binomial, at the nearest count) or
    /// density (Gamma) at `x`.
    pub fn ln_density(&self, x: f64) -> f64 {
        match *self {
            NullDistribution::Binomial { n, p, q } => ln_binomial_pmf(x.round() as u64, n, p, q),
            NullDistribution::Gamma { shape } => ln_poisson_pmf(shape - 1, x.max(1e-9)),
        }
    }

    /// The exact upper tail P(S ≥ `statistic`) and the z-score.
    pub fn test(&self, statistic: f64) -> TestResult {
        let p = match *self {
            NullDistribution::Binomial { n, p, q } => {
                binomial_upper_tail(statistic as u64, n, p, q)
            }
            NullDistribution::Gamma { shape } => gamma_upper_tail(shape, statistic),
        };
        TestResult {
            p,
            z: (statistic - self.mean()) / self.sd(),
        }
    }
}

/// The exact null test of each scheme (spec §8); `None` if nothing was
/// scored.
pub fn null_test(scheme: &Scheme, scored: u64, statistic: f64) -> Option<TestResult> {
    NullDistribution::of(scheme, scored).map(|d| d.test(statistic))
}
