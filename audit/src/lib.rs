//! provmark-audit: audits of a suspect model as library calls.
//!
//! - [`corpus::run`]: a suspect corpus pooled into one test (spec §8.1):
//!   inputs streamed in bounded batches, tokenized, de-duplicated into
//!   distinct tuples across the corpus, optionally filtered by the lab's own
//!   windows (Φ), optionally one shard of a split audit, with a clean
//!   reference corpus run through the same pipeline.
//! - [`weights::run`]: the open-weight audit (reading mode): a suspect GGUF
//!   predicts its top-1 token at every position of the lab's texts.
//! - [`api::run`]: the black-box audit of an OpenAI-compatible chat API,
//!   with a resumable on-disk answer cache.
//!
//! Each returns the suspect's (and the reference's) [`Totals`]; the
//! decision is [`provmark_verify::attribution::decide`]. The library never
//! prints: progress and per-item problems are reported as [`Event`]s to a
//! [`Progress`] callback, errors are typed ([`Error`]) and name the file,
//! line, field or parameter, never the API key.

pub mod api;
pub mod corpus;
mod cross;
pub mod logprobs;
pub mod tokenizer;
pub mod weights;

use std::path::Path;

use provmark_verify::Detector;
use provmark_watermark::Profile;

pub use provmark_verify::attribution::{
    AttributionVerdict, Counts, NullKeys, Totals, PARTIAL_FORMAT,
};

/// The lab's side of every audit: its profile and its key's detector.
pub struct Lab {
    /// The watermark profile.
    pub profile: Profile,
    /// The detector of the profile under the lab's key.
    pub detector: Detector,
}

/// Which corpus of an audit an event or a result is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The suspect's.
    Suspect,
    /// The clean reference's.
    Reference,
}

impl Side {
    /// `suspect` or `reference`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Suspect => "suspect",
            Side::Reference => "reference",
        }
    }
}

/// What an audit reports while it runs.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A record could not be read or tokenized (it is counted as
    /// unreadable); the message names the file and line or record.
    RecordError {
        /// The problem.
        message: &'a str,
    },
    /// A model is being loaded (weights audit).
    LoadingModel {
        /// The model's name (its path as given).
        name: &'a str,
    },
    /// `reader` (a model's name) starts reading the lab's texts.
    ReadingStarted {
        /// The model's name.
        reader: &'a str,
    },
    /// One more text read by the current reader.
    TextRead,
    /// The current reader is done.
    ReadingFinished,
    /// The key-swap null of one corpus starts: `keys` keys to score.
    NullKeysStarted {
        /// Which corpus.
        side: Side,
        /// M.
        keys: usize,
    },
    /// `done` null keys of `side` are scored.
    NullKeyDone {
        /// Which corpus.
        side: Side,
        /// Keys done so far.
        done: usize,
    },
    /// The key-swap null of `side` is done.
    NullKeysFinished {
        /// Which corpus.
        side: Side,
    },
    /// A resumable file ended in an incomplete line (an interrupted run),
    /// which was cut off.
    IncompleteLineDropped {
        /// The file.
        path: &'a Path,
        /// Bytes dropped.
        bytes: u64,
    },
    /// The API audit starts asking `side`'s endpoint for `total` answers
    /// (those not already in the cache).
    AnswersStarted {
        /// Which endpoint.
        side: Side,
        /// Requests to make.
        total: usize,
    },
    /// The running corpus test of the suspect's answers so far.
    RunningTest {
        /// Its log10 p-value.
        log10_p: f64,
    },
    /// An item is done (answered or failed).
    AnswerDone {
        /// Which endpoint.
        side: Side,
    },
    /// An item failed after its retries (it is recorded in the failures log
    /// and retried on the next run).
    ItemFailed {
        /// Which endpoint.
        side: Side,
        /// The prompt's id.
        id: &'a str,
        /// The sample number.
        sample: u32,
        /// What went wrong (API key redacted).
        error: &'a str,
    },
    /// Every request to `side`'s endpoint is done.
    AnswersFinished {
        /// Which endpoint.
        side: Side,
    },
}

