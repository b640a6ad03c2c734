//! What each detecting command computes, as typed data: a recipe is both
//! what a report records (its [`Recorder`]) and what verification rebuilds
//! from the report's typed content (command name, parameters, profiles,
//! input roles) through this allow-list, so that recomputation runs the
//! same library code in process and never executes `command.replay`
//! (spec/report.md §4).
//!
//! The commands: `detect` ([`DetectRecipe`]), `audit corpus` and `audit
//! api` ([`CorpusRecipe`]; an API audit is recomputed as the corpus audit
//! of its kept answers), `audit weights` ([`WeightsRecipe`]) and `audit
//! merge` ([`MergeRecipe`]).

use std::path::PathBuf;

use provmark_audit::corpus::{AuditTotals, CorpusAuditConfig};
use provmark_audit::weights::WeightsAuditConfig;
use provmark_audit::Silent;
use provmark_verify::attribution::{self, decide, Binding, BoundInput, NullKeys, Totals};
use provmark_verify::corpus::Shard;
use provmark_verify::input::Locations;
use provmark_verify::scan::{self, matching_tokenizer, DetectConfig, Target, DEFAULT_BATCH};
use provmark_verify::{Detector, Normalization, TextTokenizer};
use provmark_watermark::{Key, Profile};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::verify::KeyFile;
use crate::{Error, Recorder, Report};

/// A profile with its key, and how both were named (in error messages).
#[derive(Clone)]
pub struct Keyed<'a> {
    /// The profile.
    pub profile: Profile,
    /// Its key.
    pub key: &'a Key,
    /// How the profile was given (a path, or `profile N` of a report).
    pub profile_name: String,
    /// How the key was given.
    pub key_name: String,
}

impl Keyed<'_> {
    /// The profile's detector under its key.
    ///
    /// Errors: [`Error::Detector`] naming both (a key that is not the
    /// profile's, an invalid profile).
    pub fn detector(&self) -> Result<Detector, Error> {
        Detector::new(&self.profile, self.key).map_err(|source| Error::Detector {
            profile: self.profile_name.clone(),
            key: self.key_name.clone(),
            source,
        })
    }

    /// The audits' lab: the profile and its detector.
    pub fn lab(&self) -> Result<provmark_audit::Lab, Error> {
        Ok(provmark_audit::Lab {
            profile: self.profile.clone(),
            detector: self.detector()?,
        })
    }
}

/// `detect` as recorded: the settings that change a result, the profiles
/// with their keys, the tokenizer files (or the GGUF model whose tokenizer
/// is used; neither: the default model's) and the input files.
pub struct DetectRecipe<'a> {
    /// Significance level (family-wise with several profiles).
    pub alpha: f64,
    /// JSONL field holding the text.
    pub field: String,
    /// Largest accepted record, in bytes.
    pub max_record_bytes: usize,
    /// Shortest window, in scored tokens.
    pub window_min: usize,
    /// Every input read as JSON Lines.
    pub jsonl: bool,
    /// Windowed detection on.
    pub windows: bool,
    /// The first tokenizer is used whatever its digest.
    pub force_tokenizer: bool,
    /// How texts are normalised before they are tokenized (spec §5.1).
    pub normalization: Normalization,
    /// The profiles and keys, in order.
    pub profiles: Vec<Keyed<'a>>,
    /// tokenizer.json files.
    pub tokenizers: Vec<String>,
    /// A GGUF model whose own tokenizer is used (no tokenizer files).
    pub model: Option<String>,
    /// The texts.
    pub inputs: Vec<String>,
    /// Where the files named above are read when not at their names (a
    /// verifier's copies; empty for a run of the command itself).
    pub locations: Locations,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectParameters {
    alpha: f64,
    field: String,
    max_record_bytes: usize,
    window_min: usize,
    jsonl: bool,
    windows: bool,
    force_tokenizer: bool,
    #[serde(default)]
    normalize: Normalization,
}

