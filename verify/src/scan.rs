//! The detect runner: streams texts from input files in bounded batches,
//! scores each against one or more profiles on all cores, and hands every
//! text's typed result to a callback in input order. A text that cannot be
//! read or tokenized is a result ([`TextResult::outcome`] is `Err`), not an
//! abort, and so is an input that cannot be read (a directory, an I/O
//! error, a binary JSONL file: see [`crate::input`]); only failing to open
//! an input stops the run.
//!
//! Memory: the texts of one batch (at most [`BATCH_BYTES`]) plus, per
//! worker thread, the tokenization of one record: about
//! [`crate::input::TOKENIZE_BYTES_PER_BYTE`] times its size, so at most that many times
//! [`DetectConfig::max_record_bytes`] (0.5 GB at the default 4 MiB).

use std::io;

use provmark_watermark::Profile;
use rayon::prelude::*;
use serde_json::{json, Map, Value};

use crate::decision::{FamilyDecision, ProfileOutcome, Verdict};
use crate::detect::Detector;
use crate::input::{
    InputFormat, Locations, ReadOptions, Record, RecordReader, DEFAULT_MAX_RECORD_BYTES,
};
use crate::normalize::Normalization;
use crate::stats::PValue;
use crate::tokenize::TextTokenizer;
use crate::window::best_window;

/// Most text held in memory at once, in bytes (besides one record over the
/// limit): a batch ends at [`DetectConfig::batch`] texts or this many bytes
/// of text, whichever comes first.
pub const BATCH_BYTES: usize = 128 << 20;

/// Default number of texts read and scored per parallel batch.
pub const DEFAULT_BATCH: usize = 2048;

/// Default shortest window, in scored tokens.
pub const DEFAULT_WINDOW_MIN: usize = 32;

/// One profile to test, its key's detector, and which of
/// [`DetectConfig::tokenizers`] turns texts into its token ids.
#[derive(Clone)]
pub struct Target {
    /// The profile (its key id, digest and scheme are reported).
    pub profile: Profile,
    /// The profile's detector under its key.
    pub detector: Detector,
    /// Index into [`DetectConfig::tokenizers`].
    pub tokenizer: usize,
}

/// The index of the first tokenizer whose digest is the profile's, if any.
pub fn matching_tokenizer(tokenizers: &[TextTokenizer], profile: &Profile) -> Option<usize> {
    tokenizers
        .iter()
        .position(|t| t.accepts(profile.tokenizer()))
}

/// Everything that decides a detect run's results (plain data).
pub struct DetectConfig {
    /// The profiles to test, in order (several: family-wise Holm decision).
    pub targets: Vec<Target>,
    /// The tokenizers the targets refer to.
    pub tokenizers: Vec<TextTokenizer>,
    /// Significance level, strictly between 0 and 1 (family-wise with
    /// several targets).
    pub alpha: f64,
    /// JSONL field holding the text.
    pub field: String,
    /// Read every input (including `-`) as JSON Lines; otherwise the format
    /// is guessed from the name ([`InputFormat::guess`]).
    pub jsonl: bool,
    /// Also search for the best window; the decision then combines text and
    /// window ([`crate::decision::combine_text_window`]).
    pub windows: bool,
    /// Shortest window, in scored tokens (at least 2 when `windows`).
    pub window_min: usize,
    /// Largest accepted JSONL line or text file, in bytes. Each worker
    /// thread holds at most one record's tokenization, about
    /// [`crate::input::TOKENIZE_BYTES_PER_BYTE`] times its size.
    pub max_record_bytes: usize,
    /// Texts read and scored per parallel batch (bounds memory; 0 counts
    /// as 1). Results do not depend on it.
    pub batch: usize,
    /// How texts are normalised before they are tokenized (spec §5.1).
    pub normalization: Normalization,
    /// Where inputs are read when not at their names (a verifier's files).
    pub locations: Locations,
}

impl DetectConfig {
    /// A configuration with today's `detect` defaults for `targets` read
    /// through `tokenizers` at level `alpha`.
    pub fn new(targets: Vec<Target>, tokenizers: Vec<TextTokenizer>, alpha: f64) -> DetectConfig {
        DetectConfig {
            targets,
            tokenizers,
            alpha,
            field: "text".into(),
            jsonl: false,
            windows: false,
            window_min: DEFAULT_WINDOW_MIN,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            batch: DEFAULT_BATCH,
            normalization: Normalization::None,
            locations: Locations::new(),
        }
    }

