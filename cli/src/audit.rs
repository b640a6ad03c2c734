//! `provmark audit corpus`: pool a suspect corpus into one test (global
//! de-duplication, optional filter Φ from the lab's own outputs), with the
//! exact p-value and the key-swap null side by side.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use provmark_verify::corpus::{
    key_swap_null, score_tuples, DistinctTuples, Shard, TupleSet, WindowSet,
};
use provmark_verify::input::{InputFormat, ReadOptions, RecordReader, DEFAULT_MAX_RECORD_BYTES};
use provmark_verify::{null_test, Detector, TextTokenizer};
use provmark_watermark::{Key, Profile};
use rayon::prelude::*;
use serde_json::json;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Test a whole corpus (e.g. a suspect model's answers) as one sample.
    Corpus(CorpusArgs),
    /// Open-weight audit ("reading mode"): run a suspect GGUF over the lab's own
    /// watermarked texts and test its top-1 predictions against the schedule.
    Weights(WeightsArgs),
    /// Combine the partial results of a sharded audit into one verdict.
    Merge(MergeArgs),
}

/// What every audit mode takes: the lab's profile and key, the key-swap
/// null and the decision level, and the output form.
#[derive(Args)]
pub struct AuditCommon {
    /// Watermark profile.
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,
    /// The profile's key file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
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

impl AuditCommon {
    /// Checks the levels and loads the profile and its key's detector.
    fn load(&self) -> Result<(Profile, Detector)> {
        check_levels(self.alpha, self.null_keys)?;
        let profile = Profile::load(&self.profile)?;
        let key = Key::load(&self.key)?;
        let detector = Detector::new(&profile, &key)
            .with_context(|| format!("{} with {}", self.profile.display(), self.key.display()))?;
        Ok((profile, detector))
    }
}

#[derive(Args)]
#[command(after_long_help = "\
WHAT IT COMPUTES
  At every position of the lab's texts the suspect predicts its most likely next token
  given the real prefix; the tuple (real window, prediction) is scored against the
  lab's schedule, each distinct tuple once across the corpus (spec §8.1). A model
  trained on the lab's watermarked outputs prefers green tokens even where the text
  chose otherwise (Sander et al. 2024, open-model reading mode). The key-swap null and
  the verdict are those of audit corpus.

TOKENIZERS
  Reading mode needs the suspect to share the lab's tokenizer (same digest as the
  profile); a suspect with another tokenizer is refused with an error (use audit
  corpus on its generated text instead).

EXAMPLE
  provmark audit weights --suspect suspect.gguf --texts marked.jsonl \\
      --profile lab.profile.json --key lab.key")]
pub struct WeightsArgs {
    /// The suspect model (GGUF of the llama, Qwen2 or Qwen3 family).
    #[arg(long, value_name = "GGUF")]
    suspect: PathBuf,
    /// The lab's watermarked texts (JSONL with --field, or text files).
    #[arg(long = "texts", value_name = "FILE", required = true)]
    texts: Vec<String>,
    /// Compute threads for the suspect model.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    #[command(flatten)]
    common: AuditCommon,
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
    #[command(flatten)]
    common: AuditCommon,
    /// Only this shard of the tuple space, as INDEX/COUNT (e.g. 3/8): shards are
    /// disjoint, so separate jobs can split a large audit exactly.
    #[arg(long, value_name = "I/N", requires = "partial")]
    shard: Option<String>,
    /// Write this shard's partial result (JSON) instead of a verdict.
    #[arg(long, value_name = "FILE")]
    partial: Option<PathBuf>,
}

#[derive(Args)]
pub struct MergeArgs {
    /// Partial results written by audit corpus --shard ... --partial, one per shard.
    #[arg(required = true, value_name = "PARTIAL")]
    parts: Vec<PathBuf>,
    /// The watermark profile (its scheme gives the null distribution; no key needed).
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,
    /// Level for attribution (both p-values must reach it).
    #[arg(long, default_value_t = 1e-3)]
    alpha: f64,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
}