impl DetectRecipe<'_> {
    /// Loads the tokenizers and builds the run's [`DetectConfig`]: each
    /// profile's detector and the tokenizer whose digest is its own (with
    /// `force_tokenizer`, the first one, and `warn` is told).
    ///
    /// Errors: alpha outside (0, 1), windows shorter than 2 scored tokens
    /// ([`Error::Recipe`]), unreadable tokenizers or model, a key that is
    /// not its profile's ([`Error::Detector`]), no tokenizer matching a
    /// profile ([`Error::TokenizerFor`]).
    pub fn config(&self, warn: &mut dyn FnMut(&str)) -> Result<DetectConfig, Error> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            let alpha = self.alpha;
            return Err(attribution::Error::AlphaRange { alpha }.into());
        }
        if self.windows && self.window_min < 2 {
            return Err(Error::Recipe("--window-min must be at least 2".into()));
        }
        let tokenizers = if self.tokenizers.is_empty() {
            vec![provmark_audit::tokenizer::text_tokenizer(
                None,
                self.model.as_deref().map(|m| self.locations.path(m)),
                warn,
            )?]
        } else {
            self.tokenizers
                .iter()
                .map(|p| TextTokenizer::load(self.locations.path(p)))
                .collect::<Result<Vec<_>, _>>()?
        };
        let first_name = self
            .tokenizers
            .first()
            .cloned()
            .unwrap_or_else(|| "the model's tokenizer".to_string());
        let mut targets = Vec::new();
        for keyed in &self.profiles {
            let detector = keyed.detector()?;
            let tokenizer = match matching_tokenizer(&tokenizers, &keyed.profile) {
                Some(i) => i,
                None if self.force_tokenizer => {
                    warn(&format!(
                        "warning: no tokenizer matches {} ({}); using {first_name} as forced",
                        keyed.profile_name,
                        keyed.profile.tokenizer(),
                    ));
                    0
                }
                None => {
                    let source = tokenizers[0]
                        .check_profile(&keyed.profile, false)
                        .expect_err("no tokenizer matches the profile");
                    return Err(Error::TokenizerFor {
                        profile: keyed.profile_name.clone(),
                        tokenizer: first_name,
                        source,
                    });
                }
            };
            targets.push(Target {
                profile: keyed.profile.clone(),
                detector,
                tokenizer,
            });
        }
        Ok(DetectConfig {
            targets,
            tokenizers,
            alpha: self.alpha,
            field: self.field.clone(),
            jsonl: self.jsonl,
            windows: self.windows,
            window_min: self.window_min,
            max_record_bytes: self.max_record_bytes,
            batch: DEFAULT_BATCH,
            normalization: self.normalization,
            locations: self.locations.clone(),
        })
    }

    /// What a detect report records: every setting that changes a result,
    /// the profiles and key commitments, and the digests of every file read.
    pub fn recorder(&self, config: &DetectConfig) -> Result<Recorder, Error> {
        let mut r = Recorder::new("detect");
        r.param("alpha", self.alpha, json!(self.alpha));
        r.param("field", &self.field, json!(self.field));
        r.param(
            "max-record-bytes",
            self.max_record_bytes,
            json!(self.max_record_bytes),
        );
        r.param("window-min", self.window_min, json!(self.window_min));
        r.switch("jsonl", self.jsonl);
        r.switch("windows", self.windows);
        r.switch("force-tokenizer", self.force_tokenizer);
        record_normalization(&mut r, self.normalization);
        for keyed in &self.profiles {
            r.profile(&keyed.profile, keyed.key);
        }
        for t in &config.tokenizers {
            let profiles = self.profiles.iter().map(|k| &k.profile);
            r.tokenizer(t.digest_for(profiles).as_str());
        }
        let at = &self.locations;
        for p in &self.tokenizers {
            r.input_at(Some("tokenizer"), "tokenizer", p, at.path(p))?;
        }
        if let Some(m) = &self.model {
            r.input_at(Some("model"), "model", m, at.path(m))?;
        }
        for name in &self.inputs {
            r.input_at(None, "input", name, at.path(name))?;
        }
        Ok(r)
    }

    /// Runs the detection and returns its report (the per-text results and
    /// the summary decision, exactly as `detect --report` writes them).
    pub fn compute(&self) -> Result<Report, Error> {
        let config = self.config(&mut |_| {})?;
        let recorder = self.recorder(&config)?;
        let mut texts = Vec::new();
        let counts = scan::run(&config, &self.inputs, |result| -> Result<(), Error> {
            texts.push(result.to_json(&config));
            Ok(())
        })?;
        Ok(recorder.finish(json!({ "texts": texts }), counts.summary_json(&config)))
    }
}

