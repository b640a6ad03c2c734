//! provmark-verify: detection of provmark watermarks with exact p-values.
//!
//! [`Detector`] scores token sequences against one profile; [`stats`] holds
//! the exact tails; [`window`] finds watermarked stretches in mixed text;
//! [`detect_batch`] scores many texts on all cores in input order;
//! [`corpus`] pools a whole corpus into one test; [`decision`] holds the
//! verdict, the text/window combination and the Holm family decision;
//! [`scan`] runs detection over input files ([`DetectConfig`]).

pub mod attribution;
pub mod corpus;
pub mod decision;
pub mod detect;
pub mod input;
pub mod scan;
pub mod stats;
pub mod tokenize;
pub mod window;

use rayon::prelude::*;

pub use decision::{FamilyDecision, ProfileOutcome, Verdict};
pub use detect::{null_test, Dedup, Detection, Detector, ScoredText, TestResult};
pub use scan::{DetectConfig, TextResult};
pub use stats::PValue;
pub use tokenize::TextTokenizer;
pub use window::{best_window, WindowResult};

/// Errors of the verification library. Messages name files, lines and
/// fields; they never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Key or profile problem.
    #[error(transparent)]
    Watermark(#[from] provmark_watermark::Error),
    /// Tokenizer problem.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

/// Detects many token sequences on all cores; results keep input order.
pub fn detect_batch(detector: &Detector, texts: &[Vec<u32>]) -> Vec<Detection> {
    texts.par_iter().map(|ids| detector.detect(ids)).collect()
}