    /// The multiple-testing correction across targets: `"holm"` with
    /// several, else `"none"`.
    pub fn correction(&self) -> &'static str {
        if self.targets.len() > 1 {
            "holm"
        } else {
            "none"
        }
    }

    /// Scores one record against every target (the per-text step of
    /// [`run`]); `Err` carries the read or tokenize error message.
    pub fn evaluate(&self, rec: &Record) -> TextResult {
        TextResult {
            id: rec.id.clone(),
            outcome: self.outcomes(rec).map(|(profiles, invisible_edits)| {
                let family =
                    FamilyDecision::holm(&profiles.iter().map(|o| o.decision).collect::<Vec<_>>());
                let verdict = family.verdict(self.alpha);
                TextOutcome {
                    profiles,
                    family,
                    verdict,
                    invisible_edits,
                }
            }),
        }
    }

    fn outcomes(&self, rec: &Record) -> Result<(Vec<ProfileOutcome>, usize), String> {
        let text = rec.text.as_ref().map_err(|e| e.clone())?;
        let normalized = self.normalization.apply(text);
        let text = normalized.text.as_ref();
        let mut ids_by_tokenizer: Vec<Option<Vec<u32>>> = vec![None; self.tokenizers.len()];
        let mut outcomes = Vec::with_capacity(self.targets.len());
        for target in &self.targets {
            let slot = &mut ids_by_tokenizer[target.tokenizer];
            if slot.is_none() {
                *slot = Some(
                    self.tokenizers[target.tokenizer]
                        .encode(text)
                        .map_err(|e| format!("{}: {e}", rec.id))?,
                );
            }
            let ids = slot.as_ref().expect("just filled");
            let scored = target.detector.score(&[], ids);
            let detection = target.detector.detect_scored(&scored);
            let window = if self.windows {
                best_window(target.detector.scheme(), &scored, self.window_min)
            } else {
                None
            };
            outcomes.push(ProfileOutcome::new(detection, window));
        }
        Ok((outcomes, normalized.edits))
    }
}

/// One text's scores against every target and the decision.
#[derive(Clone, Debug, PartialEq)]
pub struct TextOutcome {
    /// One outcome per target, in the targets' order.
    pub profiles: Vec<ProfileOutcome>,
    /// Holm over the targets' decision p-values.
    pub family: FamilyDecision,
    /// The family-wise verdict at alpha (never [`Verdict::Error`]).
    pub verdict: Verdict,
    /// Code points the normalisation removed or replaced (0 without one).
    pub invisible_edits: usize,
}

/// The result of one text, in input order.
#[derive(Clone, Debug, PartialEq)]
pub struct TextResult {
    /// The record's id (its `id` field, else `file:line` or the file name).
    pub id: String,
    /// The outcome, or why the text could not be read or tokenized (the
    /// message names file, line and field).
    pub outcome: Result<TextOutcome, String>,
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

impl TextResult {
    /// The text's verdict ([`Verdict::Error`] when it could not be read or
    /// tokenized).
    pub fn verdict(&self) -> Verdict {
        self.outcome.as_ref().map_or(Verdict::Error, |o| o.verdict)
    }

    /// The JSON form of this result, as `detect --json` prints it and as
    /// reports record it in `results.texts`: `id`, the detection fields
    /// (`tokens`, `scored`, `duplicates`, `statistic`, `p_value`, `log10_p`,
    /// `z`, and with windows `window` and `decision_log10_p`) with `scheme`
    /// and `key_id` for one target, or `correction: "holm"` and a `results`
    /// array (adding `profile`, `log10_p_holm` and a per-profile `verdict`)
    /// for several; then `alpha` and `verdict`. With a normalisation,
    /// `invisible_edits` (code points it removed or replaced) follows `id`.
    /// An error is
    /// `{"id", "verdict": "error", "error"}`. `config` must be the one that
    /// produced the result.
    pub fn to_json(&self, config: &DetectConfig) -> Value {
        let outcome = match &self.outcome {
            Err(e) => return json!({"id": self.id, "verdict": "error", "error": e}),
            Ok(o) => o,
        };
        let targets = &config.targets;
        let mut obj = Map::new();
        obj.insert("id".into(), json!(self.id));
        if !config.normalization.is_none() {
            obj.insert("invisible_edits".into(), json!(outcome.invisible_edits));
        }
        if targets.len() == 1 {
            detection_fields(&outcome.profiles[0], &mut obj);
            obj.insert("scheme".into(), json!(targets[0].profile.scheme().name()));
            obj.insert("key_id".into(), json!(targets[0].profile.key_id()));
        } else {
            let results: Vec<Value> = outcome
                .profiles
                .iter()
                .zip(targets)
                .zip(&outcome.family.adjusted)
                .enumerate()
                .map(|(i, ((o, t), h))| {
                    let mut r = Map::new();
                    r.insert("key_id".into(), json!(t.profile.key_id()));
                    r.insert("profile".into(), json!(t.profile.digest()));
                    r.insert("scheme".into(), json!(t.profile.scheme().name()));
                    detection_fields(o, &mut r);
                    r.insert(
                        "log10_p_holm".into(),
                        h.map_or(Value::Null, |p: PValue| finite(p.log10())),
                    );
                    r.insert(
                        "verdict".into(),
                        json!(outcome.family.profile_verdict(i, config.alpha).as_str()),
                    );
                    Value::Object(r)
                })
                .collect();
            obj.insert("correction".into(), json!("holm"));
            obj.insert("results".into(), Value::Array(results));
        }
        obj.insert("alpha".into(), json!(config.alpha));
        obj.insert("verdict".into(), json!(outcome.verdict.as_str()));
        Value::Object(obj)
    }
}

/// Texts per verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Texts decided watermarked.
    pub watermarked: u64,
    /// Texts tested and not detected.
    pub not_detected: u64,
    /// Texts with nothing to score.
    pub too_short: u64,
    /// Texts that could not be read or tokenized.
    pub errors: u64,
    /// Texts the normalisation changed (0 without one).
    pub edited: u64,
}

