//! OpenAI request bodies as typed structs, and their validation into what
//! the engine needs.
//!
//! Every field is a [`Field`]: absent, `null`, a value of the right type,
//! or a value of another type (kept, so the error can name the field the
//! way OpenAI does instead of echoing serde's message). Unknown fields are
//! ignored. [`GenerationParams::settings`] checks the fields in a fixed
//! order and returns the first problem as an [`ApiError`].

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use provmark_llm::chat::{InputError, Message, ROLES};
use provmark_llm::logprobs::MAX_TOP_LOGPROBS;
use provmark_watermark::{SamplingConfig, SamplingParam, SamplingPolicy};

use crate::error::ApiError;

/// One request field.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Field<T> {
    /// Not in the body.
    #[default]
    Absent,
    /// `null`.
    Null,
    /// A value of the expected type.
    Value(T),
    /// A value of another type (or shape), as sent.
    Invalid(Value),
}

/// Which JSON values a [`Field`] type may be read from before its own
/// `Deserialize` runs: objects only for the structs (serde would also read
/// a struct from an array), anything otherwise.
pub trait Shape {
    /// Whether `v` has the shape of this type.
    fn fits(v: &Value) -> bool {
        let _ = v;
        true
    }
}

impl Shape for u64 {}
impl Shape for f64 {}
impl Shape for bool {}
impl Shape for String {}
impl Shape for IgnoredAny {}
impl<T> Shape for Vec<T> {}
impl Shape for Content {}
impl Shape for Stop {}
impl Shape for LogprobsField {}
impl Shape for ChatMessage {
    fn fits(v: &Value) -> bool {
        v.is_object()
    }
}
impl Shape for ContentPart {
    fn fits(v: &Value) -> bool {
        v.is_object()
    }
}
impl Shape for StreamOptions {
    fn fits(v: &Value) -> bool {
        v.is_object()
    }
}

impl<'de, T: DeserializeOwned + Shape> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        if v.is_null() {
            return Ok(Field::Null);
        }
        if !T::fits(&v) {
            return Ok(Field::Invalid(v));
        }
        Ok(match T::deserialize(&v) {
            Ok(t) => Field::Value(t),
            Err(_) => Field::Invalid(v),
        })
    }
}

impl<T> Field<T> {
    /// The value; `None` when absent or null; `err` when of another type.
    fn optional(&self, err: ApiError) -> Result<Option<&T>, ApiError> {
        match self {
            Field::Absent | Field::Null => Ok(None),
            Field::Value(v) => Ok(Some(v)),
            Field::Invalid(_) => Err(err),
        }
    }

    /// Whether the field is absent or null.
    fn is_unset(&self) -> bool {
        matches!(self, Field::Absent | Field::Null)
    }
}

/// `stream_options`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct StreamOptions {
    /// Send token usage in the last chunk.
    pub include_usage: Field<bool>,
}

/// The fields `/v1/chat/completions` and `/v1/completions` share.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct GenerationParams {
    /// The model; when given, the served model's id or file name.
    pub model: Field<String>,
    /// Most tokens to generate (default: the server's limit).
    pub max_tokens: Field<u64>,
    /// OpenAI's newer name for `max_tokens`; wins over it.
    pub max_completion_tokens: Field<u64>,
    /// In [0, 2]; default 1.
    pub temperature: Field<f64>,
    /// In (0, 1]; default 1 (off).
    pub top_p: Field<f64>,
    /// 0 = off (default).
    pub top_k: Field<u64>,
    /// Seed of the sampling randomness (default: a random one).
    pub seed: Field<u64>,
    /// Server-Sent Events.
    pub stream: Field<bool>,
    /// Streaming options.
    pub stream_options: Field<StreamOptions>,
    /// Answers per request, 1 ..= the server's limit (default 1).
    pub n: Field<u64>,
    /// Only 1.
    pub best_of: Field<u64>,
    /// Stop sequences: a string or a list of up to [`MAX_STOP`] strings.
    pub stop: Field<Stop>,
    /// Chat: `true` reports each token's log-probability; completions: the
    /// number of alternatives to report with it.
    pub logprobs: Field<LogprobsField>,
    /// Chat: alternatives per token, 0 ..= 20 (needs `logprobs: true`).
    pub top_logprobs: Field<u64>,
    /// Tool calls: not supported (absent or null only).
    pub tools: Field<IgnoredAny>,
    /// The legacy form of tools: not supported either.
    pub functions: Field<IgnoredAny>,
}

