//! `provmark generate`: answer a prompt file with the real model, the
//! watermark on (or off for controls), into a resumable JSONL file.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use provmark_llm::chat::Message;
use provmark_llm::engine::{Event, Finish, Request};
use provmark_watermark::rand_core::{OsRng, TryRngCore};
use provmark_watermark::SamplingConfig;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::prompts::{self, PromptBody};
use crate::serving::{self, ModelArgs};

#[derive(Args)]
#[command(after_long_help = "\
INPUT
  JSON Lines, one prompt per line: {\"id\": \"q1\", \"prompt\": \"...\"} (sent as one user
  message through the model's chat template; --raw sends the text as is) or
  {\"id\": \"q2\", \"messages\": [{\"role\": \"user\", \"content\": \"...\"}]}. id is optional
  (default: the line number) and must be unique.

OUTPUT
  One JSON object per answer, appended as each finishes: id, sample, text, token_ids,
  prompt_tokens, completion_tokens, finish_reason, watermark, profile_digest, key_id,
  model, model_sha256, sampling, seed and timing. Re-running with the same --out skips
  answers already there (an interrupted last line is dropped and redone), so a killed
  run loses nothing it wrote. Answers are reproducible: the same model, profile, key,
  settings and seed give the same tokens whatever --batch and --threads.

EXAMPLES
  provmark generate --profile lab.profile.json --key lab.key --prompts prompts.jsonl --out marked.jsonl
  provmark generate --no-watermark --prompts prompts.jsonl --out control.jsonl --seed 1
  provmark detect --profile lab.profile.json --key lab.key marked.jsonl control.jsonl")]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Prompts (JSON Lines).
    #[arg(long, value_name = "FILE")]
    prompts: PathBuf,
    /// Output JSON Lines file (appended to; resumable).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 200, value_name = "N")]
    max_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Keep the smallest set of tokens with this much probability (1 = off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Seed of the sampling randomness; each answer's own seed is derived
    /// from it, the prompt id and the sample number, and recorded. Default:
    /// a random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Answers per prompt.
    #[arg(long, default_value_t = 1, value_name = "N")]
    samples: usize,
    /// Send `prompt` texts as raw text instead of a user message.
    #[arg(long)]
    raw: bool,
}

/// The seed of one answer: SHA-256 of a tag, the run seed, the prompt id and
/// the sample number (so a resumed run reproduces the same answers).
fn answer_seed(base: u64, id: &str, sample: usize) -> u64 {
    let mut h = Sha256::new();
    h.update(b"provmark/generate-seed/1\0");
    h.update(base.to_le_bytes());
    h.update((id.len() as u64).to_le_bytes());
    h.update(id.as_bytes());
    h.update((sample as u64).to_le_bytes());
    u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

/// Reads what an earlier run wrote: the (id, sample) pairs done. A last line
/// without its newline (an interrupted write) is cut off.
fn resume(out: &Path, profile_digest: &Value) -> Result<HashSet<(String, u64)>> {
    let name = out.display().to_string();
    let mut done = HashSet::new();
    if !out.exists() {
        return Ok(done);
    }
    let (_, lines) = crate::jsonl::open_for_append(out)?;
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let here = format!("{name}:{}", i + 1);
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("{here}: not a JSON record; is --out the right file?"))?;
        let (Some(id), Some(sample)) = (v["id"].as_str(), v["sample"].as_u64()) else {
            bail!("{here}: fields id and sample are missing; is --out the right file?");
        };
        if v["profile_digest"] != *profile_digest {
            bail!(
                "{here}: this file was written with another profile ({}); use another --out",
                v["profile_digest"]
            );
        }
        done.insert((id.to_string(), sample));
    }
    Ok(done)
}

pub fn run(args: GenerateArgs) -> Result<ExitCode> {
    let sampling = SamplingConfig::new(args.temperature, args.top_k, args.top_p)?;
    if args.max_tokens == 0 || args.samples == 0 {
        bail!("--max-tokens and --samples must be at least 1");
    }
    let prompts = prompts::read(&args.prompts)?;
    let serving = serving::start(&args.model, &mut |l| eprintln!("provmark: {l}"))?;
    let rt = serving.runtime();
    let profile_digest = serving
        .profile
        .as_ref()
        .map_or(Value::Null, |p| Value::from(p.digest()));
    let done = resume(&args.out, &profile_digest)?;
    let base_seed = match args.seed {
        Some(s) => s,
        None => OsRng
            .try_next_u64()
            .context("cannot read the system's randomness")?,
    };
    let prompts_name = args.prompts.display().to_string();
    // Tokenize everything first: a bad prompt stops the run before any work.
    let mut jobs = Vec::new();
    for p in &prompts {
        let ids = match &p.body {
            PromptBody::Text(t) if args.raw => rt.encode_prompt(t),
            PromptBody::Text(t) => rt.encode_chat(&[Message {
                role: "user".into(),
                content: t.clone(),
            }]),
            PromptBody::Messages(m) => rt.encode_chat(m),
        }
        .with_context(|| format!("{prompts_name}: prompt {}", p.id))?;
        let context = rt.model.config().context;
        if ids.len() >= context {
            bail!(
                "{prompts_name}: prompt {} has {} tokens; the model's context is {context}",
                p.id,
                ids.len()
            );
        }
        for sample in 0..args.samples {
            if !done.contains(&(p.id.clone(), sample as u64)) {
                jobs.push((
                    p,
                    sample,
                    ids.clone(),
                    answer_seed(base_seed, &p.id, sample),
                ));
            }
        }
    }
    let skipped = prompts.len() * args.samples - jobs.len();
    if skipped > 0 {
        eprintln!(
            "provmark: {}: {skipped} answers already there, {} to go",
            args.out.display(),
            jobs.len()
        );
    }
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.out)
        .with_context(|| format!("cannot open {} for writing", args.out.display()))?;

    let (tx, rx) = mpsc::channel();
    for (index, (_, _, ids, seed)) in jobs.iter().enumerate() {
        let tx = tx.clone();
        let request = Request {
            prompt: ids.clone(),
            max_tokens: args.max_tokens,
            sampling,
            seed: *seed,
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

    let progress = ProgressBar::new(jobs.len() as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} answers  {msg}  elapsed {elapsed}  eta {eta}",
        )
        .expect("valid template"),
    );
    let started = Instant::now();
    let mut tokens = 0u64;
    let mut failed = 0usize;
    let key_id = serving
        .profile
        .as_ref()
        .map_or(Value::Null, |p| Value::from(p.key_id()));
    for (index, answer) in rx {
        let Some(a) = answer else {
            tokens += 1;
            if tokens % 16 == 0 {
                let rate = tokens as f64 / started.elapsed().as_secs_f64();
                progress.set_message(format!("{rate:.1} tokens/s"));
            }
            continue;
        };
        let (p, sample, _, seed) = &jobs[index];
        if let Finish::Error(e) = &a.finish {
            progress.suspend(|| eprintln!("provmark: prompt {}: {e}", p.id));
            failed += 1;
            progress.inc(1);
            continue;
        }
        let decode_rate = if a.decode_s > 0.0 && a.tokens.len() > 1 {
            (a.tokens.len() - 1) as f64 / a.decode_s
        } else {
            0.0
        };
        let record = json!({
            "id": p.id,
            "input_id": p.id_value,
            "sample": sample,
            "text": a.text,
            "token_ids": a.tokens,
            "prompt_tokens": a.prompt_tokens,
            "completion_tokens": a.tokens.len(),
            "finish_reason": a.finish.as_str(),
            "watermark": serving.profile.is_some(),
            "profile_digest": profile_digest,
            "key_id": key_id,
            "model": serving.model_name,
            "model_sha256": rt.sha256(),
            "sampling": {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p, "max_tokens": args.max_tokens},
            "seed": seed,
            "timing": {
                "queue_s": a.queue_s,
                "prefill_s": a.prefill_s,
                "decode_s": a.decode_s,
                "sampling_s": a.sampling_s,
                "decode_tokens_per_s": decode_rate,
            },
        });
        let mut line = serde_json::to_string(&record)?;
        line.push('\n');
        // One write per record: a kill leaves at most one partial line,
        // which the next run drops.
        out.write_all(line.as_bytes())
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    out.sync_data().ok();
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "provmark: {} answers, {tokens} tokens in {elapsed:.1} s ({:.1} tokens/s) → {}",
        jobs.len() - failed,
        tokens as f64 / elapsed.max(1e-9),
        args.out.display()
    );
    if failed > 0 {
        eprintln!("provmark: {failed} prompts failed; re-run the same command to retry them");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