const PARTIAL_FORMAT: &str = "provmark-audit-partial/1";

/// An audit's sufficient statistics: what a shard writes and what merging
/// adds up (shards are disjoint sets of distinct tuples).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
struct Totals {
    format: String,
    profile_digest: String,
    key_id: String,
    shard_index: u32,
    shard_count: u32,
    texts: usize,
    unreadable: usize,
    positions: u64,
    distinct_tuples: u64,
    filter_windows: Option<usize>,
    filtered_out: u64,
    scored: u64,
    statistic: f64,
    null_seed: u64,
    null_statistics: Vec<f64>,
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
    match cmd {
        AuditCommand::Corpus(args) => run_corpus(args),
        AuditCommand::Weights(args) => run_weights(args),
        AuditCommand::Merge(args) => run_merge(args),
    }
}

fn run_weights(args: WeightsArgs) -> Result<ExitCode> {
    let (profile, detector) = args.common.load()?;
    let name = args.suspect.display().to_string();
    eprintln!("provmark: loading {name}");
    let suspect = provmark_llm::runtime::Runtime::load(&args.suspect, &name)?;
    let tokenizer = TextTokenizer::from_bytes(suspect.tokenizer.to_json().as_bytes(), &name)?;
    if tokenizer.digest() != profile.tokenizer() {
        bail!(
            "{name}: its tokenizer ({}) is not the profile's ({}); reading mode needs both to \
             give token ids the same meaning. Audit its generated text with audit corpus instead",
            tokenizer.digest(),
            profile.tokenizer()
        );
    }
    let threads = args
        .threads
        .unwrap_or_else(provmark_llm::engine::default_threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .context("cannot start the compute threads")?;
    let h = profile.context();
    let mut set = TupleSet::new(h, Shard::ALL).map_err(anyhow::Error::msg)?;
    let mut errors = 0usize;
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos} texts read by the suspect ({per_sec})")
            .expect("valid template"),
    );
    let mut failure = None;
    let texts = stream_corpus(
        &args.texts,
        &args.common.field,
        &tokenizer,
        &mut errors,
        &mut |batch| {
            for ids in batch {
                if failure.is_some() {
                    return;
                }
                let predicted = pool.install(|| {
                    provmark_llm::reading::predict_top1(&suspect.model, ids, &mut |_, _| {})
                });
                match predicted {
                    Ok(p) => {
                        let n = p.len();
                        if let Err(e) = set.add_predictions(&ids[..n], &p) {
                            failure = Some(e);
                        }
                    }
                    Err(e) => failure = Some(e.to_string()),
                }
                progress.inc(1);
            }
        },
    )?;
    progress.finish_and_clear();
    if let Some(e) = failure {
        bail!("{name}: {e}");
    }
    let tuples = set.finish();
    let distinct = tuples.len();
    conclude(
        &Outcome {
            profile: &profile,
            detector: &detector,
            shard: Shard::ALL,
            texts,
            errors,
            distinct,
            filter_windows: None,
            dropped: 0,
            common: &args.common,
            partial: None,
        },
        &tuples,
    )?;
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn check_levels(alpha: f64, null_keys: usize) -> Result<()> {
    if !(alpha > 0.0 && alpha < 1.0) {
        bail!("--alpha must lie strictly between 0 and 1, got {alpha}");
    }
    let floor = 1.0 / (null_keys as f64 + 1.0);
    if floor > alpha {
        bail!(
            "with {null_keys} null keys the key-swap p-value is at least {floor:.3e} > --alpha {alpha}: \
             use at least {} null keys",
            (1.0 / alpha).ceil() as u64 - 1
        );
    }
    Ok(())
}

fn parse_shard(text: &str) -> Result<Shard> {
    let bad = || {
        anyhow::anyhow!("--shard must be INDEX/COUNT with INDEX < COUNT (e.g. 0/4), got {text:?}")
    };
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let i: u32 = i.trim().parse().map_err(|_| bad())?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    Shard::new(i, n).ok_or_else(bad)
}

