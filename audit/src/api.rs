//! The black-box audit: query a suspect's OpenAI-compatible chat endpoint
//! with the auditor's prompts, keep every answer in an on-disk cache (an
//! interrupted audit resumes without re-querying), then run the corpus test
//! on the answers re-tokenized with the lab's tokenizer.
//!
//! The client is deliberately plain: blocking HTTP on a few worker threads,
//! exponential backoff that honours `Retry-After` (delay-seconds or an HTTP
//! date, RFC 9110 §10.2.3; see [`retry_after`]), a global request-rate
//! limit, and a circuit breaker that stops the run (keeping what was
//! collected) when the endpoint is down rather than retrying forever. The
//! API key is read from the environment, sent as a bearer token, redacted
//! from whatever the server echoes, and never printed or written.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use provmark_llm::chat::Message;
use provmark_verify::attribution::{decide, verdict_json, Attribution, AttributionVerdict};
use provmark_verify::corpus::{DistinctTuples, RunningTest, Shard, TupleSet, WindowSet};
use provmark_verify::expected::{ExpectedTest, WeightedTuples};
use provmark_verify::input::Locations;
use provmark_verify::Normalization;
use provmark_verify::TextTokenizer;
use serde_json::{json, Map, Value};

use crate::corpus::{finish_tuples, lab_windows};
use crate::{
    expected_test, score_pair, Counts, Error, Event, Lab, NullKeys, Progress, Side, Totals,
};

/// One prompt to ask: its id (unique; the cache's key with the sample
/// number) and its chat messages.
#[derive(Clone, Debug)]
pub struct ApiPrompt {
    /// The prompt's id.
    pub id: String,
    /// The messages sent.
    pub messages: Vec<Message>,
}

/// A prompt file's entry (`provmark_llm::prompts`): a plain `prompt` is
/// asked as one user message.
impl From<provmark_llm::prompts::Prompt> for ApiPrompt {
    fn from(p: provmark_llm::prompts::Prompt) -> ApiPrompt {
        use provmark_llm::prompts::PromptBody;
        ApiPrompt {
            id: p.id,
            messages: match p.body {
                PromptBody::Text(content) => vec![Message {
                    role: "user".into(),
                    content,
                }],
                PromptBody::Messages(m) => m,
            },
        }
    }
}

/// Reads a prompt file (the format of `provmark_llm::prompts`) into the
/// prompts an API audit asks, with the file's SHA-256 (hex; recorded in
/// the audit's settings and report).
///
/// Errors: [`Error::Prompts`] naming file, line and field; [`Error::Read`];
/// [`Error::NoPromptsIn`] for a file without prompts.
pub fn read_prompts(path: &std::path::Path) -> Result<(Vec<ApiPrompt>, String), Error> {
    let name = path.display().to_string();
    let prompts = provmark_llm::prompts::read(path)?;
    if prompts.is_empty() {
        return Err(Error::NoPromptsIn { name });
    }
    let sha256 = provmark_llm::default_model::sha256_file(path)
        .map_err(|source| Error::Read { name, source })?;
    Ok((prompts.into_iter().map(ApiPrompt::from).collect(), sha256))
}

/// What an API audit asks, of whom, and how.
pub struct ApiAuditConfig {
    /// Base URL of the OpenAI-compatible API (…/v1) or the full
    /// …/chat/completions URL.
    pub endpoint: String,
    /// Model name to ask the endpoint for.
    pub model: String,
    /// A clean reference endpoint asked the same prompts.
    pub reference_endpoint: Option<String>,
    /// Model name at the reference endpoint (default: `model`).
    pub reference_model: Option<String>,
    /// The prompts, in order.
    pub prompts: Vec<ApiPrompt>,
    /// SHA-256 (hex) of the prompt file: part of the cache's settings.
    pub prompts_sha256: String,
    /// Directory for the answer cache and `verdict.json` (created if missing).
    pub out: PathBuf,
    /// Answers asked per prompt (≥ 1).
    pub samples_per_prompt: u32,
    /// `max_tokens` of each request (≥ 1).
    pub max_tokens: u32,
    /// `temperature` of each request.
    pub temperature: f64,
    /// Environment variable holding the endpoint's API key (none sent if
    /// unset or empty).
    pub api_key_env: String,
    /// Requests in flight at once (≥ 1).
    pub concurrency: usize,
    /// Most requests started per second (0 = no limit).
    pub rate_limit: f64,
    /// Retries per item after the first attempt.
    pub retries: u32,
    /// First backoff delay in milliseconds; doubles on each retry (at most 60 s).
    pub backoff_ms: u64,
    /// Seconds before a request is abandoned (and retried).
    pub timeout_s: f64,
    /// The lab's tokenizer (the answers are re-tokenized with it).
    pub tokenizer: TextTokenizer,
    /// How answers and the filter's texts are normalised before they are
    /// re-tokenized (spec §5.1; the log-probability test reads the API's
    /// own tokens and is not affected).
    pub normalization: Normalization,
    /// The lab's own watermarked outputs (the filter Φ); empty for none.
    pub filter_from: Vec<String>,
    /// JSONL field holding the text in `filter_from`.
    pub field: String,
    /// The key-swap null.
    pub null: NullKeys,
    /// The decision level (for `verdict.json`).
    pub alpha: f64,
    /// Ask for the top-k log-probabilities of every generated token
    /// (`logprobs: true, top_logprobs: k`, 1 ≤ k ≤ 20) and run the
    /// expected-score test on them (spec §8.5) beside the corpus test.
    pub top_logprobs: Option<u32>,
}

