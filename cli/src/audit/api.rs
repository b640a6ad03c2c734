//! `provmark audit api`: query a suspect's OpenAI-compatible chat endpoint
//! with the auditor's prompts, keep every answer in an on-disk cache (an
//! interrupted audit resumes without re-querying), then run the corpus test
//! on the answers re-tokenized with the lab's tokenizer.
//!
//! The client is deliberately plain: blocking HTTP on a few worker threads,
//! exponential backoff that honours `Retry-After`, a global request-rate
//! limit, and a circuit breaker that stops the run (keeping what was
//! collected) when the endpoint is down rather than retrying forever.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use provmark_verify::corpus::{RunningTest, Shard, TupleSet};
use provmark_verify::TextTokenizer;
use serde_json::{json, Map, Value};

use super::verdict::{render, Report};
use super::{finish_tuples, lab_windows, score_pair, write_report, AuditCommon, Counts, Setup};
use crate::prompts::{self, Prompt, PromptBody};
use crate::report::Recorder;

#[derive(Args)]
#[command(after_long_help = "\
WHAT IT DOES
  Sends every prompt of --prompts (--samples-per-prompt times) to the suspect's
  OpenAI-compatible chat endpoint (POST {endpoint}/chat/completions), keeps each answer
  in OUT/suspect.jsonl as it arrives (a corpus audit corpus reads as is; failures go
  to OUT/suspect.failures.jsonl, the settings to OUT/suspect.settings.json), then runs the corpus test of audit corpus on the
  answers, re-tokenized with the lab's tokenizer (the suspect may use another one).
  With --reference-endpoint the same prompts go to a clean model too (OUT/reference.jsonl)
  and its result is shown beside the suspect's.

RESUMING AND FAILURES
  Re-running with the same --out asks only for what is missing: answers already kept are
  never re-queried, failed items are retried. Each item is retried --retries times on
  connection errors, timeouts, 408/429/5xx and malformed answers, with exponential backoff
  (honouring Retry-After); other 4xx and empty answers fail at once. Failures are recorded
  per item (status, error) and counted in the verdict (failed: items still unanswered). When several items in a row find
  the endpoint unreachable (or refusing with 401/403/404) the run stops (exit 2) and keeps what it collected.

SECRETS
  The endpoint's API key is read from the environment variable named by --api-key-env
  and sent as a bearer token; it is never printed, logged or written to OUT.

OUTPUT
  A summary (or with --json one JSON object as the last line of stdout: log10_p,
  p_value, scored, key_swap, verdict, queries, cached, failed, ...); the same object is
  written to OUT/verdict.json.

EXIT STATUS
  0 the audit ran and every item was answered; 1 it ran but some items failed; 2 it could
  not run (bad arguments, endpoint unreachable).

EXAMPLE
  OPENAI_API_KEY=... provmark audit api --endpoint https://api.example.com/v1 \\
      --model suspect-1 --prompts prompts.jsonl --profile lab.profile.json --key lab.key \\
      --out audit/")]
pub struct ApiArgs {
    /// Base URL of the OpenAI-compatible API (…/v1) or the full …/chat/completions URL.
    #[arg(long, value_name = "URL")]
    endpoint: String,
    /// Model name to ask the endpoint for.
    #[arg(long, value_name = "NAME")]
    model: String,
    /// Prompts (JSON Lines: {"id", "prompt"} or {"id", "messages"}, as for generate).
    #[arg(long, value_name = "FILE")]
    prompts: PathBuf,
    /// Directory for the answer cache and the verdict (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Answers asked per prompt.
    #[arg(long, default_value_t = 1, value_name = "N")]
    samples_per_prompt: u32,
    /// max_tokens of each request.
    #[arg(long, default_value_t = 256, value_name = "N")]
    max_tokens: u32,
    /// temperature of each request.
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Environment variable holding the endpoint's API key (none sent if unset).
    #[arg(long, default_value = "OPENAI_API_KEY", value_name = "VAR")]
    api_key_env: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    concurrency: usize,
    /// Most requests started per second (0 = no limit).
    #[arg(long, default_value_t = 0.0, value_name = "PER_SECOND")]
    rate_limit: f64,
    /// Retries per item after the first attempt.
    #[arg(long, default_value_t = 5, value_name = "N")]
    retries: u32,
    /// First backoff delay; doubles on each retry (at most 60 s).
    #[arg(long, default_value_t = 500, value_name = "MS")]
    backoff_ms: u64,
    /// Seconds before a request is abandoned (and retried).
    #[arg(long, default_value_t = 120.0, value_name = "SECONDS")]
    timeout: f64,
    /// A clean reference endpoint (e.g. a model known not to be trained on the lab's
    /// outputs) asked the same prompts; shown beside the suspect.
    #[arg(long, value_name = "URL")]
    reference_endpoint: Option<String>,
    /// Model name at the reference endpoint (default: --model).
    #[arg(long, value_name = "NAME", requires = "reference_endpoint")]
    reference_model: Option<String>,
    /// The lab's tokenizer.json (default: the default model's).
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    /// The lab's own watermarked outputs: keep only tuples whose window occurs in them.
    #[arg(long, value_name = "FILE")]
    filter_from: Vec<String>,
    #[command(flatten)]
    common: AuditCommon,
}

