//! Without de-duplication, repeated text breaks the p-values (one repeated
//! green tuple counts many times); with it, they stay valid. This is the
//! guard three_bricks and the radioactivity paper describe.

use provmark_testkit::fixtures::*;
use provmark_verify::Dedup;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

const TEXTS: usize = 10_000;
const ALPHA: f64 = 1e-3;

fn false_positive_rate(dedup: Dedup, scheme_index: usize) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    // Boilerplate: a 30-token passage pasted six times.
    let texts: Vec<Vec<u32>> = (0..TEXTS)
        .map(|_| random_tokens(&mut rng, 30, 49_152).repeat(6))
        .collect();
    let det = detector(schemes()[scheme_index], 2, &key(77)).with_dedup(dedup);
    let hits = texts
        .par_iter()
        .filter(|ids| det.detect(ids).test.unwrap().p.ln() <= ALPHA.ln())
        .count();
    hits as f64 / TEXTS as f64
}

#[test]
fn repeated_text_breaks_p_values_without_dedup() {
    for s in 0..3 {
        let off = false_positive_rate(Dedup::Off, s);
        let on = false_positive_rate(Dedup::PerText, s);
        eprintln!(
            "{}: FPR at {ALPHA}: dedup off {off:.4}, on {on:.4}",
            schemes()[s].name()
        );
        // Binomial(10000, 1e-3) exceeds 0.0025 with probability < 1e-5.
        assert!(on <= 0.0025, "with dedup the FPR stays near alpha");
        assert!(
            off >= 10.0 * ALPHA,
            "without dedup repeated text inflates the FPR"
        );
    }
}