/// The settings every audit records.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Level for attribution.
    pub alpha: f64,
    /// Random keys in the key-swap null.
    pub null_keys: usize,
    /// The public seed the null keys are derived from.
    pub null_seed: u64,
    /// JSONL field holding the text.
    pub field: String,
    /// How texts are normalised before they are tokenized (spec §5.1;
    /// absent from a report: none).
    #[serde(default)]
    pub normalize: Normalization,
}

/// Records a normalisation other than `none` as the `normalize` parameter
/// (absent means none, so reports made without one keep their bytes).
fn record_normalization(r: &mut Recorder, n: Normalization) {
    if !n.is_none() {
        r.param("normalize", n.name(), json!(n.name()));
    }
}

impl AuditSettings {
    /// The members shown beside an audit's verdict (text and `--json`):
    /// `normalize`, when one is chosen.
    pub fn shown(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if !self.normalize.is_none() {
            m.insert("normalize".into(), json!(self.normalize.name()));
        }
        m
    }

    /// The key-swap null of these settings.
    pub fn null(&self) -> NullKeys {
        NullKeys {
            keys: self.null_keys,
            seed: self.null_seed,
        }
    }

    fn recorder(&self, command: &str, keyed: &Keyed<'_>) -> Recorder {
        let mut r = Recorder::new(command);
        r.param("alpha", self.alpha, json!(self.alpha));
        r.param("null-keys", self.null_keys, json!(self.null_keys));
        r.param("null-seed", self.null_seed, json!(self.null_seed));
        r.param("field", &self.field, json!(self.field));
        record_normalization(&mut r, self.normalize);
        r.profile(&keyed.profile, keyed.key);
        r
    }
}

/// The report of a finished audit: results (the verdict object plus every
/// key-swap statistic) and the decision.
pub fn finish_audit(
    recorder: Recorder,
    profile: &Profile,
    totals: &AuditTotals,
    alpha: f64,
) -> Report {
    let decision = decide(
        profile.scheme(),
        &totals.suspect,
        totals.reference.as_ref(),
        alpha,
    );
    recorder.finish(
        attribution::report_results(&totals.suspect, totals.reference.as_ref(), &decision),
        attribution::report_decision(&decision),
    )
}

/// `audit corpus` (and the corpus audit of `audit api`'s kept answers) as
/// recorded.
pub struct CorpusRecipe<'a> {
    /// Levels, null keys, field.
    pub settings: AuditSettings,
    /// The lab's profile and key.
    pub lab: Keyed<'a>,
    /// A tokenizer.json file.
    pub tokenizer: Option<String>,
    /// A GGUF model whose tokenizer is used.
    pub model: Option<String>,
    /// The lab's own outputs (filter Φ).
    pub filter_from: Vec<String>,
    /// A clean reference corpus.
    pub reference: Vec<String>,
    /// The suspect corpus.
    pub inputs: Vec<String>,
    /// Where the files named above are read when not at their names (a
    /// verifier's copies; empty for a run of the command itself).
    pub locations: Locations,
}

