//! Shared pieces of provmark's benchmarks, evaluation experiments and
//! statistical tests: a synthetic language model, real text with a trained
//! tokenizer, generation through the real embedding API, and KS checks.

pub mod corpus;
pub mod ks;
pub mod ngram;
pub mod plot;
pub mod prompts;
pub mod synthetic;
pub mod teacher;
pub mod transformer;

use provmark_watermark::rand_core::RngCore;
use provmark_watermark::{Embedder, RepeatedWindows, Sampler, SamplingConfig};
use synthetic::ZipfLm;

/// Generates `len` tokens after `prompt` from the synthetic model through
/// the embedder (watermarked), or plain sampling when `embedder` is `None`.
/// The response marks every position, repeated windows included
/// ([`RepeatedWindows::Remark`]): the rule the recorded experiments
/// (`bench/RESULTS.md`) were generated with.
pub fn generate<R: RngCore>(
    lm: &ZipfLm,
    embedder: Option<&Embedder>,
    cfg: &SamplingConfig,
    rng: &mut R,
    prompt: &[u32],
    len: usize,
) -> Vec<u32> {
    let mut context = prompt.to_vec();
    let mut logits = vec![0f32; lm.vocab()];
    let mut plain = Sampler::default();
    let mut response = embedder.map(|e| e.response_with(RepeatedWindows::Remark));
    for _ in 0..len {
        lm.logits(&context, &mut logits);
        let t = match response {
            Some(ref mut e) => e.next_token(&context, &logits, cfg, rng),
            None => plain.next_token(&logits, cfg, rng),
        };
        context.push(t);
    }
    context.split_off(prompt.len())
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
