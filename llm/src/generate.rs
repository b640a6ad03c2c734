//! Resumable generation (`provmark generate`, the distillation teacher):
//! answer prompts with a started [`Serving`] engine into a JSON Lines file,
//! one [`Record`] per answer, appended as each finishes.
//!
//! Re-running with the same output skips the answers already there (an
//! interrupted last line is cut off and redone), so a killed run loses
//! nothing it wrote. Each answer's seed is derived from the run's seed, the
//! prompt id and the sample number ([`answer_seed`]), so answers are
//! reproducible whatever the batch size, thread count or resume history.
//!
//! A rerun must use the settings the file was written with: each record
//! carries them (profile, key id, model, served sampling settings and
//! max tokens, precision, raw mode, its seed derived from the run's seed),
//! and a rerun with other settings is refused naming the fields that
//! differ ([`GenerateError::OtherSettings`]) rather than mixing them in
//! one file.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use provmark_watermark::{Applied, PolicyMode, SamplingConfig, SamplingPolicy};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::chat::Message;
use crate::engine::{Event, Finish, Request};
use crate::jsonl::{self, JsonlError};
use crate::model::Precision;
use crate::prompts::{Prompt, PromptBody};
use crate::runtime::Runtime;
use crate::serving::Serving;

/// What one generation run does.
#[derive(Clone, Debug)]
pub struct GenerateConfig {
    /// The output JSON Lines file (appended to; resumable).
    pub out: PathBuf,
    /// How the prompts are named in errors (usually the prompt file's path).
    pub prompts_name: String,
    /// Most tokens per answer (at least 1).
    pub max_tokens: usize,
    /// Temperature, top-k, top-p, as asked.
    pub sampling: SamplingConfig,
    /// What happens to settings below the watermark's floor (spec §6.2):
    /// the answers are drawn with [`GenerateConfig::served_sampling`].
    pub policy: PolicyMode,
    /// The run's seed; each answer's own seed is [`answer_seed`] of it.
    pub seed: u64,
    /// Answers per prompt (at least 1).
    pub samples: usize,
    /// Send [`PromptBody::Text`] as raw text instead of one user message.
    pub raw: bool,
}

impl GenerateConfig {
    /// The sampling settings answers are drawn with on `serving`: the
    /// policy applied to [`GenerateConfig::sampling`] at the floor of the
    /// profile's scheme (as asked on a control engine), or
    /// [`GenerateError::BelowFloor`] under [`PolicyMode::Refuse`].
    pub fn served_sampling(&self, serving: &Serving) -> Result<Applied, GenerateError> {
        let policy = match &serving.profile {
            Some(p) => SamplingPolicy::for_scheme(self.policy, p.scheme()),
            None => SamplingPolicy::unwatermarked(),
        };
        policy
            .apply(self.sampling)
            .map_err(GenerateError::BelowFloor)
    }
}

/// One output line. Fields are declared in alphabetical order, the order
/// the records have always been written in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Generated tokens.
    pub completion_tokens: usize,
    /// `stop` or `length`.
    pub finish_reason: String,
    /// The prompt's id.
    pub id: String,
    /// The prompt's id as written in the input (string or number).
    pub input_id: Value,
    /// The profile's key id; `None` (null) for a control run.
    pub key_id: Option<String>,
    /// Generated tokens whose choice the key could change (spec §6.2);
    /// absent in records written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marked_tokens: Option<usize>,
    /// The model file's name.
    pub model: String,
    /// The model file's SHA-256, hex.
    pub model_sha256: String,
    /// The precision the model ran at (`q8_0`, `as-stored`; see
    /// [`precision_name`]); absent in records written before it was
    /// recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// The profile's digest; `None` (null) for a control run.
    pub profile_digest: Option<String>,
    /// Prompt length in tokens (chat template applied).
    pub prompt_tokens: usize,
    /// Whether a plain-text prompt was sent as raw text (no chat template);
    /// absent in records written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<bool>,
    /// The run's seed ([`GenerateConfig::seed`]) that [`Record::seed`] is
    /// derived from; absent in records written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_seed: Option<u64>,
    /// Sample number, from 0.
    pub sample: usize,
    /// The settings the answer was drawn with (after the policy).
    pub sampling: RecordSampling,
    /// This answer's seed ([`answer_seed`]).
    pub seed: u64,
    /// The answer.
    pub text: String,
    /// Timings, seconds.
    pub timing: RecordTiming,
    /// The answer's token ids (stop token excluded).
    pub token_ids: Vec<u32>,
    /// Whether the answer carries the watermark.
    pub watermark: bool,
}