impl ApiAuditConfig {
    /// Checks the counts: samples per prompt, max_tokens and concurrency
    /// must be at least 1.
    pub fn check_counts(
        samples_per_prompt: u32,
        max_tokens: u32,
        concurrency: usize,
    ) -> Result<(), Error> {
        if samples_per_prompt == 0 || max_tokens == 0 || concurrency == 0 {
            return Err(Error::Counts);
        }
        Ok(())
    }

    /// Checks the counts ([`ApiAuditConfig::check_counts`]) and that there
    /// are prompts.
    pub fn check(&self) -> Result<(), Error> {
        Self::check_counts(self.samples_per_prompt, self.max_tokens, self.concurrency)?;
        if self.prompts.is_empty() {
            return Err(Error::NoPrompts);
        }
        if let Some(k) = self.top_logprobs {
            if k == 0 || k as usize > crate::logprobs::MAX_TOP_LOGPROBS {
                return Err(Error::TopLogprobs { k });
            }
        }
        Ok(())
    }
}

/// How one endpoint's answers were collected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Collection {
    /// Answers kept (cached and new).
    pub answered: usize,
    /// Requests made in this run.
    pub queries: usize,
    /// Answers found in the cache.
    pub cached: usize,
    /// Items still without an answer.
    pub failed: usize,
    /// Retries over all items of this run.
    pub retries: u64,
}

/// The result of an API audit.
#[derive(Clone, Debug)]
pub struct ApiAudit {
    /// The suspect's totals (those of a corpus audit of OUT/suspect.jsonl).
    pub suspect: Totals,
    /// The reference's, when a reference endpoint was given.
    pub reference: Option<Totals>,
    /// How the suspect's answers were collected.
    pub suspect_answers: Collection,
    /// How the reference's were.
    pub reference_answers: Option<Collection>,
    /// The decision at the configured alpha.
    pub decision: Attribution,
    /// The collection facts shown with the verdict (endpoint, model,
    /// prompts, requested, answered, queries, cached, failed, retries,
    /// reference_answered, reference_failed).
    pub extra: Map<String, Value>,
    /// Where the verdict object was written (OUT/verdict.json).
    pub verdict_path: PathBuf,
    /// The expected-score test on the answers' log-probabilities, when
    /// they were asked for.
    pub logprob_test: Option<LogprobTest>,
}

/// The grey-box test of an API audit (spec §8.5 over the suspect's own
/// answers, [`crate::logprobs`]).
#[derive(Clone, Debug)]
pub struct LogprobTest {
    /// The suspect's answers' test.
    pub suspect: ExpectedTest,
    /// The reference endpoint's answers' test (the pipeline's control).
    pub reference: Option<ExpectedTest>,
    /// Generated tokens not scored because the lab's vocabulary lacks a
    /// token at or before them (suspect and reference).
    pub unmapped: usize,
    /// `attributed` needs both of the suspect's p-values ≤ alpha and the
    /// reference not attributed (else `inconclusive`); `too_short` when
    /// nothing was scored.
    pub verdict: AttributionVerdict,
}

impl LogprobTest {
    /// The tests as named columns for a summary table.
    pub fn columns(&self) -> Vec<(&'static str, &ExpectedTest)> {
        let mut columns = vec![("suspect's logprobs", &self.suspect)];
        if let Some(r) = &self.reference {
            columns.push(("reference's logprobs", r));
        }
        columns
    }

    /// The `logprob_test` member of the verdict object.
    pub fn to_json(&self, null_seed: u64, alpha: f64) -> Value {
        json!({
            "statistic": "expected",
            "suspect": self.suspect.to_json(null_seed, alpha),
            "reference": self.reference.as_ref().map(|r| r.to_json(null_seed, alpha)),
            "unmapped_tokens": self.unmapped,
            "verdict": self.verdict.as_str(),
        })
    }
}

