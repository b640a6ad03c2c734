//! `provmark serve`: an OpenAI-compatible HTTP server whose every answer
//! carries the watermark (or none, with --no-watermark, for controls).
//!
//! Requests go to the batching engine; answers stream back through a
//! channel, as Server-Sent Events when `stream` is true. Errors use
//! OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use provmark_llm::chat::Message;
use provmark_llm::engine::{Answer, Event, Finish, Request};
use provmark_watermark::rand_core::{OsRng, TryRngCore};
use provmark_watermark::SamplingConfig;
use serde_json::{json, Value};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::serving::{self, ModelArgs, Serving};

#[derive(Args)]
#[command(after_long_help = "\
ENDPOINTS
  POST /v1/chat/completions   messages → the model's chat template → answer
  POST /v1/completions        prompt text as is → continuation
  GET  /v1/models             the one model served
  GET  /health                liveness, model and whether the watermark is on
  Both POST endpoints take model, max_tokens (or max_completion_tokens), temperature,
  top_p, top_k, seed and stream (Server-Sent Events, ending with data: [DONE]).
  n > 1, stop sequences, logprobs and tools are refused with a 400 error.

LIMITS
  Bodies over --max-body-bytes get 413, max_tokens over --max-tokens-limit 400,
  more than --max-concurrent requests in flight 429; all errors in OpenAI's JSON shape.
  Ctrl-C or SIGTERM stops accepting connections and lets running answers finish.

EXAMPLE
  provmark serve --profile lab.profile.json --key lab.key --listen 127.0.0.1:8080
  curl -s http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' \\
    -d '{\"messages\": [{\"role\": \"user\", \"content\": \"Write a haiku about rust.\"}]}'")]
pub struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Largest max_tokens a request may ask for (also the default).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    max_tokens_limit: usize,
    /// Requests in flight at most (queued or decoding); more get 429.
    #[arg(long, default_value_t = 64, value_name = "N")]
    max_concurrent: usize,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    max_body_bytes: usize,
    /// Name the profile's key id (never the key) and profile digest in an
    /// X-Provmark-Key-Id header and a "provmark" field of each answer.
    #[arg(long)]
    disclose_key_id: bool,
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

/// An error answer in OpenAI's shape.
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: Option<&'static str>,
    param: Option<&'static str>,
    message: String,
}

impl ApiError {
    fn invalid(message: impl Into<String>, param: Option<&'static str>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: None,
            param,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }});
        (self.status, Json(body)).into_response()
    }
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    if args.max_tokens_limit == 0 || args.max_concurrent == 0 {
        anyhow::bail!("--max-tokens-limit and --max-concurrent must be at least 1");
    }
    let serving = serving::start(&args.model, &mut |l| eprintln!("provmark: {l}"))?;
    let model_id = serving
        .model_name
        .strip_suffix(".gguf")
        .unwrap_or(&serving.model_name)
        .to_string();
    let disclose = if args.disclose_key_id {
        serving
            .profile
            .as_ref()
            .map(|p| (p.key_id().to_string(), p.digest()))
    } else {
        None
    };
    let id_prefix = OsRng
        .try_next_u64()
        .context("cannot read the system's randomness")?;
    let state = Arc::new(AppState {
        serving,
        model_id,
        max_tokens_limit: args.max_tokens_limit,
        permits: Arc::new(Semaphore::new(args.max_concurrent)),
        disclose,
        counter: AtomicU64::new(0),
        id_prefix,
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(args.max_body_bytes))
        .with_state(Arc::clone(&state));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let mark = if state.serving.profile.is_some() {
            "watermark on"
        } else {
            "NO watermark (control)"
        };
        println!(
            "provmark: serving {} on http://{addr} ({mark})",
            state.model_id
        );
        eprintln!("provmark: Ctrl-C stops; running answers finish first");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("server failed")
    })?;
    eprintln!("provmark: stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
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
    ApiError {
        status: StatusCode::NOT_FOUND,
        kind: "invalid_request_error",
        code: Some("not_found"),
        param: None,
        message: "no such endpoint; see provmark serve --help".into(),
    }
}

async fn health(State(s): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "model": s.model_id,
        "watermark": s.serving.profile.is_some(),
        "available_slots": s.permits.available_permits(),
    }))
}

async fn models(State(s): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"object": "list", "data": [{
        "id": s.model_id, "object": "model", "created": 0, "owned_by": "provmark",
    }]}))
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
    max_tokens: usize,
    sampling: SamplingConfig,
    seed: u64,
    stream: bool,
    include_usage: bool,
}