/// A record's sampling settings (alphabetical). The values are the `f32`
/// settings widened to `f64`, as they were always written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordSampling {
    /// Most tokens per answer.
    pub max_tokens: usize,
    /// Temperature.
    pub temperature: f64,
    /// Top-k (0 = off).
    pub top_k: usize,
    /// Top-p (1 = off).
    pub top_p: f64,
}

/// A record's timings in seconds (alphabetical).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordTiming {
    /// From the first to the last generated token.
    pub decode_s: f64,
    /// Generated tokens after the first per second of decoding (0 when
    /// there is nothing to divide).
    pub decode_tokens_per_s: f64,
    /// From admission to the first generated token.
    pub prefill_s: f64,
    /// Waiting for a batch slot.
    pub queue_s: f64,
    /// Choosing tokens (watermark or plain sampling).
    pub sampling_s: f64,
}

/// What [`run`] reports as it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The output ended with an incomplete line (an interrupted run); it
    /// was cut off.
    DroppedPartialLine {
        /// Its length in bytes.
        bytes: u64,
    },
    /// The work, once the output has been read: `done` answers already
    /// there, `to_go` to generate.
    Planned {
        /// Answers skipped.
        done: usize,
        /// Answers to generate.
        to_go: usize,
    },
    /// A token was generated (for some answer).
    Token,
    /// An answer was written.
    Answer(&'a Record),
    /// An answer failed in the engine; it is not written (a rerun retries it).
    Failed {
        /// The prompt id.
        id: &'a str,
        /// The engine's message.
        error: &'a str,
    },
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Answers written.
    pub answers: usize,
    /// Answers that failed (not written).
    pub failed: usize,
    /// Tokens generated.
    pub tokens: u64,
    /// Seconds from the first submission to the last answer.
    pub elapsed_s: f64,
}