impl CorpusRecipe<'_> {
    /// The tokenizer (tokenizer file, model, or the default model's),
    /// checked against the profile.
    pub fn tokenizer(&self, log: &mut dyn FnMut(&str)) -> Result<TextTokenizer, Error> {
        let at = &self.locations;
        let t = provmark_audit::tokenizer::text_tokenizer(
            self.tokenizer.as_deref().map(|t| at.path(t)),
            self.model.as_deref().map(|m| at.path(m)),
            log,
        )?;
        t.check_profile(&self.lab.profile, false)?;
        Ok(t)
    }

    /// The audit's configuration for `shard` with `tokenizer`.
    pub fn config(&self, tokenizer: TextTokenizer, shard: Shard) -> CorpusAuditConfig {
        CorpusAuditConfig {
            inputs: self.inputs.clone(),
            reference: self.reference.clone(),
            filter_from: self.filter_from.clone(),
            field: self.settings.field.clone(),
            tokenizer,
            normalization: self.settings.normalize,
            shard,
            null: self.settings.null(),
            locations: self.locations.clone(),
        }
    }

    /// What the report records (`command` is `audit corpus`; an API audit
    /// renames it afterwards and adds its collection facts).
    pub fn recorder(&self) -> Result<Recorder, Error> {
        let mut r = self.settings.recorder("audit corpus", &self.lab);
        r.tokenizer(self.lab.profile.tokenizer().as_str());
        let at = &self.locations;
        if let Some(t) = &self.tokenizer {
            r.input_at(Some("tokenizer"), "tokenizer", t, at.path(t))?;
        }
        if let Some(m) = &self.model {
            r.input_at(Some("model"), "model", m, at.path(m))?;
        }
        for f in &self.filter_from {
            r.input_at(Some("filter-from"), "filter", f, at.path(f))?;
        }
        for f in &self.reference {
            r.input_at(Some("reference"), "reference", f, at.path(f))?;
        }
        for f in &self.inputs {
            r.input_at(None, "input", f, at.path(f))?;
        }
        Ok(r)
    }

    /// What binds a shard's partial result to this audit: the key's
    /// commitment, the recorded parameters other than `alpha`, and every
    /// file by SHA-256 (as the report would record them).
    pub fn binding(&self) -> Result<Binding, Error> {
        let r = self.recorder()?;
        let mut parameters = r.parameters().clone();
        parameters.remove("alpha");
        Ok(Binding {
            key_commitment: self.lab.key.commitment(),
            parameters,
            inputs: r
                .inputs()
                .iter()
                .map(|i| BoundInput {
                    role: i.role.clone(),
                    name: i.name.clone(),
                    sha256: i.sha256.clone(),
                    bytes: i.bytes,
                })
                .collect(),
        })
    }

    /// Runs the whole audit and returns its report.
    pub fn compute(&self) -> Result<Report, Error> {
        attribution::check_levels(self.settings.alpha, self.settings.null_keys)?;
        let config = self.config(self.tokenizer(&mut |_| {})?, Shard::ALL);
        let totals = provmark_audit::corpus::run(&self.lab.lab()?, &config, &Silent)?;
        Ok(finish_audit(
            self.recorder()?,
            &self.lab.profile,
            &totals,
            self.settings.alpha,
        ))
    }
}

/// `audit weights` as recorded.
pub struct WeightsRecipe<'a> {
    /// Levels, null keys, field.
    pub settings: AuditSettings,
    /// The lab's profile and key.
    pub lab: Keyed<'a>,
    /// The suspect GGUF.
    pub suspect: String,
    /// A clean reference GGUF.
    pub reference_model: Option<String>,
    /// The lab's texts the models read.
    pub texts: Vec<String>,
    /// The prompts the texts answer (read in chat context), if given.
    pub prompts: Option<String>,
    /// Where the files named above are read when not at their names (a
    /// verifier's copies; empty for a run of the command itself).
    pub locations: Locations,
}

impl WeightsRecipe<'_> {
    /// The audit's configuration (`threads`: compute threads, which change
    /// no result).
    pub fn config(&self, threads: Option<usize>) -> WeightsAuditConfig {
        let at = &self.locations;
        WeightsAuditConfig {
            suspect: at.path(&self.suspect).to_path_buf(),
            reference_model: self
                .reference_model
                .as_ref()
                .map(|m| at.path(m).to_path_buf()),
            texts: self.texts.clone(),
            field: self.settings.field.clone(),
            prompts: self.prompts.as_ref().map(|p| at.path(p).to_path_buf()),
            cross_tokenizer: false,
            lab_tokenizer: None,
            threads,
            null: self.settings.null(),
            locations: self.locations.clone(),
        }
    }

    /// What the report records.
    pub fn recorder(&self) -> Result<Recorder, Error> {
        let mut r = self.settings.recorder("audit weights", &self.lab);
        let at = &self.locations;
        r.input_at(
            Some("suspect"),
            "suspect",
            &self.suspect,
            at.path(&self.suspect),
        )?;
        if let Some(m) = &self.reference_model {
            r.input_at(Some("reference-model"), "reference_model", m, at.path(m))?;
        }
        for t in &self.texts {
            r.input_at(Some("texts"), "input", t, at.path(t))?;
        }
        if let Some(p) = &self.prompts {
            r.input_at(Some("prompts"), "prompts", p, at.path(p))?;
        }
        r.tokenizer(self.lab.profile.tokenizer().as_str());
        Ok(r)
    }

    /// Runs the audit and returns its report.
    pub fn compute(&self) -> Result<Report, Error> {
        attribution::check_levels(self.settings.alpha, self.settings.null_keys)?;
        let totals = provmark_audit::weights::run(&self.lab.lab()?, &self.config(None), &Silent)?;
        Ok(finish_audit(
            self.recorder()?,
            &self.lab.profile,
            &totals,
            self.settings.alpha,
        ))
    }
}