fn run_corpus(args: CorpusArgs) -> Result<ExitCode> {
    let shard = match &args.shard {
        Some(s) => parse_shard(s)?,
        None => Shard::ALL,
    };
    let (profile, detector) = args.common.load()?;
    let tokenizer =
        crate::models::text_tokenizer(args.tokenizer.as_deref(), args.model.as_deref())?;
    tokenizer.check_profile(&profile, false)?;
    let h = profile.context();
    let mut errors = 0usize;
    let mut set = TupleSet::new(h, shard).map_err(anyhow::Error::msg)?;
    let texts = stream_corpus(
        &args.inputs,
        &args.common.field,
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
            &args.common.field,
            &tokenizer,
            &mut errors,
            &mut |batch| teacher.add_texts(batch.iter().map(|t| &t[..])),
        )?;
        let filter = teacher.finish();
        let dropped = tuples.retain_windows(&filter).map_err(anyhow::Error::msg)?;
        (Some(filter.len()), dropped)
    };
    conclude(
        &Outcome {
            profile: &profile,
            detector: &detector,
            shard,
            texts,
            errors,
            distinct,
            filter_windows,
            dropped,
            common: &args.common,
            partial: args.partial.as_deref(),
        },
        &tuples,
    )?;
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What every audit mode hands to [`conclude`].
struct Outcome<'a> {
    profile: &'a Profile,
    detector: &'a Detector,
    shard: Shard,
    texts: usize,
    errors: usize,
    distinct: usize,
    filter_windows: Option<usize>,
    dropped: usize,
    common: &'a AuditCommon,
    partial: Option<&'a std::path::Path>,
}

/// Scores the tuples under the key and the key-swap null, then writes a
/// partial result or renders the verdict.
fn conclude(o: &Outcome<'_>, tuples: &DistinctTuples) -> Result<()> {
    let observed = score_tuples(o.detector, tuples).map_err(anyhow::Error::msg)?;
    let progress = ProgressBar::new(o.common.null_keys as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} null keys  eta {eta}")
            .expect("valid template"),
    );
    let swap = key_swap_null(
        o.profile,
        tuples,
        &observed,
        o.common.null_keys,
        o.common.null_seed,
        &|_| progress.inc(1),
    )
    .map_err(anyhow::Error::msg)?;
    progress.finish_and_clear();
    let totals = Totals {
        format: PARTIAL_FORMAT.into(),
        profile_digest: o.profile.digest(),
        key_id: o.profile.key_id().to_string(),
        shard_index: o.shard.index(),
        shard_count: o.shard.count(),
        texts: o.texts,
        unreadable: o.errors,
        positions: tuples.positions,
        distinct_tuples: o.distinct as u64,
        filter_windows: o.filter_windows,
        filtered_out: o.dropped as u64,
        scored: observed.scored,
        statistic: observed.statistic,
        null_seed: o.common.null_seed,
        null_statistics: swap.statistics,
    };
    if let Some(path) = o.partial {
        let text = serde_json::to_string(&totals)? + "\n";
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!(
            "provmark: shard {}/{} written to {}; combine all shards with provmark audit merge",
            o.shard.index(),
            o.shard.count(),
            path.display()
        );
        Ok(())
    } else {
        render(o.profile, &totals, o.common.alpha, o.common.json)
    }
}