fn parse(s: &AppState, body: &[u8], kind: Kind) -> Result<Parsed, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the body is not valid JSON: {e}"), None))?;
    let Value::Object(obj) = v else {
        return Err(ApiError::invalid("the body must be a JSON object", None));
    };
    if let Some(m) = obj.get("model") {
        match m.as_str() {
            Some(name) if name == s.model_id || name == s.serving.model_name => {}
            _ => {
                return Err(ApiError {
                    status: StatusCode::NOT_FOUND,
                    kind: "invalid_request_error",
                    code: Some("model_not_found"),
                    param: Some("model"),
                    message: format!(
                        "the model {m} does not exist; this server has {:?}",
                        s.model_id
                    ),
                })
            }
        }
    }
    for (field, ok) in [
        ("n", obj.get("n").is_none_or(|n| n.as_u64() == Some(1))),
        ("stop", obj.get("stop").is_none_or(Value::is_null)),
        (
            "logprobs",
            obj.get("logprobs")
                .is_none_or(|v| v.is_null() || v == &json!(false)),
        ),
        ("tools", obj.get("tools").is_none_or(Value::is_null)),
        (
            "best_of",
            obj.get("best_of").is_none_or(|n| n.as_u64() == Some(1)),
        ),
    ] {
        if !ok {
            return Err(ApiError::invalid(
                format!("{field} is not supported by this server"),
                None,
            ));
        }
    }
    let number = |field: &'static str| -> Result<Option<f64>, ApiError> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| ApiError::invalid(format!("{field} must be a number"), Some(field))),
        }
    };
    let integer = |field: &'static str| -> Result<Option<u64>, ApiError> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                ApiError::invalid(
                    format!("{field} must be a non-negative integer"),
                    Some(field),
                )
            }),
        }
    };
    let max_tokens = integer("max_completion_tokens")?
        .or(integer("max_tokens")?)
        .map_or(s.max_tokens_limit, |n| n as usize);
    if max_tokens == 0 || max_tokens > s.max_tokens_limit {
        return Err(ApiError::invalid(
            format!(
                "max_tokens must lie between 1 and this server's limit of {}, got {max_tokens}",
                s.max_tokens_limit
            ),
            Some("max_tokens"),
        ));
    }
    let temperature = number("temperature")?.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid(
            format!("temperature must lie between 0 and 2, got {temperature}"),
            Some("temperature"),
        ));
    }
    let top_p = number("top_p")?.unwrap_or(1.0);
    let top_k = integer("top_k")?.unwrap_or(0) as usize;
    let sampling = SamplingConfig::new(temperature as f32, top_k, top_p as f32)
        .map_err(|e| ApiError::invalid(e.to_string(), Some("top_p")))?;
    let seed = match integer("seed")? {
        Some(seed) => seed,
        None => OsRng.try_next_u64().map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "server_error",
            code: None,
            param: None,
            message: format!("no system randomness: {e}"),
        })?,
    };
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::invalid(
                "stream must be true or false",
                Some("stream"),
            ))
        }
    };
    let include_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let rt = s.serving.runtime();
    let prompt = match kind {
        Kind::Chat => {
            let messages = obj
                .get("messages")
                .and_then(Value::as_array)
                .filter(|m| !m.is_empty())
                .ok_or_else(|| {
                    ApiError::invalid("messages must be a non-empty list", Some("messages"))
                })?;
            let messages = messages
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    message(m).map_err(|e| {
                        ApiError::invalid(format!("messages[{i}]: {e}"), Some("messages"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            rt.encode_chat(&messages)
        }
        Kind::Completion => match obj.get("prompt") {
            Some(Value::String(p)) => rt.encode_prompt(p),
            _ => {
                return Err(ApiError::invalid(
                    "prompt must be a string (lists of prompts are not supported)",
                    Some("prompt"),
                ))
            }
        },
    }
    .map_err(|e| ApiError::invalid(e.to_string(), None))?;
    Ok(Parsed {
        prompt,
        max_tokens,
        sampling,
        seed,
        stream,
        include_usage,
    })
}

/// A chat message; content may be a string or a list of text parts.
fn message(v: &Value) -> Result<Message, String> {
    let role = v
        .get("role")
        .and_then(Value::as_str)
        .ok_or("role must be a string")?;
    let content = match v.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for p in parts {
                match (
                    p.get("type").and_then(Value::as_str),
                    p.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    _ => return Err("only text content parts are supported".into()),
                }
            }
            text
        }
        Some(Value::Null) | None => String::new(),
        Some(_) => return Err("content must be a string or a list of text parts".into()),
    };
    Ok(Message {
        role: role.to_string(),
        content,
    })
}

async fn handle(
    s: Arc<AppState>,
    body: Result<Bytes, BytesRejection>,
    kind: Kind,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| ApiError {
        status: e.status(),
        kind: "invalid_request_error",
        code: None,
        param: None,
        message: format!("cannot read the body: {}", e.body_text()),
    })?;
    let permit = Arc::clone(&s.permits)
        .try_acquire_owned()
        .map_err(|_| ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "rate_limit_error",
            code: Some("too_many_requests"),
            param: None,
            message: "too many requests in flight; retry shortly".into(),
        })?;
    let parsed = parse(&s, &body, kind)?;
    let (tx, rx) = mpsc::unbounded_channel();
    s.serving
        .engine
        .submit(
            Request {
                prompt: parsed.prompt,
                max_tokens: parsed.max_tokens,
                sampling: parsed.sampling,
                seed: parsed.seed,
            },
            Box::new(move |e| tx.send(e).is_ok()),
        )
        .map_err(|e| ApiError {
            code: Some("context_length_exceeded"),
            ..ApiError::invalid(e.to_string(), Some("messages"))
        })?;
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
    let mut response = if parsed.stream {
        stream_response(
            s.clone(),
            rx,
            permit,
            id,
            created,
            kind,
            parsed.include_usage,
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

fn usage(a: &Answer) -> Value {
    json!({
        "prompt_tokens": a.prompt_tokens,
        "completion_tokens": a.tokens.len(),
        "total_tokens": a.prompt_tokens + a.tokens.len(),
    })
}

fn engine_error(a: &Answer) -> Option<ApiError> {
    match &a.finish {
        Finish::Error(e) => Some(ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "server_error",
            code: None,
            param: None,
            message: e.clone(),
        }),
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
            None => {
                return Err(ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    kind: "server_error",
                    code: None,
                    param: None,
                    message: "the engine stopped".into(),
                })
            }
        }
    };
    if let Some(e) = engine_error(&answer) {
        return Err(e);
    }
    let choice = match kind {
        Kind::Chat => json!({
            "index": 0,
            "message": {"role": "assistant", "content": answer.text},
            "finish_reason": answer.finish.as_str(),
            "logprobs": null,
        }),
        Kind::Completion => json!({
            "index": 0,
            "text": answer.text,
            "finish_reason": answer.finish.as_str(),
            "logprobs": null,
        }),
    };
    let mut body = json!({
        "id": id,
        "object": if kind == Kind::Chat { "chat.completion" } else { "text_completion" },
        "created": created,
        "model": s.model_id,
        "choices": [choice],
        "usage": usage(&answer),
        "system_fingerprint": format!("provmark-{}", env!("CARGO_PKG_VERSION")),
    });
    if let Some((key_id, digest)) = &s.disclose {
        body["provmark"] = json!({"key_id": key_id, "profile_digest": digest});
    }
    Ok(Json(body).into_response())
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
    let object = if kind == Kind::Chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let chunk = move |delta: Option<&str>, finish: Option<&str>, first: bool| -> Value {
        let choice = match kind {
            Kind::Chat => {
                let mut d = json!({});
                if first {
                    d["role"] = json!("assistant");
                }
                if let Some(t) = delta {
                    d["content"] = json!(t);
                }
                json!({"index": 0, "delta": d, "finish_reason": finish, "logprobs": null})
            }
            Kind::Completion => {
                json!({"index": 0, "text": delta.unwrap_or(""), "finish_reason": finish, "logprobs": null})
            }
        };
        json!({"id": id, "object": object, "created": created, "model": s.model_id, "choices": [choice]})
    };
    // A task turns engine events into SSE events; it holds the request's
    // slot until the answer ends or the client leaves.
    let (sse_tx, sse_rx) = mpsc::unbounded_channel::<Result<SseEvent, Infallible>>();
    let mut rx = rx;
    tokio::spawn(async move {
        let _permit = permit;
        let mut first = true;
        let send = |v: Value| {
            sse_tx
                .send(Ok(SseEvent::default().data(v.to_string())))
                .is_ok()
        };
        while let Some(e) = rx.recv().await {
            match e {
                Event::Token { text, .. } => {
                    if first && kind == Kind::Chat {
                        first = false;
                        if !send(chunk(Some(""), None, true)) {
                            return; // client gone: dropping rx cancels the answer
                        }
                    }
                    if !text.is_empty() && !send(chunk(Some(&text), None, false)) {
                        return;
                    }
                }
                Event::Done(a) => {
                    if let Some(err) = engine_error(&a) {
                        send(json!({"error": {"message": err.message, "type": err.kind}}));
                    } else {
                        let mut last =
                            chunk(None, Some(a.finish.as_str()), first && kind == Kind::Chat);
                        if include_usage {
                            last["usage"] = usage(&a);
                        }
                        send(last);
                    }
                    let _ = sse_tx.send(Ok(SseEvent::default().data("[DONE]")));
                    return;
                }
            }
        }
    });
    Sse::new(UnboundedReceiverStream::new(sse_rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}
