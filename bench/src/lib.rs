//! Shared pieces of provmark's benchmarks, evaluation experiments and
//! statistical tests: a synthetic language model, real text with a trained
//! tokenizer, generation through the real embedding API, and KS checks.

pub mod corpus;
pub mod ks;
pub mod synthetic;

use provmark_watermark::rand_core::RngCore;
use provmark_watermark::{Embedder, SamplingConfig};
use synthetic::ZipfLm;

/// Generates `len` tokens after `prompt` from the synthetic model through
/// the embedder (watermarked), or plain sampling when `embedder` is `None`.
pub fn generate<R: RngCore>(
    lm: &ZipfLm,
    embedder: Option<&mut Embedder>,
    cfg: &SamplingConfig,
    rng: &mut R,
    prompt: &[u32],
    len: usize,
) -> Vec<u32> {
    let mut context = prompt.to_vec();
    let mut logits = vec![0f32; lm.vocab()];
    let Some(embedder) = embedder else {
        return PlainSampler.run(lm, cfg, rng, &mut context, len);
    };
    for _ in 0..len {
        lm.logits(&context, &mut logits);
        let t = embedder.next_token(&context, &logits, cfg, rng);
        context.push(t);
    }
    context.split_off(prompt.len())
}

/// Unwatermarked inverse-CDF sampling, for control texts.
struct PlainSampler;

impl PlainSampler {
    fn run<R: RngCore>(
        &mut self,
        lm: &ZipfLm,
        cfg: &SamplingConfig,
        rng: &mut R,
        context: &mut Vec<u32>,
        len: usize,
    ) -> Vec<u32> {
        let start = context.len();
        let mut logits = vec![0f32; lm.vocab()];
        let mut weights = vec![0f64; lm.vocab()];
        let t = cfg.temperature().max(1e-6) as f64;
        for _ in 0..len {
            lm.logits(context, &mut logits);
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let mut total = 0.0;
            for (w, &l) in weights.iter_mut().zip(&logits) {
                *w = ((l as f64 - max) / t).exp();
                total += *w;
            }
            let u = (rng.next_u64() >> 11) as f64 / 9007199254740992.0 * total;
            let mut acc = 0.0;
            let mut pick = weights.len() - 1;
            for (i, &w) in weights.iter().enumerate() {
                acc += w;
                if u < acc {
                    pick = i;
                    break;
                }
            }
            context.push(pick as u32);
        }
        context.split_off(start)
    }
}

/// Number of leading tokens after which the running p-value of `scores`
/// first reaches `alpha`, or `None` if it never does.
pub fn tokens_to_detect(
    detector: &provmark_verify::Detector,
    scored: &provmark_verify::ScoredText,
    alpha: f64,
) -> Option<usize> {
    let mut sum = 0.0;
    for (i, s) in scored.scores.iter().enumerate() {
        sum += s;
        let p = detector.test(i as u64 + 1, sum).expect("scored ≥ 1").p;
        if p.ln() <= alpha.ln() {
            return Some(scored.positions[i] + 1);
        }
    }
    None
}