/// `audit merge` as recorded: the profile, the shards' partial files and,
/// from the partials' common binding, the key's commitment, the corpus
/// audit's settings and every corpus file by SHA-256, so that the merged
/// report is recomputed from the corpus files (spec/report.md §6).
pub struct MergeRecipe {
    /// Level for attribution.
    pub alpha: f64,
    /// The profile the shards were made with.
    pub profile: Profile,
    /// How the profile was given (in error messages).
    pub profile_name: String,
    /// The partial files, one per shard.
    pub parts: Vec<String>,
    /// Where the partial files are read when not at their names.
    pub locations: Locations,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeParameters {
    alpha: f64,
    shards: u32,
    null_keys: usize,
    null_seed: u64,
    field: String,
    #[serde(default)]
    normalize: Normalization,
}

/// A partial's bound `normalize` must be one a corpus audit records: absent,
/// or a known normalisation other than `none` (which is never recorded).
fn check_bound_normalization(name: &str, t: &Totals) -> Result<(), Error> {
    let Some(v) = t
        .binding
        .as_ref()
        .and_then(|b| b.parameters.get("normalize"))
    else {
        return Ok(());
    };
    match serde_json::from_value::<Normalization>(v.clone()) {
        Ok(n) if !n.is_none() => Ok(()),
        Ok(_) => Err(Error::Recipe(format!(
            "{name}: binding.parameters.normalize is \"none\", which a corpus audit never records"
        ))),
        Err(e) => Err(Error::Recipe(format!(
            "{name}: binding.parameters.normalize: {e}"
        ))),
    }
}

/// The most shards a merged report may ask a verifier to recompute.
pub const MAX_SHARDS: u32 = 1024;

impl MergeRecipe {
    /// Reads the partial files (each at most [`crate::report::MAX_PARTIAL_BYTES`]).
    ///
    /// Errors: [`Error::Read`], [`Error::TooLarge`], or the partial's parse error.
    pub fn read_parts(&self) -> Result<Vec<(String, Totals)>, Error> {
        let mut parts: Vec<(String, Totals)> = Vec::new();
        for name in &self.parts {
            let path = self.locations.path(name);
            let text = crate::report::read_text_at_most(path, crate::report::MAX_PARTIAL_BYTES)?;
            parts.push((name.clone(), Totals::parse_partial(name, &text)?));
        }
        Ok(parts)
    }

    /// Reads, checks and adds up the partials (every shard exactly once,
    /// same audit: profile, key commitment, settings and files), and checks
    /// the levels.
    pub fn merge(&self) -> Result<Totals, Error> {
        self.merge_parts(&self.read_parts()?)
    }

    /// As [`merge`](Self::merge), on partials already read with
    /// [`read_parts`](Self::read_parts).
    pub fn merge_parts(&self, parts: &[(String, Totals)]) -> Result<Totals, Error> {
        let digest = self.profile.digest();
        for (name, t) in parts {
            t.check_profile(name, &digest, &self.profile_name)?;
        }
        for (name, t) in parts {
            check_bound_normalization(name, t)?;
        }
        let total = attribution::merge(parts, &digest, &self.profile_name)?;
        attribution::check_levels(self.alpha, total.null_statistics.len())?;
        Ok(total)
    }

    /// The members shown beside a merged verdict: the shards' bound
    /// `normalize`, when they record one.
    pub fn shown(total: &Totals) -> Map<String, Value> {
        let bound = total.binding.as_ref();
        bound
            .and_then(|b| b.parameters.get("normalize"))
            .map(|n| Map::from_iter([("normalize".to_string(), n.clone())]))
            .unwrap_or_default()
    }

