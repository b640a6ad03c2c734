//! The open-weight audit ("reading mode", Sander et al. 2024): a suspect
//! model reads the lab's texts, given the real prefix at every position.
//!
//! - [`run`]: the top-1 test (spec §8.2): the tuple (real window, the
//!   suspect's most likely next token) is scored against the lab's
//!   schedule, each distinct tuple once across the corpus (spec §8.1).
//! - [`run_expected`]: the expected-score test (spec §8.5): the suspect's
//!   whole next-token distribution is weighed against the lab's token
//!   values, paired against a clean reference model (the student's base)
//!   when one is given.
//!
//! Both read each answer bare, or (with [`WeightsAuditConfig::prompts`])
//! after its prompt rendered with the suspect's chat template, as a
//! chat-distilled student saw it in training; only answer positions are
//! scored. The suspect must share the profile's tokenizer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use provmark_llm::prompts::Prompt;
use provmark_llm::runtime::Runtime;
use provmark_verify::attribution::AttributionVerdict;
use provmark_verify::corpus::{DistinctTuples, Shard, TupleSet};
use provmark_verify::expected::{self, position_weights, ExpectedTest, WeightedTuples};
use provmark_verify::input::Locations;
use provmark_verify::TextTokenizer;

use crate::corpus::{stream_records, AuditTotals};
use crate::cross::{Alignment, VocabMap};
use crate::{expected_test, score_pair, Counts, Error, Event, Lab, NullKeys, Progress, Side};

/// What a weights audit reads and how.
pub struct WeightsAuditConfig {
    /// The suspect model (GGUF of the llama, Qwen2 or Qwen3 family). It and
    /// the reference run at [`provmark_llm::model::Precision::AsStored`].
    pub suspect: PathBuf,
    /// A clean reference model (same tokenizer), read over the same texts.
    pub reference_model: Option<PathBuf>,
    /// The lab's watermarked texts (JSONL with `field`, or text files).
    pub texts: Vec<String>,
    /// JSONL field holding the text.
    pub field: String,
    /// The prompts the texts answer (a prompt file as `provmark generate`
    /// reads): each text is read after the prompt whose id is its record's
    /// `id`, rendered with the suspect's chat template. `None`: bare texts.
    pub prompts: Option<PathBuf>,
    /// Read a suspect whose tokenizer is not the profile's through text
    /// (spec §8.6) instead of refusing it.
    pub cross_tokenizer: bool,
    /// The lab's tokenizer.json when reading across tokenizers (default:
    /// the default model's; it must be the profile's).
    pub lab_tokenizer: Option<PathBuf>,
    /// Compute threads for the models (default: all cores).
    pub threads: Option<usize>,
    /// The key-swap null.
    pub null: NullKeys,
    /// Where the texts are read when not at their names (a verifier's files).
    pub locations: Locations,
}

/// Runs the top-1 weights audit: loads each model ([`Event::LoadingModel`]),
/// checks its tokenizer against the profile's, reads the texts
/// ([`Event::TextRead`] per text) and scores the tuples.
pub fn run(
    lab: &Lab,
    config: &WeightsAuditConfig,
    progress: &dyn Progress,
) -> Result<AuditTotals, Error> {
    let pool = pool(config)?;
    let prompts = read_prompts(config)?;
    let lab_tok = lab_tokenizer(lab, config)?;
    let read = |path: &Path| {
        let reader = load(path, lab, &lab_tok, config.cross_tokenizer, progress)?;
        read_top1(
            &reader,
            lab,
            &lab_tok,
            config,
            prompts.as_ref(),
            &pool,
            progress,
        )
    };
    let suspect = read(&config.suspect)?;
    let reference = match &config.reference_model {
        Some(path) => Some(read(path)?),
        None => None,
    };
    score_pair(lab, config.null, &suspect, reference.as_ref(), progress)
}

fn pool(config: &WeightsAuditConfig) -> Result<rayon::ThreadPool, Error> {
    let threads = config
        .threads
        .unwrap_or_else(provmark_llm::engine::default_threads);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(Error::Threads)
}

/// The prompt file, by id, when the texts are read in chat context.
fn read_prompts(config: &WeightsAuditConfig) -> Result<Option<HashMap<String, Prompt>>, Error> {
    let Some(path) = &config.prompts else {
        return Ok(None);
    };
    let prompts = provmark_llm::prompts::read(path)?;
    if prompts.is_empty() {
        return Err(Error::NoPromptsIn {
            name: path.display().to_string(),
        });
    }
    Ok(Some(
        prompts.into_iter().map(|p| (p.id.clone(), p)).collect(),
    ))
}

/// A model ready to read: its runtime, its tokenizer, and (when that is
/// not the lab's) its vocabulary mapped to the lab's.
struct Reader {
    name: String,
    runtime: Runtime,
    tokenizer: TextTokenizer,
    map: Option<VocabMap>,
}

