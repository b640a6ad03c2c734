//! Shared pieces of provmark's benchmarks, evaluation experiments and
//! statistical tests: KS checks, the distillation students (Kneser-Ney and
//! a small transformer), plots, prompt sets and the teacher; the corpus,
//! tokenizer and synthetic-model fixtures come from provmark-testkit.

pub mod ks;
pub mod ngram;
pub mod plot;
pub mod prompts;
pub mod real;
pub mod teacher;
pub mod transformer;

// The corpus, its trained tokenizer, the synthetic language model and
// generation through the embedding API are shared test fixtures; the
// experiments use them from provmark-testkit.
pub use provmark_testkit::{corpus, generate, synthetic};

/// Number of leading tokens after which the running p-value of `scores`
/// first reaches `alpha`, or `None` if it never does.
pub fn tokens_to_detect(
    detector: &provmark_verify::Detector,
    scored: &provmark_verify::ScoredText,
    alpha: f64,
) -> Option<usize> {
    let mut sum = 0.0;
    for (i, s) in scored.scores.iter().enumerate() {
        sum += s;
        let p = detector.test(i as u64 + 1, sum).expect("scored ≥ 1").p;
        if p.ln() <= alpha.ln() {
            return Some(scored.positions[i] + 1);
        }
    }
    None
}
