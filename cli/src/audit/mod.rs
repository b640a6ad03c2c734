//! `provmark audit corpus`: pool a suspect corpus into one test (global
//! de-duplication, optional filter Φ from the lab's own outputs), with the
//! exact p-value and the key-swap null side by side.

mod api;
mod verdict;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use provmark_verify::corpus::{DistinctTuples, Shard, TupleSet, WindowSet};
use provmark_verify::input::{InputFormat, ReadOptions, RecordReader, DEFAULT_MAX_RECORD_BYTES};
use provmark_verify::{Detector, TextTokenizer};
use provmark_watermark::{Key, Profile};
use rayon::prelude::*;
use serde_json::Map;

use crate::report::Recorder;
use verdict::{render, totals, Counts, NullKeys, Report, Totals, PARTIAL_FORMAT};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Test a whole corpus (e.g. a suspect model's answers) as one sample.
    Corpus(CorpusArgs),
    /// Open-weight audit ("reading mode"): run a suspect GGUF over the lab's own
    /// watermarked texts and test its top-1 predictions against the schedule.
    Weights(WeightsArgs),
    /// Black-box audit: query a suspect's OpenAI-compatible API with prompts, keep
    /// every answer (resumable), and test the answers as one corpus.
    Api(api::ApiArgs),
    /// Combine the partial results of a sharded audit into one verdict.
    Merge(MergeArgs),
}

/// What every audit mode takes: the lab's profile and key, the key-swap
/// null and the decision level, and the output form.
#[derive(Args, Clone)]
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
    /// Also write an evidence report (canonical JSON, spec/report.md) that
    /// provmark report verify can recompute from the key and the inputs.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

impl AuditCommon {
    /// A report recorder with the settings every audit shares, when --report
    /// was given.
    fn recorder(&self, command: &str, profile: &Profile) -> Result<Option<Recorder>> {
        if self.report.is_none() {
            return Ok(None);
        }
        let mut r = Recorder::new(command);
        r.param("alpha", self.alpha, serde_json::json!(self.alpha));
        r.param(
            "null-keys",
            self.null_keys,
            serde_json::json!(self.null_keys),
        );
        r.param(
            "null-seed",
            self.null_seed,
            serde_json::json!(self.null_seed),
        );
        r.param("field", &self.field, serde_json::json!(self.field));
        r.profile(profile, &Key::load(&self.key)?);
        Ok(Some(r))
    }

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
    /// A clean reference model (same tokenizer) known not to be trained on the
    /// lab's outputs, e.g. the suspect's base model: read the same texts and shown
    /// beside the suspect.
    #[arg(long, value_name = "GGUF")]
    reference_model: Option<PathBuf>,
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
    /// A clean reference corpus (e.g. a model known not to be trained on the lab's
    /// outputs answering the same prompts): the same pipeline runs on it and it is
    /// shown beside the suspect.
    #[arg(long, value_name = "FILE", conflicts_with = "shard")]
    reference: Vec<String>,
    #[command(flatten)]
    common: AuditCommon,
    /// Only this shard of the tuple space, as INDEX/COUNT (e.g. 3/8): shards are
    /// disjoint, so separate jobs can split a large audit exactly.
    #[arg(long, value_name = "I/N", requires = "partial")]
    shard: Option<String>,
    /// Write this shard's partial result (JSON) instead of a verdict (a report
    /// comes from audit merge).
    #[arg(long, value_name = "FILE", conflicts_with = "report")]
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
    /// Also write an evidence report of the merged result (spec/report.md).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
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
        AuditCommand::Api(args) => api::run(args),
    }
}

