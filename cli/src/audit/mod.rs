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
use provmark_audit::corpus::AuditTotals;
use provmark_audit::Event;
use provmark_verify::attribution::{check_levels, decide, NullKeys};
use provmark_verify::corpus::Shard;
use provmark_watermark::{Key, Profile};
use serde_json::Map;

pub use args::{run, AuditCommand};

use provmark_evidence::{AuditSettings, CorpusRecipe, Keyed, MergeRecipe, Recorder, WeightsRecipe};
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
    /// The settings an audit records.
    fn settings(&self) -> AuditSettings {
        AuditSettings {
            alpha: self.alpha,
            null_keys: self.null.keys,
            null_seed: self.null.seed,
            field: self.field.clone(),
        }
    }

    /// Checks the levels and loads the key file.
    fn key(&self) -> Result<Key> {
        check_levels(self.alpha, self.null.keys)?;
        Ok(Key::load(&self.key)?)
    }

    /// The profile with `key` (from [`Common::key`]).
    fn keyed<'k>(&self, key: &'k Key) -> Result<Keyed<'k>> {
        Ok(Keyed {
            profile: Profile::load(&self.profile)?,
            key,
            profile_name: self.profile.display().to_string(),
            key_name: self.key.display().to_string(),
        })
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
    let key = req.common.key()?;
    let recipe = WeightsRecipe {
        settings: req.common.settings(),
        lab: req.common.keyed(&key)?,
        suspect: req.suspect.display().to_string(),
        reference_model: req.reference_model.map(|m| m.display().to_string()),
        texts: req.texts,
    };
    let lab = recipe.lab.lab()?;
    let recorder = recorder(&req.common, || recipe.recorder())?;
    let config = recipe.config(req.threads);
    let totals = provmark_audit::weights::run(&lab, &config, &Bars::default())?;
    let errors = totals.suspect.unreadable;
    conclude(&lab.profile, &req.common, totals, None, recorder)?;
    Ok(partial_failure(errors))
}

/// The report's recorder when --report was given.
fn recorder(
    common: &Common,
    make: impl FnOnce() -> Result<Recorder, provmark_evidence::Error>,
) -> Result<Option<Recorder>> {
    Ok(match common.report {
        Some(_) => Some(make()?),
        None => None,
    })
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
    let key = req.common.key()?;
    let recipe = CorpusRecipe {
        settings: req.common.settings(),
        lab: req.common.keyed(&key)?,
        tokenizer: req.tokenizer.map(|t| t.display().to_string()),
        model: req.model.map(|m| m.display().to_string()),
        filter_from: req.filter_from,
        reference: req.reference,
        inputs: req.inputs,
    };
    let lab = recipe.lab.lab()?;
    let tokenizer = recipe.tokenizer(&mut |line| eprintln!("provmark: {line}"))?;
    let recorder = recorder(&req.common, || recipe.recorder())?;
    let config = recipe.config(tokenizer, shard);
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
    let recipe = MergeRecipe {
        alpha: req.alpha,
        profile: Profile::load(&req.profile)?,
        profile_name: req.profile.display().to_string(),
        parts: req.parts.iter().map(|p| p.display().to_string()).collect(),
    };
    let total = recipe.merge()?;
    let decision = decide(recipe.profile.scheme(), &total, None, req.alpha);
    let view = Shown {
        suspect: &total,
        reference: None,
        decision: &decision,
        extra: &Map::new(),
    };
    render(&view, req.json, &mut std::io::stdout().lock())?;
    let recorder = match &req.report {
        Some(_) => Some(recipe.recorder()?),
        None => None,
    };
    write_report(&total, None, &decision, req.report.as_deref(), recorder)?;
    Ok(ExitCode::SUCCESS)
}
