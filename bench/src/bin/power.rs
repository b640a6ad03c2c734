//! Power experiment: tokens needed to reach p ≤ 1e-6 for each scheme at
//! several entropies of a synthetic language model, text generated through
//! the real embedding API. Prints a Markdown table for bench/RESULTS.md.
//!
//!     cargo run -p provmark-bench --release --bin power [texts] [max_tokens]

use provmark_bench::synthetic::ZipfLm;
use provmark_bench::{generate, tokens_to_detect};
use provmark_verify::Detector;
use provmark_watermark::{
    Embedder, Key, KgwParams, Profile, SamplingConfig, Scheme, SynthIdParams, TokenizerDigest,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number"))
        .collect();
    let texts = args.first().copied().unwrap_or(40);
    let max_tokens = args.get(1).copied().unwrap_or(1000);
    let schemes = [
        Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap()),
        Scheme::Kgw(KgwParams::new(0.25, 1.0).unwrap()),
        Scheme::Gumbel,
        Scheme::SynthId(SynthIdParams::new(30).unwrap()),
    ];
    let key = Key::from_bytes([42; 32]);
    let cfg = SamplingConfig::default();
    println!("Synthetic Zipf LM, vocabulary 8192, h = 2, temperature 1, {texts} texts per cell, up to {max_tokens} tokens.");
    println!(
        "Cells: median tokens to p ≤ 1e-6 (share of texts detected within {max_tokens} tokens).\n"
    );
    let entropies = [0.5, 1.0, 2.0, 3.0, 5.0];
    print!("| scheme |");
    for e in entropies {
        print!(" {e} bits/token |");
    }
    println!();
    println!("|---|{}", "---|".repeat(entropies.len()));
    for scheme in schemes {
        let label = match scheme {
            Scheme::Kgw(p) => format!("kgw γ={} δ={}", p.gamma(), p.delta()),
            Scheme::SynthId(p) => format!("synthid m={}", p.layers()),
            Scheme::Gumbel => "gumbel".into(),
        };
        print!("| {label} |");
        let profile =
            Profile::new(scheme, 2, TokenizerDigest::of_bytes(b"synthetic"), &key).unwrap();
        let det = Detector::new(&profile, &key).unwrap();
        for bits in entropies {
            let lm = ZipfLm::with_entropy(8192, bits);
            let mut needed: Vec<Option<usize>> = (0..texts as u64)
                .into_par_iter()
                .map(|t| {
                    let emb = Embedder::new(&profile, &key).unwrap();
                    let mut rng = ChaCha8Rng::seed_from_u64(t);
                    let prompt = [t as u32, 99];
                    let ids = generate(&lm, Some(&emb), &cfg, &mut rng, &prompt, max_tokens);
                    tokens_to_detect(&det, &det.score(&prompt, &ids), 1e-6)
                })
                .collect();
            needed.sort_by_key(|n| n.unwrap_or(usize::MAX));
            let hits = needed.iter().filter(|n| n.is_some()).count();
            let median =
                needed[needed.len() / 2].map_or(format!(">{max_tokens}"), |n| n.to_string());
            print!(" {median} ({:.0}%) |", 100.0 * hits as f64 / texts as f64);
        }
        println!();
    }
}