/// Loads a model; one whose tokenizer is not the profile's is refused
/// unless the audit reads across tokenizers.
fn load(
    path: &Path,
    lab: &Lab,
    lab_tokenizer: &TextTokenizer,
    cross: bool,
    progress: &dyn Progress,
) -> Result<Reader, Error> {
    let name = path.display().to_string();
    progress.event(Event::LoadingModel { name: &name });
    // The suspect's own weights (F32 kept, F16/BF16 widened), not a Q8_0
    // re-quantization: an inherited bias of a few 1e-4 is below that noise.
    let runtime = Runtime::load_with(path, &name, provmark_llm::model::Precision::AsStored)?;
    let tokenizer = runtime.tokenizer.text_tokenizer(&name)?;
    let map = if tokenizer.accepts(lab.profile.tokenizer()) {
        None
    } else if cross {
        Some(VocabMap::new(&tokenizer, lab_tokenizer))
    } else {
        return Err(Error::TokenizerMismatch {
            name,
            expected: lab.profile.tokenizer().to_string(),
            got: tokenizer.digest().to_string(),
        });
    };
    Ok(Reader {
        name,
        runtime,
        tokenizer,
        map,
    })
}

/// The lab's tokenizer: the suspect's own when it is the profile's (or the
/// audit does not read across tokenizers: the suspect is then refused when
/// it is loaded); else `config.lab_tokenizer`, else the default model's,
/// which must be the profile's.
fn lab_tokenizer(lab: &Lab, config: &WeightsAuditConfig) -> Result<TextTokenizer, Error> {
    let name = config.suspect.display().to_string();
    let own = provmark_llm::gguf_tokenizer::GgufTokenizer::from_file(&config.suspect)?;
    let own = own.text_tokenizer(&name)?;
    if !config.cross_tokenizer || own.accepts(lab.profile.tokenizer()) {
        return Ok(own);
    }
    let tokenizer =
        crate::tokenizer::text_tokenizer(config.lab_tokenizer.as_deref(), None, &mut |_| {})?;
    if !tokenizer.accepts(lab.profile.tokenizer()) {
        return Err(Error::LabTokenizer {
            name: match &config.lab_tokenizer {
                Some(p) => p.display().to_string(),
                None => "the default model's tokenizer".into(),
            },
            expected: lab.profile.tokenizer().to_string(),
            got: tokenizer.digest().to_string(),
        });
    }
    Ok(tokenizer)
}

/// Streams the texts as `reader` reads them: `visit(alignment)` with the
/// suspect's sequence (its rendered prompt in chat context, then the
/// answer) and the lab positions it predicts. A text whose prompt is
/// missing or cannot be rendered, or that a tokenizer cannot encode, is
/// reported and counted as unreadable. Returns (texts read, unreadable).
fn stream_texts(
    config: &WeightsAuditConfig,
    reader: &Reader,
    lab_tokenizer: &TextTokenizer,
    h: usize,
    prompts: Option<&HashMap<String, Prompt>>,
    progress: &dyn Progress,
    visit: &mut dyn FnMut(&Alignment),
) -> Result<(usize, usize), Error> {
    let mut errors = 0usize;
    let mut unmatched = 0usize;
    let count = stream_records(
        (&config.texts, &config.locations),
        &config.field,
        // The lab's own texts: nothing to undo.
        (lab_tokenizer, provmark_verify::Normalization::None),
        &mut errors,
        progress,
        &mut |batch| {
            for t in batch.iter() {
                let prefix = match prompts {
                    None => Ok(Vec::new()),
                    Some(prompts) => match prompts.get(&t.id) {
                        None => Err(format!(
                            "{}: no prompt in --prompts {} has this record's id (records are \
                             matched to prompts by their id field)",
                            t.id,
                            config
                                .prompts
                                .as_ref()
                                .map_or(String::new(), |p| p.display().to_string())
                        )),
                        Some(p) => provmark_llm::generate::encode(&reader.runtime, p, false)
                            .map_err(|e| format!("{}: its prompt cannot be rendered: {e}", t.id)),
                    },
                };
                let alignment = prefix.and_then(|prefix| match reader.map {
                    None => Ok(Alignment::same(prefix, &t.ids, h)),
                    Some(_) => {
                        Alignment::across(prefix, &t.text, lab_tokenizer, &reader.tokenizer, h)
                            .map_err(|e| format!("{}: {e}", t.id))
                    }
                });
                match alignment {
                    Ok(a) => visit(&a),
                    Err(message) => {
                        progress.event(Event::RecordError { message: &message });
                        unmatched += 1;
                    }
                }
                progress.event(Event::TextRead);
            }
        },
    )?;
    Ok((count - unmatched, errors + unmatched))
}

