//! provmark-serve: an OpenAI-compatible HTTP server over a watermarked
//! [`Serving`] engine, whose every answer carries the watermark (or none,
//! on a control engine).
//!
//! - `POST /v1/chat/completions`: messages → the model's chat template →
//!   answer; `POST /v1/completions`: prompt text → continuation. Both take
//!   model, max_tokens (or max_completion_tokens), temperature, top_p,
//!   top_k, seed, n (choice i uses seed + i), stop (up to 4 strings; the
//!   answer ends before the first, streamed or not), logprobs (chat: with
//!   top_logprobs; completions: a count), always under the model's own
//!   unbiased distribution (spec §6.3), and stream (Server-Sent Events in
//!   UTF-8 ending with `data: [DONE]`, usage in the last chunk with
//!   `stream_options.include_usage`); tools and best_of > 1 are refused.
//! - Sampling settings that would leave the watermark no choice are
//!   served at the floor of the profile's scheme, or refused, as
//!   [`ServeConfig::policy`] says (spec §6.2); every answer's `provmark`
//!   object says what was served and how many tokens the key could change,
//!   and the server logs one `tracing` line per answer.
//! - `GET /v1/models`, `GET /health`.
//!
//! Requests ([`request`]) are typed serde structs; errors ([`ApiError`]) use
//! OpenAI's shape `{"error": {"message", "type", "param", "code"}}`: 400
//! for a bad request, 404 for an unknown model or endpoint, 413 for a body
//! over [`ServeConfig::max_body_bytes`], 429 beyond
//! [`ServeConfig::max_concurrent`] requests in flight. A client that goes
//! away cancels its answer. [`serve`] stops accepting connections when its
//! shutdown future resolves and lets running answers finish.

pub mod error;
pub mod request;
pub mod response;
pub mod transport;

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use provmark_llm::engine::{Answer, Event, Finish, Request, Sink};
use provmark_llm::logprobs::Logprobs;
use provmark_llm::serving::Serving;
use provmark_llm::token_bytes::token_bytes;
use provmark_watermark::rand_core::{OsRng, TryRngCore};
use provmark_watermark::{PolicyMode, SamplingFloor, SamplingPolicy, Scheme};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::UnboundedReceiverStream;

pub use error::{ApiError, ServeError};
use request::{ChatCompletionRequest, CompletionRequest, Endpoint, Limits, ModelNames, Settings};
use response::{
    AssistantMessage, ChatChoice, ChatChunkChoice, ChatLogprobs, ChatTokenLogprob, Chunk,
    Completion, Delta, Health, ModelCard, ModelList, Provenance, ServedSampling, StreamError,
    StreamErrorDetail, TextChoice, TextLogprobs, TopLogprob, Usage,
};
pub use transport::ListenConfig;

/// Server settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeConfig {
    /// The model's id in `/v1/models` and answers; `None`: [`model_id`] of
    /// the model file's name. Requests may name it or the file's name.
    pub model_id: Option<String>,
    /// Largest `max_tokens` a request may ask for (also the default), ≥ 1.
    pub max_tokens_limit: usize,
    /// Requests in flight at most (queued or decoding), ≥ 1; more get 429.
    pub max_concurrent: usize,
    /// Largest request body in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Name the profile's key id (never the key) and digest in an
    /// `X-Provmark-Key-Id` header and the `provmark` field of each answer.
    pub disclose_key_id: bool,
    /// What happens to requests whose sampling settings would leave the
    /// watermark no choice (spec §6.2); ignored on a control engine.
    pub policy: PolicyMode,
    /// The floor of `policy`; `None`: the profile scheme's
    /// ([`SamplingFloor::for_scheme`]).
    pub floor: Option<SamplingFloor>,
    /// Largest `n` (answers per request), ≥ 1; each answer takes one of
    /// the `max_concurrent` slots.
    pub max_n: usize,
    /// Whether requests may ask for log-probabilities (always the model's
    /// own, unbiased distribution: spec §6.3).
    pub logprobs: bool,
}

