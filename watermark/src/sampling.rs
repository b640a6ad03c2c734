//! Sampling settings and the candidate set they produce.
//!
//! Order of operations in a decode step (spec §6): KGW bias on raw logits →
//! temperature → top-k → top-p → the draw (KGW: the caller's RNG; Gumbel and
//! SynthID: the keyed rule over exactly the candidates that survived).

use crate::Error;

/// Temperature, top-k and top-p, validated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplingConfig {
    temperature: f32,
    top_k: usize,
    top_p: f32,
}

impl Default for SamplingConfig {
    /// Temperature 1, no top-k, no top-p: the model's own distribution.
    fn default() -> Self {
        SamplingConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        }
    }
}

impl SamplingConfig {
    /// `temperature` ≥ 0 (0 is greedy); `top_k` 0 disables; `top_p` in (0, 1].
    pub fn new(temperature: f32, top_k: usize, top_p: f32) -> Result<SamplingConfig, Error> {
        if !(temperature.is_finite() && temperature >= 0.0) {
            return Err(Error::Sampling(format!(
                "temperature must be a finite number ≥ 0, got {temperature}"
            )));
        }
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(Error::Sampling(format!(
                "top_p must lie in (0, 1], got {top_p}"
            )));
        }
        Ok(SamplingConfig {
            temperature,
            top_k,
            top_p,
        })
    }
    /// Greedy decoding (temperature 0).
    pub fn greedy() -> SamplingConfig {
        SamplingConfig {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
        }
    }
    /// Temperature (0 = greedy).
    pub fn temperature(&self) -> f32 {
        self.temperature
    }
    /// Top-k (0 = off).
    pub fn top_k(&self) -> usize {
        self.top_k
    }
    /// Top-p (1 = off).
    pub fn top_p(&self) -> f32 {
        self.top_p
    }
}

/// Plain sampling with the same temperature/top-k/top-p chain as
/// [`crate::ResponseEmbedder`] but no watermark: the control arm of experiments and
/// unwatermarked serving. Holds scratch buffers; use one per thread.
#[derive(Clone, Default)]
pub struct Sampler {
    candidates: Candidates,
}

impl Sampler {
    /// Picks the next token from raw `logits` (index = token id).
    pub fn next_token<R: rand_core::RngCore + ?Sized>(
        &mut self,
        logits: &[f32],
        cfg: &SamplingConfig,
        rng: &mut R,
    ) -> u32 {
        assert!(!logits.is_empty(), "a decode step needs at least one logit");
        self.candidates.build(logits, cfg);
        self.candidates.draw(crate::embed::uniform(rng))
    }
}

/// Reusable buffers for the candidate set of one decode step.
#[derive(Clone, Default)]
pub(crate) struct Candidates {
    /// Candidate token ids, in increasing id order after [`Candidates::build`].
    pub ids: Vec<u32>,
    /// Their probabilities, normalised to sum to 1.
    pub probs: Vec<f64>,
    weights: Vec<f64>,
    order: Vec<u32>,
}

