//! Pieces the real-model experiments share (`real-model`,
//! `sampling-power`): the default profiles' schemes, prompt encoding, the
//! model's logits along an answer, and a median.

use provmark_llm::chat::Message;
use provmark_llm::model::Step;
use provmark_llm::runtime::Runtime;
use provmark_watermark::{KgwParams, Scheme, SynthIdParams};

use crate::prompts::FamilyPrompt;

/// Context width of `provmark profile new` by default (`--context 2`).
pub const DEFAULT_CONTEXT: u32 = 2;

/// The three schemes with the parameters `provmark profile new` uses by
/// default (`cli/src/args/keys.rs`: `--gamma 0.25 --delta 2 --layers 30`),
/// each with a short label for tables.
pub fn default_schemes() -> [(&'static str, Scheme); 3] {
    [
        (
            "kgw γ=0.25 δ=2",
            Scheme::Kgw(KgwParams::new(0.25, 2.0).expect("valid")),
        ),
        ("gumbel", Scheme::Gumbel),
        (
            "synthid m=30",
            Scheme::SynthId(SynthIdParams::new(30).expect("valid")),
        ),
    ]
}

/// Each prompt as a single user message under the model's chat template.
pub fn encode_user_prompts(rt: &Runtime, prompts: &[FamilyPrompt]) -> Vec<Vec<u32>> {
    prompts
        .iter()
        .map(|p| {
            rt.encode_chat(&[Message {
                role: "user".into(),
                content: p.text.clone(),
            }])
            .expect("prompt encodes")
        })
        .collect()
}

/// The model's raw next-token logits before each token of `answer` after
/// `prompt` (one forward pass over both): `answer.len()` rows of `vocab`
/// values, row i being what the decode step that chose `answer[i]` saw.
/// Runs on the current rayon pool.
pub fn answer_logits(rt: &Runtime, prompt: &[u32], answer: &[u32]) -> Vec<f32> {
    if answer.is_empty() {
        return Vec::new();
    }
    let mut all = prompt.to_vec();
    all.extend_from_slice(answer);
    let mut cache = rt.model.new_cache();
    let mut logits = Vec::new();
    rt.model
        .forward_all(
            Step {
                cache: &mut cache,
                tokens: &all[..all.len() - 1],
            },
            &mut logits,
        )
        .expect("forward");
    let v = rt.model.config().vocab;
    logits.drain(..(prompt.len() - 1) * v);
    logits
}

/// Median (NaN for an empty sample).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
