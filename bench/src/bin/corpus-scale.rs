//! Scale of the corpus test: N tokens of synthetic text (Zipf-like over
//! 49,152 ids, 1,000-token texts) collected into distinct tuples (h = 2) and
//! scored under one key; prints time and peak memory.
//!
//!   cargo run --release -p provmark-bench --bin corpus-scale -- [TOKENS=10000000]

use std::time::Instant;

use provmark_verify::corpus::{score_tuples, Shard, TupleSet};
use provmark_verify::Detector;
use provmark_watermark::{Key, KgwParams, Profile, Scheme, TokenizerDigest};
use rand_chacha::rand_core::{RngCore, SeedableRng};

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let tokens: u64 = std::env::args()
        .nth(1)
        .map_or(10_000_000, |a| a.parse().expect("TOKENS"));
    let key = Key::from_bytes([9; 32]);
    let scheme = Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap());
    let profile = Profile::new(scheme, 2, TokenizerDigest::of_bytes(b"t"), &key).unwrap();
    let detector = Detector::new(&profile, &key).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut set = TupleSet::new(2, Shard::ALL).unwrap();
    let t = Instant::now();
    let mut text = vec![0u32; 1000];
    let mut done = 0u64;
    while done < tokens {
        for id in text.iter_mut() {
            // Zipf-like: squaring a uniform favours small ids.
            let u = (rng.next_u32() as f64 / u32::MAX as f64).powi(3);
            *id = (u * 49_151.0) as u32;
        }
        set.add_text(&text);
        done += text.len() as u64;
    }
    let tuples = set.finish();
    let collect_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let score = score_tuples(&detector, &tuples).unwrap();
    let score_s = t.elapsed().as_secs_f64();
    println!(
        "{tokens} tokens: {} distinct tuples; collect {collect_s:.1} s ({:.1} M tokens/s), score {score_s:.1} s ({:.2} M tuples/s), peak RSS {:.0} MB ({:.1} bytes per distinct tuple), {} threads; log10 p {:.2}",
        tuples.len(),
        tokens as f64 / collect_s / 1e6,
        tuples.len() as f64 / score_s / 1e6,
        peak_rss_mb(),
        peak_rss_mb() * 1048576.0 / tuples.len() as f64,
        rayon::current_num_threads(),
        score.test(&detector).unwrap().p.log10()
    );
}
