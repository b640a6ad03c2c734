//! The teacher side of the distillation experiment: the real default model
//! answers a prompt set, watermarked or not, and the answers are cached on
//! disk (one JSONL file per arm) so a rerun resumes instead of regenerating.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;

use provmark_llm::chat::Message;
use provmark_llm::engine::{Engine, EngineConfig, Request};
use provmark_llm::runtime::Runtime;
use provmark_watermark::{Embedder, Key, Profile, SamplingConfig};
use serde_json::json;

use crate::prompts::FamilyPrompt;

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
    let want = run.prompts.len() * run.samples as usize;
    load(path).filter(|c| c.len() == want)
}

/// Loads the cached answers at `path`, or generates them (and writes the
/// cache) when the file is missing or incomplete.
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
    let t1 = SamplingConfig::new(1.0, 0, 1.0).unwrap();
    let mut meta = Vec::new();
    let mut requests = Vec::new();
    for (pi, p) in run.prompts.iter().enumerate() {
        let prompt = run
            .runtime
            .encode_chat(&[Message {
                role: "user".into(),
                content: p.text.clone(),
            }])
            .expect("prompt encodes");
        for s in 0..run.samples {
            meta.push((p, s, prompt.clone()));
            requests.push(Request {
                prompt: prompt.clone(),
                max_tokens: run.max_tokens,
                sampling: t1,
                seed: (pi as u64) << 8 | s as u64,
            });
        }
    }
    let done = engine.run_batch(requests).expect("teacher answers");
    let out: Vec<TeacherAnswer> = meta
        .into_iter()
        .zip(done)
        .map(|((p, sample, prompt), a)| TeacherAnswer {
            prompt_id: p.id.clone(),
            family: p.family.to_string(),
            sample,
            prompt,
            tokens: a.tokens,
            text: a.text,
        })
        .collect();
    save(path, &out);
    out
}

fn save(path: &Path, answers: &[TeacherAnswer]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
    for a in answers {
        let line = json!({
            "prompt_id": a.prompt_id,
            "family": a.family,
            "sample": a.sample,
            "prompt": a.prompt,
            "tokens": a.tokens,
            "text": a.text,
        });
        writeln!(f, "{line}").unwrap();
    }
    f.flush().unwrap();
    drop(f);
    std::fs::rename(tmp, path).unwrap();
}

fn load(path: &Path) -> Option<Vec<TeacherAnswer>> {
    let f = std::fs::File::open(path).ok()?;
    let mut out = Vec::new();
    for line in std::io::BufReader::new(f).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.ok()?).ok()?;
        let ids = |k: &str| -> Option<Vec<u32>> {
            v[k].as_array()?
                .iter()
                .map(|x| x.as_u64().map(|x| x as u32))
                .collect()
        };
        out.push(TeacherAnswer {
            prompt_id: v["prompt_id"].as_str()?.to_string(),
            family: v["family"].as_str()?.to_string(),
            sample: v["sample"].as_u64()? as u32,
            prompt: ids("prompt")?,
            tokens: ids("tokens")?,
            text: v["text"].as_str()?.to_string(),
        });
    }
    Some(out)
}
