//! Under the null (text the key never touched) the p-values of every scheme
//! are valid: uniform once randomised over ties, never anti-conservative,
//! with a false-positive rate at α = 1e-3 inside its binomial interval.

use provmark_bench::ks::{ks_critical, ks_critical_one_sided, ks_excess, ks_uniform};
use provmark_testkit::fixtures::*;
use provmark_verify::Detector;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

const TEXTS: usize = 20_000;
const ALPHA: f64 = 1e-3;

struct NullRun {
    randomized: Vec<f64>,
    plain: Vec<f64>,
    false_positives: usize,
    expected: f64,
    variance: f64,
}

/// `det(i)` is the detector for text i (one key for all, or a key per text).
fn run_null(det: impl Fn(usize) -> Detector + Sync, texts: &[Vec<u32>], seed: u64) -> NullRun {
    let results: Vec<(f64, f64, bool, f64)> = texts
        .par_iter()
        .enumerate()
        .map(|(i, ids)| {
            let det = &det(i);
            let d = det.detect(ids);
            let t = d.test.expect("long enough");
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ i as u64);
            let v = (rng.next_u64() >> 11) as f64 / 9007199254740992.0;
            let size = exact_size(det, d.scored as u64, ALPHA);
            (
                randomized_p(det, d.scored as u64, d.statistic, v),
                t.p.value(),
                t.p.ln() <= ALPHA.ln(),
                size,
            )
        })
        .collect();
    NullRun {
        randomized: results.iter().map(|r| r.0).collect(),
        plain: results.iter().map(|r| r.1).collect(),
        false_positives: results.iter().filter(|r| r.2).count(),
        expected: results.iter().map(|r| r.3).sum(),
        variance: results.iter().map(|r| r.3 * (1.0 - r.3)).sum(),
    }
}

fn check(name: &str, run: &NullRun) {
    let n = run.randomized.len();
    let d = ks_uniform(&run.randomized);
    assert!(
        d < ks_critical(n, 1e-3),
        "{name}: randomised p-values not uniform, KS D = {d}"
    );
    let excess = ks_excess(&run.plain);
    assert!(
        excess < ks_critical_one_sided(n, 1e-3),
        "{name}: p-values anti-conservative, D+ = {excess}"
    );
    assert!(
        run.expected <= ALPHA * n as f64 * (1.0 + 1e-9),
        "{name}: size above alpha"
    );
    let slack = 4.0 * run.variance.sqrt() + 1.0;
    assert!(
        (run.false_positives as f64 - run.expected).abs() <= slack,
        "{name}: {} false positives at alpha {ALPHA}, expected {:.1} ± {slack:.1}",
        run.false_positives,
        run.expected
    );
    eprintln!(
        "{name}: KS D = {d:.4}, D+ = {excess:.4}, false positives {} (expected {:.1})",
        run.false_positives, run.expected
    );
}

#[test]
fn random_token_streams_give_valid_p_values() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let texts: Vec<Vec<u32>> = (0..TEXTS)
        .map(|i| random_tokens(&mut rng, 64 + (i % 4) * 32, 49_152))
        .collect();
    for (s, scheme) in schemes().into_iter().enumerate() {
        let det = detector(scheme, 2, &key(100 + s as u64));
        check(
            scheme.name(),
            &run_null(|_| det.clone(), &texts, 7 + s as u64),
        );
    }
}

#[test]
fn long_context_profiles_are_valid_too() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let texts: Vec<Vec<u32>> = (0..TEXTS)
        .map(|_| random_tokens(&mut rng, 80, 49_152))
        .collect();
    let det = detector(schemes()[0], 4, &key(204));
    check("kgw h=4", &run_null(|_| det.clone(), &texts, 15));
}

/// With h = 0 the green list is one fixed set per key, so a single key's
/// green fraction of the vocabulary (not exactly γ) shifts every text the
/// same way: validity comes from the key being random. Each text here gets
/// its own key, which is the situation the p-value describes.
#[test]
fn context_free_profiles_are_valid_over_random_keys() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let texts: Vec<Vec<u32>> = (0..TEXTS)
        .map(|_| random_tokens(&mut rng, 80, 49_152))
        .collect();
    let scheme = schemes()[0];
    check(
        "kgw h=0",
        &run_null(|i| detector(scheme, 0, &key(10_000 + i as u64)), &texts, 11),
    );
}
