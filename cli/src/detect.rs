//! `provmark detect`: stream texts, score them against one or more profiles
//! on all cores, print one result per text in input order.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use provmark_verify::input::{
    InputFormat, ReadOptions, Record, RecordReader, DEFAULT_MAX_RECORD_BYTES,
};
use provmark_verify::stats::holm_adjust;
use provmark_verify::{best_window, Detection, Detector, PValue, TextTokenizer, WindowResult};
use provmark_watermark::{Key, Profile};
use rayon::prelude::*;
use serde_json::{json, Map, Value};

use crate::table;

#[derive(Args)]
#[command(after_long_help = "\
OUTPUT
  One result per text, in input order. --json prints one JSON object per line with
  id, tokens, scored, duplicates, statistic, p_value, log10_p, z and verdict
  (watermarked | not_detected | too_short | error). p_value underflows to 0 below
  1e-308; log10_p stays exact. With several profiles, each text gets a results array
  and Holm-adjusted p-values; the verdict is family-wise at --alpha.

EXIT STATUS
  0 every text was read and tested; 1 some texts could not be read or tokenized
  (each is reported with file, line and field); 2 the run could not start.

EXAMPLES
  provmark detect --profile lab.profile.json --key lab.key --tokenizer tokenizer.json essay.txt
  provmark detect --profile lab.profile.json --key lab.key --tokenizer tokenizer.json --json answers.jsonl
  cat answers.jsonl | provmark detect --jsonl --field answer ... -")]
