//! provmark-serve: an OpenAI-compatible HTTP server over a watermarked
//! [`Serving`] engine, whose every answer carries the watermark (or none,
//! on a control engine).
//!
//! - `POST /v1/chat/completions`: messages → the model's chat template →
//!   answer; `POST /v1/completions`: prompt text as is → continuation. Both
//!   take model, max_tokens (or max_completion_tokens), temperature, top_p,
//!   top_k, seed and stream (Server-Sent Events ending with `data: [DONE]`,
//!   usage in the last chunk with `stream_options.include_usage`); n > 1,
//!   stop sequences, logprobs and tools are refused.
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
use axum::http::HeaderValue;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use provmark_llm::engine::{Answer, Event, Finish, Request};
use provmark_llm::serving::Serving;
use provmark_watermark::rand_core::{OsRng, TryRngCore};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::UnboundedReceiverStream;

pub use error::{ApiError, ServeError};
use request::{ChatCompletionRequest, CompletionRequest, ModelNames, Settings};
use response::{
    AssistantMessage, ChatChoice, ChatChunkChoice, Chunk, Completion, Delta, Disclosure, Health,
    ModelCard, ModelList, StreamError, StreamErrorDetail, TextChoice, Usage,
};
pub use transport::ListenConfig;

/// Server settings.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// `X-Provmark-Key-Id` header and a `provmark` field of each answer.
    pub disclose_key_id: bool,
}

