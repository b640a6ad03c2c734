//! Properties of the embedding API: Gumbel and SynthID leave the output
//! distribution unchanged on average over keys (distortion-free), KGW
//! shifts mass to green tokens by the predicted amount, decisions respect
//! top-k/top-p and are deterministic where the spec says so.

use provmark_watermark::rand_core::{RngCore, SeedableRng};
use provmark_watermark::{
    Embedder, Key, KgwParams, Profile, RepeatedWindows, ResponseEmbedder, SamplingConfig, Scheme,
    SynthIdParams, TokenizerDigest,
};
use rand_chacha::ChaCha8Rng;

fn embedder(scheme: Scheme, key: u8) -> Embedder {
    let key = Key::from_bytes([key; 32]);
    let profile = Profile::new(scheme, 2, TokenizerDigest::of_bytes(b"t"), &key).unwrap();
    Embedder::new(&profile, &key).unwrap()
}

const PROBS: [f64; 8] = [0.4, 0.2, 0.15, 0.1, 0.07, 0.04, 0.03, 0.01];

/// Pearson chi-square of observed counts against PROBS.
fn chi_square(counts: &[u64; 8], draws: u64) -> f64 {
    counts
        .iter()
        .zip(PROBS)
        .map(|(&c, p)| {
            let e = p * draws as f64;
            (c as f64 - e).powi(2) / e
        })
        .sum()
}

fn frequencies(scheme: Scheme, draws: u64) -> [u64; 8] {
    let mut e = embedder(scheme, 5).response();
    let logits: Vec<f32> = PROBS.iter().map(|p| p.ln() as f32).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut counts = [0u64; 8];
    for i in 0..draws {
        // Every draw in a fresh context window: a fresh keyed seed.
        let context = [(i >> 16) as u32, i as u32 & 0xffff];
        let t = e.next_token(&context, &logits, &SamplingConfig::default(), &mut rng);
        counts[t as usize] += 1;
    }
    counts
}

#[test]
fn gumbel_and_synthid_are_distortion_free() {
    // chi-square with 7 degrees of freedom exceeds 24.32 with probability 1e-3.
    for scheme in [
        Scheme::Gumbel,
        Scheme::SynthId(SynthIdParams::new(30).unwrap()),
    ] {
        let draws = 50_000;
        let counts = frequencies(scheme, draws);
        let chi2 = chi_square(&counts, draws);
        assert!(
            chi2 < 24.32,
            "{}: chi2 = {chi2}, counts {counts:?}",
            scheme.name()
        );
    }
}

#[test]
fn kgw_shifts_mass_to_green_by_the_predicted_amount() {
    let params = KgwParams::new(0.25, 2.0).unwrap();
    let scheme = Scheme::Kgw(params);
    let mut e = embedder(scheme, 6).response();
    let vocab = 1000;
    let logits = vec![0f32; vocab];
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let trials = 20_000u32;
    let mut green = 0u64;
    let mut green_share = 0.0;
    for i in 0..trials {
        let context = [i, i.wrapping_mul(7)];
        let t = e.next_token(&context, &logits, &SamplingConfig::default(), &mut rng);
        let mut values = e.schedule().values(&context);
        green += e.schedule().token_score(&mut values, t) as u64;
        let g = (0..vocab as u32)
            .filter(|&id| e.schedule().token_score(&mut values, id) == 1.0)
            .count() as f64;
        let boost = (2.0f64).exp();
        green_share += g * boost / (g * boost + (vocab as f64 - g));
    }
    let expected = green_share; // Σ of per-step green probabilities
    let sd = (expected * (1.0 - expected / trials as f64)).sqrt();
    assert!(
        (green as f64 - expected).abs() < 5.0 * sd,
        "green {green} vs expected {expected:.0} ± {sd:.0}"
    );
    assert!(
        green as f64 / trials as f64 > 0.65,
        "δ = 2 at γ = 0.25 makes ~71% green"
    );
}

