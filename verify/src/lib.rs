//! provmark-verify: detection of provmark watermarks with exact p-values.
//!
//! [`Detector`] scores token sequences against one profile; [`stats`] holds
//! the exact tails; [`window`] finds watermarked stretches in mixed text;
//! [`detect_batch`] scores many texts on all cores in input order;
//! [`corpus`] pools a whole corpus into one test; [`decision`] holds the
//! verdict, the text/window combination and the Holm family decision;
//! [`scan`] runs detection over input files ([`DetectConfig`]).

pub mod align;
pub mod attribution;
pub mod byte_bpe;
pub mod corpus;
pub mod decision;
pub mod detect;
pub mod expected;
pub mod input;
pub mod normalize;
pub mod precise;
pub mod print;
pub mod scan;
pub mod stats;
pub mod tokenize;
pub mod window;

use rayon::prelude::*;

pub use decision::{FamilyDecision, ProfileOutcome, Verdict};
pub use detect::{null_test, Dedup, Detection, Detector, NullDistribution, ScoredText, TestResult};
pub use normalize::Normalization;
pub use scan::{DetectConfig, TextResult};
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
    #[error("tokenizer: {origin}: {io}")]
    TokenizerRead {
        /// The file.
        origin: String,
        /// Why reading failed (in the message, not as a `source()`, so an
        /// error chain prints it once).
        io: std::io::Error,
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
    /// A statistic too large to hold exactly in binary64 (spec §8: at least
    /// 2^37, some 3.7 · 10^9 positions or more): split the corpus.
    #[error("the statistic reached 2^37, beyond what this version sums exactly (spec §8); split the corpus into separate audits")]
    StatisticTooLarge,
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

#[cfg(test)]
mod tests {
    use super::*;
    use corpus::{Shard, TupleSet, WindowSet};

    /// The typed errors print the messages the `String` errors printed.
    #[test]
    fn error_messages_are_unchanged() {
        let too_wide = TupleSet::new(4, Shard::ALL).unwrap_err();
        assert!(matches!(too_wide, Error::ContextTooWide { h: 4, max: 3 }));
        assert_eq!(
            too_wide.to_string(),
            "corpus tests support context widths up to 3 for now; the profile has h = 4"
        );
        assert_eq!(
            WindowSet::new(9).unwrap_err().to_string(),
            "corpus tests support context widths up to 3 for now; the profile has h = 9"
        );
        let mut set = TupleSet::new(2, Shard::ALL).unwrap();
        assert_eq!(
            set.add_predictions(&[1, 2, 3], &[1])
                .unwrap_err()
                .to_string(),
            "1 predictions for a text of 3 tokens"
        );
        let other = TupleSet::new(1, Shard::new(1, 4).unwrap()).unwrap();
        assert_eq!(
            set.union(other).unwrap_err().to_string(),
            "cannot merge tuple sets of different context width or shard (h 2 vs 1, shard 0/1 vs 1/4)"
        );
        let mut tuples = TupleSet::new(2, Shard::ALL).unwrap().finish();
        let filter = WindowSet::new(1).unwrap().finish();
        assert_eq!(
            tuples.retain_windows(&filter).unwrap_err().to_string(),
            "the filter was built with h = 1 but the tuples with h = 2"
        );
        let key = provmark_watermark::Key::from_bytes([3; 32]);
        let tok = provmark_watermark::TokenizerDigest::of_bytes(b"t");
        let profile =
            provmark_watermark::Profile::new(provmark_watermark::Scheme::Gumbel, 1, tok, &key)
                .unwrap();
        let detector = Detector::new(&profile, &key).unwrap();
        assert_eq!(
            corpus::score_tuples(&detector, &tuples)
                .unwrap_err()
                .to_string(),
            "the tuples were collected with h = 2 but the profile has h = 1"
        );
        let expected = provmark_watermark::TokenizerDigest::of_bytes(b"a");
        let got = provmark_watermark::TokenizerDigest::of_bytes(b"b");
        let mismatch = Error::TokenizerMismatch {
            expected: expected.clone(),
            got: got.clone(),
        };
        assert_eq!(
            mismatch.to_string(),
            format!(
                "tokenizer: tokenizer mismatch: the profile was made for {expected} but this tokenizer is {got}; \
                 token ids would differ and detection would be meaningless (--force-tokenizer overrides)"
            )
        );
        let other_key = provmark_watermark::Key::from_bytes([4; 32]);
        let wrong = Detector::new(&profile, &other_key).err().unwrap();
        assert_eq!(
            wrong.to_string(),
            format!(
                "key: the key (id {}) is not the key this profile was made for (id {})",
                other_key.id(),
                key.id()
            )
        );
    }
}