impl Default for ServeConfig {
    /// 1024 tokens, 64 requests, 1 MiB bodies, no disclosure, the id from
    /// the model file, the floor policy at the scheme's floor, n ≤ 8,
    /// log-probabilities on.
    fn default() -> ServeConfig {
        ServeConfig {
            model_id: None,
            max_tokens_limit: 1024,
            max_concurrent: 64,
            max_body_bytes: 1 << 20,
            disclose_key_id: false,
            policy: PolicyMode::Floor,
            floor: None,
            max_n: 8,
            logprobs: true,
        }
    }
}

impl ServeConfig {
    /// The id served for the model file `model_file`.
    pub fn model_id_for(&self, model_file: &str) -> String {
        self.model_id
            .clone()
            .unwrap_or_else(|| model_id(model_file))
    }
}

/// A model file's id: its name without `.gguf`.
pub fn model_id(model_file: &str) -> String {
    model_file
        .strip_suffix(".gguf")
        .unwrap_or(model_file)
        .to_string()
}

struct AppState {
    serving: Serving,
    model_id: String,
    limits: Limits,
    permits: Arc<Semaphore>,
    disclose: Option<(String, String)>,
    counter: AtomicU64,
    id_prefix: u64,
}

/// The server's routes over `serving`. Fails when a limit is 0 or the
/// system has no randomness (for response ids).
pub fn router(serving: Serving, config: ServeConfig) -> Result<Router, ServeError> {
    if config.max_tokens_limit == 0 || config.max_concurrent == 0 {
        return Err(ServeError::ZeroLimit);
    }
    let disclose = if config.disclose_key_id {
        serving.disclosure()
    } else {
        None
    };
    let id_prefix = OsRng
        .try_next_u64()
        .map_err(|e| ServeError::Randomness(e.to_string()))?;
    let policy = match &serving.profile {
        Some(profile) => match config.floor {
            Some(floor) => SamplingPolicy::new(config.policy, floor),
            None => SamplingPolicy::for_scheme(config.policy, profile.scheme()),
        },
        None => SamplingPolicy::unwatermarked(),
    };
    if let (Some(profile), Some(floor)) = (&serving.profile, &config.floor) {
        floor
            .check_for(profile.scheme())
            .map_err(ServeError::Floor)?;
    }
    let one_answer_per_prompt = serving
        .profile
        .as_ref()
        .is_some_and(|p| !matches!(p.scheme(), Scheme::Kgw(_)));
    let state = Arc::new(AppState {
        model_id: config.model_id_for(&serving.model_name),
        serving,
        limits: Limits {
            max_tokens: config.max_tokens_limit,
            max_n: config.max_n.clamp(1, config.max_concurrent),
            one_answer_per_prompt,
            logprobs: config.logprobs,
            policy,
        },
        permits: Arc::new(Semaphore::new(config.max_concurrent)),
        disclose,
        counter: AtomicU64::new(0),
        id_prefix,
    });
    let post_only = || async { ApiError::MethodNotAllowed { allowed: "POST" } };
    let get_only = || async { ApiError::MethodNotAllowed { allowed: "GET" } };
    Ok(Router::new()
        .route(
            "/v1/chat/completions",
            post(chat_completions).fallback(post_only),
        )
        .route("/v1/completions", post(completions).fallback(post_only))
        .route("/v1/models", get(models).fallback(get_only))
        .route("/health", get(health).fallback(get_only))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            config.max_body_bytes,
            transport::refuse_declared_length,
        ))
        .with_state(state))
}

/// Serves `router` on `listener` under `listen`'s timeouts and connection
/// cap until `shutdown` resolves, then stops accepting connections, lets
/// running answers finish for up to `listen.shutdown_timeout` and drops
/// every connection. Fails at once when a setting of `listen` is 0.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    listen: ListenConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    transport::serve(listener, router, listen, shutdown).await
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM: the usual shutdown future for
/// [`serve`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn health(State(s): State<Arc<AppState>>) -> Json<Health> {
    Json(Health {
        status: "ok",
        model: s.model_id.clone(),
        watermark: s.serving.profile.is_some(),
        sampling_policy: s.limits.policy.mode().name(),
        available_slots: s.permits.available_permits(),
    })
}

async fn models(State(s): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: vec![ModelCard {
            id: s.model_id.clone(),
            object: "model",
            created: 0,
            owned_by: "provmark",
        }],
    })
}