/// The model's top-1 predictions over the lab's texts, as tuples.
fn read_top1(
    reader: &Reader,
    lab: &Lab,
    lab_tokenizer: &TextTokenizer,
    config: &WeightsAuditConfig,
    prompts: Option<&HashMap<String, Prompt>>,
    pool: &rayon::ThreadPool,
    progress: &dyn Progress,
) -> Result<(Counts, DistinctTuples), Error> {
    let h = lab.profile.context();
    let mut set = TupleSet::new(h, Shard::ALL)?;
    progress.event(Event::ReadingStarted {
        reader: &reader.name,
    });
    let mut failure = None;
    let (texts, errors) = stream_texts(
        config,
        reader,
        lab_tokenizer,
        h,
        prompts,
        progress,
        &mut |a| {
            if failure.is_some() {
                return;
            }
            let predicted = pool.install(|| {
                provmark_llm::reading::predict_top1(&reader.runtime.model, &a.seq, &mut |_, _| {})
            });
            match predicted {
                Ok(p) => {
                    let reads =
                        a.pairs
                            .iter()
                            .filter(|(_, i)| *i < p.len())
                            .filter_map(|&(j, i)| {
                                let token = match &reader.map {
                                    None => Some(p[i]),
                                    Some(map) => map.get(p[i]),
                                };
                                token.map(|t| (j, t))
                            });
                    set.add_reading(&a.lab, a.lab_first, reads);
                }
                Err(e) => failure = Some(e.to_string()),
            }
        },
    )?;
    progress.event(Event::ReadingFinished);
    if let Some(message) = failure {
        return Err(Error::Reading {
            name: reader.name.clone(),
            message,
        });
    }
    let tuples = set.finish();
    let counts = Counts {
        texts,
        errors,
        distinct: tuples.len(),
        filter_windows: None,
        dropped: 0,
    };
    Ok((counts, tuples))
}

/// A reader's weights in the lab's vocabulary: as they are, or mapped
/// through `map` (dropping unmappable tokens and adding up those that map
/// to the same lab id), in ascending lab id.
fn lab_weights(weights: Vec<(u32, f64)>, map: Option<&VocabMap>) -> Vec<(u32, f64)> {
    let Some(map) = map else {
        return weights;
    };
    expected::merge_by_token(
        weights
            .into_iter()
            .filter_map(|(v, w)| map.get(v).map(|u| (u, w)))
            .collect(),
    )
}

/// Support size k of the expected-score test when none is given: the most
/// `top_logprobs` an OpenAI-compatible API returns, so that open-weight and
/// grey-box audits weigh the same tokens.
pub const DEFAULT_TOP_K: usize = 20;

/// The result of an expected-score weights audit (spec §8.5).
#[derive(Clone, Debug)]
pub struct ExpectedAudit {
    /// The suspect's test: paired against the reference (weights q − r)
    /// when one was given, else the suspect alone (weights q).
    pub suspect: ExpectedTest,
    /// With a reference: the suspect alone (q), for comparison.
    pub suspect_alone: Option<ExpectedTest>,
    /// With a reference: the reference alone (r), the pipeline's control.
    pub reference: Option<ExpectedTest>,
    /// Records that could not be read (each was reported).
    pub unreadable: usize,
    /// k.
    pub top_k: usize,
    /// The level.
    pub alpha: f64,
    /// `attributed` needs both of the suspect's p-values ≤ alpha and the
    /// reference alone not attributed (else `inconclusive`); `too_short`
    /// when nothing was scored.
    pub verdict: AttributionVerdict,
}

impl ExpectedAudit {
    /// The tests as named columns for a summary table: the suspect's
    /// (paired when a reference was read), then the suspect alone and the
    /// reference alone.
    pub fn columns(&self) -> Vec<(&'static str, &ExpectedTest)> {
        let mut columns = vec![if self.reference.is_some() {
            ("suspect − reference (paired)", &self.suspect)
        } else {
            ("suspect", &self.suspect)
        }];
        columns.extend(self.suspect_alone.iter().map(|t| ("suspect alone", t)));
        columns.extend(self.reference.iter().map(|t| ("reference alone", t)));
        columns
    }

    /// The verdict object of `provmark audit weights --statistic expected
    /// --json`: `statistic` ("expected"), `top_k`, `paired`, `suspect`,
    /// `suspect_alone` and `reference` (see [`ExpectedTest::to_json`]),
    /// `unreadable`, `alpha`, `verdict`, `profile_digest`, `key_id`.
    pub fn to_json(&self, lab: &Lab, null_seed: u64) -> serde_json::Value {
        let test = |t: &Option<ExpectedTest>| t.as_ref().map(|t| t.to_json(null_seed, self.alpha));
        serde_json::json!({
            "statistic": "expected",
            "top_k": self.top_k,
            "paired": self.reference.is_some(),
            "suspect": self.suspect.to_json(null_seed, self.alpha),
            "suspect_alone": test(&self.suspect_alone),
            "reference": test(&self.reference),
            "unreadable": self.unreadable,
            "alpha": self.alpha,
            "verdict": self.verdict.as_str(),
            "profile_digest": lab.profile.digest(),
            "key_id": lab.profile.key_id(),
        })
    }
}

