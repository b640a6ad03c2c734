//! Shared test fixtures for provmark (a dev-dependency; not published):
//!
//! - [`corpus`]: the bundled human-written corpus and a byte-level BPE
//!   tokenizer trained on it;
//! - [`synthetic`] and [`generate`]: a seeded language model of chosen
//!   entropy, and generation from it through the real embedding API;
//! - [`gguf`]: a GGUF writer for well-formed and malformed model files;
//! - [`fixtures`]: seeded keys, profiles, detectors and embedders, random
//!   token streams, exact null-size helpers;
//! - [`vectors`]: the spec's test vectors (`spec/vectors/provmark-wm-1.json`);
//! - [`lab`]: a temporary lab directory (tokenizer, keys, profile) made with
//!   the `provmark` binary, and a runner for that binary.

pub mod corpus;
pub mod fixtures;
pub mod gguf;
pub mod http;
pub mod lab;
pub mod synthetic;
pub mod texts;
pub mod vectors;

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
