//! The teacher side of the distillation experiment: the real default model
//! answers a prompt set, watermarked or not, through the library's
//! resumable generation ([`provmark_llm::generate`]); the answers are kept
//! on disk (one JSONL file per arm) so a rerun resumes instead of
//! regenerating.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use provmark_llm::engine::{Engine, EngineConfig};
use provmark_llm::generate::{self, GenerateConfig};
use provmark_llm::prompts::{Prompt, PromptBody};
use provmark_llm::runtime::Runtime;
use provmark_llm::serving::Serving;
use provmark_watermark::{Embedder, Key, Profile, SamplingConfig};

use crate::prompts::FamilyPrompt;

/// The run seed the teacher's per-answer seeds are derived from
/// ([`generate::answer_seed`]).
pub const TEACHER_SEED: u64 = 0;

/// One teacher answer.
#[derive(Clone, Debug)]
pub struct TeacherAnswer {
    /// Prompt id (`family-topic`).
    pub prompt_id: String,
    /// Prompt family, for hold-out splits.
    pub family: String,
    /// Sample number for this prompt.
    pub sample: u32,
    /// Prompt token ids (chat template applied).
    pub prompt: Vec<u32>,
    /// Answer token ids.
    pub tokens: Vec<u32>,
    /// Answer text.
    pub text: String,
}

/// What one teacher run needs.
pub struct TeacherRun<'a> {
    /// The loaded model.
    pub runtime: &'a Arc<Runtime>,
    /// The watermark, or `None` for the unwatermarked teacher.
    pub profile: Option<&'a Profile>,
    /// The lab's key.
    pub key: &'a Key,
    /// Prompts to answer.
    pub prompts: &'a [FamilyPrompt],
    /// Answers per prompt (different seeds).
    pub samples: u32,
    /// Most tokens per answer.
    pub max_tokens: usize,
    /// Compute threads.
    pub threads: usize,
}

/// The complete cached answers at `path`, if there are.
pub fn cached(run: &TeacherRun, path: &Path) -> Option<Vec<TeacherAnswer>> {
    let records = generate::read_records(path).ok()?;
    let mut by_key: HashMap<(String, usize), generate::Record> = records
        .into_iter()
        .map(|r| ((r.id.clone(), r.sample), r))
        .collect();
    let mut out = Vec::new();
    for p in run.prompts {
        let prompt = generate::encode(run.runtime, &prompt_of(p), false).ok()?;
        for sample in 0..run.samples {
            let r = by_key.remove(&(p.id.clone(), sample as usize))?;
            out.push(TeacherAnswer {
                prompt_id: p.id.clone(),
                family: p.family.to_string(),
                sample,
                prompt: prompt.clone(),
                tokens: r.token_ids,
                text: r.text,
            });
        }
    }
    Some(out)
}

fn prompt_of(p: &FamilyPrompt) -> Prompt {
    Prompt {
        id: p.id.clone(),
        id_value: p.id.clone().into(),
        body: PromptBody::Text(p.text.clone()),
    }
}

/// Loads the cached answers at `path`, or generates the missing ones
/// (appending to `path`) and then loads them.
pub fn answers(run: &TeacherRun, path: &Path) -> Vec<TeacherAnswer> {
    if let Some(cached) = cached(run, path) {
        return cached;
    }
    let embedder = run.profile.map(|p| Embedder::new(p, run.key).unwrap());
    let engine = Engine::start(
        run.runtime.clone(),
        embedder,
        EngineConfig {
            threads: run.threads,
            max_batch: 16,
            prefill_chunk: 256,
        },
    )
    .expect("engine");
    let serving = Serving {
        engine,
        profile: run.profile.cloned(),
        model_name: run.runtime.name().to_string(),
    };
    let prompts: Vec<Prompt> = run.prompts.iter().map(prompt_of).collect();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let config = GenerateConfig {
        out: path.to_path_buf(),
        prompts_name: "teacher prompts".into(),
        max_tokens: run.max_tokens,
        sampling: SamplingConfig::new(1.0, 0, 1.0).unwrap(),
        policy: provmark_watermark::PolicyMode::AsRequested,
        seed: TEACHER_SEED,
        samples: run.samples as usize,
        raw: false,
    };
    let summary = generate::run(&serving, &prompts, &config, &mut |_| {}).expect("teacher answers");
    assert_eq!(summary.failed, 0, "teacher answers failed");
    cached(run, path).expect("all teacher answers written")
}
