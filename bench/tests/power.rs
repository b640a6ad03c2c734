//! Power: text generated through the real embedding API from a synthetic
//! language model is detected; unwatermarked text from the same model is
//! not.

use provmark_bench::tokens_to_detect;
use provmark_testkit::fixtures::*;
use provmark_testkit::generate;
use provmark_testkit::synthetic::ZipfLm;
use provmark_watermark::SamplingConfig;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn every_scheme_is_detected_at_moderate_entropy() {
    let lm = ZipfLm::with_entropy(8192, 4.0);
    let cfg = SamplingConfig::default();
    for (s, scheme) in schemes().into_iter().enumerate() {
        let k = key(900 + s as u64);
        let det = detector(scheme, 2, &k);
        let emb = embedder(scheme, 2, &k);
        let mut needed = Vec::new();
        for t in 0..8u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(t);
            let prompt = [t as u32, 7];
            let marked = generate(&lm, Some(&emb), &cfg, &mut rng, &prompt, 300);
            let scored = det.score(&prompt, &marked);
            let d = det.detect_scored(&scored);
            assert!(
                d.test.unwrap().p.log10() < -6.0,
                "{}: text {t} missed",
                scheme.name()
            );
            needed.push(tokens_to_detect(&det, &scored, 1e-6).unwrap());
            let control = generate(&lm, None, &cfg, &mut rng, &prompt, 300);
            let c = det.detect(&control);
            assert!(
                c.test.unwrap().p.log10() > -6.0,
                "{}: control flagged",
                scheme.name()
            );
        }
        needed.sort();
        eprintln!(
            "{}: tokens to p ≤ 1e-6 at 4 bits: {needed:?}",
            scheme.name()
        );
        assert!(
            needed[needed.len() / 2] <= 150,
            "{}: median {needed:?}",
            scheme.name()
        );
    }
}

#[test]
fn the_wrong_key_does_not_detect_marked_text() {
    let lm = ZipfLm::with_entropy(8192, 4.0);
    let cfg = SamplingConfig::default();
    for (s, scheme) in schemes().into_iter().enumerate() {
        let emb = embedder(scheme, 2, &key(1 + s as u64));
        let other = detector(scheme, 2, &key(2000 + s as u64));
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let marked = generate(&lm, Some(&emb), &cfg, &mut rng, &[1, 2], 400);
        let p = other.detect(&marked).test.unwrap().p.log10();
        assert!(
            p > -3.0,
            "{} detected under an unrelated key: log10 p {p}",
            scheme.name()
        );
    }
}