impl Default for ServeConfig {
    /// 1024 tokens, 64 requests, 1 MiB bodies, no disclosure, the id from
    /// the model file.
    fn default() -> ServeConfig {
        ServeConfig {
            model_id: None,
            max_tokens_limit: 1024,
            max_concurrent: 64,
            max_body_bytes: 1 << 20,
            disclose_key_id: false,
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
    max_tokens_limit: usize,
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
    let state = Arc::new(AppState {
        model_id: config.model_id_for(&serving.model_name),
        serving,
        max_tokens_limit: config.max_tokens_limit,
        permits: Arc::new(Semaphore::new(config.max_concurrent)),
        disclose,
        counter: AtomicU64::new(0),
        id_prefix,
    });
    Ok(Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
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

/// Which endpoint a request came to.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Chat,
    Completion,
}

async fn chat_completions(
    State(s): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(s, body, Kind::Chat)
        .await
        .unwrap_or_else(|e| e.into_response())
}

async fn completions(
    State(s): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(s, body, Kind::Completion)
        .await
        .unwrap_or_else(|e| e.into_response())
}

/// A validated request.
struct Parsed {
    prompt: Vec<u32>,
    settings: Settings,
    seed: u64,
}

fn parse(s: &AppState, body: &[u8], kind: Kind) -> Result<Parsed, ApiError> {
    let names = ModelNames {
        id: &s.model_id,
        file: &s.serving.model_name,
    };
    let rt = s.serving.runtime();
    let (settings, prompt) = match kind {
        Kind::Chat => {
            let r = ChatCompletionRequest::from_body(body)?;
            let settings = r.params.settings(&names, s.max_tokens_limit)?;
            let chat = r.chat()?;
            (settings, rt.encode_chat(&chat))
        }
        Kind::Completion => {
            let r = CompletionRequest::from_body(body)?;
            let settings = r.params.settings(&names, s.max_tokens_limit)?;
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

async fn handle(
    s: Arc<AppState>,
    body: Result<Bytes, BytesRejection>,
    kind: Kind,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| ApiError::Body {
        status: e.status(),
        text: e.body_text(),
    })?;
    let permit = Arc::clone(&s.permits)
        .try_acquire_owned()
        .map_err(|_| ApiError::TooManyRequests)?;
    let parsed = parse(&s, &body, kind)?;
    let (tx, rx) = mpsc::unbounded_channel();
    s.serving
        .engine
        .submit(
            Request {
                prompt: parsed.prompt,
                max_tokens: parsed.settings.max_tokens,
                sampling: parsed.settings.sampling,
                seed: parsed.seed,
            },
            Box::new(move |e| tx.send(e).is_ok()),
        )
        .map_err(ApiError::ContextLength)?;
    let id = format!(
        "{}-{:016x}{:08x}",
        if kind == Kind::Chat {
            "chatcmpl"
        } else {
            "cmpl"
        },
        s.id_prefix,
        s.counter.fetch_add(1, Ordering::Relaxed)
    );
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut response = if parsed.settings.stream {
        stream_response(
            s.clone(),
            rx,
            permit,
            id,
            created,
            kind,
            parsed.settings.include_usage,
        )
    } else {
        whole_response(&s, rx, permit, id, created, kind).await?
    };
    if let Some((key_id, _)) = &s.disclose {
        if let Ok(v) = HeaderValue::from_str(key_id) {
            response.headers_mut().insert("x-provmark-key-id", v);
        }
    }
    Ok(response)
}

fn usage(a: &Answer) -> Usage {
    Usage {
        prompt_tokens: a.prompt_tokens,
        completion_tokens: a.tokens.len(),
        total_tokens: a.prompt_tokens + a.tokens.len(),
    }
}

fn engine_error(a: &Answer) -> Option<ApiError> {
    match &a.finish {
        Finish::Error(e) => Some(ApiError::Engine(e.clone())),
        _ => None,
    }
}

async fn whole_response(
    s: &AppState,
    mut rx: mpsc::UnboundedReceiver<Event>,
    _permit: OwnedSemaphorePermit,
    id: String,
    created: u64,
    kind: Kind,
) -> Result<Response, ApiError> {
    let answer = loop {
        match rx.recv().await {
            Some(Event::Done(a)) => break a,
            Some(Event::Token { .. }) => {}
            None => return Err(ApiError::EngineStopped),
        }
    };
    if let Some(e) = engine_error(&answer) {
        return Err(e);
    }
    let provmark = s
        .disclose
        .as_ref()
        .map(|(key_id, profile_digest)| Disclosure {
            key_id: key_id.clone(),
            profile_digest: profile_digest.clone(),
        });
    let finish_reason = answer.finish.as_str();
    let usage = usage(&answer);
    let system_fingerprint = format!("provmark-{}", env!("CARGO_PKG_VERSION"));
    let model = s.model_id.clone();
    Ok(match kind {
        Kind::Chat => Json(Completion {
            id,
            object: "chat.completion",
            created,
            model,
            choices: vec![ChatChoice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content: answer.text,
                },
                finish_reason,
                logprobs: None,
            }],
            usage,
            system_fingerprint,
            provmark,
        })
        .into_response(),
        Kind::Completion => Json(Completion {
            id,
            object: "text_completion",
            created,
            model,
            choices: vec![TextChoice {
                index: 0,
                text: answer.text,
                finish_reason: Some(finish_reason),
                logprobs: None,
            }],
            usage,
            system_fingerprint,
            provmark,
        })
        .into_response(),
    })
}

/// Builds the JSON text of one streamed chunk.
struct Chunker {
    id: String,
    created: u64,
    model: String,
    kind: Kind,
}

impl Chunker {
    fn chunk(
        &self,
        delta: Option<&str>,
        finish: Option<&'static str>,
        first: bool,
        usage: Option<Usage>,
    ) -> String {
        let (id, created, model) = (self.id.clone(), self.created, self.model.clone());
        let text = match self.kind {
            Kind::Chat => serde_json::to_string(&Chunk {
                id,
                object: "chat.completion.chunk",
                created,
                model,
                choices: vec![ChatChunkChoice {
                    index: 0,
                    delta: Delta {
                        role: first.then_some("assistant"),
                        content: delta.map(str::to_string),
                    },
                    finish_reason: finish,
                    logprobs: None,
                }],
                usage,
            }),
            Kind::Completion => serde_json::to_string(&Chunk {
                id,
                object: "text_completion",
                created,
                model,
                choices: vec![TextChoice {
                    index: 0,
                    text: delta.unwrap_or("").to_string(),
                    finish_reason: finish,
                    logprobs: None,
                }],
                usage,
            }),
        };
        text.expect("a chunk always serialises")
    }
}

fn stream_response(
    s: Arc<AppState>,
    rx: mpsc::UnboundedReceiver<Event>,
    permit: OwnedSemaphorePermit,
    id: String,
    created: u64,
    kind: Kind,
    include_usage: bool,
) -> Response {
    let chunker = Chunker {
        id,
        created,
        model: s.model_id.clone(),
        kind,
    };
    // A task turns engine events into SSE events; it holds the request's
    // slot until the answer ends or the client leaves.
    let (sse_tx, sse_rx) = mpsc::unbounded_channel::<Result<SseEvent, Infallible>>();
    let mut rx = rx;
    tokio::spawn(async move {
        let _permit = permit;
        let mut first = true;
        let send = |data: String| sse_tx.send(Ok(SseEvent::default().data(data))).is_ok();
        while let Some(e) = rx.recv().await {
            match e {
                Event::Token { text, .. } => {
                    if first && kind == Kind::Chat {
                        first = false;
                        if !send(chunker.chunk(Some(""), None, true, None)) {
                            return; // client gone: dropping rx cancels the answer
                        }
                    }
                    if !text.is_empty() && !send(chunker.chunk(Some(&text), None, false, None)) {
                        return;
                    }
                }
                Event::Done(a) => {
                    if let Some(err) = engine_error(&a) {
                        let event = StreamError {
                            error: StreamErrorDetail {
                                message: err.to_string(),
                                kind: err.kind(),
                            },
                        };
                        send(serde_json::to_string(&event).expect("serialises"));
                    } else {
                        send(chunker.chunk(
                            None,
                            Some(a.finish.as_str()),
                            first && kind == Kind::Chat,
                            include_usage.then(|| usage(&a)),
                        ));
                    }
                    let _ = send("[DONE]".to_string());
                    return;
                }
            }
        }
    });
    Sse::new(UnboundedReceiverStream::new(sse_rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}