async fn chat_completions(
    State(s): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(s, body, Endpoint::Chat)
        .await
        .unwrap_or_else(|e| e.into_response())
}

async fn completions(
    State(s): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(s, body, Endpoint::Completion)
        .await
        .unwrap_or_else(|e| e.into_response())
}

/// A validated request.
struct Parsed {
    prompt: Vec<u32>,
    settings: Settings,
    seed: u64,
}

fn parse(s: &AppState, body: &[u8], endpoint: Endpoint) -> Result<Parsed, ApiError> {
    let names = ModelNames {
        id: &s.model_id,
        file: &s.serving.model_name,
    };
    let rt = s.serving.runtime();
    let (settings, prompt) = match endpoint {
        Endpoint::Chat => {
            let r = ChatCompletionRequest::from_body(body)?;
            let settings = r.params.settings(&names, &s.limits, endpoint)?;
            let chat = r.chat()?;
            (settings, rt.encode_chat(&chat))
        }
        Endpoint::Completion => {
            let r = CompletionRequest::from_body(body)?;
            let settings = r.params.settings(&names, &s.limits, endpoint)?;
            let text = r.prompt_text()?;
            (settings, rt.encode_prompt(text))
        }
    };
    let prompt = prompt.map_err(ApiError::Encode)?;
    let seed = match settings.seed {
        Some(seed) => seed,
        None => OsRng
            .try_next_u64()
            .map_err(|e| ApiError::NoRandomness(e.to_string()))?,
    };
    Ok(Parsed {
        prompt,
        settings,
        seed,
    })
}

/// The engine's events of one request, tagged with the choice they belong
/// to; the request is cancelled when the receiving side is gone.
struct ChoiceSink {
    index: usize,
    tx: mpsc::UnboundedSender<(usize, Event)>,
}

impl Sink for ChoiceSink {
    fn event(&mut self, event: Event) -> bool {
        self.tx.send((self.index, event)).is_ok()
    }

    fn cancelled(&self) -> bool {
        self.tx.is_closed()
    }
}

/// One request's identity and settings, for its answer and its log line.
struct Served {
    id: String,
    created: u64,
    endpoint: Endpoint,
    settings: Settings,
    prompt_tokens: usize,
}

async fn handle(
    s: Arc<AppState>,
    body: Result<Bytes, BytesRejection>,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| ApiError::Body {
        status: e.status(),
        text: e.body_text(),
    })?;
    let parsed = parse(&s, &body, endpoint)?;
    let n = parsed.settings.n;
    let permit = Arc::clone(&s.permits)
        .try_acquire_many_owned(n as u32)
        .map_err(|_| ApiError::TooManyRequests)?;
    let (tx, rx) = mpsc::unbounded_channel();
    for index in 0..n {
        let request = Request {
            prompt: parsed.prompt.clone(),
            max_tokens: parsed.settings.max_tokens,
            sampling: parsed.settings.sampling,
            seed: parsed.seed.wrapping_add(index as u64),
            stop: parsed.settings.stop.clone(),
            logprobs: parsed.settings.logprobs,
        };
        let sink = ChoiceSink {
            index,
            tx: tx.clone(),
        };
        s.serving
            .engine
            .submit(request, Box::new(sink))
            .map_err(|source| ApiError::ContextLength {
                param: match endpoint {
                    Endpoint::Chat => "messages",
                    Endpoint::Completion => "prompt",
                },
                source,
            })?;
    }
    drop(tx);
    let id = format!(
        "{}-{:016x}{:08x}",
        match endpoint {
            Endpoint::Chat => "chatcmpl",
            Endpoint::Completion => "cmpl",
        },
        s.id_prefix,
        s.counter.fetch_add(1, Ordering::Relaxed)
    );
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let served = Served {
        id,
        created,
        endpoint,
        prompt_tokens: parsed.prompt.len(),
        settings: parsed.settings,
    };
    let mut response = if served.settings.stream {
        stream_response(s.clone(), rx, permit, served)
    } else {
        whole_response(&s, rx, permit, served).await?
    };
    if let Some((key_id, _)) = &s.disclose {
        if let Ok(v) = HeaderValue::from_str(key_id) {
            response.headers_mut().insert("x-provmark-key-id", v);
        }
    }
    Ok(response)
}

