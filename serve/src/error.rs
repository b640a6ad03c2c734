//! Errors: what a request gets back (in OpenAI's shape, with its HTTP
//! status) and why the server could not start or run.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use crate::response::{ErrorBody, ErrorDetail};

/// Why a request failed. [`IntoResponse`] turns it into OpenAI's
/// `{"error": {"message", "type", "param", "code"}}` with the status of
/// [`ApiError::status`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body does not parse as JSON.
    #[error("the body is not valid JSON: {0}")]
    NotJson(serde_json::Error),
    /// 400: the body is JSON but not an object.
    #[error("the body must be a JSON object")]
    NotObject,
    /// 404: `model` names another model than the one served (`given` is the
    /// field as JSON).
    #[error("the model {given} does not exist; this server has {served:?}")]
    UnknownModel {
        /// The `model` field, as JSON.
        given: Value,
        /// The served model's id.
        served: String,
    },
    /// 400: a field this server refuses (`best_of` > 1, `tools`).
    #[error("{0} is not supported by this server")]
    Unsupported(&'static str),
    /// 400: `n` is 0 or over the limit.
    #[error("n must lie between 1 and this server's limit of {max}, got {got}")]
    N {
        /// The server's limit.
        max: usize,
        /// What was asked.
        got: u64,
    },
    /// 400: `n` > 1 under a watermark whose answer is a function of the
    /// prompt (gumbel, synthid).
    #[error(
        "n must be 1 on this server: under its watermark (gumbel or synthid) a prompt has one \
         answer whatever the seed, so more choices would be copies"
    )]
    NCopies,
    /// 400: `stop` is malformed.
    #[error("stop {0}")]
    Stop(String),
    /// 400: `logprobs` has the wrong form for the endpoint.
    #[error("logprobs {0}")]
    Logprobs(&'static str),
    /// 400: `top_logprobs` is not an integer from 0 to 20.
    #[error("top_logprobs must be an integer from 0 to 20")]
    TopLogprobs,
    /// 400: `top_logprobs` without `logprobs: true`.
    #[error("top_logprobs needs logprobs: true")]
    TopLogprobsAlone,
    /// 400: the operator turned log-probabilities off.
    #[error("logprobs are turned off on this server")]
    LogprobsOff,
    /// 400: sampling settings below the watermark's floor, under a refusing
    /// policy (spec §6.2).
    #[error("{0}")]
    BelowFloor(provmark_watermark::BelowFloor),
    /// 400: a field that must be a number is not.
    #[error("{0} must be a number")]
    NotANumber(&'static str),
    /// 400: a field that must be a non-negative integer is not.
    #[error("{0} must be a non-negative integer")]
    NotAnInteger(&'static str),
    /// 400: `max_tokens` (or `max_completion_tokens`) is 0 or over the limit.
    #[error("max_tokens must lie between 1 and this server's limit of {limit}, got {got}")]
    MaxTokens {
        /// The server's limit.
        limit: usize,
        /// What was asked.
        got: usize,
    },
    /// 400: `temperature` outside [0, 2].
    #[error("temperature must lie between 0 and 2, got {0}")]
    Temperature(f64),
    /// 400: the sampling settings are invalid (e.g. `top_p` outside (0, 1]).
    #[error("{0}")]
    Sampling(provmark_watermark::Error),
    /// 400: `stream` is not a boolean.
    #[error("stream must be true or false")]
    Stream,
    /// 400: `messages` is missing, empty or not a list.
    #[error("messages must be a non-empty list")]
    Messages,
    /// 400: `messages[index]` is malformed.
    #[error("messages[{index}]: {problem}")]
    Message {
        /// Its position.
        index: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// 400: a message the chat template may not see (a role outside
    /// OpenAI's, [`provmark_llm::chat::ROLES`]); `param` names its field,
    /// `messages[i].role`.
    #[error("{0}")]
    Input(provmark_llm::chat::InputError),
    /// 400: `prompt` is not a string.
    #[error("prompt must be a string (lists of prompts are not supported)")]
    Prompt,
    /// 400: the prompt cannot be tokenized (e.g. the chat template fails).
    #[error("{0}")]
    Encode(provmark_llm::Error),
    /// 400: the engine refused the prompt (too long for the context);
    /// `param` is `messages` or `prompt`.
    #[error("{source}")]
    ContextLength {
        /// The field holding the prompt.
        param: &'static str,
        /// Why.
        source: provmark_llm::Error,
    },
    /// The body cannot be read (413 when over the size limit).
    #[error("cannot read the body: {text}")]
    Body {
        /// The status axum chose.
        status: StatusCode,
        /// axum's explanation.
        text: String,
    },
    /// 429: all request slots are taken.
    #[error("too many requests in flight; retry shortly")]
    TooManyRequests,
    /// 405: the endpoint exists for another method.
    #[error("this endpoint takes {allowed} requests")]
    MethodNotAllowed {
        /// The method it takes.
        allowed: &'static str,
    },
    /// 404: no such endpoint.
    #[error("no such endpoint; see provmark serve --help")]
    NotFound,
    /// 500: no system randomness for a seed.
    #[error("no system randomness: {0}")]
    NoRandomness(String),
    /// 503: the engine stopped before answering.
    #[error("the engine stopped")]
    EngineStopped,
    /// 500: the engine failed on this answer.
    #[error("{0}")]
    Engine(String),
    /// Refused by the transport ([`crate::transport`]): 408 (the body came
    /// too slowly), 413 (its declared length is over the limit), 503 (too
    /// many open connections).
    #[error("{message}")]
    Transport {
        /// The status.
        status: StatusCode,
        /// What happened.
        message: String,
        /// OpenAI-style `code`.
        code: &'static str,
    },
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownModel { .. } | ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Body { status, .. } | ApiError::Transport { status, .. } => *status,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NoRandomness(_) | ApiError::Engine(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::EngineStopped => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// OpenAI's error `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::TooManyRequests => "rate_limit_error",
            ApiError::Transport { status, .. } if status.is_server_error() => "server_error",
            ApiError::NoRandomness(_) | ApiError::EngineStopped | ApiError::Engine(_) => {
                "server_error"
            }
            _ => "invalid_request_error",
        }
    }

    /// The field at fault as the error body's `param` names it: one
    /// message's field (`messages[1].role`, `messages[0].content`) where
    /// that is known, else [`param`](Self::param).
    pub fn param_path(&self) -> Option<String> {
        match self {
            ApiError::Input(e) | ApiError::Encode(provmark_llm::Error::Input(e)) => Some(e.field()),
            _ => self.param().map(str::to_string),
        }
    }

    /// The top-level request field at fault, if one is.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            ApiError::UnknownModel { .. } => Some("model"),
            ApiError::NotANumber(f) | ApiError::NotAnInteger(f) | ApiError::Unsupported(f) => {
                Some(f)
            }
            ApiError::N { .. } | ApiError::NCopies => Some("n"),
            ApiError::Stop(_) => Some("stop"),
            ApiError::Logprobs(_) | ApiError::LogprobsOff => Some("logprobs"),
            ApiError::TopLogprobs | ApiError::TopLogprobsAlone => Some("top_logprobs"),
            ApiError::BelowFloor(b) => Some(b.param.name()),
            ApiError::ContextLength { param, .. } => Some(param),
            ApiError::MaxTokens { .. } => Some("max_tokens"),
            ApiError::Temperature(_) => Some("temperature"),
            ApiError::Sampling(_) => Some("top_p"),
            ApiError::Stream => Some("stream"),
            ApiError::Messages
            | ApiError::Message { .. }
            | ApiError::Input(_)
            | ApiError::Encode(provmark_llm::Error::Input(_)) => Some("messages"),
            ApiError::Prompt => Some("prompt"),
            _ => None,
        }
    }

    /// OpenAI's error `code`, if there is one.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            ApiError::UnknownModel { .. } => Some("model_not_found"),
            ApiError::ContextLength { .. } => Some("context_length_exceeded"),
            ApiError::BelowFloor(_) => Some("sampling_below_watermark_floor"),
            ApiError::MethodNotAllowed { .. } => Some("method_not_allowed"),
            ApiError::TooManyRequests => Some("too_many_requests"),
            ApiError::NotFound => Some("not_found"),
            ApiError::Transport { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The error as OpenAI's JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message: self.to_string(),
                kind: self.kind(),
                param: self.param_path(),
                code: self.code(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The operator's sampling floor would leave the scheme no choice.
    #[error("--sampling-floor: {0}")]
    Floor(provmark_watermark::Error),
    /// A limit of [`crate::ServeConfig`] is 0.
    #[error("max_tokens_limit and max_concurrent must be at least 1")]
    ZeroLimit,
    /// No system randomness for the response-id prefix.
    #[error("cannot read the system's randomness: {0}")]
    Randomness(String),
    /// A setting of [`crate::ListenConfig`] is 0.
    #[error("the {0} must be above 0")]
    ZeroSetting(&'static str),
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime cannot start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// Accepting connections failed.
    #[error("server failed")]
    Serve(#[source] std::io::Error),
}
