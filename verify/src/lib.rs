//! provmark-verify: detection of provmark watermarks with exact p-values.
//!
//! [`Detector`] scores token sequences against one profile; [`stats`] holds
//! the exact tails; [`window`] finds watermarked stretches in mixed text;
//! [`detect_batch`] scores many texts on all cores in input order;
//! [`corpus`] pools a whole corpus into one test.

pub mod corpus;
pub mod detect;
pub mod input;
pub mod stats;
pub mod tokenize;
pub mod window;

use rayon::prelude::*;

pub use detect::{null_test, Dedup, Detection, Detector, ScoredText, TestResult};
pub use stats::PValue;
pub use tokenize::TextTokenizer;
pub use window::{best_window, WindowResult};

/// Errors of the verification library. Messages name files, lines and
/// fields; they never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Key or profile problem (e.g. [`provmark_watermark::Error::KeyMismatch`]).
    #[error(transparent)]
    Watermark(#[from] provmark_watermark::Error),
    /// A tokenizer file that cannot be read.
    #[error("tokenizer: {origin}: {source}")]
    TokenizerRead {
        /// The file.
        origin: String,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// Bytes that are not a usable `tokenizer.json`.
    #[error("tokenizer: {origin}: not a usable tokenizer.json: {reason}")]
    TokenizerParse {
        /// Where the bytes came from.
        origin: String,
        /// The parser's message.
        reason: String,
    },
    /// The tokenizer is not the one the profile was made for.
    #[error(
        "tokenizer: tokenizer mismatch: the profile was made for {expected} but this tokenizer is {got}; \
         token ids would differ and detection would be meaningless (--force-tokenizer overrides)"
    )]
    TokenizerMismatch {
        /// The profile's tokenizer digest.
        expected: provmark_watermark::TokenizerDigest,
        /// The digest of the tokenizer given.
        got: provmark_watermark::TokenizerDigest,
    },
    /// The tokenizer failed on a text.
    #[error("tokenizer: tokenization failed: {0}")]
    Tokenization(String),
    /// A corpus test for a context width this version cannot pack
    /// ([`corpus::MAX_CORPUS_CONTEXT`]).
    #[error("corpus tests support context widths up to {max} for now; the profile has h = {h}")]
    ContextTooWide {
        /// The profile's context width.
        h: usize,
        /// The largest supported.
        max: usize,
    },
    /// Reading mode: a prediction count that is not the text's length.
    #[error("{predictions} predictions for a text of {tokens} tokens")]
    PredictionCount {
        /// Predictions given.
        predictions: usize,
        /// Tokens in the text.
        tokens: usize,
    },
    /// Two tuple sets of different context width or shard cannot merge.
    #[error(
        "cannot merge tuple sets of different context width or shard (h {h} vs {other_h}, shard {}/{} vs {}/{})",
        shard.index(), shard.count(), other_shard.index(), other_shard.count()
    )]
    TupleSetMismatch {
        /// Context width of the set merged into.
        h: usize,
        /// Context width of the other set.
        other_h: usize,
        /// Shard of the set merged into.
        shard: corpus::Shard,
        /// Shard of the other set.
        other_shard: corpus::Shard,
    },
    /// Tuples collected with another context width than the profile's.
    #[error("the tuples were collected with h = {tuples} but the profile has h = {profile}")]
    TuplesContextMismatch {
        /// Context width of the tuples.
        tuples: usize,
        /// Context width of the profile.
        profile: usize,
    },
    /// A window filter built with another context width than the tuples.
    #[error("the filter was built with h = {filter} but the tuples with h = {tuples}")]
    FilterContextMismatch {
        /// Context width of the filter.
        filter: usize,
        /// Context width of the tuples.
        tuples: usize,
    },
}

/// Detects many token sequences on all cores; results keep input order.
pub fn detect_batch(detector: &Detector, texts: &[Vec<u32>]) -> Vec<Detection> {
    texts.par_iter().map(|ids| detector.detect(ids)).collect()
}
