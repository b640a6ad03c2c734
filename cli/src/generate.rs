//! `provmark generate`: answer a prompt file with the real model, the
//! watermark on (or off for controls), into a resumable JSONL file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use provmark_llm::generate::{self, GenerateConfig, Progress};
use provmark_llm::jsonl;
use provmark_llm::serving::ServingConfig;
use provmark_watermark::rand_core::{OsRng, TryRngCore};
use provmark_watermark::SamplingConfig;

use crate::serving::{self, ModelArgs};

#[derive(Args)]
#[command(after_long_help = include_str!("../help/generate.txt").trim_end())]
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

impl GenerateArgs {
    fn to_config(&self) -> Result<(ServingConfig, GenerateConfig)> {
        let sampling = SamplingConfig::new(self.temperature, self.top_k, self.top_p)?;
        if self.max_tokens == 0 || self.samples == 0 {
            bail!("--max-tokens and --samples must be at least 1");
        }
        let serving = self.model.to_config()?;
        let seed = match self.seed {
            Some(s) => s,
            None => OsRng
                .try_next_u64()
                .context("cannot read the system's randomness")?,
        };
        let generate = GenerateConfig {
            out: self.out.clone(),
            prompts_name: self.prompts.display().to_string(),
            max_tokens: self.max_tokens,
            sampling,
            seed,
            samples: self.samples,
            raw: self.raw,
        };
        Ok((serving, generate))
    }
}

pub fn run(args: GenerateArgs) -> Result<ExitCode> {
    let (serving, config) = args.to_config()?;
    execute(&args.prompts, &serving, &config)
}

/// Answers the prompt file `prompts` into `config.out`, with a progress bar;
/// exit status 1 when some answers failed.
pub fn execute(
    prompts: &Path,
    serving: &ServingConfig,
    config: &GenerateConfig,
) -> Result<ExitCode> {
    let prompts = provmark_llm::prompts::read(prompts)?;
    let serving = serving::start(serving)?;
    let out = config.out.display().to_string();
    let progress = ProgressBar::hidden();
    progress.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} answers  {msg}  elapsed {elapsed}  eta {eta}",
        )
        .expect("valid template"),
    );
    let mut started = Instant::now();
    let mut tokens = 0u64;
    let summary = generate::run(&serving, &prompts, config, &mut |p| match p {
        Progress::DroppedPartialLine { bytes } => {
            eprintln!("provmark: {}", jsonl::dropped_line(&config.out, bytes))
        }
        Progress::Planned { done, to_go } => {
            if done > 0 {
                eprintln!("provmark: {out}: {done} answers already there, {to_go} to go");
            }
            progress.set_length(to_go as u64);
            progress.set_draw_target(ProgressDrawTarget::stderr());
            started = Instant::now();
        }
        Progress::Token => {
            tokens += 1;
            if tokens % 16 == 0 {
                let rate = tokens as f64 / started.elapsed().as_secs_f64();
                progress.set_message(format!("{rate:.1} tokens/s"));
            }
        }
        Progress::Answer(_) => progress.inc(1),
        Progress::Failed { id, error } => {
            progress.suspend(|| eprintln!("provmark: prompt {id}: {error}"));
            progress.inc(1);
        }
    })?;
    progress.finish_and_clear();
    let elapsed = summary.elapsed_s;
    eprintln!(
        "provmark: {} answers, {} tokens in {elapsed:.1} s ({:.1} tokens/s) → {out}",
        summary.answers,
        summary.tokens,
        summary.tokens as f64 / elapsed.max(1e-9),
    );
    if summary.failed > 0 {
        eprintln!(
            "provmark: {} prompts failed; re-run the same command to retry them",
            summary.failed
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
