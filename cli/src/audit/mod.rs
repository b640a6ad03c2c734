//! `provmark audit`: the corpus, weights, API and merge commands on top of
//! `provmark_audit` (the audits) and `provmark_verify::attribution` (the
//! decision): requests from the arguments, progress bars, the verdict on
//! stdout, the evidence report and the exit status.

mod api;
mod args;
mod verdict;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use provmark_audit::corpus::{AuditTotals, CorpusAuditConfig};
use provmark_audit::weights::WeightsAuditConfig;
use provmark_audit::{Event, Lab};
use provmark_verify::attribution::{self, check_levels, decide, NullKeys, Totals};
use provmark_verify::corpus::Shard;
use provmark_verify::Detector;
use provmark_watermark::{Key, Profile};
use serde_json::Map;

pub use args::{run, AuditCommand};

use crate::report::Recorder;
use verdict::{render, write_report, Shown};

/// What every audit mode takes: the lab's profile and key, the key-swap
/// null and the decision level, and the output form.
pub(crate) struct Common {
    profile: PathBuf,
    key: PathBuf,
    null: NullKeys,
    alpha: f64,
    field: String,
    json: bool,
    report: Option<PathBuf>,
}

impl Common {
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
            self.null.keys,
            serde_json::json!(self.null.keys),
        );
        r.param(
            "null-seed",
            self.null.seed,
            serde_json::json!(self.null.seed),
        );
        r.param("field", &self.field, serde_json::json!(self.field));
        r.profile(profile, &Key::load(&self.key)?);
        Ok(Some(r))
    }

    /// Checks the levels and loads the profile and its key's detector.
    fn load(&self) -> Result<Lab> {
        check_levels(self.alpha, self.null.keys)?;
        let profile = Profile::load(&self.profile)?;
        let key = Key::load(&self.key)?;
        let detector = Detector::new(&profile, &key)
            .with_context(|| format!("{} with {}", self.profile.display(), self.key.display()))?;
        Ok(Lab { profile, detector })
    }
}

/// `audit corpus`, as given.
pub(crate) struct CorpusRequest {
    inputs: Vec<String>,
    tokenizer: Option<PathBuf>,
    model: Option<PathBuf>,
    filter_from: Vec<String>,
    reference: Vec<String>,
    common: Common,
    shard: Option<String>,
    partial: Option<PathBuf>,
}

/// `audit weights`, as given.
pub(crate) struct WeightsRequest {
    suspect: PathBuf,
    texts: Vec<String>,
    threads: Option<usize>,
    reference_model: Option<PathBuf>,
    common: Common,
}

/// `audit merge`, as given.
pub(crate) struct MergeRequest {
    parts: Vec<PathBuf>,
    profile: PathBuf,
    alpha: f64,
    json: bool,
    report: Option<PathBuf>,
}

/// Progress bars (and per-item messages on stderr) driven by an audit's
/// events; one bar at a time.
#[derive(Default)]
struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    fn start(&self, bar: ProgressBar, template: &str) {
        bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
        *self.bar.lock().expect("progress lock") = Some(bar);
    }

    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(b) = self.bar.lock().expect("progress lock").as_ref() {
            f(b)
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.lock().expect("progress lock").take() {
            b.finish_and_clear()
        }
    }

    /// A line on stderr, above the bar when one is shown.
    fn say(&self, line: &str) {
        match self.bar.lock().expect("progress lock").as_ref() {
            Some(b) => b.suspend(|| eprintln!("provmark: {line}")),
            None => eprintln!("provmark: {line}"),
        }
    }
}

impl provmark_audit::Progress for Bars {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::RecordError { message } => self.say(message),
            Event::LoadingModel { name } => self.say(&format!("loading {name}")),
            Event::ReadingStarted { reader } => {
                let bar = ProgressBar::new_spinner();
                bar.set_message(reader.to_string());
                self.start(bar, "{spinner} {pos} texts read by {msg} ({per_sec})");
            }
            Event::TextRead | Event::AnswerDone { .. } => self.with(|b| b.inc(1)),
            Event::ReadingFinished
            | Event::NullKeysFinished { .. }
            | Event::AnswersFinished { .. } => self.finish(),
            Event::NullKeysStarted { side, keys } => self.start(
                ProgressBar::new(keys as u64),
                &format!(
                    "{{bar:30}} {{pos}}/{{len}} null keys ({})  eta {{eta}}",
                    side.as_str()
                ),
            ),
            Event::NullKeyDone { done, .. } => self.with(|b| b.set_position(done as u64)),
            Event::IncompleteLineDropped { path, bytes } => self.say(&format!(
                "{}: dropping an incomplete last line ({bytes} bytes) from an interrupted run",
                path.display()
            )),
            Event::AnswersStarted { side, total } => self.start(
                ProgressBar::new(total as u64),
                &format!(
                    "{{bar:30}} {{pos}}/{{len}} {} answers  {{msg}}  eta {{eta}}",
                    side.as_str()
                ),
            ),
            Event::RunningTest { log10_p } => {
                self.with(|b| b.set_message(format!("running log10 p {log10_p:.1}")))
            }
            Event::ItemFailed {
                side,
                id,
                sample,
                error,
            } => self.say(&format!("{} {id} sample {sample}: {error}", side.as_str())),
        }
    }
}