impl ApiAudit {
    /// The members shown with the verdict (in verdict.json and `--json`):
    /// the collection facts ([`ApiAudit::extra`]) and, when log-probabilities
    /// were asked for, `logprob_test`.
    pub fn shown(&self, null_seed: u64, alpha: f64) -> Map<String, Value> {
        let mut shown = self.extra.clone();
        if let Some(t) = &self.logprob_test {
            shown.insert("logprob_test".into(), t.to_json(null_seed, alpha));
        }
        shown
    }

    /// Items still unanswered, suspect and reference together.
    pub fn failed(&self) -> usize {
        self.suspect_answers.failed + self.reference_answers.map_or(0, |r| r.failed)
    }
}

/// The chat completions URL of an endpoint (…/v1 or the full URL).
pub fn chat_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/chat/completions") {
        e.to_string()
    } else {
        format!("{e}/chat/completions")
    }
}

/// Runs an API audit: asks the suspect's endpoint (and the reference's)
/// for every answer not yet in the cache in `config.out`, then scores the
/// answers and writes the verdict object to OUT/verdict.json. Failed items
/// are recorded and reported ([`Event::ItemFailed`]) and do not stop the
/// run; an endpoint that is unreachable or refuses everyone does
/// ([`Error::Unreachable`]), keeping what was collected.
pub fn run(lab: &Lab, config: &ApiAuditConfig, progress: &dyn Progress) -> Result<ApiAudit, Error> {
    config.check()?;
    config.tokenizer.check_profile(&lab.profile, false)?;
    std::fs::create_dir_all(&config.out).map_err(|source| Error::Create {
        name: config.out.display().to_string(),
        source,
    })?;
    let h = lab.profile.context();
    let tokenizer = &config.tokenizer;
    let filter = lab_windows(
        &config.filter_from,
        &Locations::new(),
        &config.field,
        (tokenizer, config.normalization),
        h,
        progress,
    )?;

    let suspect_client = Client::new(config, &config.endpoint, &config.model)?;
    let mut suspect_cache = Cache::open(
        &config.out,
        "suspect",
        &cache_header(config, &config.endpoint, &config.model),
        progress,
    )?;
    let suspect = collect(
        config,
        suspect_client,
        &mut suspect_cache,
        Some((&lab.detector, tokenizer)),
        Side::Suspect,
        progress,
    )?;
    let mut reference_cache = None;
    let reference = match &config.reference_endpoint {
        Some(endpoint) => {
            let model = config.reference_model.as_deref().unwrap_or(&config.model);
            let client = Client::new(config, endpoint, model)?;
            let cache = reference_cache.insert(Cache::open(
                &config.out,
                "reference",
                &cache_header(config, endpoint, model),
                progress,
            )?);
            Some(collect(
                config,
                client,
                cache,
                None,
                Side::Reference,
                progress,
            )?)
        }
        None => None,
    };
    let reading = (tokenizer, config.normalization);
    let suspect_tuples = tuples_of(&suspect.0, reading, h, filter.as_ref())?;
    let reference_tuples = match &reference {
        Some((texts, _)) => Some(tuples_of(texts, reading, h, filter.as_ref())?),
        None => None,
    };
    let mut extra = Map::new();
    let asked = config.prompts.len() * config.samples_per_prompt as usize;
    let s = suspect.1;
    extra.insert("endpoint".into(), json!(chat_url(&config.endpoint)));
    extra.insert("model".into(), json!(config.model));
    extra.insert("prompts".into(), json!(config.prompts.len()));
    extra.insert("requested".into(), json!(asked));
    extra.insert("answered".into(), json!(s.answered));
    extra.insert("queries".into(), json!(s.queries));
    extra.insert("cached".into(), json!(s.cached));
    extra.insert("failed".into(), json!(s.failed));
    extra.insert("retries".into(), json!(s.retries));
    if !config.normalization.is_none() {
        extra.insert("normalize".into(), json!(config.normalization.name()));
    }
    if let Some((_, r)) = &reference {
        extra.insert("reference_answered".into(), json!(r.answered));
        extra.insert("reference_failed".into(), json!(r.failed));
    }
    let totals = score_pair(
        lab,
        config.null,
        &suspect_tuples,
        reference_tuples.as_ref(),
        progress,
    )?;
    let (st, rt) = (totals.suspect, totals.reference);
    let decision = decide(lab.profile.scheme(), &st, rt.as_ref(), config.alpha);
    let logprob_test = match config.top_logprobs {
        Some(_) => Some(logprob_test(
            lab,
            config,
            &suspect_cache,
            reference_cache.as_ref(),
            progress,
        )?),
        None => None,
    };
    let audit = ApiAudit {
        suspect: st,
        reference: rt,
        suspect_answers: s,
        reference_answers: reference.map(|(_, r)| r),
        decision,
        extra,
        verdict_path: config.out.join("verdict.json"),
        logprob_test,
    };
    let object = verdict_json(
        &audit.suspect,
        audit.reference.as_ref(),
        &audit.decision,
        &audit.shown(config.null.seed, config.alpha),
    );
    let path = &audit.verdict_path;
    std::fs::write(path, format!("{object}\n")).map_err(|source| Error::Write {
        name: path.display().to_string(),
        source,
    })?;
    Ok(audit)
}