/// Why a run stopped. Messages name the file and line.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// `max_tokens` or `samples` is 0.
    #[error("max_tokens and samples must be at least 1")]
    Zero,
    /// The sampling settings are below the watermark's floor under a
    /// refusing policy.
    #[error("{0} (--sampling-policy floor serves at the floor)")]
    BelowFloor(provmark_watermark::BelowFloor),
    /// The output cannot be opened, read or cut.
    #[error(transparent)]
    Jsonl(#[from] JsonlError),
    /// A line of the output is not JSON.
    #[error("{}:{line}: not a JSON record; is --out the right file?", path.display())]
    NotARecord {
        /// The output file.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A line of the output lacks `id` or `sample`.
    #[error("{}:{line}: fields id and sample are missing; is --out the right file?", path.display())]
    NotAnAnswer {
        /// The output file.
        path: PathBuf,
        /// The line number.
        line: usize,
    },
    /// A line of the output was written under another profile (or none).
    #[error("{}:{line}: this file was written with another profile ({found}); use another --out", path.display())]
    OtherProfile {
        /// The output file.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// The `profile_digest` it has, as JSON (`null` for a control run).
        found: Value,
    },
    /// A line of the output was written with other settings than this
    /// run's (another key, model, sampling settings, max tokens, precision,
    /// raw mode or seed); only the fields that differ are named.
    #[error("{}:{line}: this file was written with other settings ({found}), not this run's ({wanted}); rerun with those settings or use another --out", path.display())]
    OtherSettings {
        /// The output file.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// The differing fields as the line has them (a JSON object).
        found: String,
        /// The same fields as this run would write them.
        wanted: String,
    },
    /// A prompt cannot be tokenized.
    #[error("{prompts}: prompt {id}")]
    Prompt {
        /// The prompts' name.
        prompts: String,
        /// The prompt id.
        id: String,
        /// Why.
        #[source]
        source: crate::Error,
    },
    /// A prompt does not leave room for an answer in the model's context.
    #[error("{prompts}: prompt {id} has {tokens} tokens; the model's context is {context}")]
    PromptTooLong {
        /// The prompts' name.
        prompts: String,
        /// The prompt id.
        id: String,
        /// Its length in tokens.
        tokens: usize,
        /// The model's context.
        context: usize,
    },
    /// The output cannot be opened for writing.
    #[error("cannot open {} for writing", path.display())]
    Open {
        /// The output file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The output cannot be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The engine refused a request.
    #[error(transparent)]
    Engine(#[from] crate::Error),
}

/// The seed of one answer: the first 8 bytes (little-endian) of SHA-256
/// over the tag `provmark/generate-seed/1\0`, the run seed (u64 LE), the
/// prompt id's length (u64 LE) and bytes, and the sample number (u64 LE).
pub fn answer_seed(base: u64, id: &str, sample: usize) -> u64 {
    let mut h = Sha256::new();
    h.update(b"provmark/generate-seed/1\0");
    h.update(base.to_le_bytes());
    h.update((id.len() as u64).to_le_bytes());
    h.update(id.as_bytes());
    h.update((sample as u64).to_le_bytes());
    u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

/// Token ids of a prompt: raw text as is (with `raw`), plain text as one
/// user message, a chat as it is, through the model's chat template.
pub fn encode(rt: &Runtime, prompt: &Prompt, raw: bool) -> Result<Vec<u32>, crate::Error> {
    match &prompt.body {
        PromptBody::Text(t) if raw => rt.encode_prompt(t),
        PromptBody::Text(t) => rt.encode_chat(&[Message {
            role: "user".into(),
            content: t.clone(),
        }]),
        PromptBody::Messages(m) => rt.encode_chat(m),
    }
}

/// The name records give a precision: `q8_0` or `as-stored` (as
/// `--precision` spells it).
pub fn precision_name(precision: Precision) -> &'static str {
    match precision {
        Precision::Q8_0 => "q8_0",
        Precision::AsStored => "as-stored",
    }
}

/// The settings every record of one output file must share, as the
/// records write them (JSON), and the run seed their seeds derive from.
struct RunSettings {
    fields: Map<String, Value>,
    seed: u64,
}

impl RunSettings {
    /// The fields of `line` (a record) that differ from this run's, as
    /// (found, wanted) objects; fields a record written before they were
    /// recorded lacks are not compared.
    fn differences(&self, id: &str, sample: u64, line: &Value) -> Option<(Value, Value)> {
        let (mut found, mut wanted) = (Map::new(), Map::new());
        for (k, now) in &self.fields {
            let Some(was) = line.get(k) else { continue };
            if let (Value::Object(was), Value::Object(now)) = (was, now) {
                for (sub, n) in now {
                    let w = was.get(sub).cloned().unwrap_or(Value::Null);
                    if w != *n {
                        found.insert(format!("{k}.{sub}"), w);
                        wanted.insert(format!("{k}.{sub}"), n.clone());
                    }
                }
            } else if was != now {
                found.insert(k.clone(), was.clone());
                wanted.insert(k.clone(), now.clone());
            }
        }
        let seed = answer_seed(self.seed, id, sample as usize);
        if line.get("run_seed").is_none() && line.get("seed").and_then(Value::as_u64) != Some(seed)
        {
            found.insert(
                "seed".into(),
                line.get("seed").cloned().unwrap_or(Value::Null),
            );
            wanted.insert(
                "seed".into(),
                Value::from(format!(
                    "answer_seed(--seed {}, id, sample) = {seed}",
                    self.seed
                )),
            );
        }
        (!found.is_empty()).then_some((Value::Object(found), Value::Object(wanted)))
    }
}

/// Reads what an earlier run wrote to `out`: the (id, sample) pairs done.
/// A missing file is an empty one; an incomplete last line is cut off.
/// Lines written under another profile or with other settings are refused.
fn resume(
    out: &Path,
    profile_digest: &Value,
    settings: &RunSettings,
    progress: &mut dyn FnMut(Progress),
) -> Result<HashSet<(String, u64)>, GenerateError> {
    let mut done = HashSet::new();
    if !out.exists() {
        return Ok(done);
    }
    let resumed = jsonl::open_for_append(out)?;
    if resumed.dropped_bytes > 0 {
        progress(Progress::DroppedPartialLine {
            bytes: resumed.dropped_bytes,
        });
    }
    for (i, line) in resumed.lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|source| GenerateError::NotARecord {
            path: out.to_path_buf(),
            line: i + 1,
            source,
        })?;
        let (Some(id), Some(sample)) = (v["id"].as_str(), v["sample"].as_u64()) else {
            return Err(GenerateError::NotAnAnswer {
                path: out.to_path_buf(),
                line: i + 1,
            });
        };
        if v["profile_digest"] != *profile_digest {
            return Err(GenerateError::OtherProfile {
                path: out.to_path_buf(),
                line: i + 1,
                found: v["profile_digest"].clone(),
            });
        }
        if let Some((found, wanted)) = settings.differences(id, sample, &v) {
            return Err(GenerateError::OtherSettings {
                path: out.to_path_buf(),
                line: i + 1,
                found: found.to_string(),
                wanted: wanted.to_string(),
            });
        }
        done.insert((id.to_string(), sample));
    }
    Ok(done)
}

/// Answers every prompt `config.samples` times with `serving`, appending a
/// [`Record`] per answer to `config.out` and skipping the answers already
/// there. Every prompt is tokenized before any work, so a bad prompt stops
/// the run before the output is created. Answers the engine fails are
/// reported ([`Progress::Failed`]) and counted, not written.
pub fn run(
    serving: &Serving,
    prompts: &[Prompt],
    config: &GenerateConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, GenerateError> {
    if config.max_tokens == 0 || config.samples == 0 {
        return Err(GenerateError::Zero);
    }
    let rt = serving.runtime();
    let sampling_config = config.served_sampling(serving)?.sampling;
    let profile_digest = serving.profile.as_ref().map(|p| p.digest());
    let key_id = serving.profile.as_ref().map(|p| p.key_id().to_string());
    let digest_value = profile_digest.clone().map_or(Value::Null, Value::from);
    let sampling = RecordSampling {
        max_tokens: config.max_tokens,
        temperature: f64::from(sampling_config.temperature()),
        top_k: sampling_config.top_k(),
        top_p: f64::from(sampling_config.top_p()),
    };
    let precision = precision_name(rt.model.precision());
    let mut fields = Map::new();
    fields.insert(
        "key_id".into(),
        key_id.clone().map_or(Value::Null, Value::from),
    );
    fields.insert("model_sha256".into(), Value::from(rt.sha256()));
    fields.insert("precision".into(), Value::from(precision));
    fields.insert("raw".into(), Value::from(config.raw));
    fields.insert("run_seed".into(), Value::from(config.seed));
    fields.insert(
        "sampling".into(),
        serde_json::to_value(&sampling).expect("sampling settings serialise"),
    );
    fields.insert("watermark".into(), Value::from(serving.profile.is_some()));
    let settings = RunSettings {
        fields,
        seed: config.seed,
    };
    let done = resume(&config.out, &digest_value, &settings, progress)?;
    let context = rt.model.config().context;
    let mut jobs = Vec::new();
    for p in prompts {
        let ids = encode(rt, p, config.raw).map_err(|source| GenerateError::Prompt {
            prompts: config.prompts_name.clone(),
            id: p.id.clone(),
            source,
        })?;
        if ids.len() >= context {
            return Err(GenerateError::PromptTooLong {
                prompts: config.prompts_name.clone(),
                id: p.id.clone(),
                tokens: ids.len(),
                context,
            });
        }
        for sample in 0..config.samples {
            if !done.contains(&(p.id.clone(), sample as u64)) {
                let seed = answer_seed(config.seed, &p.id, sample);
                jobs.push((p, sample, ids.clone(), seed));
            }
        }
    }
    progress(Progress::Planned {
        done: prompts.len() * config.samples - jobs.len(),
        to_go: jobs.len(),
    });
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&config.out)
        .map_err(|source| GenerateError::Open {
            path: config.out.clone(),
            source,
        })?;

    let (tx, rx) = mpsc::channel();
    for (index, (_, _, ids, seed)) in jobs.iter().enumerate() {
        let tx = tx.clone();
        let request = Request {
            prompt: ids.clone(),
            max_tokens: config.max_tokens,
            sampling: sampling_config,
            seed: *seed,
            ..Request::default()
        };
        serving.engine.submit(
            request,
            Box::new(move |e| match e {
                Event::Token { .. } => tx.send((index, None)).is_ok(),
                Event::Done(a) => tx.send((index, Some(a))).is_ok(),
            }),
        )?;
    }
    drop(tx);

    let started = Instant::now();
    let mut tokens = 0u64;
    let mut failed = 0usize;
    for (index, answer) in rx {
        let Some(a) = answer else {
            tokens += 1;
            progress(Progress::Token);
            continue;
        };
        let (p, sample, _, seed) = &jobs[index];
        if let Finish::Error(e) = &a.finish {
            failed += 1;
            progress(Progress::Failed {
                id: &p.id,
                error: e,
            });
            continue;
        }
        let decode_rate = if a.decode_s > 0.0 && a.tokens.len() > 1 {
            (a.tokens.len() - 1) as f64 / a.decode_s
        } else {
            0.0
        };
        let record = Record {
            completion_tokens: a.tokens.len(),
            finish_reason: a.finish.as_str().to_string(),
            id: p.id.clone(),
            input_id: p.id_value.clone(),
            key_id: key_id.clone(),
            marked_tokens: Some(a.marked_tokens),
            model: serving.model_name.clone(),
            model_sha256: rt.sha256().to_string(),
            precision: Some(precision.to_string()),
            profile_digest: profile_digest.clone(),
            prompt_tokens: a.prompt_tokens,
            raw: Some(config.raw),
            run_seed: Some(config.seed),
            sample: *sample,
            sampling: sampling.clone(),
            seed: *seed,
            text: a.text,
            timing: RecordTiming {
                decode_s: a.decode_s,
                decode_tokens_per_s: decode_rate,
                prefill_s: a.prefill_s,
                queue_s: a.queue_s,
                sampling_s: a.sampling_s,
            },
            token_ids: a.tokens,
            watermark: serving.profile.is_some(),
        };
        let mut line = serde_json::to_string(&record).expect("a record always serialises");
        line.push('\n');
        // One write per record: a kill leaves at most one partial line,
        // which the next run drops.
        out.write_all(line.as_bytes())
            .map_err(|source| GenerateError::Write {
                path: config.out.clone(),
                source,
            })?;
        progress(Progress::Answer(&record));
    }
    out.sync_data().ok();
    Ok(Summary {
        answers: jobs.len() - failed,
        failed,
        tokens,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

/// The run seed ([`Record::run_seed`]) of the first record of the output
/// file `out`, so that a rerun without `--seed` resumes with the seed the
/// file was written with; `None` when the file is missing, empty, or its
/// first record predates the field.
///
/// Errors: the file cannot be read or is not a regular file
/// ([`GenerateError::Jsonl`]), its first record is not JSON
/// ([`GenerateError::NotARecord`]).
pub fn recorded_seed(out: &Path) -> Result<Option<u64>, GenerateError> {
    use std::io::BufRead;
    let read = |source| {
        GenerateError::Jsonl(JsonlError::Read {
            path: out.to_path_buf(),
            source,
        })
    };
    let file = match std::fs::File::open(out) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read(e)),
    };
    if !file.metadata().map_err(read)?.is_file() {
        return Err(GenerateError::Jsonl(JsonlError::NotAFile {
            path: out.to_path_buf(),
        }));
    }
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(read)?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            // An interrupted first line: nothing recorded yet.
            Err(e) if e.is_eof() => return Ok(None),
            Err(source) => {
                return Err(GenerateError::NotARecord {
                    path: out.to_path_buf(),
                    line: i + 1,
                    source,
                })
            }
        };
        return Ok(v.get("run_seed").and_then(Value::as_u64));
    }
    Ok(None)
}

