//! Seeded keys, profiles, detectors and embedders over a synthetic
//! tokenizer digest, random token streams, and exact null-size helpers for
//! the statistical tests.

use provmark_verify::Detector;
use provmark_watermark::{
    Embedder, Key, KgwParams, Profile, Scheme, SynthIdParams, TokenizerDigest,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One scheme of each kind: KGW (γ = 0.25, δ = 2), Gumbel, SynthID (30 layers).
pub fn schemes() -> Vec<Scheme> {
    vec![
        Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap()),
        Scheme::Gumbel,
        Scheme::SynthId(SynthIdParams::new(30).unwrap()),
    ]
}

/// A key whose 32 bytes come from ChaCha8 seeded with `seed`.
pub fn key(seed: u64) -> Key {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    Key::from_bytes(bytes)
}

/// A profile of `scheme` with context width `context` under `key`, for the
/// tokenizer digest of the bytes `synthetic`.
pub fn profile(scheme: Scheme, context: u32, key: &Key) -> Profile {
    Profile::new(
        scheme,
        context,
        TokenizerDigest::of_bytes(b"synthetic"),
        key,
    )
    .unwrap()
}

/// The detector of [`profile`]`(scheme, context, key)`.
pub fn detector(scheme: Scheme, context: u32, key: &Key) -> Detector {
    Detector::new(&profile(scheme, context, key), key).unwrap()
}

/// The embedder of [`profile`]`(scheme, context, key)`.
pub fn embedder(scheme: Scheme, context: u32, key: &Key) -> Embedder {
    Embedder::new(&profile(scheme, context, key), key).unwrap()
}

/// `len` token ids uniform over `0..vocab` (modulo bias negligible).
pub fn random_tokens(rng: &mut impl RngCore, len: usize, vocab: u32) -> Vec<u32> {
    (0..len)
        .map(|_| (rng.next_u64() % vocab as u64) as u32)
        .collect()
}

/// Randomised p-value P(T > t) + V·P(T = t), exactly U(0,1) under the null
/// even for discrete statistics; equal to p for continuous ones.
pub fn randomized_p(det: &Detector, scored: u64, statistic: f64, v: f64) -> f64 {
    let p = det.test(scored, statistic).unwrap().p.value();
    match det.scheme() {
        Scheme::Gumbel => p,
        _ => {
            let next = det.test(scored, statistic + 1.0).unwrap().p.value();
            next + v * (p - next)
        }
    }
}

/// Exact size of the level-alpha test with n scored positions: the largest
/// achievable P(p ≤ alpha) under the null.
pub fn exact_size(det: &Detector, scored: u64, alpha: f64) -> f64 {
    match det.scheme() {
        Scheme::Gumbel => alpha,
        Scheme::Kgw(_) | Scheme::SynthId(_) => {
            let trials = match det.scheme() {
                Scheme::SynthId(p) => scored * p.layers() as u64,
                _ => scored,
            };
            // Smallest statistic whose tail is ≤ alpha.
            let (mut lo, mut hi) = (0u64, trials + 1);
            while lo < hi {
                let mid = (lo + hi) / 2;
                let p = det.test(scored, mid as f64).unwrap().p;
                if p.ln() <= alpha.ln() {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            if lo > trials {
                0.0
            } else {
                det.test(scored, lo as f64).unwrap().p.value()
            }
        }
    }
}