/// The expected-score test over the cached answers' log-probabilities.
fn logprob_test(
    lab: &Lab,
    config: &ApiAuditConfig,
    suspect: &Cache,
    reference: Option<&Cache>,
    progress: &dyn Progress,
) -> Result<LogprobTest, Error> {
    let vocab = crate::logprobs::ByteVocab::new(&config.tokenizer);
    let mut unmapped = 0;
    let mut test = |cache: &Cache, side: Side| -> Result<ExpectedTest, Error> {
        let mut reading = WeightedTuples::new(lab.profile.context())?;
        for tokens in cache.logprobs_in_order(&config.prompts, config.samples_per_prompt)? {
            unmapped += crate::logprobs::add_answer(&mut reading, &vocab, &tokens).unmapped;
        }
        Ok(expected_test(lab, config.null, &reading, side, progress))
    };
    let s = test(suspect, Side::Suspect)?;
    let r = reference.map(|c| test(c, Side::Reference)).transpose()?;
    let verdict = provmark_verify::expected::verdict(&s, r.as_ref(), config.alpha);
    Ok(LogprobTest {
        suspect: s,
        reference: r,
        unmapped,
        verdict,
    })
}

/// One request to make: a prompt and a sample number.
#[derive(Clone)]
struct Item {
    prompt: usize,
    sample: u32,
}

/// What the cache holds for an item.
enum Outcome {
    Answer {
        text: String,
        finish: Value,
        /// The answer's log-probabilities in the cache's form, when asked.
        logprobs: Option<Value>,
    },
    Failed {
        error: String,
        status: Option<u16>,
    },
}

/// One endpoint to query, with everything a worker needs.
struct Client {
    url: String,
    model: String,
    api_key: Option<String>,
    agent: ureq::Agent,
    retries: u32,
    backoff: Duration,
    max_tokens: u32,
    temperature: f64,
    top_logprobs: Option<u32>,
    limiter: Option<Mutex<Instant>>,
    interval: Duration,
}

/// Why one attempt failed, and whether to try again.
struct Failure {
    error: String,
    status: Option<u16>,
    retry: bool,
    retry_after: Option<Duration>,
    /// The endpoint is unreachable or refuses everyone: counts towards the
    /// circuit breaker.
    unusable: bool,
}