fn run_merge(args: MergeArgs) -> Result<ExitCode> {
    let profile = Profile::load(&args.profile)?;
    let mut parts = Vec::new();
    for path in &args.parts {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
        let t: Totals = serde_json::from_str(&text)
            .with_context(|| format!("{name}: not a partial audit result"))?;
        if t.format != PARTIAL_FORMAT {
            bail!("{name}: format {:?}, expected {PARTIAL_FORMAT:?}", t.format);
        }
        if t.profile_digest != profile.digest() {
            bail!(
                "{name}: made with profile {}, not {}",
                t.profile_digest,
                args.profile.display()
            );
        }
        parts.push((name, t));
    }
    let (first_name, first) = &parts[0];
    let count = first.shard_count;
    let mut seen = vec![false; count as usize];
    for (name, t) in &parts {
        let same = t.shard_count == count
            && t.null_seed == first.null_seed
            && t.null_statistics.len() == first.null_statistics.len()
            && t.texts == first.texts
            && t.positions == first.positions
            && t.filter_windows == first.filter_windows;
        if !same {
            bail!(
                "{name} and {first_name} come from different audits \
                 (shard count, inputs, filter or null keys differ)"
            );
        }
        let slot = seen
            .get_mut(t.shard_index as usize)
            .ok_or_else(|| anyhow::anyhow!("{name}: bad shard index"))?;
        if *slot {
            bail!("{name}: shard {}/{count} given twice", t.shard_index);
        }
        *slot = true;
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        bail!("shard {missing}/{count} is missing: every shard is needed for an exact result");
    }
    check_levels(args.alpha, first.null_statistics.len())?;
    let mut total = first.clone();
    total.shard_index = 0;
    total.shard_count = 1;
    for (_, t) in &parts[1..] {
        total.distinct_tuples += t.distinct_tuples;
        total.filtered_out += t.filtered_out;
        total.scored += t.scored;
        total.statistic += t.statistic;
        for (a, b) in total.null_statistics.iter_mut().zip(&t.null_statistics) {
            *a += b;
        }
    }
    render(&profile, &total, args.alpha, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// The verdict of an audit's totals, as a summary or one JSON object.
fn render(profile: &Profile, t: &Totals, alpha: f64, json_out: bool) -> Result<()> {
    let test = null_test(profile.scheme(), t.scored, t.statistic);
    let keys = t.null_statistics.len();
    let at_least = t
        .null_statistics
        .iter()
        .filter(|&&s| s >= t.statistic)
        .count();
    let swap_p = (1 + at_least) as f64 / (keys + 1) as f64;
    let attributed = test.is_some_and(|x| x.p.value() <= alpha) && swap_p <= alpha;
    let verdict = match (test, attributed) {
        (None, _) => "too_short",
        (_, true) => "attributed",
        _ => "not_attributed",
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json_out {
        let summary = json!({
            "texts": t.texts,
            "unreadable": t.unreadable,
            "positions": t.positions,
            "distinct_tuples": t.distinct_tuples,
            "filter_windows": t.filter_windows,
            "filtered_out": t.filtered_out,
            "scored": t.scored,
            "statistic": t.statistic,
            "log10_p": test.map(|x| x.p.log10()),
            "p_value": test.map(|x| x.p.value()),
            "z": test.map(|x| x.z),
            "key_swap": {"keys": keys, "seed": t.null_seed, "at_least": at_least, "p_value": swap_p},
            "alpha": alpha,
            "verdict": verdict,
            "profile_digest": t.profile_digest,
            "key_id": t.key_id,
        });
        writeln!(out, "{summary}")?;
        return Ok(());
    }
    writeln!(
        out,
        "texts           {} ({} unreadable)",
        t.texts, t.unreadable
    )?;
    writeln!(out, "positions       {}", t.positions)?;
    writeln!(out, "distinct tuples {}", t.distinct_tuples)?;
    if let Some(w) = t.filter_windows {
        writeln!(
            out,
            "filter          {w} lab windows; {} tuples dropped",
            t.filtered_out
        )?;
    }
    writeln!(out, "scored          {}", t.scored)?;
    writeln!(out, "statistic       {:.2}", t.statistic)?;
    match test {
        Some(x) => writeln!(
            out,
            "exact test      log10_p {:.2}  (p = {:.3e}, z = {:.2})",
            x.p.log10(),
            x.p.value(),
            x.z
        )?,
        None => writeln!(out, "exact test      nothing to score")?,
    }
    writeln!(
        out,
        "key-swap null   {at_least} of {keys} random keys scored at least as high: p = {swap_p:.3e}"
    )?;
    writeln!(out, "verdict         {verdict} (alpha {alpha})")?;
    Ok(())
}