pub struct DetectArgs {
    /// Texts to test: files, or - for standard input. Files ending in .jsonl or
    /// .ndjson hold one JSON object per line; other files are one text each.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
    /// Watermark profile. Repeat with --key to test several profiles at once.
    #[arg(long = "profile", value_name = "FILE", required = true)]
    profiles: Vec<PathBuf>,
    /// Key file of each --profile, in the same order.
    #[arg(long = "key", value_name = "FILE", required = true)]
    keys: Vec<PathBuf>,
    /// tokenizer.json matching the profiles' tokenizer digest (repeat if the
    /// profiles use different tokenizers). Default: the tokenizer of --model,
    /// else of the default model.
    #[arg(long = "tokenizer", value_name = "FILE")]
    tokenizers: Vec<PathBuf>,
    /// A GGUF model whose own tokenizer to use (instead of --tokenizer).
    #[arg(long, value_name = "GGUF", conflicts_with = "tokenizers")]
    model: Option<PathBuf>,
    /// Use the first tokenizer even when its digest differs from a profile's.
    #[arg(long)]
    force_tokenizer: bool,
    /// Significance level for the verdict (family-wise with several profiles).
    #[arg(long, default_value_t = 1e-6)]
    alpha: f64,
    /// One JSON object per text on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// JSONL field holding the text.
    #[arg(long, default_value = "text")]
    field: String,
    /// Read every input (including -) as JSON Lines.
    #[arg(long)]
    jsonl: bool,
    /// Also search for the best watermarked window (for texts that mix human
    /// and marked parts); the verdict then uses min(1, 2·min(p_text, p_window)).
    #[arg(long)]
    windows: bool,
    /// Shortest window, in scored tokens (doubling up to the text length).
    #[arg(long, default_value_t = 32, value_name = "N")]
    window_min: usize,
    /// Largest accepted JSONL line or text file, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_RECORD_BYTES, value_name = "BYTES")]
    max_record_bytes: usize,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Texts read and scored per parallel batch (bounds memory).
    #[arg(long, default_value_t = 2048, value_name = "N", hide = true)]
    batch: usize,
    /// Also write an evidence report (canonical JSON, spec/report.md) that
    /// provmark report verify can recompute from the key and the inputs.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

/// Most text held in memory at once (besides one record over the limit).
const BATCH_BYTES: usize = 128 << 20;

/// One profile, its key's detector and its tokenizer.
struct Target {
    profile: Profile,
    detector: Detector,
    tokenizer: usize,
}

/// The outcome of one profile on one text.
struct ProfileOutcome {
    detection: Detection,
    window: Option<WindowResult>,
    /// p-value used for the decision (text, or the text/window combination).
    decision: Option<PValue>,
}

pub fn run(args: DetectArgs) -> Result<ExitCode> {
    if args.profiles.len() != args.keys.len() {
        bail!(
            "{} --profile but {} --key: give one key per profile, in the same order",
            args.profiles.len(),
            args.keys.len()
        );
    }
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        bail!(
            "--alpha must lie strictly between 0 and 1, got {}",
            args.alpha
        );
    }
    if args.windows && args.window_min < 2 {
        bail!("--window-min must be at least 2");
    }
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
            .context("cannot start the worker threads")?;
    }
    let tokenizers = if args.tokenizers.is_empty() {
        vec![crate::models::text_tokenizer(None, args.model.as_deref())?]
    } else {
        args.tokenizers
            .iter()
            .map(|p| TextTokenizer::load(p))
            .collect::<Result<Vec<_>, _>>()?
    };
    let tokenizer_name = |i: usize| {
        args.tokenizers.get(i).map_or_else(
            || "the model's tokenizer".to_string(),
            |p| p.display().to_string(),
        )
    };
    let mut targets = Vec::new();
    for (profile_path, key_path) in args.profiles.iter().zip(&args.keys) {
        let profile = Profile::load(profile_path)?;
        let key = Key::load(key_path)?;
        let detector = Detector::new(&profile, &key)
            .with_context(|| format!("{} with {}", profile_path.display(), key_path.display()))?;
        let tokenizer = match tokenizers
            .iter()
            .position(|t| t.digest() == profile.tokenizer())
        {
            Some(i) => i,
            None if args.force_tokenizer => {
                eprintln!(
                    "provmark: warning: no tokenizer matches {} ({}); using {} as forced",
                    profile_path.display(),
                    profile.tokenizer(),
                    tokenizer_name(0)
                );
                0
            }
            None => {
                tokenizers[0]
                    .check_profile(&profile, false)
                    .with_context(|| {
                        format!("{} and {}", profile_path.display(), tokenizer_name(0))
                    })?;
                unreachable!("check_profile fails on a digest mismatch")
            }
        };
        targets.push(Target {
            profile,
            detector,
            tokenizer,
        });
    }

    let mut recorder = match &args.report {
        Some(_) => Some(recorder(&args, &targets, &tokenizers)?),
        None => None,
    };
    let mut recorded = Vec::new();
    let options = ReadOptions {
        field: args.field.clone(),
        max_record_bytes: args.max_record_bytes,
    };
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos} texts tested ({per_sec}) {msg}")
            .expect("valid template"),
    );
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if !args.json {
        print_header(&mut out, targets.len() > 1, args.windows)?;
    }
    let mut counts = Counts::default();
    for name in &args.inputs {
        let format = if args.jsonl {
            InputFormat::Jsonl
        } else {
            InputFormat::guess(name)
        };
        let reader = RecordReader::open(name, format, options.clone())
            .with_context(|| format!("cannot open {name}"))?;
        let mut reader = reader.peekable();
        while reader.peek().is_some() {
            // A batch ends at --batch texts or BATCH_BYTES of text, whichever
            // comes first, so memory stays bounded whatever the input.
            let mut batch: Vec<Record> = Vec::new();
            let mut bytes = 0usize;
            while batch.len() < args.batch.max(1) && bytes < BATCH_BYTES {
                let Some(next) = reader.next() else { break };
                let rec = next.with_context(|| format!("cannot read {name}"))?;
                bytes += rec.text.as_ref().map_or(0, String::len);
                batch.push(rec);
            }
            let results: Vec<Result<Vec<ProfileOutcome>, String>> = batch
                .par_iter()
                .map(|rec| evaluate(rec, &targets, &tokenizers, &args))
                .collect();
            for (rec, res) in batch.iter().zip(results) {
                let (line, value) = render(rec, &res, &targets, &args, &mut counts);
                writeln!(out, "{line}")?;
                if recorder.is_some() {
                    recorded.push(value);
                }
            }
            progress.inc(batch.len() as u64);
        }
    }
    out.flush()?;
    progress.finish_and_clear();
    eprintln!(
        "provmark: {} texts: {} watermarked, {} not detected, {} too short, {} errors (alpha {})",
        counts.total(),
        counts.marked,
        counts.clean,
        counts.short,
        counts.errors,
        args.alpha
    );
    crate::report::finish(
        args.report.as_deref(),
        recorder.take(),
        json!({"texts": recorded}),
        json!({
            "alpha": args.alpha,
            "correction": if targets.len() > 1 { "holm" } else { "none" },
            "watermarked": counts.marked,
            "not_detected": counts.clean,
            "too_short": counts.short,
            "errors": counts.errors,
        }),
    )?;
    Ok(crate::audit::partial_failure(counts.errors as usize))
}