impl Client {
    fn new(config: &ApiAuditConfig, endpoint: &str, model: &str) -> Result<Client, Error> {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::Endpoint {
                endpoint: endpoint.to_string(),
            });
        }
        if !(config.timeout_s > 0.0 && config.timeout_s.is_finite()) {
            return Err(Error::Timeout);
        }
        if !(config.rate_limit >= 0.0 && config.rate_limit.is_finite()) {
            return Err(Error::RateLimit);
        }
        let api_key = std::env::var(&config.api_key_env)
            .ok()
            .filter(|k| !k.is_empty());
        Ok(Client {
            url: chat_url(endpoint),
            model: model.to_string(),
            api_key,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs_f64(config.timeout_s))
                .build(),
            retries: config.retries,
            backoff: Duration::from_millis(config.backoff_ms),
            max_tokens: config.max_tokens,
            temperature: config.temperature,
            top_logprobs: config.top_logprobs,
            limiter: (config.rate_limit > 0.0).then(|| Mutex::new(Instant::now())),
            interval: if config.rate_limit > 0.0 {
                Duration::from_secs_f64(1.0 / config.rate_limit)
            } else {
                Duration::ZERO
            },
        })
    }

    /// Waits for this request's slot under the rate limit.
    fn pace(&self) {
        let Some(limiter) = &self.limiter else { return };
        let wait = {
            let mut next = limiter.lock().expect("limiter lock");
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot - now
        };
        std::thread::sleep(wait);
    }

    /// Removes the API key from text that came back from the server.
    fn redact(&self, text: String) -> String {
        match &self.api_key {
            Some(k) if text.contains(k.as_str()) => text.replace(k.as_str(), "[redacted]"),
            _ => text,
        }
    }

    fn attempt(&self, messages: &Value) -> Result<Outcome, Failure> {
        self.pace();
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stream": false,
        });
        if let Some(k) = self.top_logprobs {
            body["logprobs"] = json!(true);
            body["top_logprobs"] = json!(k);
        }
        let mut request = self.agent.post(&self.url);
        if let Some(k) = &self.api_key {
            request = request.set("Authorization", &format!("Bearer {k}"));
        }
        let fail = |error: String, status, retry, retry_after, unusable| Failure {
            error: self.redact(error),
            status,
            retry,
            retry_after,
            unusable,
        };
        let response = match request.send_json(body) {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) => {
                let retry_after = r
                    .header("Retry-After")
                    .and_then(|v| retry_after(v, SystemTime::now()));
                let text = r.into_string().unwrap_or_default();
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| snippet(&text));
                let retry = matches!(code, 408 | 409 | 429) || code >= 500;
                // Refusals that every request will meet (credentials, model
                // name, path) count towards the circuit breaker.
                // So does a refusal of the logprobs this audit asks for.
                let fatal = matches!(code, 401 | 403 | 404)
                    || (self.top_logprobs.is_some()
                        && (400..500).contains(&code)
                        && message.to_ascii_lowercase().contains("logprob"));
                return Err(fail(
                    format!("HTTP {code}: {message}"),
                    Some(code),
                    retry,
                    retry_after,
                    fatal,
                ));
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(fail(
                    format!("cannot reach the endpoint: {t}"),
                    None,
                    true,
                    None,
                    true,
                ));
            }
        };
        let status = response.status();
        let text = match response.into_string() {
            Ok(t) => t,
            Err(e) => {
                return Err(fail(
                    format!("answer cut off while reading: {e}"),
                    Some(status),
                    true,
                    None,
                    false,
                ))
            }
        };
        let v: Value = serde_json::from_str(&text).map_err(|_| {
            fail(
                format!("malformed answer (not JSON): {}", snippet(&text)),
                Some(status),
                true,
                None,
                false,
            )
        })?;
        let choice = &v["choices"][0];
        let Some(content) = choice["message"]["content"].as_str() else {
            return Err(fail(
                format!(
                    "malformed answer (no choices[0].message.content): {}",
                    snippet(&text)
                ),
                Some(status),
                true,
                None,
                false,
            ));
        };
        if content.trim().is_empty() {
            return Err(fail(
                "empty answer".into(),
                Some(status),
                false,
                None,
                false,
            ));
        }
        // Asked for log-probabilities and got none: every request will meet
        // the same, so it counts towards the circuit breaker.
        let logprobs = match self.top_logprobs {
            Some(_) => match crate::logprobs::parse_chat(&choice["logprobs"]) {
                Ok(tokens) => Some(crate::logprobs::to_cache(&tokens)),
                Err(e) => return Err(fail(e, Some(status), false, None, true)),
            },
            None => None,
        };
        // An endpoint that echoes the API key into an answer must not get it
        // written to the cache (the key is never printed or written).
        Ok(Outcome::Answer {
            text: self.redact(content.to_string()),
            finish: choice["finish_reason"].clone(),
            logprobs,
        })
    }

    /// Asks for one answer with retries; returns the outcome, the attempts
    /// made and whether the last failure says the endpoint is unusable.
    fn ask(&self, messages: &Value, stop: &AtomicBool) -> (Outcome, u32, bool) {
        let mut attempt = 0;
        loop {
            match self.attempt(messages) {
                Ok(answer) => return (answer, attempt + 1, false),
                Err(f) => {
                    if !f.retry || attempt >= self.retries || stop.load(Ordering::Relaxed) {
                        let outcome = Outcome::Failed {
                            error: f.error,
                            status: f.status,
                        };
                        return (outcome, attempt + 1, f.unusable);
                    }
                    let backoff = self
                        .backoff
                        .saturating_mul(1 << attempt.min(16))
                        .min(MAX_WAIT);
                    std::thread::sleep(f.retry_after.unwrap_or(backoff));
                    attempt += 1;
                }
            }
        }
    }
}

/// The longest the client waits before a retry, whether its own backoff or
/// the server's `Retry-After` asks for more.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// The wait a `Retry-After` header value asks for (RFC 9110 §10.2.3), at
/// most [`MAX_WAIT`]: delay-seconds (a non-negative number; fractions are
/// accepted), or an HTTP date in any of the three forms RFC 9110 §5.6.7 has
/// recipients accept (IMF-fixdate `Wed, 21 Oct 2026 07:28:00 GMT`, the
/// obsolete RFC 850 and asctime forms; parsed by `httpdate`), measured from
/// `now`; a date not after `now` means retry at once. `None` for anything
/// else, and the client then uses its own backoff.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(MAX_WAIT.as_secs_f64())));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_WAIT),
    )
}

/// At most 120 characters of a server's answer, for error messages.
fn snippet(text: &str) -> String {
    let t: String = text.chars().take(120).collect();
    if t.len() < text.len() {
        format!("{t}…")
    } else if t.is_empty() {
        "(empty body)".into()
    } else {
        t
    }
}