/// Runs the expected-score weights audit at level `alpha` with support
/// size `top_k` (≥ 1): loads the suspect (and the reference), reads every
/// text with both in lock step ([`Event::TextRead`] per text) and tests
/// the weighted tuples under the key and the key-swap null.
pub fn run_expected(
    lab: &Lab,
    config: &WeightsAuditConfig,
    top_k: usize,
    alpha: f64,
    progress: &dyn Progress,
) -> Result<ExpectedAudit, Error> {
    if top_k == 0 {
        return Err(Error::TopK);
    }
    let pool = pool(config)?;
    let prompts = read_prompts(config)?;
    let lab_tok = lab_tokenizer(lab, config)?;
    let suspect = load(
        &config.suspect,
        lab,
        &lab_tok,
        config.cross_tokenizer,
        progress,
    )?;
    let reference = match &config.reference_model {
        Some(path) => {
            let r = load(path, lab, &lab_tok, config.cross_tokenizer, progress)?;
            if r.tokenizer.digest() != suspect.tokenizer.digest() {
                return Err(Error::ReferenceTokenizer {
                    reference: r.name,
                    suspect: suspect.name,
                });
            }
            Some(r)
        }
        None => None,
    };
    let h = lab.profile.context();
    let mut paired = WeightedTuples::new(h)?;
    let mut alone = WeightedTuples::new(h)?;
    let mut control = WeightedTuples::new(h)?;
    let name = suspect.name.clone();
    progress.event(Event::ReadingStarted { reader: &name });
    let mut failure = None;
    let mut models = vec![&suspect.runtime.model];
    if let Some(r) = &reference {
        models.push(&r.runtime.model);
    }
    let map = suspect.map.as_ref();
    let (_, unreadable) = stream_texts(
        config,
        &suspect,
        &lab_tok,
        h,
        prompts.as_ref(),
        progress,
        &mut |a| {
            if failure.is_some() {
                return;
            }
            paired.begin_text();
            alone.begin_text();
            control.begin_text();
            let Some(&(_, from)) = a.pairs.first() else {
                return;
            };
            let (mut next, mut note_from) = (0, a.lab_first.max(h));
            let read = pool.install(|| {
                provmark_llm::reading::read_distributions(&models, &a.seq, from, &mut |i, rows| {
                    while next < a.pairs.len() && a.pairs[next].1 < i {
                        next += 1;
                    }
                    let Some(&(j, _)) = a.pairs.get(next).filter(|p| p.1 == i) else {
                        return;
                    };
                    next += 1;
                    // Lab positions between read ones still exclude their
                    // windows later in the text (spec §8.5, §8.6).
                    for reading in [&mut paired, &mut alone, &mut control] {
                        reading.note_windows(&a.lab, note_from..j);
                    }
                    note_from = j + 1;
                    let window = &a.lab[j - h..j];
                    match rows {
                        [q, r] => {
                            paired.add_position(
                                window,
                                &lab_weights(position_weights(q, Some(r), top_k), map),
                            );
                            alone.add_position(
                                window,
                                &lab_weights(position_weights(q, None, top_k), map),
                            );
                            control.add_position(
                                window,
                                &lab_weights(position_weights(r, None, top_k), map),
                            );
                        }
                        [q] => {
                            paired.add_position(
                                window,
                                &lab_weights(position_weights(q, None, top_k), map),
                            );
                        }
                        _ => unreachable!("one or two models"),
                    }
                })
            });
            if let Err(e) = read {
                failure = Some(e.to_string());
            }
        },
    )?;
    progress.event(Event::ReadingFinished);
    if let Some(message) = failure {
        return Err(Error::Reading { name, message });
    }
    let test =
        |reading: &WeightedTuples, side| expected_test(lab, config.null, reading, side, progress);
    let suspect_test = test(&paired, Side::Suspect);
    let (suspect_alone, reference_test) = if reference.is_some() {
        (
            Some(test(&alone, Side::Suspect)),
            Some(test(&control, Side::Reference)),
        )
    } else {
        (None, None)
    };
    let verdict = expected::verdict(&suspect_test, reference_test.as_ref(), alpha);
    Ok(ExpectedAudit {
        suspect: suspect_test,
        suspect_alone,
        reference: reference_test,
        unreadable,
        top_k,
        alpha,
        verdict,
    })
}