/// One request to make: a prompt and a sample number.
#[derive(Clone)]
struct Item {
    prompt: usize,
    sample: u32,
}

/// What the cache holds for an item.
enum Outcome {
    Answer { text: String, finish: Value },
    Failed { error: String, status: Option<u16> },
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

fn chat_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/chat/completions") {
        e.to_string()
    } else {
        format!("{e}/chat/completions")
    }
}

impl Client {
    fn new(args: &ApiArgs, endpoint: &str, model: &str) -> Result<Client> {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            bail!("--endpoint must be an http:// or https:// URL, got {endpoint:?}");
        }
        if !(args.timeout > 0.0 && args.timeout.is_finite()) {
            bail!("--timeout must be a positive number of seconds");
        }
        if !(args.rate_limit >= 0.0 && args.rate_limit.is_finite()) {
            bail!("--rate-limit must be zero (no limit) or a positive rate");
        }
        let api_key = std::env::var(&args.api_key_env)
            .ok()
            .filter(|k| !k.is_empty());
        Ok(Client {
            url: chat_url(endpoint),
            model: model.to_string(),
            api_key,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs_f64(args.timeout))
                .build(),
            retries: args.retries,
            backoff: Duration::from_millis(args.backoff_ms),
            max_tokens: args.max_tokens,
            temperature: args.temperature,
            limiter: (args.rate_limit > 0.0).then(|| Mutex::new(Instant::now())),
            interval: if args.rate_limit > 0.0 {
                Duration::from_secs_f64(1.0 / args.rate_limit)
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

    fn attempt(&self, messages: &Value) -> Result<(String, Value), Failure> {
        self.pace();
        let body = json!({
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stream": false,
        });
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
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(|s| Duration::from_secs_f64(s.min(60.0)));
                let text = r.into_string().unwrap_or_default();
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| snippet(&text));
                let retry = matches!(code, 408 | 409 | 429) || code >= 500;
                // Refusals that every request will meet (credentials, model
                // name, path) count towards the circuit breaker.
                let fatal = matches!(code, 401 | 403 | 404);
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
        Ok((content.to_string(), choice["finish_reason"].clone()))
    }

    /// Asks for one answer with retries; returns the outcome, the attempts
    /// made and whether the last failure says the endpoint is unusable.
    fn ask(&self, messages: &Value, stop: &AtomicBool) -> (Outcome, u32, bool) {
        let mut attempt = 0;
        loop {
            match self.attempt(messages) {
                Ok((text, finish)) => {
                    return (Outcome::Answer { text, finish }, attempt + 1, false)
                }
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
                        .min(Duration::from_secs(60));
                    std::thread::sleep(f.retry_after.unwrap_or(backoff));
                    attempt += 1;
                }
            }
        }
    }
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

fn messages_of(p: &Prompt) -> Value {
    match &p.body {
        PromptBody::Text(t) => json!([{"role": "user", "content": t}]),
        PromptBody::Messages(m) => json!(m),
    }
}

/// The settings an answer cache belongs to; a cache made with others is
/// refused rather than mixed.
fn cache_header(args: &ApiArgs, endpoint: &str, model: &str, prompts_sha256: &str) -> Value {
    json!({
        "format": "provmark-audit-api/1",
        "endpoint": chat_url(endpoint),
        "model": model,
        "prompts_sha256": prompts_sha256,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
    })
}

/// The answer cache of one endpoint in OUT: `NAME.settings.json` (what the
/// answers were asked with; other settings are refused rather than mixed),
/// `NAME.jsonl` (one record per answer: a corpus audit corpus reads as is)
/// and `NAME.failures.jsonl` (a log of failed items, retried on the next run).
struct Cache {
    answers_path: PathBuf,
    answers: File,
    failures_path: PathBuf,
    failures: File,
    /// (prompt id, sample) → answer text.
    texts: HashMap<(String, u32), String>,
}

impl Cache {
    fn open(dir: &Path, name: &str, settings: &Value) -> Result<Cache> {
        let settings_path = dir.join(format!("{name}.settings.json"));
        let shown = settings_path.display().to_string();
        match std::fs::read_to_string(&settings_path) {
            Ok(text) => {
                let found: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{shown}: not the settings of an audit api cache"))?;
                if found != *settings {
                    bail!(
                        "{shown}: the answers in {} were asked with other settings ({found}); \
                         this run has {settings}. Use another --out or the same settings",
                        dir.display()
                    );
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::write(&settings_path, format!("{settings}\n"))
                    .with_context(|| format!("cannot write {shown}"))?;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {shown}")),
        }
        let answers_path = dir.join(format!("{name}.jsonl"));
        let (answers, lines) = crate::jsonl::open_for_append(&answers_path)?;
        let mut texts = HashMap::new();
        for (i, line) in lines.iter().enumerate() {
            let here = format!("{}:{}", answers_path.display(), i + 1);
            let v: Value =
                serde_json::from_str(line).with_context(|| format!("{here}: not a JSON record"))?;
            let (Some(id), Some(sample), Some(text)) =
                (v["id"].as_str(), v["sample"].as_u64(), v["text"].as_str())
            else {
                bail!("{here}: fields id, sample and text are expected");
            };
            texts.insert((id.to_string(), sample as u32), text.to_string());
        }
        let failures_path = dir.join(format!("{name}.failures.jsonl"));
        let (failures, _) = crate::jsonl::open_for_append(&failures_path)?;
        Ok(Cache {
            answers_path,
            answers,
            failures_path,
            failures,
            texts,
        })
    }

    fn answered(&self, id: &str, sample: u32) -> bool {
        self.texts.contains_key(&(id.to_string(), sample))
    }

    fn record(&mut self, id: &str, sample: u32, outcome: &Outcome, attempts: u32) -> Result<()> {
        let (file, path, v) = match outcome {
            Outcome::Answer { text, finish } => {
                self.texts.insert((id.to_string(), sample), text.clone());
                let v = json!({
                    "id": id, "sample": sample, "text": text,
                    "finish_reason": finish, "attempts": attempts,
                });
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
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The answers in prompt order.
    fn texts_in_order(&self, prompts: &[Prompt], samples: u32) -> Vec<String> {
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

/// The result of collecting one endpoint's answers.
struct Collected {
    /// Answers in prompt order (cached and new).
    texts: Vec<String>,
    queries: usize,
    cached: usize,
    /// Items still without an answer.
    failed: usize,
    /// Retries over all items of this run.
    retries: u64,
}

/// Consecutive items that find the endpoint unreachable (or refusing with
/// 401/403/404) before the run stops, beyond the requests in flight.
const BREAKER: usize = 3;

fn collect(
    args: &ApiArgs,
    client: Client,
    prompts: &[Prompt],
    cache: &mut Cache,
    running: Option<(&provmark_verify::Detector, &TextTokenizer)>,
    label: &str,
) -> Result<Collected> {
    let mut todo = VecDeque::new();
    let mut cached = 0;
    for (i, p) in prompts.iter().enumerate() {
        for s in 0..args.samples_per_prompt {
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
    let progress = ProgressBar::new(total as u64);
    progress.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:30}} {{pos}}/{{len}} {label} answers  {{msg}}  eta {{eta}}"
        ))
        .expect("valid template"),
    );
    let mut running_test = running.map(|(d, _)| RunningTest::new(d));
    let tokenizer = running.map(|(_, t)| t);
    let add_running = |rt: &mut Option<RunningTest>, text: &str, progress: &ProgressBar| {
        if let (Some(r), Some(tok)) = (rt.as_mut(), tokenizer) {
            if let Ok(ids) = tok.encode(text) {
                r.add_text(&ids);
            }
            if let Some(t) = r.test() {
                progress.set_message(format!("running log10 p {:.1}", t.p.log10()));
            }
        }
    };
    for text in cache.texts_in_order(prompts, args.samples_per_prompt) {
        add_running(&mut running_test, &text, &progress);
    }
    let queue = Arc::new(Mutex::new(todo));
    let client = Arc::new(client);
    let stop = Arc::new(AtomicBool::new(false));
    let unreachable_run = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let messages: Arc<Vec<Value>> = Arc::new(prompts.iter().map(messages_of).collect());
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (queue, client, stop, tx, messages, unreachable_run) = (
                queue.clone(),
                client.clone(),
                stop.clone(),
                tx.clone(),
                messages.clone(),
                unreachable_run.clone(),
            );
            let limit = args.concurrency.max(1) + BREAKER;
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
            Outcome::Answer { text, .. } => add_running(&mut running_test, text, &progress),
            Outcome::Failed { error, .. } => {
                progress.suspend(|| {
                    eprintln!("provmark: {label} {id} sample {}: {error}", item.sample)
                });
                last_error = Some(error.clone());
            }
        }
        progress.inc(1);
    }
    for w in workers {
        let _ = w.join();
    }
    progress.finish_and_clear();
    if stop.load(Ordering::Relaxed) {
        bail!(
            "{}: the endpoint is unreachable or refuses every request ({}); stopped after {queries} of {total} requests. \
             The {} answers kept in {} are reused when the audit is run again",
            client.url,
            last_error.unwrap_or_default(),
            cache.texts.len(),
            cache.answers_path.display()
        );
    }
    let texts = cache.texts_in_order(prompts, args.samples_per_prompt);
    let failed = prompts.len() * args.samples_per_prompt as usize - texts.len();
    Ok(Collected {
        texts,
        queries,
        cached,
        failed,
        retries,
    })
}

fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// The distinct tuples of answer texts, re-tokenized with the lab's tokenizer.
fn tuples_of(
    texts: &[String],
    tokenizer: &TextTokenizer,
    h: usize,
    filter: Option<&provmark_verify::corpus::WindowSet>,
) -> Result<(Counts, provmark_verify::corpus::DistinctTuples)> {
    let mut set = TupleSet::new(h, Shard::ALL).map_err(anyhow::Error::msg)?;
    let mut errors = 0;
    for t in texts {
        match tokenizer.encode(t) {
            Ok(ids) => set.add_text(&ids),
            Err(_) => errors += 1,
        }
    }
    finish_tuples(set, texts.len() - errors, errors, filter)
}

/// The report of an API audit: its numbers are those of `audit corpus` on
/// the kept answers (which is what a verifier recomputes); how the answers
/// were collected is recorded as evidence but cannot be replayed.
fn recorder(
    args: &ApiArgs,
    profile: &provmark_watermark::Profile,
    prompts_sha256: &str,
    collection: Map<String, Value>,
) -> Result<Recorder> {
    let c = &args.common;
    let mut r = Recorder::new("audit corpus");
    r.rename("audit api");
    r.param("alpha", c.alpha, json!(c.alpha));
    r.param("null-keys", c.null_keys, json!(c.null_keys));
    r.param("null-seed", c.null_seed, json!(c.null_seed));
    r.param("field", "text", json!("text"));
    r.profile(profile, &provmark_watermark::Key::load(&c.key)?);
    r.tokenizer(profile.tokenizer().as_str());
    if let Some(t) = &args.tokenizer {
        r.input(Some("tokenizer"), "tokenizer", &t.display().to_string())?;
    }
    for f in &args.filter_from {
        r.input(Some("filter-from"), "filter", f)?;
    }
    if args.reference_endpoint.is_some() {
        let path = args.out.join("reference.jsonl");
        r.input(Some("reference"), "reference", &path.display().to_string())?;
    }
    r.input(
        None,
        "input",
        &args.out.join("suspect.jsonl").display().to_string(),
    )?;
    let mut facts = collection;
    facts.insert("prompts_sha256".into(), json!(prompts_sha256));
    facts.insert("samples_per_prompt".into(), json!(args.samples_per_prompt));
    facts.insert("max_tokens".into(), json!(args.max_tokens));
    facts.insert("temperature".into(), json!(args.temperature));
    if let Some(e) = &args.reference_endpoint {
        facts.insert("reference_endpoint".into(), json!(chat_url(e)));
        facts.insert(
            "reference_model".into(),
            json!(args.reference_model.as_deref().unwrap_or(&args.model)),
        );
    }
    r.collection(Value::Object(facts));
    Ok(r)
}

pub fn run(args: ApiArgs) -> Result<std::process::ExitCode> {
    let (profile, detector) = args.common.load()?;
    let tokenizer = crate::models::text_tokenizer(args.tokenizer.as_deref(), None)?;
    tokenizer.check_profile(&profile, false)?;
    if args.samples_per_prompt == 0 || args.max_tokens == 0 || args.concurrency == 0 {
        bail!("--samples-per-prompt, --max-tokens and --concurrency must be at least 1");
    }
    let prompts = prompts::read(&args.prompts)?;
    if prompts.is_empty() {
        bail!("{}: no prompts", args.prompts.display());
    }
    let prompts_sha256 = sha256_file(&args.prompts)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let h = profile.context();
    let filter = lab_windows(&args.filter_from, &args.common.field, &tokenizer, h)?;

    let suspect_client = Client::new(&args, &args.endpoint, &args.model)?;
    let mut suspect_cache = Cache::open(
        &args.out,
        "suspect",
        &cache_header(&args, &args.endpoint, &args.model, &prompts_sha256),
    )?;
    let suspect = collect(
        &args,
        suspect_client,
        &prompts,
        &mut suspect_cache,
        Some((&detector, &tokenizer)),
        "suspect",
    )?;
    let reference = match &args.reference_endpoint {
        Some(endpoint) => {
            let model = args.reference_model.as_deref().unwrap_or(&args.model);
            let client = Client::new(&args, endpoint, model)?;
            let mut cache = Cache::open(
                &args.out,
                "reference",
                &cache_header(&args, endpoint, model, &prompts_sha256),
            )?;
            Some(collect(
                &args,
                client,
                &prompts,
                &mut cache,
                None,
                "reference",
            )?)
        }
        None => None,
    };
    let suspect_tuples = tuples_of(&suspect.texts, &tokenizer, h, filter.as_ref())?;
    let reference_tuples = match &reference {
        Some(r) => Some(tuples_of(&r.texts, &tokenizer, h, filter.as_ref())?),
        None => None,
    };
    let mut extra = Map::new();
    let asked = prompts.len() * args.samples_per_prompt as usize;
    extra.insert("endpoint".into(), json!(chat_url(&args.endpoint)));
    extra.insert("model".into(), json!(args.model));
    extra.insert("prompts".into(), json!(prompts.len()));
    extra.insert("requested".into(), json!(asked));
    extra.insert("answered".into(), json!(suspect.texts.len()));
    extra.insert("queries".into(), json!(suspect.queries));
    extra.insert("cached".into(), json!(suspect.cached));
    extra.insert("failed".into(), json!(suspect.failed));
    extra.insert("retries".into(), json!(suspect.retries));
    if let Some(r) = &reference {
        extra.insert("reference_answered".into(), json!(r.texts.len()));
        extra.insert("reference_failed".into(), json!(r.failed));
    }
    let setup = Setup {
        profile: &profile,
        detector: &detector,
        common: &args.common,
    };
    let (s, r) = score_pair(
        &setup,
        Shard::ALL,
        (&suspect_tuples.0, &suspect_tuples.1),
        reference_tuples.as_ref().map(|(c, t)| (c, t)),
    )?;
    let report = Report {
        suspect: &s,
        reference: r.as_ref(),
        alpha: args.common.alpha,
        extra,
    };
    // The verdict as JSON in OUT/verdict.json, and as asked on stdout.
    let verdict_path = args.out.join("verdict.json");
    let mut json_bytes = Vec::new();
    render(&profile, &report, true, &mut json_bytes)?;
    std::fs::write(&verdict_path, &json_bytes)
        .with_context(|| format!("cannot write {}", verdict_path.display()))?;
    render(
        &profile,
        &report,
        args.common.json,
        &mut std::io::stdout().lock(),
    )?;
    if let Some(path) = &args.common.report {
        let recorder = recorder(&args, &profile, &prompts_sha256, report.extra.clone())?;
        // The results are audit corpus's on the kept answers; the collection
        // facts live in the report's collection member.
        let recomputable = Report {
            suspect: report.suspect,
            reference: report.reference,
            alpha: report.alpha,
            extra: Map::new(),
        };
        write_report(&profile, &recomputable, Some(path), Some(recorder))?;
    }
    let failed = suspect.failed + reference.as_ref().map_or(0, |r| r.failed);
    Ok(super::partial_failure(failed))
}