/// The settings an answer cache belongs to; a cache made with others is
/// refused rather than mixed.
fn cache_header(config: &ApiAuditConfig, endpoint: &str, model: &str) -> Value {
    let mut header = json!({
        "format": "provmark-audit-api/1",
        "endpoint": chat_url(endpoint),
        "model": model,
        "prompts_sha256": config.prompts_sha256,
        "max_tokens": config.max_tokens,
        "temperature": config.temperature,
    });
    // Only when asked, so that caches made before the field existed match.
    if let Some(k) = config.top_logprobs {
        header["top_logprobs"] = json!(k);
    }
    header
}

/// The answer cache of one endpoint in OUT: `NAME.settings.json` (what the
/// answers were asked with; other settings are refused rather than mixed),
/// `NAME.jsonl` (one record per answer: a corpus audit reads it as is)
/// and `NAME.failures.jsonl` (a log of failed items, retried on the next run).
struct Cache {
    answers_path: PathBuf,
    answers: File,
    failures_path: PathBuf,
    failures: File,
    /// (prompt id, sample) → answer text.
    texts: HashMap<(String, u32), String>,
    /// (prompt id, sample) → the answer's log-probabilities (cache form).
    logprobs: HashMap<(String, u32), Value>,
}

impl Cache {
    fn open(
        dir: &Path,
        name: &str,
        settings: &Value,
        progress: &dyn Progress,
    ) -> Result<Cache, Error> {
        let settings_path = dir.join(format!("{name}.settings.json"));
        let shown = settings_path.display().to_string();
        match std::fs::read_to_string(&settings_path) {
            Ok(text) => {
                let found: Value =
                    serde_json::from_str(&text).map_err(|source| Error::Settings {
                        name: shown.clone(),
                        source,
                    })?;
                if found != *settings {
                    // Name only what differs (e.g. top_logprobs).
                    let (mut was, mut now) = (Map::new(), Map::new());
                    let keys: std::collections::BTreeSet<&String> = found
                        .as_object()
                        .into_iter()
                        .chain(settings.as_object())
                        .flat_map(|m| m.keys())
                        .collect();
                    for k in keys {
                        if found.get(k) != settings.get(k) {
                            was.insert(k.clone(), found.get(k).cloned().unwrap_or(Value::Null));
                            now.insert(k.clone(), settings.get(k).cloned().unwrap_or(Value::Null));
                        }
                    }
                    return Err(Error::OtherSettings {
                        settings_file: shown,
                        dir: dir.display().to_string(),
                        found: Value::Object(was).to_string(),
                        wanted: Value::Object(now).to_string(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::write(&settings_path, format!("{settings}\n")).map_err(|source| {
                    Error::Write {
                        name: shown,
                        source,
                    }
                })?;
            }
            Err(source) => {
                return Err(Error::Read {
                    name: shown,
                    source,
                })
            }
        }
        let open = |path: &Path| {
            let resumed = provmark_llm::jsonl::open_for_append(path)?;
            if resumed.dropped_bytes > 0 {
                progress.event(Event::IncompleteLineDropped {
                    path,
                    bytes: resumed.dropped_bytes,
                });
            }
            Ok::<_, Error>((resumed.file, resumed.lines))
        };
        let answers_path = dir.join(format!("{name}.jsonl"));
        let (answers, lines) = open(&answers_path)?;
        let mut texts = HashMap::new();
        let mut logprobs = HashMap::new();
        for (i, line) in lines.iter().enumerate() {
            let here = format!("{}:{}", answers_path.display(), i + 1);
            let v: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(source) => return Err(Error::CacheRecord { here, source }),
            };
            let (Some(id), Some(sample), Some(text)) =
                (v["id"].as_str(), v["sample"].as_u64(), v["text"].as_str())
            else {
                return Err(Error::CacheFields { here });
            };
            texts.insert((id.to_string(), sample as u32), text.to_string());
            if !v["logprobs"].is_null() {
                logprobs.insert((id.to_string(), sample as u32), v["logprobs"].clone());
            }
        }
        let failures_path = dir.join(format!("{name}.failures.jsonl"));
        let (failures, _) = open(&failures_path)?;
        Ok(Cache {
            answers_path,
            answers,
            failures_path,
            failures,
            texts,
            logprobs,
        })
    }

    fn answered(&self, id: &str, sample: u32) -> bool {
        self.texts.contains_key(&(id.to_string(), sample))
    }

    fn record(
        &mut self,
        id: &str,
        sample: u32,
        outcome: &Outcome,
        attempts: u32,
    ) -> Result<(), Error> {
        let (file, path, v) = match outcome {
            Outcome::Answer {
                text,
                finish,
                logprobs,
            } => {
                self.texts.insert((id.to_string(), sample), text.clone());
                let mut v = json!({
                    "id": id, "sample": sample, "text": text,
                    "finish_reason": finish, "attempts": attempts,
                });
                if let Some(l) = logprobs {
                    self.logprobs.insert((id.to_string(), sample), l.clone());
                    v["logprobs"] = l.clone();
                }
                (&mut self.answers, &self.answers_path, v)
            }
            Outcome::Failed { error, status } => {
                let v = json!({
                    "id": id, "sample": sample, "error": error,
                    "http_status": status, "attempts": attempts,
                });
                (&mut self.failures, &self.failures_path, v)
            }
        };
        // One write per record, flushed: a kill loses at most a cut line,
        // which the next run drops.
        file.write_all(format!("{v}\n").as_bytes())
            .and_then(|_| file.flush())
            .map_err(|source| Error::Write {
                name: path.display().to_string(),
                source,
            })
    }

    /// The answers' log-probabilities in prompt order. Errors name the
    /// cache record whose log-probabilities are missing or malformed.
    fn logprobs_in_order(
        &self,
        prompts: &[ApiPrompt],
        samples: u32,
    ) -> Result<Vec<Vec<crate::logprobs::TokenLogprobs>>, Error> {
        let mut out = Vec::new();
        for p in prompts {
            for s in 0..samples {
                let key = (p.id.clone(), s);
                if !self.texts.contains_key(&key) {
                    continue;
                }
                let parsed = self
                    .logprobs
                    .get(&key)
                    .and_then(crate::logprobs::from_cache);
                match parsed {
                    Some(tokens) => out.push(tokens),
                    None => {
                        return Err(Error::CacheLogprobs {
                            cache: self.answers_path.display().to_string(),
                            id: p.id.clone(),
                            sample: s,
                        })
                    }
                }
            }
        }
        Ok(out)
    }

    /// The answers in prompt order.
    fn texts_in_order(&self, prompts: &[ApiPrompt], samples: u32) -> Vec<String> {
        let mut out = Vec::new();
        for p in prompts {
            for s in 0..samples {
                if let Some(t) = self.texts.get(&(p.id.clone(), s)) {
                    out.push(t.clone());
                }
            }
        }
        out
    }
}

/// Consecutive items that find the endpoint unreachable (or refusing with
/// 401/403/404) before the run stops, beyond the requests in flight.
const BREAKER: usize = 3;

/// Asks for every item not in the cache; returns the answers in prompt
/// order (cached and new) and how they were collected.
fn collect(
    config: &ApiAuditConfig,
    client: Client,
    cache: &mut Cache,
    running: Option<(&provmark_verify::Detector, &TextTokenizer)>,
    side: Side,
    progress: &dyn Progress,
) -> Result<(Vec<String>, Collection), Error> {
    let prompts = &config.prompts;
    let samples = config.samples_per_prompt;
    let mut todo = VecDeque::new();
    let mut cached = 0;
    for (i, p) in prompts.iter().enumerate() {
        for s in 0..samples {
            if cache.answered(&p.id, s) {
                cached += 1;
            } else {
                todo.push_back(Item {
                    prompt: i,
                    sample: s,
                });
            }
        }
    }
    let total = todo.len();
    progress.event(Event::AnswersStarted { side, total });
    let mut running_test = running.map(|(d, _)| RunningTest::new(d));
    let tokenizer = running.map(|(_, t)| t);
    let add_running = |rt: &mut Option<RunningTest>, text: &str| {
        if let (Some(r), Some(tok)) = (rt.as_mut(), tokenizer) {
            if let Ok(ids) = tok.encode(&config.normalization.apply(text).text) {
                r.add_text(&ids);
            }
            if let Some(t) = r.test() {
                progress.event(Event::RunningTest {
                    log10_p: t.p.log10(),
                });
            }
        }
    };
    for text in cache.texts_in_order(prompts, samples) {
        add_running(&mut running_test, &text);
    }
    let queue = Arc::new(Mutex::new(todo));
    let client = Arc::new(client);
    let stop = Arc::new(AtomicBool::new(false));
    let unreachable_run = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let messages: Arc<Vec<Value>> = Arc::new(prompts.iter().map(|p| json!(p.messages)).collect());
    let workers: Vec<_> = (0..config.concurrency.max(1))
        .map(|_| {
            let (queue, client, stop, tx, messages, unreachable_run) = (
                queue.clone(),
                client.clone(),
                stop.clone(),
                tx.clone(),
                messages.clone(),
                unreachable_run.clone(),
            );
            let limit = config.concurrency.max(1) + BREAKER;
            std::thread::spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Some(item) = queue.lock().expect("queue lock").pop_front() else {
                    return;
                };
                let (outcome, attempts, unusable) = client.ask(&messages[item.prompt], &stop);
                if unusable {
                    if unreachable_run.fetch_add(1, Ordering::Relaxed) + 1 >= limit {
                        stop.store(true, Ordering::Relaxed);
                    }
                } else {
                    unreachable_run.store(0, Ordering::Relaxed);
                }
                if tx.send((item, outcome, attempts)).is_err() {
                    return;
                }
            })
        })
        .collect();
    drop(tx);
    let (mut queries, mut retries) = (0, 0u64);
    let mut last_error = None;
    for (item, outcome, attempts) in rx {
        let id = &prompts[item.prompt].id;
        cache.record(id, item.sample, &outcome, attempts)?;
        queries += 1;
        retries += attempts as u64 - 1;
        match &outcome {
            Outcome::Answer { text, .. } => add_running(&mut running_test, text),
            Outcome::Failed { error, .. } => {
                progress.event(Event::ItemFailed {
                    side,
                    id,
                    sample: item.sample,
                    error,
                });
                last_error = Some(error.clone());
            }
        }
        progress.event(Event::AnswerDone { side });
    }
    for w in workers {
        let _ = w.join();
    }
    progress.event(Event::AnswersFinished { side });
    if stop.load(Ordering::Relaxed) {
        return Err(Error::Unreachable {
            url: client.url.clone(),
            last_error: last_error.unwrap_or_default(),
            queries,
            total,
            kept: cache.texts.len(),
            cache: cache.answers_path.display().to_string(),
        });
    }
    let texts = cache.texts_in_order(prompts, samples);
    let failed = prompts.len() * samples as usize - texts.len();
    let collection = Collection {
        answered: texts.len(),
        queries,
        cached,
        failed,
        retries,
    };
    Ok((texts, collection))
}

/// The distinct tuples of answer texts, re-tokenized with the lab's
/// tokenizer (answers it cannot encode are counted as unreadable).
fn tuples_of(
    texts: &[String],
    (tokenizer, normalization): (&TextTokenizer, Normalization),
    h: usize,
    filter: Option<&WindowSet>,
) -> Result<(Counts, DistinctTuples), Error> {
    let mut set = TupleSet::new(h, Shard::ALL)?;
    let mut errors = 0;
    for t in texts {
        match tokenizer.encode(&normalization.apply(t).text) {
            Ok(ids) => set.add_text(&ids),
            Err(_) => errors += 1,
        }
    }
    finish_tuples(set, texts.len() - errors, errors, filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-10-21 07:28:00 UTC.
    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_792_567_680)
    }