#[test]
fn keyed_choices_are_deterministic_and_respect_top_k() {
    let logits: Vec<f32> = (0..5000)
        .map(|i| ((i * 7919) % 5000) as f32 / 500.0)
        .collect();
    let argmax = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0 as u32;
    let top1 = SamplingConfig::new(1.0, 1, 1.0).unwrap();
    let top40 = SamplingConfig::new(0.8, 40, 0.9).unwrap();
    for scheme in [
        Scheme::Gumbel,
        Scheme::SynthId(SynthIdParams::new(12).unwrap()),
    ] {
        // Each window is used twice: mark it both times.
        let mut a = embedder(scheme, 1).response_with(RepeatedWindows::Remark);
        let mut b = embedder(scheme, 1).response_with(RepeatedWindows::Remark);
        let mut rng_a = ChaCha8Rng::seed_from_u64(1);
        let mut rng_b = ChaCha8Rng::seed_from_u64(2);
        for step in 0..50u32 {
            let ctx = [step, 3, step * 2];
            assert_eq!(a.next_token(&ctx, &logits, &top1, &mut rng_a), argmax);
            let x = a.next_token(&ctx, &logits, &top40, &mut rng_a);
            let y = b.next_token(&ctx, &logits, &top40, &mut rng_b);
            assert_eq!(x, y, "keyed draw ignores the sampler RNG");
            let mut sorted = logits.clone();
            sorted.sort_by(|p, q| q.total_cmp(p));
            assert!(logits[x as usize] >= sorted[39], "outside top-40");
        }
    }
}

#[test]
fn batched_steps_equal_single_steps() {
    let vocab = 3000;
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let logits: Vec<f32> = (0..3 * vocab)
        .map(|_| (rng.next_u32() % 1000) as f32 / 200.0)
        .collect();
    let contexts: Vec<Vec<u32>> = vec![vec![1, 2, 3], vec![9], vec![4, 5]];
    let ctx_refs: Vec<&[u32]> = contexts.iter().map(|c| c.as_slice()).collect();
    let cfg = SamplingConfig::new(0.9, 0, 0.95).unwrap();
    for scheme in [
        Scheme::Kgw(KgwParams::new(0.5, 1.5).unwrap()),
        Scheme::Gumbel,
        Scheme::SynthId(SynthIdParams::new(30).unwrap()),
    ] {
        let e = embedder(scheme, 2);
        let mut rngs: Vec<ChaCha8Rng> = (0..3).map(ChaCha8Rng::seed_from_u64).collect();
        let mut out = vec![0u32; 3];
        let mut responses: Vec<ResponseEmbedder> = (0..3).map(|_| e.response()).collect();
        ResponseEmbedder::next_tokens(
            &mut responses,
            &ctx_refs,
            &logits,
            vocab,
            &cfg,
            &mut rngs,
            &mut out,
        );
        for (i, ctx) in contexts.iter().enumerate() {
            let mut r = ChaCha8Rng::seed_from_u64(i as u64);
            let row = &logits[i * vocab..(i + 1) * vocab];
            let single = e.response().next_token(ctx, row, &cfg, &mut r);
            assert_eq!(out[i], single, "{} row {i}", scheme.name());
        }
    }
}

#[test]
fn sweep_and_random_access_paths_choose_the_same_token() {
    // Few candidates (top-k 5) take the random-access path; top-k 0 the sweep.
    // With temperature → 0 for all but the top 5, both must agree.
    let vocab = 4096;
    let mut logits = vec![-1e4f32; vocab];
    for (i, id) in [7usize, 100, 2000, 4000, 4095].iter().enumerate() {
        logits[*id] = 1.0 + i as f32 * 0.1;
    }
    for scheme in [
        Scheme::Gumbel,
        Scheme::SynthId(SynthIdParams::new(30).unwrap()),
    ] {
        // Each window is used twice: mark it both times.
        let mut e = embedder(scheme, 3).response_with(RepeatedWindows::Remark);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for step in 0..200u32 {
            let ctx = [step, step + 1];
            let few = e.next_token(
                &ctx,
                &logits,
                &SamplingConfig::new(1.0, 5, 1.0).unwrap(),
                &mut rng,
            );
            let all = e.next_token(&ctx, &logits, &SamplingConfig::default(), &mut rng);
            assert_eq!(few, all, "{} step {step}", scheme.name());
        }
    }
}