fn engine_error(a: &Answer) -> Option<ApiError> {
    match &a.finish {
        Finish::Error(e) => Some(ApiError::Engine(e.clone())),
        _ => None,
    }
}

impl AppState {
    /// The `provmark` object for `answers` of a request served with
    /// `settings`.
    fn provenance(&self, settings: &Settings, answers: &[&Answer]) -> Provenance {
        let (key_id, profile_digest) = match &self.disclose {
            Some((k, d)) => (Some(k.clone()), Some(d.clone())),
            None => (None, None),
        };
        Provenance {
            watermark: self.serving.profile.is_some(),
            policy: self.limits.policy.mode().name(),
            sampling: ServedSampling {
                temperature: settings.sampling.temperature(),
                top_p: settings.sampling.top_p(),
                top_k: settings.sampling.top_k(),
            },
            raised: settings.raised.iter().map(|p| p.name()).collect(),
            marked_tokens: answers.iter().map(|a| a.marked_tokens).sum(),
            completion_tokens: answers.iter().map(|a| a.tokens.len()).sum(),
            key_id,
            profile_digest,
        }
    }

    /// The token's text and bytes, for log-probability reports.
    fn token(&self, id: u32) -> (String, Vec<u8>) {
        let bytes = token_bytes(&self.serving.runtime().tokenizer.tokenizer, id);
        (String::from_utf8_lossy(&bytes).into_owned(), bytes)
    }

