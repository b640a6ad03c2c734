//! The null distribution with `--normalize invisible` (spec §5.1): human
//! text that holds invisible and space-like characters of its own
//! (French-typography no-break spaces, emoji joiners, soft hyphens), read
//! after normalisation, gives p-values that are uniform under every scheme
//! (randomised p-values, so even the discrete tests are exactly uniform),
//! checked by Kolmogorov–Smirnov at a fixed seed. Each (text, key) pair
//! has its own key: under one fixed key, texts that share phrases (or a
//! common suffix) share tuples, and their p-values are not independent
//! samples (a first version of this test, with 40 keys over all texts,
//! failed KS for that reason alone, with or without normalisation).

use provmark_testkit::corpus::{docs_corpus, train_bpe_json};
use provmark_testkit::fixtures::{detector, key, randomized_p, schemes};
use provmark_verify::{Normalization, TextTokenizer};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A paragraph as a writer might type it: no-break spaces before `:;?!`
/// and in some other spaces, a soft hyphen in some long words, and an emoji
/// ZWJ sequence with a presentation selector at its end.
fn as_typed(paragraph: &str, rng: &mut ChaCha8Rng) -> String {
    let mut out = String::new();
    for (i, word) in paragraph.split(' ').enumerate() {
        if i > 0 {
            let before_punct = word.starts_with([':', ';', '?', '!']);
            out.push(if before_punct || rng.next_u32() % 10 == 0 {
                '\u{a0}'
            } else {
                ' '
            });
        }
        if word.len() > 9 && rng.next_u32() % 4 == 0 {
            let mid = word.char_indices().nth(word.chars().count() / 2).unwrap().0;
            out.push_str(&word[..mid]);
            out.push('\u{ad}');
            out.push_str(&word[mid..]);
        } else {
            out.push_str(word);
        }
    }
    out.push_str(" \u{1f469}\u{200d}\u{1f4bb} \u{2764}\u{fe0f}");
    out
}

/// Largest distance between the empirical CDF of `p` and the uniform one.
fn ks_distance(mut p: Vec<f64>) -> f64 {
    p.sort_by(f64::total_cmp);
    let n = p.len() as f64;
    p.iter()
        .enumerate()
        .map(|(i, &x)| (x - i as f64 / n).max((i + 1) as f64 / n - x))
        .fold(0.0, f64::max)
}

#[test]
fn human_text_stays_uniform_under_the_null_with_normalisation() {
    let docs = docs_corpus();
    let tokenizer =
        TextTokenizer::from_bytes(train_bpe_json(&docs, 4096).as_bytes(), "docs").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let paragraphs: Vec<&str> = docs
        .split("\n\n")
        .filter(|p| p.len() > 300)
        .take(120)
        .collect();
    assert_eq!(paragraphs.len(), 120);
    let mut edits = 0;
    let texts: Vec<Vec<u32>> = paragraphs
        .iter()
        .map(|p| {
            let typed = as_typed(p, &mut rng);
            let n = Normalization::Invisible.apply(&typed);
            edits += n.edits;
            tokenizer.encode(&n.text).unwrap()
        })
        .collect();
    assert!(
        edits > 1000,
        "the texts hold characters to normalise: {edits}"
    );
    const KEYS: u64 = 100;
    for scheme in schemes() {
        let mut p = Vec::new();
        // Every (text, key) pair under its own key: texts that share
        // phrases are then independent samples too.
        for k in 0..KEYS {
            for (t, ids) in texts.iter().enumerate() {
                let det = detector(scheme, 2, &key(1000 + k * 1000 + t as u64));
                let d = det.detect_scored(&det.score(&[], ids));
                let v = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                p.push(randomized_p(&det, d.scored as u64, d.statistic, v));
            }
        }
        let n = p.len();
        let below = |a: f64| p.iter().filter(|&&x| x <= a).count() as f64 / n as f64;
        let (fpr1, fpr5) = (below(0.01), below(0.05));
        let d = ks_distance(p);
        // Two-sided KS at level 0.001: 1.95/√n; FPR within 4 binomial sd.
        let critical = 1.95 / (n as f64).sqrt();
        eprintln!(
            "{}: n = {n}, KS D = {d:.4} (critical {critical:.4}), FPR@0.01 = {fpr1:.4}, FPR@0.05 = {fpr5:.4}",
            scheme.name()
        );
        assert!(d < critical, "{}: KS D = {d}", scheme.name());
        for (fpr, a) in [(fpr1, 0.01), (fpr5, 0.05)] {
            let sd = (a * (1.0 - a) / n as f64).sqrt();
            assert!(
                (fpr - a).abs() <= 4.0 * sd,
                "{}: FPR {fpr} at {a}",
                scheme.name()
            );
        }
    }
}
