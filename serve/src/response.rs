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

/// The `provmark` extension of every answer (and of each stream's last
/// chunk per choice): what was served and how much of it carries the mark,
/// so an operator can show which policy applied (spec §6.2).
#[derive(Clone, Debug, Serialize)]
pub struct Provenance {
    /// Whether the engine embeds a watermark.
    pub watermark: bool,
    /// The sampling policy: `floor`, `refuse` or `as-requested`.
    pub policy: &'static str,
    /// The sampling settings served with.
    pub sampling: ServedSampling,
    /// The request's parameters the policy's floor raised.
    pub raised: Vec<&'static str>,
    /// Generated tokens whose choice the key could change, over the choices
    /// this object covers (all of a whole answer; one in a stream chunk).
    pub marked_tokens: usize,
    /// Generated tokens over the same choices.
    pub completion_tokens: usize,
    /// The profile's key id (never the key), with `--disclose-key-id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The profile's digest, with `--disclose-key-id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_digest: Option<String>,
}

/// Sampling settings as served.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ServedSampling {
    /// Temperature.
    pub temperature: f32,
    /// Top-p (1 = off).
    pub top_p: f32,
    /// Top-k (0 = off).
    pub top_k: usize,
}

/// One token's log-probability in a chat answer (OpenAI's shape).
#[derive(Clone, Debug, Serialize)]
pub struct ChatTokenLogprob {
    /// The token's text (lossy when it holds part of a character).
    pub token: String,
    /// ln p under the model's own distribution (spec §6.3).
    pub logprob: f32,
    /// The token's bytes.
    pub bytes: Vec<u8>,
    /// The most likely alternatives, most likely first.
    pub top_logprobs: Vec<TopLogprob>,
}

/// An alternative token.
#[derive(Clone, Debug, Serialize)]
pub struct TopLogprob {
    /// Its text.
    pub token: String,
    /// ln p.
    pub logprob: f32,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A chat choice's `logprobs`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChatLogprobs {
    /// One entry per generated token.
    pub content: Vec<ChatTokenLogprob>,
}

/// A text completion's `logprobs` (the legacy shape).
#[derive(Clone, Debug, Default, Serialize)]
pub struct TextLogprobs {
    /// Token texts.
    pub tokens: Vec<String>,
    /// Their ln p.
    pub token_logprobs: Vec<f32>,
    /// Per token, alternative text → ln p.
    pub top_logprobs: Vec<std::collections::BTreeMap<String, f32>>,
    /// Each token's byte offset in the answer's text.
    pub text_offset: Vec<usize>,
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
    /// What was served and how much of it is marked.
    pub provmark: Provenance,
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
    /// When asked for.
    pub logprobs: Option<ChatLogprobs>,
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
    /// When asked for.
    pub logprobs: Option<TextLogprobs>,
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
    /// In each choice's last chunk: that choice's [`Provenance`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provmark: Option<Provenance>,
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
    /// The chunk's tokens, when asked for.
    pub logprobs: Option<ChatLogprobs>,
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
    /// The sampling policy (`floor`, `refuse`, `as-requested`).
    pub sampling_policy: &'static str,
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