/// Most stop sequences a request may give (OpenAI's limit).
pub const MAX_STOP: usize = 4;

/// Longest stop sequence, in bytes.
pub const MAX_STOP_BYTES: usize = 256;

/// `stop`: one string or a list of strings.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop sequence.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `logprobs`: a boolean (chat) or a count (completions).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum LogprobsField {
    /// Chat's form.
    Flag(bool),
    /// Completions' form: how many alternatives.
    Count(u64),
}

/// Which endpoint a request came to (its `logprobs` differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completion,
}

/// What the server allows, for [`GenerationParams::settings`].
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest `max_tokens` (also the default), ≥ 1.
    pub max_tokens: usize,
    /// Largest `n`, ≥ 1.
    pub max_n: usize,
    /// The watermark makes a prompt's answer a function of the prompt
    /// (gumbel, synthid: spec §6), so `n > 1` would return copies and is
    /// refused.
    pub one_answer_per_prompt: bool,
    /// Whether log-probabilities may be asked for.
    pub logprobs: bool,
    /// What happens to sampling settings below the watermark's floor.
    pub policy: SamplingPolicy,
}

/// A `/v1/chat/completions` body.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ChatCompletionRequest {
    /// Sampling and protocol fields.
    #[serde(flatten)]
    pub params: GenerationParams,
    /// The chat (non-empty).
    #[serde(default)]
    pub messages: Field<Vec<Field<ChatMessage>>>,
}

/// A `/v1/completions` body.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CompletionRequest {
    /// Sampling and protocol fields.
    #[serde(flatten)]
    pub params: GenerationParams,
    /// The prompt text, sent as is (one string; lists are refused).
    #[serde(default)]
    pub prompt: Field<String>,
}

/// One chat message.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, ...
    pub role: Field<String>,
    /// A string, a list of text parts, or null/absent (empty).
    pub content: Field<Content>,
}

/// A message's content.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts; only `{"type": "text", "text": ...}` are supported.
    Parts(Vec<Field<ContentPart>>),
}

/// One content part.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContentPart {
    /// Must be `text`.
    #[serde(rename = "type")]
    pub kind: Field<String>,
    /// The text.
    pub text: Field<String>,
}

/// A body as JSON: fails unless it parses and is an object.
fn object(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(ApiError::NotJson)?;
    if !v.is_object() {
        return Err(ApiError::NotObject);
    }
    Ok(v)
}

impl ChatCompletionRequest {
    /// Parses a body: [`ApiError::NotJson`] or [`ApiError::NotObject`].
    pub fn from_body(body: &[u8]) -> Result<ChatCompletionRequest, ApiError> {
        ChatCompletionRequest::deserialize(object(body)?).map_err(ApiError::NotJson)
    }

    /// The chat, checked: roles among OpenAI's ([`ROLES`]); contents are
    /// strings, null or lists of text parts (joined), tokenized as text by
    /// the runtime, control-token text included.
    pub fn chat(&self) -> Result<Vec<Message>, ApiError> {
        let messages = match &self.messages {
            Field::Value(m) if !m.is_empty() => m,
            _ => return Err(ApiError::Messages),
        };
        messages
            .iter()
            .enumerate()
            .map(|(index, m)| {
                let bad = |problem| ApiError::Message { index, problem };
                let m = match m {
                    Field::Value(m) => m,
                    _ => return Err(bad("role must be a string")),
                };
                let Field::Value(role) = &m.role else {
                    return Err(bad("role must be a string"));
                };
                // Roles are written into the template's own text.
                if !ROLES.contains(&role.as_str()) {
                    return Err(ApiError::Input(InputError::Role {
                        index,
                        role: role.clone(),
                    }));
                }
                let content = match &m.content {
                    Field::Value(Content::Text(s)) => s.clone(),
                    Field::Value(Content::Parts(parts)) => {
                        let mut text = String::new();
                        for p in parts {
                            match p {
                                Field::Value(ContentPart {
                                    kind: Field::Value(kind),
                                    text: Field::Value(t),
                                }) if kind == "text" => text.push_str(t),
                                _ => return Err(bad("only text content parts are supported")),
                            }
                        }
                        text
                    }
                    Field::Null | Field::Absent => String::new(),
                    Field::Invalid(_) => {
                        return Err(bad("content must be a string or a list of text parts"))
                    }
                };
                Ok(Message {
                    role: role.clone(),
                    content,
                })
            })
            .collect()
    }
}