    /// What the report records for the merge of `total` (whose binding is
    /// the shards' common one) made of `shards` shards.
    pub fn recorder(&self, total: &Totals, shards: u32) -> Result<Recorder, Error> {
        let binding = total.binding.as_ref().ok_or_else(|| {
            Error::Attribution(attribution::Error::Unbound {
                name: self.parts.first().cloned().unwrap_or_default(),
            })
        })?;
        let mut r = Recorder::new("audit merge");
        r.param("alpha", self.alpha, json!(self.alpha));
        r.parameter("shards", json!(shards));
        for (name, value) in &binding.parameters {
            r.parameter(name, value.clone());
        }
        r.profile_committed(&self.profile, &binding.key_commitment);
        r.tokenizer(self.profile.tokenizer().as_str());
        for input in &binding.inputs {
            r.input_recorded(&input.role, &input.name, &input.sha256, input.bytes)?;
        }
        for p in &self.parts {
            r.input_at(None, "partial", p, self.locations.path(p))?;
        }
        Ok(r)
    }

    /// Merges the partial files and returns the report.
    pub fn compute(&self) -> Result<Report, Error> {
        self.compute_from(&self.read_parts()?)
    }

    /// The report of the merge of `parts` (`(name, totals)`, one per shard).
    pub fn compute_from(&self, parts: &[(String, Totals)]) -> Result<Report, Error> {
        let suspect = self.merge_parts(parts)?;
        let shards = parts.first().map_or(0, |(_, t)| t.shard_count);
        let recorder = self.recorder(&suspect, shards)?;
        let totals = AuditTotals {
            suspect,
            reference: None,
        };
        Ok(finish_audit(recorder, &self.profile, &totals, self.alpha))
    }
}

/// Recomputes a merged report from the corpus files: every shard's audit
/// run again (same settings, key and files), then merged as `audit merge`
/// did. A forged partial changes the merged numbers, so it is a mismatch.
fn recompute_merge(report: &Report, keys: &[KeyFile], files: &Files<'_>) -> Result<Report, Error> {
    files.only(&["tokenizer", "model", "filter", "input", "partial"])?;
    let p: MergeParameters = parameters(report)?;
    if p.shards == 0 || p.shards > MAX_SHARDS {
        return Err(Error::Recipe(format!(
            "audit merge: {} shards (a merged report records 1 to {MAX_SHARDS})",
            p.shards
        )));
    }
    let locations = files.locations()?;
    let corpus = CorpusRecipe {
        settings: AuditSettings {
            alpha: p.alpha,
            null_keys: p.null_keys,
            null_seed: p.null_seed,
            field: p.field,
            normalize: p.normalize,
        },
        lab: single(report, keys)?,
        tokenizer: files.one("tokenizer")?,
        model: files.one("model")?,
        filter_from: files.role("filter"),
        reference: Vec::new(),
        inputs: files.role("input"),
        locations: locations.clone(),
    };
    attribution::check_levels(p.alpha, p.null_keys)?;
    let merge = MergeRecipe {
        alpha: p.alpha,
        profile: corpus.lab.profile.clone(),
        profile_name: "profile 0".into(),
        parts: files.role("partial"),
        locations,
    };
    // The partials given must be this audit's shards, one each, before
    // anything is computed: their count, their binding (key, settings,
    // files) and their shard numbers.
    if merge.parts.len() != p.shards as usize {
        return Err(Error::Recipe(format!(
            "audit merge: the report records {} partial file(s) for {} shards (one per shard)",
            merge.parts.len(),
            p.shards
        )));
    }
    let parts = merge.read_parts()?;
    let binding = corpus.binding()?;
    let mut by_shard: Vec<Option<&(String, Totals)>> = vec![None; p.shards as usize];
    for part in &parts {
        let (name, t) = part;
        let slot = (t.shard_count == p.shards)
            .then(|| by_shard.get_mut(t.shard_index as usize))
            .flatten()
            .filter(|slot| slot.is_none());
        match slot {
            Some(slot)
                if t.binding.as_ref() == Some(&binding)
                    && t.profile_digest == corpus.lab.profile.digest()
                    && t.null_statistics.len() == p.null_keys =>
            {
                *slot = Some(part)
            }
            _ => {
                return Err(Error::PartialDiffers {
                    name: name.clone(),
                    detail: format!(
                        "not one of the {} shards of this audit (its shard number, profile, key, settings, files or null keys differ)",
                        p.shards
                    ),
                })
            }
        }
    }
    // Each shard recomputed from the corpus files must be its partial, bit
    // for bit; one shard's totals are held at a time.
    let lab = corpus.lab.lab()?;
    for (i, given) in by_shard.iter().enumerate() {
        let (name, given) = given.expect("every shard placed: as many partials as shards");
        let shard = Shard::new(i as u32, p.shards).expect("index below a count of at least 1");
        let config = corpus.config(corpus.tokenizer(&mut |_| {})?, shard);
        let mut totals = provmark_audit::corpus::run(&lab, &config, &Silent)?.suspect;
        totals.binding = Some(binding.clone());
        if &totals != given {
            return Err(Error::PartialDiffers {
                name: name.clone(),
                detail: format!(
                    "shard {i}/{} recomputed from the corpus files differs: {}",
                    p.shards,
                    first_difference(given, &totals)
                ),
            });
        }
    }
    merge.compute_from(&parts)
}

/// The first member (in the partial format's order) where two partials
/// differ, as `member: recorded ≠ recomputed`.
fn first_difference(given: &Totals, recomputed: &Totals) -> String {
    let (a, b) = (json!(given), json!(recomputed));
    let (Value::Object(a), Value::Object(b)) = (&a, &b) else {
        return String::from("the partial");
    };
    for (k, x) in a {
        let y = b.get(k).unwrap_or(&Value::Null);
        if x != y {
            let short = |v: &Value| {
                let s = v.to_string();
                if s.chars().count() > 40 {
                    format!("{}…", s.chars().take(40).collect::<String>())
                } else {
                    s
                }
            };
            return format!("{k}: {} ≠ recomputed {}", short(x), short(y));
        }
    }
    String::from("the partial")
}

/// The verifier's files sorted by the roles the report records for them.
struct Files<'a> {
    report: &'a Report,
    given: &'a [PathBuf],
}