/// What a detect report records: every setting that changes a result, the
/// profiles and key commitments, and the digests of every file read.
fn recorder(
    args: &DetectArgs,
    targets: &[Target],
    tokenizers: &[TextTokenizer],
) -> Result<crate::report::Recorder> {
    let mut r = crate::report::Recorder::new("detect");
    r.param("alpha", args.alpha, json!(args.alpha));
    r.param("field", &args.field, json!(args.field));
    r.param(
        "max-record-bytes",
        args.max_record_bytes,
        json!(args.max_record_bytes),
    );
    r.param("window-min", args.window_min, json!(args.window_min));
    r.switch("jsonl", args.jsonl);
    r.switch("windows", args.windows);
    r.switch("force-tokenizer", args.force_tokenizer);
    for (t, key_path) in targets.iter().zip(&args.keys) {
        r.profile(&t.profile, &Key::load(key_path)?);
    }
    for t in tokenizers {
        r.tokenizer(t.digest().as_str());
    }
    for p in &args.tokenizers {
        r.input(Some("tokenizer"), "tokenizer", &p.display().to_string())?;
    }
    if let Some(m) = &args.model {
        r.input(Some("model"), "model", &m.display().to_string())?;
    }
    for name in &args.inputs {
        r.input(None, "input", name)?;
    }
    Ok(r)
}

fn evaluate(
    rec: &Record,
    targets: &[Target],
    tokenizers: &[TextTokenizer],
    args: &DetectArgs,
) -> Result<Vec<ProfileOutcome>, String> {
    let text = rec.text.as_ref().map_err(|e| e.clone())?;
    let mut ids_by_tokenizer: Vec<Option<Vec<u32>>> = vec![None; tokenizers.len()];
    let mut outcomes = Vec::with_capacity(targets.len());
    for target in targets {
        let slot = &mut ids_by_tokenizer[target.tokenizer];
        if slot.is_none() {
            *slot = Some(
                tokenizers[target.tokenizer]
                    .encode(text)
                    .map_err(|e| format!("{}: {e}", rec.id))?,
            );
        }
        let ids = slot.as_ref().expect("just filled");
        let scored = target.detector.score(&[], ids);
        let detection = target.detector.detect_scored(&scored);
        let window = if args.windows {
            best_window(target.detector.scheme(), &scored, args.window_min)
        } else {
            None
        };
        let decision = detection.test.map(|t| match window {
            Some(w) if args.windows => PValue::from_ln(t.p.ln().min(w.p.ln())).times(2.0),
            _ => t.p,
        });
        outcomes.push(ProfileOutcome {
            detection,
            window,
            decision,
        });
    }
    Ok(outcomes)
}

#[derive(Default)]
struct Counts {
    marked: u64,
    clean: u64,
    short: u64,
    errors: u64,
}

impl Counts {
    fn total(&self) -> u64 {
        self.marked + self.clean + self.short + self.errors
    }
}

fn verdict(p: Option<PValue>, alpha: f64) -> &'static str {
    match p {
        None => "too_short",
        Some(p) if p.ln() <= alpha.ln() => "watermarked",
        Some(_) => "not_detected",
    }
}

