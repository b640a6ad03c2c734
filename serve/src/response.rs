//! OpenAI response bodies as typed structs (what the endpoints send).

use serde::Serialize;

/// `{"error": ...}`.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// OpenAI's error object.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorDetail {
    /// Human-readable.
    pub message: String,
    /// `invalid_request_error`, `rate_limit_error`, `server_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request field at fault (`messages[0].role`), or null.
    pub param: Option<String>,
    /// A machine-readable code, or null.
    pub code: Option<&'static str>,
}

/// The error event of a stream that fails midway.
#[derive(Clone, Debug, Serialize)]
pub struct StreamError {
    /// Message and type only.
    pub error: StreamErrorDetail,
}

/// See [`StreamError`].
#[derive(Clone, Debug, Serialize)]
pub struct StreamErrorDetail {
    /// Human-readable.
    pub message: String,
    /// OpenAI's error type.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// Token counts.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Usage {
    /// Prompt tokens (chat template applied).
    pub prompt_tokens: usize,
    /// Generated tokens.
    pub completion_tokens: usize,
    /// Their sum.
    pub total_tokens: usize,
}

/// The watermark's public facts (`--disclose-key-id`).
#[derive(Clone, Debug, Serialize)]
pub struct Disclosure {
    /// The profile's key id (never the key).
    pub key_id: String,
    /// The profile's digest.
    pub profile_digest: String,
}

/// A whole answer: `chat.completion` or `text_completion`.
#[derive(Clone, Debug, Serialize)]
pub struct Completion<C> {
    /// `chatcmpl-...` or `cmpl-...`.
    pub id: String,
    /// `chat.completion` or `text_completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The served model's id.
    pub model: String,
    /// One choice.
    pub choices: Vec<C>,
    /// Token counts.
    pub usage: Usage,
    /// `provmark-<version>`.
    pub system_fingerprint: String,
    /// Present when the server discloses its key id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provmark: Option<Disclosure>,
}

/// A chat choice.
#[derive(Clone, Debug, Serialize)]
pub struct ChatChoice {
    /// 0.
    pub index: u32,
    /// The answer.
    pub message: AssistantMessage,
    /// `stop` or `length`.
    pub finish_reason: &'static str,
    /// Always null.
    pub logprobs: Option<()>,
}

/// The assistant's message.
#[derive(Clone, Debug, Serialize)]
pub struct AssistantMessage {
    /// `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

/// A text-completion choice (whole or streamed).
#[derive(Clone, Debug, Serialize)]
pub struct TextChoice {
    /// 0.
    pub index: u32,
    /// The (new) text.
    pub text: String,
    /// `stop` or `length`; null in a chunk before the end.
    pub finish_reason: Option<&'static str>,
    /// Always null.
    pub logprobs: Option<()>,
}

/// One streamed chunk: `chat.completion.chunk` or `text_completion`.
#[derive(Clone, Debug, Serialize)]
pub struct Chunk<C> {
    /// The answer's id (same in every chunk).
    pub id: String,
    /// `chat.completion.chunk` or `text_completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The served model's id.
    pub model: String,
    /// One choice.
    pub choices: Vec<C>,
    /// In the last chunk when `stream_options.include_usage` is true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// A streamed chat choice.
#[derive(Clone, Debug, Serialize)]
pub struct ChatChunkChoice {
    /// 0.
    pub index: u32,
    /// What is new.
    pub delta: Delta,
    /// `stop` or `length` in the last chunk, else null.
    pub finish_reason: Option<&'static str>,
    /// Always null.
    pub logprobs: Option<()>,
}

/// A chat chunk's delta.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Delta {
    /// `assistant`, in the first chunk only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// New text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// `GET /health`.
#[derive(Clone, Debug, Serialize)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
    /// The served model's id.
    pub model: String,
    /// Whether answers carry the watermark.
    pub watermark: bool,
    /// Request slots free now.
    pub available_slots: usize,
}

/// `GET /v1/models`.
#[derive(Clone, Debug, Serialize)]
pub struct ModelList {
    /// `list`.
    pub object: &'static str,
    /// The one model.
    pub data: Vec<ModelCard>,
}

/// One model of [`ModelList`].
#[derive(Clone, Debug, Serialize)]
pub struct ModelCard {
    /// Its id.
    pub id: String,
    /// `model`.
    pub object: &'static str,
    /// 0.
    pub created: u64,
    /// `provmark`.
    pub owned_by: &'static str,
}