#[test]
fn repeated_windows_are_not_marked_twice_in_one_response() {
    use provmark_watermark::Sampler;
    let logits: Vec<f32> = (0..64).map(|i| (i % 7) as f32 * 0.3).collect();
    let cfg = SamplingConfig::default();
    let context = [3u32, 9, 4, 9, 4];
    for scheme in [
        Scheme::Gumbel,
        Scheme::SynthId(SynthIdParams::new(8).unwrap()),
    ] {
        let e = embedder(scheme, 1);
        // A fresh window is marked exactly as in a new response (keyed: the
        // RNG does not matter).
        let mut marked = e.response();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let first = marked.next_token(&context, &logits, &cfg, &mut rng);
        let mut rng2 = ChaCha8Rng::seed_from_u64(99);
        assert_eq!(
            first,
            e.response().next_token(&context, &logits, &cfg, &mut rng2)
        );
        assert_eq!(marked.marked_windows(), 1);
        // The same window again is drawn like an unmarked position: it
        // follows the RNG, exactly as the plain sampler would.
        let mut picks = std::collections::HashSet::new();
        for seed in 0..40 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let t = marked.next_token(&context, &logits, &cfg, &mut rng);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            assert_eq!(t, Sampler::default().next_token(&logits, &cfg, &mut rng));
            picks.insert(t);
        }
        assert!(picks.len() > 5, "repeated windows vary with the RNG");
        assert_eq!(marked.marked_windows(), 1);
    }
    // h = 0: one keyed window for every position, so gumbel and synthid
    // would repeat one choice; they are refused for embedding (kgw is not).
    let key = Key::from_bytes([1; 32]);
    for scheme in [
        Scheme::Gumbel,
        Scheme::SynthId(SynthIdParams::new(8).unwrap()),
    ] {
        let profile = Profile::new(scheme, 0, TokenizerDigest::of_bytes(b"t"), &key).unwrap();
        let err = Embedder::new(&profile, &key).err().expect("refused");
        assert!(err.to_string().contains("context 0"), "{err}");
        assert!(profile.check_embeddable().is_err());
    }
    let unigram = Profile::new(
        Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap()),
        0,
        TokenizerDigest::of_bytes(b"t"),
        &key,
    )
    .unwrap();
    let mut marked = Embedder::new(&unigram, &key).unwrap().response();
    let picks: std::collections::HashSet<u32> = (0..20)
        .map(|seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            marked.next_token(&context, &logits, &cfg, &mut rng)
        })
        .collect();
    assert!(picks.len() > 3, "kgw with h = 0 still samples: {picks:?}");
    assert_eq!(marked.marked_positions(), 20, "every position marked");
}

#[test]
fn marked_positions_count_the_steps_the_key_could_change() {
    let logits: Vec<f32> = (0..64).map(|i| (i % 7) as f32 * 0.3).collect();
    let peaked: Vec<f32> = (0..64).map(|i| if i == 5 { 30.0 } else { 0.0 }).collect();
    let greedy = SamplingConfig::greedy();
    let open = SamplingConfig::default();
    for scheme in [
        Scheme::Gumbel,
        Scheme::SynthId(SynthIdParams::new(8).unwrap()),
    ] {
        let e = embedder(scheme, 2);
        let mut r = e.response();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        // Greedy: one candidate, no choice for the key.
        r.next_token(&[1, 2], &logits, &greedy, &mut rng);
        assert!(!r.last_marked(), "{}", scheme.name());
        // No window yet (h = 2): not marked.
        r.next_token(&[1], &logits, &open, &mut rng);
        assert!(!r.last_marked());
        // A new window with many candidates: marked; the same window again
        // (spec §6.1): not marked.
        r.next_token(&[3, 4], &logits, &open, &mut rng);
        assert!(r.last_marked());
        r.next_token(&[3, 4], &logits, &open, &mut rng);
        assert!(!r.last_marked());
        // One token holds all but 1e-11 of the mass: one candidate at top-p
        // 0.99.
        let nucleus = SamplingConfig::new(1.0, 0, 0.99).unwrap();
        r.next_token(&[5, 6], &peaked, &nucleus, &mut rng);
        assert!(!r.last_marked());
        assert_eq!(r.marked_positions(), 1);
        r.reset();
        assert_eq!(r.marked_positions(), 0);
    }
    // kgw at T = 0: the bias still decides between tokens within δ.
    let e = embedder(Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap()), 2);
    let mut r = e.response();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    r.next_token(&[1, 2], &logits, &greedy, &mut rng);
    assert!(r.last_marked(), "tokens 6, 13, … tie at the top");
    r.next_token(&[2, 3], &peaked, &greedy, &mut rng);
    assert!(!r.last_marked(), "a 30-nat lead: δ = 2 cannot change it");
    assert_eq!(r.marked_positions(), 1);
}