impl Files<'_> {
    /// The recorded names of the inputs whose role is `role`, in report
    /// order (each is read from the verifier's file, see [`Files::locations`]).
    fn role(&self, role: &str) -> Vec<String> {
        self.report
            .inputs
            .iter()
            .filter(|entry| entry.role == role)
            .map(|entry| entry.name.clone())
            .collect()
    }

    /// Each recorded name placed at the verifier's file for it: inputs are
    /// bound by SHA-256, not by path (spec/report.md §4), so the names
    /// (record ids, formats) stay the recorded ones. Two entries of one
    /// name must be one file.
    fn locations(&self) -> Result<Locations, Error> {
        let mut at = Locations::new();
        for (entry, path) in self.report.inputs.iter().zip(self.given) {
            if !at.insert(&entry.name, path) {
                return Err(Error::Recipe(format!(
                    "inputs[{}]: the name {:?} is recorded for two different files",
                    entry.index, entry.name
                )));
            }
        }
        Ok(at)
    }

    /// At most one file of `role`.
    fn one(&self, role: &str) -> Result<Option<String>, Error> {
        let mut files = self.role(role);
        if files.len() > 1 {
            return Err(Error::Recipe(format!(
                "{} inputs of role {role}; the command takes at most one",
                files.len()
            )));
        }
        Ok(files.pop())
    }

    /// Exactly one file of `role`.
    fn required(&self, role: &str) -> Result<String, Error> {
        self.one(role)?
            .ok_or_else(|| Error::Recipe(format!("no input of role {role}")))
    }

    /// Refuses roles the command does not take.
    fn only(&self, roles: &[&str]) -> Result<(), Error> {
        match self
            .report
            .inputs
            .iter()
            .find(|e| !roles.contains(&e.role.as_str()))
        {
            Some(e) => Err(Error::Recipe(format!(
                "inputs[{}]: role {:?} is not one {} takes",
                e.index, e.role, self.report.command.name
            ))),
            None => Ok(()),
        }
    }
}

fn parameters<T: serde::de::DeserializeOwned>(report: &Report) -> Result<T, Error> {
    serde_json::from_value(Value::Object(report.parameters.clone())).map_err(|source| {
        Error::Parameters {
            command: report.command.name.clone(),
            source,
        }
    })
}

/// The report's profiles with the verifier's keys (in the order of the
/// keyed profiles).
fn keyed<'a>(report: &Report, keys: &'a [KeyFile]) -> Result<Vec<Keyed<'a>>, Error> {
    report
        .keyed_profiles()
        .zip(keys)
        .enumerate()
        .map(|(i, (entry, key))| {
            Ok(Keyed {
                profile: Profile::from_json(&entry.profile)
                    .map_err(|source| Error::InvalidProfile { index: i, source })?,
                key: &key.key,
                profile_name: format!("profile {i}"),
                key_name: key.path.display().to_string(),
            })
        })
        .collect()
}