impl CompletionRequest {
    /// Parses a body: [`ApiError::NotJson`] or [`ApiError::NotObject`].
    pub fn from_body(body: &[u8]) -> Result<CompletionRequest, ApiError> {
        CompletionRequest::deserialize(object(body)?).map_err(ApiError::NotJson)
    }

    /// The prompt text, checked.
    pub fn prompt_text(&self) -> Result<&str, ApiError> {
        match &self.prompt {
            Field::Value(p) => Ok(p),
            _ => Err(ApiError::Prompt),
        }
    }
}

/// What the served model accepts as its name.
#[derive(Clone, Debug)]
pub struct ModelNames<'a> {
    /// The id `/v1/models` lists.
    pub id: &'a str,
    /// The model file's name (also accepted).
    pub file: &'a str,
}

/// Validated settings of one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Most tokens to generate, 1..=limit.
    pub max_tokens: usize,
    /// Temperature, top-k, top-p as served (after the policy).
    pub sampling: SamplingConfig,
    /// As asked.
    pub requested: SamplingConfig,
    /// The parameters the policy's floor raised.
    pub raised: Vec<SamplingParam>,
    /// Answers to generate.
    pub n: usize,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Alternatives per token when log-probabilities are asked for.
    pub logprobs: Option<usize>,
    /// The seed asked for, if any.
    pub seed: Option<u64>,
    /// Server-Sent Events.
    pub stream: bool,
    /// Usage in the last chunk.
    pub include_usage: bool,
}