fn run_weights(req: WeightsRequest) -> Result<ExitCode> {
    let lab = req.common.load()?;
    let mut recorder = req.common.recorder("audit weights", &lab.profile)?;
    if let Some(r) = recorder.as_mut() {
        r.input(
            Some("suspect"),
            "suspect",
            &req.suspect.display().to_string(),
        )?;
        if let Some(m) = &req.reference_model {
            r.input(
                Some("reference-model"),
                "reference_model",
                &m.display().to_string(),
            )?;
        }
        for t in &req.texts {
            r.input(Some("texts"), "input", t)?;
        }
        r.tokenizer(lab.profile.tokenizer().as_str());
    }
    let config = WeightsAuditConfig {
        suspect: req.suspect,
        reference_model: req.reference_model,
        texts: req.texts,
        field: req.common.field.clone(),
        threads: req.threads,
        null: req.common.null,
    };
    let totals = provmark_audit::weights::run(&lab, &config, &Bars::default())?;
    let errors = totals.suspect.unreadable;
    conclude(&lab.profile, &req.common, totals, None, recorder)?;
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

fn parse_shard(text: &str) -> Result<Shard> {
    let bad = || {
        anyhow::anyhow!("--shard must be INDEX/COUNT with INDEX < COUNT (e.g. 0/4), got {text:?}")
    };
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let i: u32 = i.trim().parse().map_err(|_| bad())?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    Shard::new(i, n).ok_or_else(bad)
}

fn run_corpus(req: CorpusRequest) -> Result<ExitCode> {
    let shard = match &req.shard {
        Some(s) => parse_shard(s)?,
        None => Shard::ALL,
    };
    let lab = req.common.load()?;
    let tokenizer = crate::models::text_tokenizer(req.tokenizer.as_deref(), req.model.as_deref())?;
    tokenizer.check_profile(&lab.profile, false)?;
    let mut recorder = req.common.recorder("audit corpus", &lab.profile)?;
    if let Some(r) = recorder.as_mut() {
        r.tokenizer(tokenizer.digest().as_str());
        if let Some(t) = &req.tokenizer {
            r.input(Some("tokenizer"), "tokenizer", &t.display().to_string())?;
        }
        if let Some(m) = &req.model {
            r.input(Some("model"), "model", &m.display().to_string())?;
        }
        for f in &req.filter_from {
            r.input(Some("filter-from"), "filter", f)?;
        }
        for f in &req.reference {
            r.input(Some("reference"), "reference", f)?;
        }
        for f in &req.inputs {
            r.input(None, "input", f)?;
        }
    }
    let config = CorpusAuditConfig {
        inputs: req.inputs,
        reference: req.reference,
        filter_from: req.filter_from,
        field: req.common.field.clone(),
        tokenizer,
        shard,
        null: req.common.null,
    };
    let totals = provmark_audit::corpus::run(&lab, &config, &Bars::default())?;
    let errors = totals.unreadable();
    conclude(
        &lab.profile,
        &req.common,
        totals,
        req.partial.as_deref(),
        recorder,
    )?;
    Ok(partial_failure(errors))
}

/// Renders the verdict on stdout and writes the report, or writes a
/// shard's partial result to `partial`.
fn conclude(
    profile: &Profile,
    common: &Common,
    totals: AuditTotals,
    partial: Option<&Path>,
    recorder: Option<Recorder>,
) -> Result<()> {
    let AuditTotals { suspect, reference } = totals;
    if let Some(path) = partial {
        let text = serde_json::to_string(&suspect)? + "\n";
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!(
            "provmark: shard {}/{} written to {}; combine all shards with provmark audit merge",
            suspect.shard_index,
            suspect.shard_count,
            path.display()
        );
        return Ok(());
    }
    let decision = decide(profile.scheme(), &suspect, reference.as_ref(), common.alpha);
    let shown = Shown {
        suspect: &suspect,
        reference: reference.as_ref(),
        decision: &decision,
        extra: &Map::new(),
    };
    render(&shown, common.json, &mut std::io::stdout().lock())?;
    write_report(
        &suspect,
        reference.as_ref(),
        &decision,
        common.report.as_deref(),
        recorder,
    )
}

fn run_merge(req: MergeRequest) -> Result<ExitCode> {
    let profile = Profile::load(&req.profile)?;
    let (digest, shown) = (profile.digest(), req.profile.display().to_string());
    let mut parts: Vec<(String, Totals)> = Vec::new();
    for path in &req.parts {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
        let t = Totals::parse_partial(&name, &text)?;
        t.check_profile(&name, &digest, &shown)?;
        parts.push((name, t));
    }
    let total = attribution::merge(&parts, &digest, &shown)?;
    check_levels(req.alpha, total.null_statistics.len())?;
    let decision = decide(profile.scheme(), &total, None, req.alpha);
    let view = Shown {
        suspect: &total,
        reference: None,
        decision: &decision,
        extra: &Map::new(),
    };
    render(&view, req.json, &mut std::io::stdout().lock())?;
    let recorder = match &req.report {
        Some(_) => {
            let mut r = Recorder::new("audit merge");
            r.param("alpha", req.alpha, serde_json::json!(req.alpha));
            r.profile_only(&profile);
            for p in &req.parts {
                r.input(None, "partial", &p.display().to_string())?;
            }
            Some(r)
        }
        None => None,
    };
    write_report(&total, None, &decision, req.report.as_deref(), recorder)?;
    Ok(ExitCode::SUCCESS)
}