impl Counts {
    /// Counts one more text of verdict `v`.
    pub fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Watermarked => self.watermarked += 1,
            Verdict::NotDetected => self.not_detected += 1,
            Verdict::TooShort => self.too_short += 1,
            Verdict::Error => self.errors += 1,
        }
    }

    /// Texts counted.
    pub fn total(&self) -> u64 {
        self.watermarked + self.not_detected + self.too_short + self.errors
    }

    /// Counts one more result: its verdict, and whether the normalisation
    /// changed its text.
    pub fn add_result(&mut self, r: &TextResult) {
        self.add(r.verdict());
        if r.outcome.as_ref().is_ok_and(|o| o.invisible_edits > 0) {
            self.edited += 1;
        }
    }

    /// The run's summary as reports record it in `summary`: `alpha`,
    /// `correction`, and the four counts; with a normalisation, also
    /// `normalize` and `texts_with_invisible_edits`.
    pub fn summary_json(&self, config: &DetectConfig) -> Value {
        let mut v = json!({
            "alpha": config.alpha,
            "correction": config.correction(),
            "watermarked": self.watermarked,
            "not_detected": self.not_detected,
            "too_short": self.too_short,
            "errors": self.errors,
        });
        if !config.normalization.is_none() {
            v["normalize"] = json!(config.normalization.name());
            v["texts_with_invisible_edits"] = json!(self.edited);
        }
        v
    }
}

/// Why a detect run stopped.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// An input could not be opened.
    #[error("cannot open {name}")]
    Open {
        /// The input as given (`-` is standard input).
        name: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An input could not be read further.
    #[error("cannot read {name}")]
    Read {
        /// The input as given.
        name: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Runs detection over `inputs` (paths, or `-` for standard input) and
/// calls `on_result` with each text's result in input order; returns the
/// counts per verdict. Texts are read in batches (see [`BATCH_BYTES`],
/// [`DetectConfig::batch`]) and each batch is scored on all cores of the
/// current rayon pool. An input that cannot be read (a directory, an I/O
/// error, a binary JSONL file) gives one error result naming it and the
/// run goes on with the next input. Stops at the first input that cannot
/// be opened ([`ScanError::Open`], converted into `E`) or the first error
/// of `on_result`.
pub fn run<E: From<ScanError>>(
    config: &DetectConfig,
    inputs: &[String],
    mut on_result: impl FnMut(TextResult) -> Result<(), E>,
) -> Result<Counts, E> {
    let options = ReadOptions {
        field: config.field.clone(),
        max_record_bytes: config.max_record_bytes,
    };
    let mut counts = Counts::default();
    for name in inputs {
        let format = if config.jsonl {
            InputFormat::Jsonl
        } else {
            InputFormat::guess(name)
        };
        let path = config.locations.path(name);
        let reader =
            RecordReader::open_at(name, path, format, options.clone()).map_err(|source| {
                ScanError::Open {
                    name: name.clone(),
                    source,
                }
            })?;
        let mut reader = reader.peekable();
        while reader.peek().is_some() {
            let mut batch: Vec<Record> = Vec::new();
            let mut bytes = 0usize;
            while batch.len() < config.batch.max(1) && bytes < BATCH_BYTES {
                let Some(next) = reader.next() else { break };
                let rec = next.map_err(|source| ScanError::Read {
                    name: name.clone(),
                    source,
                })?;
                bytes += rec.text.as_ref().map_or(0, String::len);
                batch.push(rec);
            }
            let results: Vec<TextResult> = batch.par_iter().map(|r| config.evaluate(r)).collect();
            for result in results {
                counts.add_result(&result);
                on_result(result)?;
            }
        }
    }
    Ok(counts)
}
