//! Embed path: time per decode step at real vocabulary sizes.
//!
//!     cargo bench -p provmark-bench --bench embed

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use provmark_watermark::rand_core::{RngCore, SeedableRng};
use provmark_watermark::{
    Embedder, Key, KgwParams, Profile, RepeatedWindows, ResponseEmbedder, SamplingConfig, Scheme,
    SynthIdParams, TokenizerDigest,
};
use rand_chacha::ChaCha8Rng;

/// One response handle that marks every step: the step alone is timed,
/// not the growth of a marked-window set over millions of iterations.
fn embedder(scheme: Scheme) -> ResponseEmbedder {
    let key = Key::from_bytes([1; 32]);
    let profile = Profile::new(scheme, 2, TokenizerDigest::of_bytes(b"b"), &key).unwrap();
    Embedder::new(&profile, &key)
        .unwrap()
        .response_with(RepeatedWindows::Remark)
}

/// LLM-like logits: a few plausible tokens, a long tail.
fn logits(vocab: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(vocab as u64);
    (0..vocab)
        .map(|_| {
            let u = (rng.next_u32() as f32) / u32::MAX as f32;
            -12.0 * u * u
                + if rng.next_u32() % 2000 == 0 {
                    10.0
                } else {
                    0.0
                }
        })
        .collect()
}

fn step(c: &mut Criterion) {
    let settings = [
        ("full", SamplingConfig::default()),
        ("top_p0.95", SamplingConfig::new(1.0, 0, 0.95).unwrap()),
        ("top_k50", SamplingConfig::new(1.0, 50, 1.0).unwrap()),
    ];
    for vocab in [49_152usize, 151_936, 256_000] {
        let logits = logits(vocab);
        let mut group = c.benchmark_group(format!("embed/step/v{vocab}"));
        group.sample_size(30);
        for (label, cfg) in &settings {
            for scheme in [
                Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap()),
                Scheme::Gumbel,
                Scheme::SynthId(SynthIdParams::new(30).unwrap()),
            ] {
                let mut e = embedder(scheme);
                let mut rng = ChaCha8Rng::seed_from_u64(0);
                let mut t = 0u32;
                group.bench_function(BenchmarkId::new(scheme.name(), label), |b| {
                    b.iter(|| {
                        t = t.wrapping_add(1);
                        e.next_token(&[t, 7], &logits, cfg, &mut rng)
                    })
                });
            }
            // The same sampling chain with no watermark (short context).
            let mut e = embedder(Scheme::Gumbel);
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            group.bench_function(BenchmarkId::new("unmarked", label), |b| {
                b.iter(|| e.next_token(&[], &logits, cfg, &mut rng))
            });
        }
        // The watermark's own work for KGW: the bias alone.
        let mut e = embedder(Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap()));
        let mut buf = logits.clone();
        let mut t = 0u32;
        group.bench_function("kgw/bias_only", |b| {
            b.iter(|| {
                t = t.wrapping_add(1);
                e.bias_logits(&[t, 7], &mut buf)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, step);
criterion_main!(benches);