/// Receives an audit's [`Event`]s. Called from the audit's thread only, but
/// `Sync` so that scoring can report from its worker pool.
pub trait Progress: Sync {
    /// One event.
    fn event(&self, event: Event<'_>);
}

impl<F: Fn(Event<'_>) + Sync> Progress for F {
    fn event(&self, event: Event<'_>) {
        self(event)
    }
}

/// A [`Progress`] that ignores everything.
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: Event<'_>) {}
}

/// Errors of an audit. Messages name files, lines, fields and parameters;
/// they never contain key material or the API key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A resumable JSONL cache file that cannot be opened, read or cut.
    #[error(transparent)]
    Jsonl(#[from] provmark_llm::jsonl::JsonlError),
    /// A file could not be opened.
    #[error("cannot open {name}")]
    Open {
        /// The file.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("cannot read {name}")]
    Read {
        /// The file.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {name}")]
    Write {
        /// The file.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A directory could not be created.
    #[error("cannot create {name}")]
    Create {
        /// The directory.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A resumable file could not be cut back to its last complete line.
    #[error("cannot truncate {name}")]
    Truncate {
        /// The file.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Some texts of the filter Φ could not be read (each was reported).
    #[error("{errors} texts of --filter-from could not be read; the filter would be incomplete")]
    FilterIncomplete {
        /// Unreadable texts.
        errors: usize,
    },
    /// Levels, scoring or merging.
    #[error(transparent)]
    Attribution(#[from] provmark_verify::attribution::Error),
    /// Tokenizer or profile problem.
    #[error(transparent)]
    Verify(#[from] provmark_verify::Error),
    /// Loading a model failed.
    #[error(transparent)]
    Model(#[from] provmark_llm::Error),
    /// Reading mode needs the suspect to share the profile's tokenizer.
    #[error(
        "{name}: its tokenizer ({got}) is not the profile's ({expected}); reading mode needs both to \
         give token ids the same meaning. Read it through its text with --cross-tokenizer, or \
         audit its generated text with audit corpus"
    )]
    TokenizerMismatch {
        /// The model.
        name: String,
        /// The profile's tokenizer digest.
        expected: String,
        /// The model's tokenizer digest.
        got: String,
    },
    /// A model failed while reading the texts.
    #[error("{name}: {message}")]
    Reading {
        /// The model.
        name: String,
        /// What failed.
        message: String,
    },
    /// The compute threads could not be started.
    #[error("cannot start the compute threads")]
    Threads(#[source] rayon::ThreadPoolBuildError),
    /// The endpoint is not an http(s) URL.
    #[error("--endpoint must be an http:// or https:// URL, got {endpoint:?}")]
    Endpoint {
        /// The endpoint given.
        endpoint: String,
    },
    /// The request timeout is not a positive number of seconds.
    #[error("--timeout must be a positive number of seconds")]
    Timeout,
    /// The rate limit is negative or not finite.
    #[error("--rate-limit must be zero (no limit) or a positive rate")]
    RateLimit,
    /// Samples per prompt, max_tokens or concurrency is zero.
    #[error("--samples-per-prompt, --max-tokens and --concurrency must be at least 1")]
    Counts,
    /// top_logprobs outside 1..=20.
    #[error("--logprobs must be between 1 and 20 (the most top_logprobs an OpenAI-compatible API returns), got {k}")]
    TopLogprobs {
        /// What was asked.
        k: u32,
    },
    /// A cached answer without (readable) log-probabilities.
    #[error("{cache}: the answer to {id} sample {sample} has no readable logprobs")]
    CacheLogprobs {
        /// The cache file.
        cache: String,
        /// The prompt id.
        id: String,
        /// The sample.
        sample: u32,
    },
    /// The lab's tokenizer given for a cross-tokenizer reading is not the
    /// profile's.
    #[error(
        "{name} ({got}) is not the profile's tokenizer ({expected}); reading across tokenizers \
         needs the lab's own: pass --tokenizer with the tokenizer.json the profile was made for"
    )]
    LabTokenizer {
        /// The tokenizer given (or the default model's).
        name: String,
        /// The profile's tokenizer digest.
        expected: String,
        /// The given tokenizer's digest.
        got: String,
    },
    /// The paired expected-score test reads both models in lock step.
    #[error(
        "--reference-model {reference} has another tokenizer than --suspect {suspect}; the \
         expected-score test reads both over the same tokens (use the suspect's base model)"
    )]
    ReferenceTokenizer {
        /// The reference model.
        reference: String,
        /// The suspect model.
        suspect: String,
    },
    /// The expected-score test's support size is zero.
    #[error("--top-k must be at least 1")]
    TopK,
    /// No prompts to ask.
    #[error("no prompts")]
    NoPrompts,
    /// A prompt file without prompts.
    #[error("{name}: no prompts")]
    NoPromptsIn {
        /// The file.
        name: String,
    },
    /// A prompt file that cannot be read or parsed.
    #[error(transparent)]
    Prompts(#[from] provmark_llm::prompts::PromptError),
    /// The answer cache in OUT belongs to other settings.
    #[error(
        "{settings_file}: the answers in {dir} were asked with other settings ({found}); \
         this run has {wanted}. Use another --out or the same settings"
    )]
    OtherSettings {
        /// NAME.settings.json.
        settings_file: String,
        /// OUT.
        dir: String,
        /// The settings found that differ (JSON; null: absent).
        found: String,
        /// This run's values of them (JSON; null: absent).
        wanted: String,
    },
    /// A settings file that is not JSON.
    #[error("{name}: not the settings of an audit api cache")]
    Settings {
        /// The settings file.
        name: String,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// A line of the answer cache that is not a JSON record.
    #[error("{here}: not a JSON record")]
    CacheRecord {
        /// FILE:LINE.
        here: String,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// A record of the answer cache without its fields.
    #[error("{here}: fields id, sample and text are expected")]
    CacheFields {
        /// FILE:LINE.
        here: String,
    },
    /// The circuit breaker stopped the run; the answers kept are reused
    /// when the audit is run again.
    #[error(
        "{url}: the endpoint is unreachable or refuses every request ({last_error}); stopped after \
         {queries} of {total} requests. The {kept} answers kept in {cache} are reused when the audit \
         is run again"
    )]
    Unreachable {
        /// The chat completions URL.
        url: String,
        /// The last failure (API key redacted).
        last_error: String,
        /// Requests made in this run.
        queries: usize,
        /// Requests this run had to make.
        total: usize,
        /// Answers in the cache.
        kept: usize,
        /// The answer cache.
        cache: String,
    },
}

/// The expected-score test of `reading` under the lab's key and the
/// key-swap null, reporting the null keys' progress for `side`.
fn expected_test(
    lab: &Lab,
    null: NullKeys,
    reading: &provmark_verify::expected::WeightedTuples,
    side: Side,
    progress: &dyn Progress,
) -> provmark_verify::expected::ExpectedTest {
    progress.event(Event::NullKeysStarted {
        side,
        keys: null.keys,
    });
    let t = provmark_verify::expected::test(
        &lab.profile,
        lab.detector.schedule(),
        reading,
        null.keys,
        null.seed,
        &|done| progress.event(Event::NullKeyDone { side, done }),
    );
    progress.event(Event::NullKeysFinished { side });
    t
}

/// Scores the suspect's tuples and the reference's (when given) under the
/// key and the key-swap null, reporting the null keys' progress.
fn score_pair(
    lab: &Lab,
    null: NullKeys,
    suspect: &(Counts, provmark_verify::corpus::DistinctTuples),
    reference: Option<&(Counts, provmark_verify::corpus::DistinctTuples)>,
    progress: &dyn Progress,
) -> Result<corpus::AuditTotals, Error> {
    let score = |(c, t): &(Counts, provmark_verify::corpus::DistinctTuples), side: Side| {
        progress.event(Event::NullKeysStarted {
            side,
            keys: null.keys,
        });
        let totals = Totals::score(&lab.profile, &lab.detector, null, c, t, &|done| {
            progress.event(Event::NullKeyDone { side, done })
        })?;
        progress.event(Event::NullKeysFinished { side });
        Ok::<_, Error>(totals)
    };
    Ok(corpus::AuditTotals {
        suspect: score(suspect, Side::Suspect)?,
        reference: reference.map(|r| score(r, Side::Reference)).transpose()?,
    })
}