fn finite(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

fn detection_fields(o: &ProfileOutcome, obj: &mut Map<String, Value>) {
    let d = &o.detection;
    obj.insert("tokens".into(), json!(d.tokens));
    obj.insert("scored".into(), json!(d.scored));
    obj.insert("duplicates".into(), json!(d.duplicates));
    obj.insert("statistic".into(), json!(d.statistic));
    obj.insert(
        "p_value".into(),
        d.test.map_or(Value::Null, |t| json!(t.p.value())),
    );
    obj.insert(
        "log10_p".into(),
        d.test.map_or(Value::Null, |t| finite(t.p.log10())),
    );
    obj.insert("z".into(), d.test.map_or(Value::Null, |t| finite(t.z)));
    if let Some(w) = &o.window {
        obj.insert(
            "window".into(),
            json!({
                "first_token": w.first_token,
                "last_token": w.last_token,
                "scored": w.scored,
                "statistic": w.statistic,
                "windows_tested": w.windows,
                "log10_p_raw": finite(w.p_raw.log10()),
                "log10_p": finite(w.p.log10()),
                "correction": "bonferroni",
            }),
        );
        obj.insert(
            "decision_log10_p".into(),
            o.decision.map_or(Value::Null, |p| finite(p.log10())),
        );
    }
}

/// One text's output line (a table row, or JSON with --json) and its JSON
/// form (for reports).
fn render(
    rec: &Record,
    res: &Result<Vec<ProfileOutcome>, String>,
    targets: &[Target],
    args: &DetectArgs,
    counts: &mut Counts,
) -> (String, Value) {
    let outcomes = match res {
        Err(e) => {
            counts.errors += 1;
            eprintln!("provmark: {e}");
            let value = json!({"id": rec.id, "verdict": "error", "error": e});
            let line = if args.json {
                value.to_string()
            } else {
                table::row(&[rec.id.clone(), "error: see stderr".into()], &[32, 20])
            };
            return (line, value);
        }
        Ok(o) => o,
    };
    // Family-wise decision: Holm over the profiles' decision p-values.
    let tested: Vec<(usize, PValue)> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.decision.map(|p| (i, p)))
        .collect();
    let adjusted = holm_adjust(&tested.iter().map(|t| t.1).collect::<Vec<_>>());
    let mut holm = vec![None; outcomes.len()];
    for ((i, _), a) in tested.iter().zip(&adjusted) {
        holm[*i] = Some(*a);
    }
    let family = holm
        .iter()
        .flatten()
        .copied()
        .fold(None, |best: Option<PValue>, p| {
            Some(best.map_or(p, |b| if p.ln() < b.ln() { p } else { b }))
        });
    let family_verdict = verdict(family, args.alpha);
    match family_verdict {
        "watermarked" => counts.marked += 1,
        "not_detected" => counts.clean += 1,
        _ => counts.short += 1,
    }
    let value = {
        let mut obj = Map::new();
        obj.insert("id".into(), json!(rec.id));
        if targets.len() == 1 {
            detection_fields(&outcomes[0], &mut obj);
            obj.insert("scheme".into(), json!(targets[0].profile.scheme().name()));
            obj.insert("key_id".into(), json!(targets[0].profile.key_id()));
        } else {
            let results: Vec<Value> = outcomes
                .iter()
                .zip(targets)
                .zip(&holm)
                .map(|((o, t), h)| {
                    let mut r = Map::new();
                    r.insert("key_id".into(), json!(t.profile.key_id()));
                    r.insert("profile".into(), json!(t.profile.digest()));
                    r.insert("scheme".into(), json!(t.profile.scheme().name()));
                    detection_fields(o, &mut r);
                    r.insert(
                        "log10_p_holm".into(),
                        h.map_or(Value::Null, |p| finite(p.log10())),
                    );
                    r.insert("verdict".into(), json!(verdict(*h, args.alpha)));
                    Value::Object(r)
                })
                .collect();
            obj.insert("correction".into(), json!("holm"));
            obj.insert("results".into(), Value::Array(results));
        }
        obj.insert("alpha".into(), json!(args.alpha));
        obj.insert("verdict".into(), json!(family_verdict));
        Value::Object(obj)
    };
    let line = if args.json {
        value.to_string()
    } else {
        let mut lines = Vec::new();
        for (i, o) in outcomes.iter().enumerate() {
            let d = &o.detection;
            let mut cells = vec![
                if i == 0 {
                    rec.id.clone()
                } else {
                    String::new()
                },
                d.tokens.to_string(),
                d.scored.to_string(),
                format!("{:.2}", d.statistic),
                table::log10(d.test.map(|t| t.p.log10())),
                d.test.map_or("-".into(), |t| format!("{:.2}", t.z)),
            ];
            if targets.len() > 1 {
                cells.push(targets[i].profile.key_id().to_string());
            }
            if args.windows {
                cells.push(table::log10(o.window.map(|w| w.p.log10())));
            }
            cells.push(if i == 0 {
                family_verdict.to_string()
            } else {
                String::new()
            });
            lines.push(table::row(&cells, &widths(targets.len() > 1, args.windows)));
        }
        lines.join("\n")
    };
    (line, value)
}

fn widths(multi: bool, windows: bool) -> Vec<usize> {
    let mut w = vec![32, 7, 7, 10, 10, 8];
    if multi {
        w.push(16);
    }
    if windows {
        w.push(10);
    }
    w.push(12);
    w
}

fn print_header(out: &mut impl Write, multi: bool, windows: bool) -> io::Result<()> {
    let mut cells: Vec<String> = ["text", "tokens", "scored", "statistic", "log10_p", "z"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if multi {
        cells.push("key_id".into());
    }
    if windows {
        cells.push("window_lp".into());
    }
    cells.push("verdict".into());
    writeln!(out, "{}", table::row(&cells, &widths(multi, windows)))
}