/// The suspect's top-1 predictions over the lab's texts, as tuples.
fn read_with(
    path: &std::path::Path,
    profile: &Profile,
    texts: &[String],
    common: &AuditCommon,
    pool: &rayon::ThreadPool,
) -> Result<(Counts, DistinctTuples)> {
    let name = path.display().to_string();
    eprintln!("provmark: loading {name}");
    let model = provmark_llm::runtime::Runtime::load(path, &name)?;
    let tokenizer = TextTokenizer::from_bytes(model.tokenizer.to_json().as_bytes(), &name)?;
    if tokenizer.digest() != profile.tokenizer() {
        bail!(
            "{name}: its tokenizer ({}) is not the profile's ({}); reading mode needs both to \
             give token ids the same meaning. Audit its generated text with audit corpus instead",
            tokenizer.digest(),
            profile.tokenizer()
        );
    }
    let mut set = TupleSet::new(profile.context(), Shard::ALL).map_err(anyhow::Error::msg)?;
    let mut errors = 0usize;
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos} texts read by {msg} ({per_sec})")
            .expect("valid template"),
    );
    progress.set_message(name.clone());
    let mut failure = None;
    let count = stream_corpus(
        texts,
        &common.field,
        &tokenizer,
        &mut errors,
        &mut |batch| {
            for ids in batch {
                if failure.is_some() {
                    return;
                }
                let predicted = pool.install(|| {
                    provmark_llm::reading::predict_top1(&model.model, ids, &mut |_, _| {})
                });
                match predicted {
                    Ok(p) => {
                        let n = p.len();
                        if let Err(e) = set.add_predictions(&ids[..n], &p) {
                            failure = Some(e.to_string());
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
    let counts = Counts {
        texts: count,
        errors,
        distinct: tuples.len(),
        filter_windows: None,
        dropped: 0,
    };
    Ok((counts, tuples))
}

fn run_weights(args: WeightsArgs) -> Result<ExitCode> {
    let (profile, detector) = args.common.load()?;
    let mut recorder = args.common.recorder("audit weights", &profile)?;
    if let Some(r) = recorder.as_mut() {
        r.input(
            Some("suspect"),
            "suspect",
            &args.suspect.display().to_string(),
        )?;
        if let Some(m) = &args.reference_model {
            r.input(
                Some("reference-model"),
                "reference_model",
                &m.display().to_string(),
            )?;
        }
        for t in &args.texts {
            r.input(Some("texts"), "input", t)?;
        }
        r.tokenizer(profile.tokenizer().as_str());
    }
    let threads = args
        .threads
        .unwrap_or_else(provmark_llm::engine::default_threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .context("cannot start the compute threads")?;
    let suspect = read_with(&args.suspect, &profile, &args.texts, &args.common, &pool)?;
    let reference = match &args.reference_model {
        Some(path) => Some(read_with(path, &profile, &args.texts, &args.common, &pool)?),
        None => None,
    };
    let errors = suspect.0.errors;
    conclude(
        &Setup {
            profile: &profile,
            detector: &detector,
            common: &args.common,
        },
        Shard::ALL,
        (&suspect.0, &suspect.1),
        reference.as_ref().map(|(c, t)| (c, t)),
        None,
        recorder,
    )?;
    Ok(partial_failure(errors))
}

/// Exit status of an audit that ran: 1 when some items could not be read
/// or answered (each was reported), else 0.
pub(crate) fn partial_failure(failed: usize) -> ExitCode {
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
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

/// The distinct tuples of a corpus (one shard of them), with the filter Φ
/// applied when given.
fn collect_corpus(
    inputs: &[String],
    field: &str,
    tokenizer: &TextTokenizer,
    h: usize,
    shard: Shard,
    filter: Option<&WindowSet>,
) -> Result<(Counts, DistinctTuples)> {
    let mut errors = 0usize;
    let mut set = TupleSet::new(h, shard).map_err(anyhow::Error::msg)?;
    let texts = stream_corpus(inputs, field, tokenizer, &mut errors, &mut |batch| {
        for t in batch {
            set.add_text(t);
        }
    })?;
    finish_tuples(set, texts, errors, filter)
}

/// The distinct tuples of a collection after the filter Φ (when given),
/// with the counts of every stage.
fn finish_tuples(
    set: TupleSet,
    texts: usize,
    errors: usize,
    filter: Option<&WindowSet>,
) -> Result<(Counts, DistinctTuples)> {
    let mut tuples = set.finish();
    let distinct = tuples.len();
    let dropped = match filter {
        Some(f) => tuples.retain_windows(f).map_err(anyhow::Error::msg)?,
        None => 0,
    };
    let counts = Counts {
        texts,
        errors,
        distinct,
        filter_windows: filter.map(WindowSet::len),
        dropped,
    };
    Ok((counts, tuples))
}

/// The lab's windows from its own outputs (the filter Φ), if any are given.
fn lab_windows(
    filter_from: &[String],
    field: &str,
    tokenizer: &TextTokenizer,
    h: usize,
) -> Result<Option<WindowSet>> {
    if filter_from.is_empty() {
        return Ok(None);
    }
    let mut errors = 0;
    let mut teacher = WindowSet::new(h).map_err(anyhow::Error::msg)?;
    stream_corpus(filter_from, field, tokenizer, &mut errors, &mut |batch| {
        teacher.add_texts(batch.iter().map(|t| &t[..]))
    })?;
    if errors > 0 {
        bail!("{errors} texts of --filter-from could not be read; the filter would be incomplete");
    }
    Ok(Some(teacher.finish()))
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
    let mut recorder = args.common.recorder("audit corpus", &profile)?;
    if let Some(r) = recorder.as_mut() {
        r.tokenizer(tokenizer.digest().as_str());
        if let Some(t) = &args.tokenizer {
            r.input(Some("tokenizer"), "tokenizer", &t.display().to_string())?;
        }
        if let Some(m) = &args.model {
            r.input(Some("model"), "model", &m.display().to_string())?;
        }
        for f in &args.filter_from {
            r.input(Some("filter-from"), "filter", f)?;
        }
        for f in &args.reference {
            r.input(Some("reference"), "reference", f)?;
        }
        for f in &args.inputs {
            r.input(None, "input", f)?;
        }
    }
    let h = profile.context();
    let field = &args.common.field;
    let filter = lab_windows(&args.filter_from, field, &tokenizer, h)?;
    let suspect = collect_corpus(&args.inputs, field, &tokenizer, h, shard, filter.as_ref())?;
    let reference = if args.reference.is_empty() {
        None
    } else {
        Some(collect_corpus(
            &args.reference,
            field,
            &tokenizer,
            h,
            shard,
            filter.as_ref(),
        )?)
    };
    let errors = suspect.0.errors + reference.as_ref().map_or(0, |r| r.0.errors);
    conclude(
        &Setup {
            profile: &profile,
            detector: &detector,
            common: &args.common,
        },
        shard,
        (&suspect.0, &suspect.1),
        reference.as_ref().map(|(c, t)| (c, t)),
        args.partial.as_deref(),
        recorder,
    )?;
    Ok(partial_failure(errors))
}

/// What every audit mode shares when it concludes.
struct Setup<'a> {
    profile: &'a Profile,
    detector: &'a Detector,
    common: &'a AuditCommon,
}

/// Scores the suspect's tuples and the reference's, when given.
fn score_pair(
    setup: &Setup<'_>,
    shard: Shard,
    suspect: (&Counts, &DistinctTuples),
    reference: Option<(&Counts, &DistinctTuples)>,
) -> Result<(Totals, Option<Totals>)> {
    let null = NullKeys {
        keys: setup.common.null_keys,
        seed: setup.common.null_seed,
    };
    let score = |(c, t): (&Counts, &DistinctTuples), what| {
        totals(setup.profile, setup.detector, null, shard, c, t, what)
    };
    let s = score(suspect, "suspect")?;
    let r = match reference {
        Some(r) => Some(score(r, "reference")?),
        None => None,
    };
    Ok((s, r))
}

/// Scores and renders the verdict on stdout, or writes a shard's partial
/// result to `partial`.
fn conclude(
    setup: &Setup<'_>,
    shard: Shard,
    suspect: (&Counts, &DistinctTuples),
    reference: Option<(&Counts, &DistinctTuples)>,
    partial: Option<&std::path::Path>,
    recorder: Option<Recorder>,
) -> Result<()> {
    let (s, r) = score_pair(setup, shard, suspect, reference)?;
    if let Some(path) = partial {
        let text = serde_json::to_string(&s)? + "\n";
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!(
            "provmark: shard {}/{} written to {}; combine all shards with provmark audit merge",
            shard.index(),
            shard.count(),
            path.display()
        );
        return Ok(());
    }
    let report = Report {
        suspect: &s,
        reference: r.as_ref(),
        alpha: setup.common.alpha,
        extra: Map::new(),
    };
    render(
        setup.profile,
        &report,
        setup.common.json,
        &mut std::io::stdout().lock(),
    )?;
    write_report(
        setup.profile,
        &report,
        setup.common.report.as_deref(),
        recorder,
    )
}

/// The report's results (the verdict object plus every key-swap statistic)
/// and decision.
fn write_report(
    profile: &Profile,
    report: &Report<'_>,
    path: Option<&std::path::Path>,
    recorder: Option<Recorder>,
) -> Result<()> {
    let (Some(path), Some(recorder)) = (path, recorder) else {
        return Ok(());
    };
    let mut bytes = Vec::new();
    let verdict = render(profile, report, true, &mut bytes)?;
    let mut results: serde_json::Value = serde_json::from_slice(&bytes)?;
    results["key_swap"]["statistics"] = serde_json::json!(report.suspect.null_statistics);
    if let Some(r) = report.reference {
        results["reference"]["key_swap"]["statistics"] = serde_json::json!(r.null_statistics);
    }
    // One test per audit: no multiple-testing correction.
    let decision =
        serde_json::json!({"verdict": verdict, "alpha": report.alpha, "correction": "none"});
    crate::report::finish(Some(path), Some(recorder), results, decision)
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
    let report = Report {
        suspect: &total,
        reference: None,
        alpha: args.alpha,
        extra: Map::new(),
    };
    render(&profile, &report, args.json, &mut std::io::stdout().lock())?;
    let recorder = match &args.report {
        Some(_) => {
            let mut r = Recorder::new("audit merge");
            r.param("alpha", args.alpha, serde_json::json!(args.alpha));
            r.profile_only(&profile);
            for p in &args.parts {
                r.input(None, "partial", &p.display().to_string())?;
            }
            Some(r)
        }
        None => None,
    };
    write_report(&profile, &report, args.report.as_deref(), recorder)?;
    Ok(ExitCode::SUCCESS)
}