    #[test]
    fn retry_after_reads_delay_seconds() {
        let s = |v| retry_after(v, at());
        assert_eq!(s("0"), Some(Duration::ZERO));
        assert_eq!(s(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(s("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(s("3600"), Some(MAX_WAIT), "capped like the backoff");
        assert_eq!(s("-1"), None);
        assert_eq!(s("NaN"), None);
        assert_eq!(s("inf"), None);
    }

    #[test]
    fn retry_after_reads_http_dates_in_every_form() {
        let s = |v| retry_after(v, at());
        assert_eq!(
            httpdate::fmt_http_date(at()),
            "Wed, 21 Oct 2026 07:28:00 GMT"
        );
        // Future: the time left until the date.
        assert_eq!(
            s("Wed, 21 Oct 2026 07:28:09 GMT"),
            Some(Duration::from_secs(9))
        );
        // The obsolete forms a recipient must accept (RFC 9110 §5.6.7).
        assert_eq!(
            s("Wednesday, 21-Oct-26 07:28:09 GMT"),
            Some(Duration::from_secs(9))
        );
        assert_eq!(s("Wed Oct 21 07:28:09 2026"), Some(Duration::from_secs(9)));
        // Now or past: retry at once.
        assert_eq!(s("Wed, 21 Oct 2026 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(s("Tue, 20 Oct 2026 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(s("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
        // Far future: capped.
        assert_eq!(s("Wed, 21 Oct 2026 09:00:00 GMT"), Some(MAX_WAIT));
        // Fractions of a second before the date count.
        let before = at() - Duration::from_millis(250);
        assert_eq!(
            retry_after("Wed, 21 Oct 2026 07:28:01 GMT", before),
            Some(Duration::from_millis(1250))
        );
    }

    #[test]
    fn garbage_retry_after_is_ignored() {
        for v in [
            "",
            "soon",
            "Wed, 21 Oct 2026 07:28",
            "Wed, 32 Oct 2026 07:28:00 GMT",
            "2026-10-21T07:28:00Z",
            "5 seconds",
        ] {
            assert_eq!(retry_after(v, at()), None, "{v:?}");
        }
    }
}
