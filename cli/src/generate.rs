//! `provmark generate`: answer a prompt file with the real model, the
//! watermark on (or off for controls), into a resumable JSONL file.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use provmark_llm::generate::{self, GenerateConfig, Progress};
use provmark_llm::jsonl;
use provmark_llm::serving::{Serving, ServingConfig};

/// Answers the prompt file `prompts` into `config.out`, with a progress bar;
/// exit status 1 when some answers failed.
pub fn run(prompts: &Path, serving: &ServingConfig, config: &GenerateConfig) -> Result<ExitCode> {
    let prompts = provmark_llm::prompts::read(prompts)?;
    let serving = Serving::start(serving, &mut |l| errln!("provmark: {l}"))?;
    let applied = config.served_sampling(&serving)?;
    if !applied.raised.is_empty() {
        let s = applied.sampling;
        errln!(
            "provmark: answering at temperature {}, top_p {}, top_k {}: the watermark's floor (--sampling-policy)",
            s.temperature(),
            s.top_p(),
            s.top_k()
        );
    }
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
            errln!("provmark: {}", jsonl::dropped_line(&config.out, bytes))
        }
        Progress::Planned { done, to_go } => {
            if done > 0 {
                errln!("provmark: {out}: {done} answers already there, {to_go} to go");
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
            progress.suspend(|| errln!("provmark: prompt {id}: {error}"));
            progress.inc(1);
        }
    })?;
    progress.finish_and_clear();
    let elapsed = summary.elapsed_s;
    errln!(
        "provmark: {} answers, {} tokens in {elapsed:.1} s ({:.1} tokens/s) → {out}",
        summary.answers,
        summary.tokens,
        summary.tokens as f64 / elapsed.max(1e-9),
    );
    if summary.failed > 0 {
        errln!(
            "provmark: {} prompts failed; re-run the same command to retry them",
            summary.failed
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