impl Candidates {
    /// Builds the candidate set from (already biased) logits.
    pub fn build(&mut self, logits: &[f32], cfg: &SamplingConfig) {
        self.ids.clear();
        self.probs.clear();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if cfg.temperature == 0.0 || !max.is_finite() {
            self.ids.push(argmax(logits) as u32);
            self.probs.push(1.0);
            return;
        }
        let inv_t = 1.0 / cfg.temperature as f64;
        let vocab = logits.len();
        // Unnormalised weights exp((l - max)/T) for every token.
        self.weights.clear();
        self.weights
            .extend(logits.iter().map(|&l| (((l - max) as f64) * inv_t).exp()));
        let weights = &self.weights;
        let total: f64 = weights.iter().sum();
        let filtering = (cfg.top_k > 0 && cfg.top_k < vocab) || cfg.top_p < 1.0;
        if !filtering {
            let norm = 1.0 / total;
            for (id, &w) in weights.iter().enumerate() {
                if w > 0.0 {
                    self.ids.push(id as u32);
                    self.probs.push(w * norm);
                }
            }
            return;
        }
        // Bucket tokens by scaled logit (1/8 nat per bucket) and find the
        // bucket where the running mass from the top reaches top_p: every
        // token of a higher bucket is in the nucleus, every token of a
        // lower one is out, so only the survivors need sorting.
        let mut cut = BUCKETS - 1;
        if cfg.top_p < 1.0 && cfg.top_k == 0 {
            let mut mass = [0f64; BUCKETS];
            for (&l, &w) in logits.iter().zip(weights) {
                mass[bucket(l, max, inv_t)] += w;
            }
            let target = cfg.top_p as f64 * total;
            let mut cumulative = 0.0;
            for (b, m) in mass.iter().enumerate() {
                cumulative += m;
                if cumulative >= target {
                    cut = b;
                    break;
                }
            }
        }
        self.order.clear();
        self.order.extend((0..vocab as u32).filter(|&i| {
            weights[i as usize] > 0.0 && bucket(logits[i as usize], max, inv_t) <= cut
        }));
        let desc = |a: &u32, b: &u32| {
            weights[*b as usize]
                .total_cmp(&weights[*a as usize])
                .then(a.cmp(b))
        };
        // Top-p is taken over the top-k survivors' mass when top-k is on
        // (renormalised, as in the usual warper chain), else over all tokens.
        let mut base = total;
        if cfg.top_k > 0 && cfg.top_k < self.order.len() {
            self.order.select_nth_unstable_by(cfg.top_k - 1, desc);
            self.order.truncate(cfg.top_k);
            base = self.order.iter().map(|&i| weights[i as usize]).sum();
        }
        if cfg.top_p < 1.0 {
            self.order.sort_unstable_by(desc);
            let target = cfg.top_p as f64 * base;
            let mut cumulative = 0.0;
            let mut keep = self.order.len();
            for (n, &i) in self.order.iter().enumerate() {
                cumulative += weights[i as usize];
                if cumulative >= target {
                    keep = n + 1;
                    break;
                }
            }
            self.order.truncate(keep);
        }
        self.order.sort_unstable();
        let kept: f64 = self.order.iter().map(|&i| weights[i as usize]).sum();
        let norm = 1.0 / kept;
        self.ids.extend_from_slice(&self.order);
        self.probs
            .extend(self.order.iter().map(|&i| weights[i as usize] * norm));
    }

    /// Inverse-CDF draw with uniform `u` in [0, 1).
    pub fn draw(&self, u: f64) -> u32 {
        let total: f64 = self.probs.iter().sum();
        let target = u * total;
        let mut cumulative = 0.0;
        for (i, &p) in self.probs.iter().enumerate() {
            cumulative += p;
            if target < cumulative {
                return self.ids[i];
            }
        }
        *self.ids.last().expect("at least one candidate")
    }
}

const BUCKETS: usize = 512;

/// Bucket of a token by (max − logit)/T, 1/8 nat wide; the last one is open.
#[inline]
fn bucket(logit: f32, max: f32, inv_t: f64) -> usize {
    let z = ((max - logit) as f64 * inv_t * 8.0) as usize;
    z.min(BUCKETS - 1)
}

fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_and_top_p_select_the_right_tokens() {
        let logits = [0.0f32, 3.0, 1.0, 2.0, -1.0];
        let mut c = Candidates::default();
        c.build(&logits, &SamplingConfig::new(1.0, 2, 1.0).unwrap());
        assert_eq!(c.ids, vec![1, 3]);
        assert!((c.probs.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(c.probs[0] > c.probs[1]);
        // p(1) ≈ 0.64, p(3) ≈ 0.24: top-p 0.7 needs both, 0.5 needs one.
        c.build(&logits, &SamplingConfig::new(1.0, 0, 0.7).unwrap());
        assert_eq!(c.ids, vec![1, 3]);
        c.build(&logits, &SamplingConfig::new(1.0, 0, 0.5).unwrap());
        assert_eq!(c.ids, vec![1]);
        c.build(&logits, &SamplingConfig::greedy());
        assert_eq!(c.ids, vec![1]);
        c.build(&logits, &SamplingConfig::default());
        assert_eq!(c.ids, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn masked_tokens_never_become_candidates() {
        let logits = [f32::NEG_INFINITY, 1.0, f32::NEG_INFINITY, 1.0];
        let mut c = Candidates::default();
        c.build(&logits, &SamplingConfig::default());
        assert_eq!(c.ids, vec![1, 3]);
        assert_eq!(c.draw(0.0), 1);
        assert_eq!(c.draw(0.99), 3);
    }

    #[test]
    fn invalid_settings_are_rejected() {
        assert!(SamplingConfig::new(-1.0, 0, 1.0).is_err());
        assert!(SamplingConfig::new(f32::NAN, 0, 1.0).is_err());
        assert!(SamplingConfig::new(1.0, 0, 0.0).is_err());
        assert!(SamplingConfig::new(1.0, 0, 1.5).is_err());
    }
}