impl GenerationParams {
    /// Checks the fields, in this order: `model`; the unsupported `tools`,
    /// `best_of`; `n`; `stop`; `logprobs`, `top_logprobs`;
    /// `max_completion_tokens` and `max_tokens` (against the limit, also
    /// the default); `temperature`, `top_p`, `top_k`, then the policy;
    /// `seed`; `stream`.
    pub fn settings(
        &self,
        model: &ModelNames,
        limits: &Limits,
        endpoint: Endpoint,
    ) -> Result<Settings, ApiError> {
        let max_tokens_limit = limits.max_tokens;
        match &self.model {
            Field::Absent => {}
            Field::Value(name) if name == model.id || name == model.file => {}
            other => {
                let given = match other {
                    Field::Value(name) => Value::from(name.as_str()),
                    Field::Invalid(v) => v.clone(),
                    _ => Value::Null,
                };
                return Err(ApiError::UnknownModel {
                    given,
                    served: model.id.to_string(),
                });
            }
        }
        let one = |f: &Field<u64>| matches!(f, Field::Absent | Field::Value(1));
        for (field, ok) in [
            ("tools", self.tools.is_unset()),
            ("functions", self.functions.is_unset()),
            ("best_of", one(&self.best_of)),
        ] {
            if !ok {
                return Err(ApiError::Unsupported(field));
            }
        }
        let integer =
            |f: &Field<u64>, name| f.optional(ApiError::NotAnInteger(name)).map(|v| v.copied());
        let n = integer(&self.n, "n")?.unwrap_or(1);
        if n > 1 && limits.one_answer_per_prompt {
            return Err(ApiError::NCopies);
        }
        if n == 0 || n > limits.max_n as u64 {
            return Err(ApiError::N {
                max: limits.max_n,
                got: n,
            });
        }
        let stop = self.stop_sequences()?;
        let logprobs = self.logprobs(endpoint)?;
        if logprobs.is_some() && !limits.logprobs {
            return Err(ApiError::LogprobsOff);
        }
        let number =
            |f: &Field<f64>, name| f.optional(ApiError::NotANumber(name)).map(|v| v.copied());
        let max_completion = integer(&self.max_completion_tokens, "max_completion_tokens")?;
        let max_tokens = integer(&self.max_tokens, "max_tokens")?;
        let max_tokens = max_completion
            .or(max_tokens)
            .map_or(max_tokens_limit, |n| n as usize);
        if max_tokens == 0 || max_tokens > max_tokens_limit {
            return Err(ApiError::MaxTokens {
                limit: max_tokens_limit,
                got: max_tokens,
            });
        }
        let temperature = number(&self.temperature, "temperature")?.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::Temperature(temperature));
        }
        let top_p = number(&self.top_p, "top_p")?.unwrap_or(1.0);
        let top_k = integer(&self.top_k, "top_k")?.unwrap_or(0) as usize;
        let requested = SamplingConfig::new(temperature as f32, top_k, top_p as f32)
            .map_err(ApiError::Sampling)?;
        let applied = limits
            .policy
            .apply(requested)
            .map_err(ApiError::BelowFloor)?;
        let seed = integer(&self.seed, "seed")?;
        let stream = self
            .stream
            .optional(ApiError::Stream)?
            .copied()
            .unwrap_or(false);
        let include_usage = matches!(
            &self.stream_options,
            Field::Value(StreamOptions {
                include_usage: Field::Value(true)
            })
        );
        Ok(Settings {
            max_tokens,
            sampling: applied.sampling,
            requested,
            raised: applied.raised,
            n: n as usize,
            stop,
            logprobs,
            seed,
            stream,
            include_usage,
        })
    }

    fn stop_sequences(&self) -> Result<Vec<String>, ApiError> {
        let stop = match &self.stop {
            Field::Absent | Field::Null => Vec::new(),
            Field::Value(Stop::One(s)) => vec![s.clone()],
            Field::Value(Stop::Many(v)) => v.clone(),
            Field::Invalid(_) => {
                return Err(ApiError::Stop(
                    "must be a string or a list of strings".into(),
                ))
            }
        };
        if stop.len() > MAX_STOP {
            return Err(ApiError::Stop(format!(
                "takes at most {MAX_STOP} sequences, got {}",
                stop.len()
            )));
        }
        if let Some(bad) = stop
            .iter()
            .position(|s| s.is_empty() || s.len() > MAX_STOP_BYTES)
        {
            return Err(ApiError::Stop(format!(
                "sequence {bad} must hold 1 to {MAX_STOP_BYTES} bytes"
            )));
        }
        Ok(stop)
    }

    /// Alternatives per token, when log-probabilities are asked for.
    fn logprobs(&self, endpoint: Endpoint) -> Result<Option<usize>, ApiError> {
        let top = match &self.top_logprobs {
            Field::Absent | Field::Null => None,
            Field::Value(n) if *n as usize <= MAX_TOP_LOGPROBS => Some(*n as usize),
            _ => return Err(ApiError::TopLogprobs),
        };
        match (endpoint, &self.logprobs) {
            (_, Field::Absent | Field::Null)
            | (Endpoint::Chat, Field::Value(LogprobsField::Flag(false))) => {
                if top.is_some_and(|n| n > 0) && endpoint == Endpoint::Chat {
                    return Err(ApiError::TopLogprobsAlone);
                }
                Ok(None)
            }
            (Endpoint::Chat, Field::Value(LogprobsField::Flag(true))) => Ok(Some(top.unwrap_or(0))),
            (Endpoint::Completion, Field::Value(LogprobsField::Count(n)))
                if *n as usize <= MAX_TOP_LOGPROBS =>
            {
                Ok(Some(*n as usize))
            }
            (Endpoint::Chat, _) => Err(ApiError::Logprobs("must be true or false")),
            (Endpoint::Completion, _) => Err(ApiError::Logprobs(
                "must be an integer from 0 to 20 (alternatives per token)",
            )),
        }
    }
}
