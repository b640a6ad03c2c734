//! `provmark audit corpus`: pool a suspect corpus into one test (global
//! de-duplication, optional filter Φ from the lab's own outputs), with the
//! exact p-value and the key-swap null side by side.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use provmark_verify::corpus::{key_swap_null, score_tuples, Shard, TupleSet, WindowSet};
use provmark_verify::input::{InputFormat, ReadOptions, RecordReader, DEFAULT_MAX_RECORD_BYTES};
use provmark_verify::{Detector, TextTokenizer};
use provmark_watermark::{Key, Profile};
use rayon::prelude::*;
use serde_json::json;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Test a whole corpus (e.g. a suspect model's answers) as one sample.
    Corpus(CorpusArgs),
}

#[derive(Args)]
#[command(after_long_help = "\
WHAT IT COMPUTES (spec §8.1)
  Every (window, token) tuple of every text is pooled and counted once across the
  corpus; the exact test of §8 runs on the distinct tuples. With --filter-from, only
  tuples whose window occurs in the lab's own watermarked outputs are kept (the
  filter Φ of Sander et al. 2024). The key-swap null scores the same tuples under
  --null-keys random keys derived from the public --null-seed: its p-value
  (1 + #{random keys scoring at least as high}) / (M + 1) needs no assumption about
  the PRF. Attribution requires both p-values ≤ --alpha, so M must be ≥ 1/alpha − 1.

EXIT STATUS
  0 the audit ran (whatever the verdict); 1 some texts could not be read; 2 it could not start.

EXAMPLE
  provmark audit corpus --profile lab.profile.json --key lab.key \\
      --filter-from marked.jsonl suspect_answers.jsonl")]
pub struct CorpusArgs {
    /// The suspect corpus: files or - (JSONL with --field, or one text per file).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
    /// Watermark profile.
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,
    /// The profile's key file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// tokenizer.json matching the profile (default: the default model's).
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    /// A GGUF model whose own tokenizer to use.
    #[arg(long, value_name = "GGUF", conflicts_with = "tokenizer")]
    model: Option<PathBuf>,
    /// The lab's own watermarked outputs (same formats as the inputs): keep only
    /// suspect tuples whose window occurs in them.
    #[arg(long, value_name = "FILE")]
    filter_from: Vec<String>,
    /// Random keys in the key-swap null.
    #[arg(long, default_value_t = 999, value_name = "M")]
    null_keys: usize,
    /// Public seed the null keys are derived from (recorded in the output).
    #[arg(long, default_value_t = 0)]
    null_seed: u64,
    /// Level for attribution (both p-values must reach it).
    #[arg(long, default_value_t = 1e-3)]
    alpha: f64,
    /// JSONL field holding the text.
    #[arg(long, default_value = "text")]
    field: String,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Texts tokenized per parallel batch; only one batch is held at a time.
const BATCH: usize = 4096;

/// Streams every text of `inputs` through `sink` in tokenized batches
/// (bounded memory); unreadable records are reported and counted. Returns
/// the number of texts read.
fn stream_corpus(
    inputs: &[String],
    field: &str,
    tokenizer: &TextTokenizer,
    errors: &mut usize,
    sink: &mut dyn FnMut(&[Vec<u32>]),
) -> Result<usize> {
    let options = ReadOptions {
        field: field.to_string(),
        max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
    };
    let mut texts = 0;
    for name in inputs {
        let mut reader = RecordReader::open(name, InputFormat::guess(name), options.clone())
            .with_context(|| format!("cannot open {name}"))?
            .peekable();
        while reader.peek().is_some() {
            let records = reader
                .by_ref()
                .take(BATCH)
                .collect::<std::io::Result<Vec<_>>>()
                .with_context(|| format!("cannot read {name}"))?;
            let encoded: Vec<Result<Vec<u32>, String>> = records
                .par_iter()
                .map(|r| {
                    let text = r.text.as_ref().map_err(|e| e.clone())?;
                    tokenizer.encode(text).map_err(|e| format!("{}: {e}", r.id))
                })
                .collect();
            let mut ok = Vec::with_capacity(encoded.len());
            for e in encoded {
                match e {
                    Ok(ids) => ok.push(ids),
                    Err(msg) => {
                        eprintln!("provmark: {msg}");
                        *errors += 1;
                    }
                }
            }
            texts += ok.len();
            sink(&ok);
        }
    }
    Ok(texts)
}

pub fn run(cmd: AuditCommand) -> Result<ExitCode> {
    let AuditCommand::Corpus(args) = cmd;
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        bail!(
            "--alpha must lie strictly between 0 and 1, got {}",
            args.alpha
        );
    }
    let floor = 1.0 / (args.null_keys as f64 + 1.0);
    if floor > args.alpha {
        bail!(
            "with --null-keys {} the key-swap p-value is at least {floor:.3e} > --alpha {}: \
             use at least {} null keys",
            args.null_keys,
            args.alpha,
            (1.0 / args.alpha).ceil() as u64 - 1
        );
    }
    let profile = Profile::load(&args.profile)?;
    let key = Key::load(&args.key)?;
    let detector = Detector::new(&profile, &key)
        .with_context(|| format!("{} with {}", args.profile.display(), args.key.display()))?;
    let tokenizer =
        crate::models::text_tokenizer(args.tokenizer.as_deref(), args.model.as_deref())?;
    tokenizer.check_profile(&profile, false)?;
    let h = profile.context();
    let mut errors = 0usize;
    let mut set = TupleSet::new(h, Shard::ALL).map_err(anyhow::Error::msg)?;
    let texts = stream_corpus(
        &args.inputs,
        &args.field,
        &tokenizer,
        &mut errors,
        &mut |batch| {
            for t in batch {
                set.add_text(t);
            }
        },
    )?;
    let mut tuples = set.finish();
    let distinct = tuples.len();
    let (filter_windows, dropped) = if args.filter_from.is_empty() {
        (None, 0)
    } else {
        let mut teacher = WindowSet::new(h).map_err(anyhow::Error::msg)?;
        stream_corpus(
            &args.filter_from,
            &args.field,
            &tokenizer,
            &mut errors,
            &mut |batch| teacher.add_texts(batch.iter().map(|t| &t[..])),
        )?;
        let filter = teacher.finish();
        let dropped = tuples.retain_windows(&filter).map_err(anyhow::Error::msg)?;
        (Some(filter.len()), dropped)
    };
    let observed = score_tuples(&detector, &tuples).map_err(anyhow::Error::msg)?;
    let test = observed.test(&detector);
    let progress = ProgressBar::new(args.null_keys as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} null keys  eta {eta}")
            .expect("valid template"),
    );
    let swap = key_swap_null(
        &profile,
        &tuples,
        &observed,
        args.null_keys,
        args.null_seed,
        &|_| progress.inc(1),
    )
    .map_err(anyhow::Error::msg)?;
    progress.finish_and_clear();
    let attributed = test.is_some_and(|t| t.p.value() <= args.alpha) && swap.p_value <= args.alpha;
    let verdict = match (test, attributed) {
        (None, _) => "too_short",
        (_, true) => "attributed",
        _ => "not_attributed",
    };
    let summary = json!({
        "texts": texts,
        "unreadable": errors,
        "positions": tuples.positions,
        "distinct_tuples": distinct,
        "filter_windows": filter_windows,
        "filtered_out": dropped,
        "scored": observed.scored,
        "statistic": observed.statistic,
        "log10_p": test.map(|t| t.p.log10()),
        "p_value": test.map(|t| t.p.value()),
        "z": test.map(|t| t.z),
        "key_swap": {"keys": args.null_keys, "seed": args.null_seed, "at_least": swap.at_least, "p_value": swap.p_value},
        "alpha": args.alpha,
        "verdict": verdict,
        "profile_digest": profile.digest(),
        "key_id": profile.key_id(),
    });
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        writeln!(out, "{summary}")?;
    } else {
        writeln!(out, "texts           {texts} ({errors} unreadable)")?;
        writeln!(out, "positions       {}", tuples.positions)?;
        writeln!(out, "distinct tuples {distinct}")?;
        if let Some(w) = filter_windows {
            writeln!(
                out,
                "filter          {w} lab windows; {dropped} tuples dropped"
            )?;
        }
        writeln!(out, "scored          {}", observed.scored)?;
        writeln!(out, "statistic       {:.2}", observed.statistic)?;
        match test {
            Some(t) => writeln!(
                out,
                "exact test      log10_p {:.2}  (p = {:.3e}, z = {:.2})",
                t.p.log10(),
                t.p.value(),
                t.z
            )?,
            None => writeln!(out, "exact test      nothing to score")?,
        }
        writeln!(
            out,
            "key-swap null   {} of {} random keys scored at least as high: p = {:.3e}",
            swap.at_least, args.null_keys, swap.p_value
        )?;
        writeln!(out, "verdict         {verdict} (alpha {})", args.alpha)?;
    }
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