    fn chat_logprobs(&self, lps: &[Logprobs]) -> ChatLogprobs {
        ChatLogprobs {
            content: lps
                .iter()
                .map(|lp| {
                    let (token, bytes) = self.token(lp.chosen.id);
                    ChatTokenLogprob {
                        token,
                        logprob: lp.chosen.logprob,
                        bytes,
                        top_logprobs: lp
                            .top
                            .iter()
                            .map(|t| {
                                let (token, bytes) = self.token(t.id);
                                TopLogprob {
                                    token,
                                    logprob: t.logprob,
                                    bytes,
                                }
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
    }

    /// Legacy completions logprobs; `offset` is the answer's bytes before
    /// the first of `lps`.
    fn text_logprobs(&self, lps: &[Logprobs], mut offset: usize) -> TextLogprobs {
        let mut out = TextLogprobs::default();
        for lp in lps {
            let (token, bytes) = self.token(lp.chosen.id);
            out.text_offset.push(offset);
            offset += bytes.len();
            out.tokens.push(token);
            out.token_logprobs.push(lp.chosen.logprob);
            out.top_logprobs.push(
                lp.top
                    .iter()
                    .map(|t| (self.token(t.id).0, t.logprob))
                    .collect(),
            );
        }
        out
    }
}

/// One line per answered request in the server's log (never the prompt,
/// the text or the key).
fn log_answer(s: &AppState, served: &Served, answers: &[&Answer], outcome: &str) {
    let p = s.provenance(&served.settings, answers);
    tracing::info!(
        target: "provmark::serve",
        id = %served.id,
        outcome,
        prompt_tokens = served.prompt_tokens,
        completion_tokens = p.completion_tokens,
        marked_tokens = p.marked_tokens,
        choices = served.settings.n,
        temperature = %p.sampling.temperature,
        top_p = %p.sampling.top_p,
        top_k = p.sampling.top_k,
        raised = ?p.raised,
        policy = p.policy,
        "answer"
    );
}

/// Logs a request that ended without its answer (the client left).
struct GoneGuard<'a> {
    s: &'a AppState,
    served: &'a Served,
    done: bool,
}

impl Drop for GoneGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            log_answer(self.s, self.served, &[], "client_gone");
        }
    }
}

async fn whole_response(
    s: &AppState,
    mut rx: mpsc::UnboundedReceiver<(usize, Event)>,
    _permit: OwnedSemaphorePermit,
    served: Served,
) -> Result<Response, ApiError> {
    let n = served.settings.n;
    let mut guard = GoneGuard {
        s,
        served: &served,
        done: false,
    };
    let mut answers: Vec<Option<Answer>> = (0..n).map(|_| None).collect();
    while answers.iter().any(Option::is_none) {
        match rx.recv().await {
            Some((i, Event::Done(a))) => answers[i] = Some(a),
            Some((_, Event::Token { .. })) => {}
            None => return Err(ApiError::EngineStopped),
        }
    }
    guard.done = true;
    let answers: Vec<Answer> = answers.into_iter().flatten().collect();
    if let Some(e) = answers.iter().find_map(engine_error) {
        log_answer(s, &served, &[], "error");
        return Err(e);
    }
    let all: Vec<&Answer> = answers.iter().collect();
    log_answer(s, &served, &all, "ok");
    let provmark = s.provenance(&served.settings, &all);
    let usage = Usage {
        prompt_tokens: served.prompt_tokens,
        completion_tokens: provmark.completion_tokens,
        total_tokens: served.prompt_tokens + provmark.completion_tokens,
    };
    let system_fingerprint = format!("provmark-{}", env!("CARGO_PKG_VERSION"));
    let model = s.model_id.clone();
    let (id, created) = (served.id.clone(), served.created);
    let want_logprobs = served.settings.logprobs.is_some();
    Ok(match served.endpoint {
        Endpoint::Chat => Json(Completion {
            id,
            object: "chat.completion",
            created,
            model,
            choices: answers
                .into_iter()
                .enumerate()
                .map(|(index, a)| ChatChoice {
                    index: index as u32,
                    logprobs: want_logprobs.then(|| s.chat_logprobs(&a.logprobs)),
                    finish_reason: a.finish.as_str(),
                    message: AssistantMessage {
                        role: "assistant",
                        content: a.text,
                    },
                })
                .collect(),
            usage,
            system_fingerprint,
            provmark,
        })
        .into_response(),
        Endpoint::Completion => Json(Completion {
            id,
            object: "text_completion",
            created,
            model,
            choices: answers
                .into_iter()
                .enumerate()
                .map(|(index, a)| TextChoice {
                    index: index as u32,
                    logprobs: want_logprobs.then(|| s.text_logprobs(&a.logprobs, 0)),
                    finish_reason: Some(a.finish.as_str()),
                    text: a.text,
                })
                .collect(),
            usage,
            system_fingerprint,
            provmark,
        })
        .into_response(),
    })
}

/// What one streamed chunk holds.
#[derive(Default)]
struct ChunkParts<'a> {
    index: usize,
    text: Option<&'a str>,
    role: bool,
    finish: Option<&'static str>,
    logprobs: &'a [Logprobs],
    /// The choice's bytes streamed before this chunk's tokens.
    offset: usize,
    usage: Option<Usage>,
    provmark: Option<Provenance>,
}

fn chunk(s: &AppState, served: &Served, c: ChunkParts) -> String {
    let (id, created, model) = (served.id.clone(), served.created, s.model_id.clone());
    let want_logprobs = served.settings.logprobs.is_some() && !c.logprobs.is_empty();
    let text = match served.endpoint {
        Endpoint::Chat => serde_json::to_string(&Chunk {
            id,
            object: "chat.completion.chunk",
            created,
            model,
            choices: vec![ChatChunkChoice {
                index: c.index as u32,
                delta: Delta {
                    role: c.role.then_some("assistant"),
                    content: c.text.map(str::to_string),
                },
                finish_reason: c.finish,
                logprobs: want_logprobs.then(|| s.chat_logprobs(c.logprobs)),
            }],
            usage: c.usage,
            provmark: c.provmark,
        }),
        Endpoint::Completion => serde_json::to_string(&Chunk {
            id,
            object: "text_completion",
            created,
            model,
            choices: vec![TextChoice {
                index: c.index as u32,
                text: c.text.unwrap_or("").to_string(),
                finish_reason: c.finish,
                logprobs: want_logprobs.then(|| s.text_logprobs(c.logprobs, c.offset)),
            }],
            usage: c.usage,
            provmark: c.provmark,
        }),
    };
    text.expect("a chunk always serialises")
}

/// A streamed choice's state.
#[derive(Default)]
struct Streamed {
    started: bool,
    /// Token bytes streamed so far (completions' `text_offset`).
    offset: usize,
}

fn stream_response(
    s: Arc<AppState>,
    mut rx: mpsc::UnboundedReceiver<(usize, Event)>,
    permit: OwnedSemaphorePermit,
    served: Served,
) -> Response {
    // A task turns engine events into SSE events; it holds the request's
    // slots until the answers end or the client leaves (then dropping rx
    // cancels every choice at the engine's next step, even mid-prefill).
    let (sse_tx, sse_rx) = mpsc::unbounded_channel::<Result<SseEvent, Infallible>>();
    tokio::spawn(async move {
        let _permit = permit;
        let n = served.settings.n;
        let chat = served.endpoint == Endpoint::Chat;
        let mut choices: Vec<Streamed> = (0..n).map(|_| Streamed::default()).collect();
        let mut finished: Vec<Answer> = Vec::new();
        let send = |data: String| sse_tx.send(Ok(SseEvent::default().data(data))).is_ok();
        loop {
            let event = tokio::select! {
                e = rx.recv() => e,
                _ = sse_tx.closed() => None,
            };
            if sse_tx.is_closed() {
                let done: Vec<&Answer> = finished.iter().collect();
                log_answer(&s, &served, &done, "client_gone");
                return;
            }
            let Some((index, event)) = event else {
                let err = ApiError::EngineStopped;
                send(stream_error(&err));
                let _ = send("[DONE]".to_string());
                return;
            };
            let c = &mut choices[index];
            // The role goes first, once per choice (chat only).
            let role = chat && !c.started;
            c.started = true;
            match event {
                Event::Token { id, text, logprobs } => {
                    let lps: Vec<Logprobs> = logprobs.into_iter().collect();
                    if text.is_empty() && lps.is_empty() && !role {
                        continue;
                    }
                    let parts = ChunkParts {
                        index,
                        text: Some(&text),
                        role,
                        logprobs: &lps,
                        offset: c.offset,
                        ..ChunkParts::default()
                    };
                    if served.settings.logprobs.is_some() {
                        // text_offset of the next token (completions' logprobs).
                        c.offset += token_bytes(&s.serving.runtime().tokenizer.tokenizer, id).len();
                    }
                    if !send(chunk(&s, &served, parts)) {
                        continue; // noticed at the loop's top
                    }
                }
                Event::Done(a) => {
                    if let Some(err) = engine_error(&a) {
                        log_answer(&s, &served, &[], "error");
                        send(stream_error(&err));
                        let _ = send("[DONE]".to_string());
                        return;
                    }
                    if !a.tail.is_empty() || role {
                        let parts = ChunkParts {
                            index,
                            text: Some(&a.tail),
                            role,
                            ..ChunkParts::default()
                        };
                        send(chunk(&s, &served, parts));
                    }
                    let last = finished.len() + 1 == n;
                    let usage = (last && served.settings.include_usage).then(|| {
                        let completion_tokens =
                            finished.iter().map(|f| f.tokens.len()).sum::<usize>() + a.tokens.len();
                        Usage {
                            prompt_tokens: served.prompt_tokens,
                            completion_tokens,
                            total_tokens: served.prompt_tokens + completion_tokens,
                        }
                    });
                    let parts = ChunkParts {
                        index,
                        finish: Some(a.finish.as_str()),
                        usage,
                        provmark: Some(s.provenance(&served.settings, &[&a])),
                        ..ChunkParts::default()
                    };
                    send(chunk(&s, &served, parts));
                    finished.push(a);
                    if last {
                        let done: Vec<&Answer> = finished.iter().collect();
                        log_answer(&s, &served, &done, "ok");
                        let _ = send("[DONE]".to_string());
                        return;
                    }
                }
            }
        }
    });
    let mut response = Sse::new(UnboundedReceiverStream::new(sse_rx))
        .keep_alive(KeepAlive::default())
        .into_response();
    // Without a charset, clients such as Python's requests decode the
    // stream as ISO-8859-1 and split characters.
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    response
}

fn stream_error(err: &ApiError) -> String {
    let event = StreamError {
        error: StreamErrorDetail {
            message: err.to_string(),
            kind: err.kind(),
        },
    };
    serde_json::to_string(&event).expect("serialises")
}