fn single<'a>(report: &Report, keys: &'a [KeyFile]) -> Result<Keyed<'a>, Error> {
    let mut labs = keyed(report, keys)?;
    if labs.len() != 1 || report.profiles.len() != 1 {
        return Err(Error::Recipe(format!(
            "{} takes one profile with its key, the report has {}",
            report.command.name,
            report.profiles.len()
        )));
    }
    Ok(labs.remove(0))
}

/// Recomputes a report in process from its typed content and the
/// verifier's keys and files (each already checked against the report):
/// the command, its parameters and its input roles must be ones this
/// version records, else [`Error::Recipe`] / [`Error::Parameters`] /
/// [`Error::UnknownCommand`]. Nothing is executed, written or fetched, and
/// only the given files are read, each under the name the report records
/// (inputs are bound by SHA-256, not path); a report made with the default
/// model's tokenizer needs it cached ([`Error::DefaultModelNotCached`]).
pub fn recompute(report: &Report, keys: &[KeyFile], inputs: &[PathBuf]) -> Result<Report, Error> {
    let api = report.command.name == "audit api";
    if api != report.collection.is_some() {
        // Only an API audit records how its inputs were collected, and it
        // always does: a relabelled or padded report is not one provmark makes.
        return Err(Error::Recipe(format!(
            "{}: {}",
            report.command.name,
            if api {
                "an API audit report records how its answers were collected (collection)"
            } else {
                "only an API audit report has a collection member"
            }
        )));
    }
    let mut new = compute(report, keys, inputs)?;
    if api {
        // An API audit is recorded as the corpus audit of its kept answers;
        // how they were asked for is evidence that cannot be recomputed.
        new.command.name = report.command.name.clone();
        new.collection = report.collection.clone();
    }
    Ok(new)
}

fn compute(report: &Report, keys: &[KeyFile], inputs: &[PathBuf]) -> Result<Report, Error> {
    let files = Files {
        report,
        given: inputs,
    };
    let tokenizer_given = report
        .inputs
        .iter()
        .any(|e| e.role == "tokenizer" || e.role == "model");
    let uses_default = matches!(
        report.command.name.as_str(),
        "detect" | "audit corpus" | "audit api"
    ) && !tokenizer_given;
    if uses_default && !provmark_audit::tokenizer::default_model_cached() {
        return Err(Error::DefaultModelNotCached);
    }
    match report.command.name.as_str() {
        "detect" => {
            files.only(&["tokenizer", "model", "input"])?;
            let p: DetectParameters = parameters(report)?;
            DetectRecipe {
                alpha: p.alpha,
                field: p.field,
                max_record_bytes: p.max_record_bytes,
                window_min: p.window_min,
                jsonl: p.jsonl,
                windows: p.windows,
                force_tokenizer: p.force_tokenizer,
                normalization: p.normalize,
                profiles: keyed(report, keys)?,
                tokenizers: files.role("tokenizer"),
                model: files.one("model")?,
                inputs: files.role("input"),
                locations: files.locations()?,
            }
            .compute()
        }
        "audit corpus" | "audit api" => {
            files.only(&["tokenizer", "model", "filter", "reference", "input"])?;
            CorpusRecipe {
                settings: parameters(report)?,
                lab: single(report, keys)?,
                tokenizer: files.one("tokenizer")?,
                model: files.one("model")?,
                filter_from: files.role("filter"),
                reference: files.role("reference"),
                inputs: files.role("input"),
                locations: files.locations()?,
            }
            .compute()
        }
        "audit weights" => {
            files.only(&["suspect", "reference_model", "input", "prompts"])?;
            let settings: AuditSettings = parameters(report)?;
            if !settings.normalize.is_none() {
                // The models read the lab's own texts: nothing to undo.
                return Err(Error::Recipe(
                    "audit weights takes no normalize parameter".into(),
                ));
            }
            WeightsRecipe {
                settings,
                lab: single(report, keys)?,
                suspect: files.required("suspect")?,
                reference_model: files.one("reference_model")?,
                texts: files.role("input"),
                prompts: files.one("prompts")?,
                locations: files.locations()?,
            }
            .compute()
        }
        "audit merge" => recompute_merge(report, keys, &files),
        other => Err(Error::UnknownCommand {
            name: other.to_string(),
        }),
    }
}
