//! Real human-written text (the bundled Python documentation), tokenized
//! with a BPE tokenizer trained on it, is not flagged: p-values over many
//! (text, key) pairs are valid. Real text repeats itself, so this also shows
//! that de-duplication is what keeps them valid.

use provmark_bench::ks::{ks_critical, ks_critical_one_sided, ks_excess, ks_uniform};
use provmark_testkit::corpus::{chunks, docs_corpus, train_bpe_json};
use provmark_testkit::fixtures::*;
use provmark_verify::{Dedup, TextTokenizer};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

const KEYS: u64 = 12;

fn texts() -> Vec<Vec<u32>> {
    let corpus = docs_corpus();
    let json = train_bpe_json(&corpus, 4096);
    let tok = TextTokenizer::from_bytes(json.as_bytes(), "trained").unwrap();
    let ids = tok.encode(&corpus).unwrap();
    chunks(&ids, 128)
}

/// (randomised p, p, duplicates) for every (text, key) pair.
fn null_pvalues(texts: &[Vec<u32>], dedup: Dedup) -> Vec<(f64, f64, usize)> {
    let pairs: Vec<(usize, u64)> = (0..texts.len())
        .flat_map(|t| (0..KEYS).map(move |k| (t, k)))
        .collect();
    let scheme = schemes()[0];
    pairs
        .par_iter()
        .map(|&(t, k)| {
            let det = detector(scheme, 2, &key(5000 + k)).with_dedup(dedup);
            let d = det.detect(&texts[t]);
            let mut rng = ChaCha8Rng::seed_from_u64((t as u64) << 8 | k);
            let v = (rng.next_u64() >> 11) as f64 / 9007199254740992.0;
            let p = d.test.unwrap().p.value();
            (
                randomized_p(&det, d.scored as u64, d.statistic, v),
                p,
                d.duplicates,
            )
        })
        .collect()
}

#[test]
fn human_text_is_not_flagged_and_p_values_are_valid() {
    let texts = texts();
    let results = null_pvalues(&texts, Dedup::PerText);
    let n = results.len();
    assert!(n >= 10_000, "only {n} (text, key) pairs");
    let randomized: Vec<f64> = results.iter().map(|r| r.0).collect();
    let plain: Vec<f64> = results.iter().map(|r| r.1).collect();
    let d = ks_uniform(&randomized);
    let excess = ks_excess(&plain);
    let duplicates: usize = results.iter().map(|r| r.2).sum();
    eprintln!("real text: {n} pairs, KS D = {d:.4}, D+ = {excess:.4}, {duplicates} repeated tuples skipped");
    for q in [0.001, 0.01, 0.05, 0.2, 0.5] {
        let frac = plain.iter().filter(|&&p| p <= q).count() as f64 / n as f64;
        eprintln!("  P(p <= {q}) = {frac:.4}");
    }
    assert!(d < ks_critical(n, 1e-3), "KS D = {d}");
    assert!(excess < ks_critical_one_sided(n, 1e-3), "D+ = {excess}");
    assert!(duplicates > 0, "real text repeats (context, token) tuples");
    let flagged = plain.iter().filter(|&&p| p <= 1e-6).count();
    assert_eq!(flagged, 0, "human text flagged at 1e-6");
}