/// Reads the records of an output file (blank lines skipped); errors name
/// the line.
pub fn read_records(path: &Path) -> Result<Vec<Record>, GenerateError> {
    let resumed = std::fs::read_to_string(path).map_err(|source| {
        GenerateError::Jsonl(JsonlError::Read {
            path: path.to_path_buf(),
            source,
        })
    })?;
    resumed
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| GenerateError::NotARecord {
                path: path.to_path_buf(),
                line: i + 1,
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_serialise_as_they_always_did() {
        // The form cli/src/generate.rs wrote with `json!` (keys sorted,
        // f32 settings widened to f64).
        let (temperature, top_k, top_p, max_tokens) = (0.7f32, 5usize, 0.9f32, 20usize);
        let old = serde_json::json!({
            "id": "a", "input_id": 3, "sample": 1, "text": "hé \"x\"",
            "token_ids": [1, 2], "prompt_tokens": 7, "completion_tokens": 2,
            "finish_reason": "stop", "watermark": true, "profile_digest": "sha256:ab",
            "key_id": Value::Null, "model": "m.gguf", "model_sha256": "00",
            "sampling": {"temperature": temperature, "top_k": top_k, "top_p": top_p, "max_tokens": max_tokens},
            "seed": u64::MAX,
            "timing": {"queue_s": 0.5, "prefill_s": 0.25, "decode_s": 1.0, "sampling_s": 0.125, "decode_tokens_per_s": 1.0},
        });
        let new = Record {
            completion_tokens: 2,
            finish_reason: "stop".into(),
            id: "a".into(),
            input_id: Value::from(3),
            key_id: None,
            marked_tokens: None,
            model: "m.gguf".into(),
            model_sha256: "00".into(),
            precision: None,
            profile_digest: Some("sha256:ab".into()),
            prompt_tokens: 7,
            raw: None,
            run_seed: None,
            sample: 1,
            sampling: RecordSampling {
                max_tokens,
                temperature: f64::from(temperature),
                top_k,
                top_p: f64::from(top_p),
            },
            seed: u64::MAX,
            text: "hé \"x\"".into(),
            timing: RecordTiming {
                decode_s: 1.0,
                decode_tokens_per_s: 1.0,
                prefill_s: 0.25,
                queue_s: 0.5,
                sampling_s: 0.125,
            },
            token_ids: vec![1, 2],
            watermark: true,
        };
        let text = serde_json::to_string(&new).unwrap();
        assert_eq!(text, serde_json::to_string(&old).unwrap());
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), new);
    }

    #[test]
    fn answer_seeds_are_pinned() {
        assert_eq!(answer_seed(7, "a", 0), answer_seed(7, "a", 0));
        assert_ne!(answer_seed(7, "a", 0), answer_seed(7, "a", 1));
        assert_ne!(answer_seed(7, "a", 0), answer_seed(8, "a", 0));
        // "ab"/sample vs "a"/... cannot collide through the length prefix.
        assert_ne!(answer_seed(7, "ab", 0), answer_seed(7, "a", 0));
    }
}
