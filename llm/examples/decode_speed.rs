//! Quick decode-speed probe:
//! `cargo run --release -p provmark-llm --example decode_speed [THREADS] [BATCH] [GGUF] [q8_0|as-stored]`
//! (default model, Q8_0 precision when omitted), plus a reading-mode probe
//! (next-token logits at every position of a 256-token text).
use provmark_llm::{
    default_model,
    model::{Model, Precision, Step},
};
use std::time::Instant;

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<usize> = raw.iter().take(2).map(|a| a.parse().unwrap()).collect();
    let threads = args.first().copied().unwrap_or(2);
    let batch = args.get(1).copied().unwrap_or(1);
    let precision = match raw.get(3).map(String::as_str) {
        None | Some("q8_0") => Precision::Q8_0,
        Some("as-stored") => Precision::AsStored,
        Some(other) => panic!("unknown precision {other:?} (q8_0 or as-stored)"),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let path = match raw.get(2) {
        Some(p) => std::path::PathBuf::from(p),
        None => default_model::ensure(&mut |l| eprintln!("{l}")).unwrap(),
    };
    let t = Instant::now();
    let m = Model::load_with(&path, precision).unwrap();
    eprintln!(
        "load {:?} ({precision:?}, {:?})",
        t.elapsed(),
        m.weight_formats()
    );
    pool.install(|| {
        let mut caches: Vec<_> = (0..batch).map(|_| m.new_cache()).collect();
        let mut logits = Vec::new();
        let prompt: Vec<u32> = (0..32).map(|i| 100 + i).collect();
        let t = Instant::now();
        for c in caches.iter_mut() {
            m.forward(
                &mut [Step {
                    cache: c,
                    tokens: &prompt,
                }],
                &mut logits,
            )
            .unwrap();
        }
        eprintln!("prefill {batch}x32: {:?}", t.elapsed());
        let text: Vec<u32> = (0..256).map(|i| (i * 37 + 11) % 1000).collect();
        let t = Instant::now();
        let mut cache = m.new_cache();
        m.forward_all(
            Step {
                cache: &mut cache,
                tokens: &text,
            },
            &mut logits,
        )
        .unwrap();
        let e = t.elapsed().as_secs_f64();
        println!("reading 256 tokens: {:.2} s, {:.1} tokens/s", e, 256.0 / e);
        let steps = 100;
        let t = Instant::now();
        for i in 0..steps {
            let toks: Vec<[u32; 1]> = (0..batch).map(|b| [(i * 7 + b) as u32 % 1000]).collect();
            let mut s: Vec<Step> = caches
                .iter_mut()
                .zip(&toks)
                .map(|(c, t)| Step {
                    cache: c,
                    tokens: t,
                })
                .collect();
            m.forward(&mut s, &mut logits).unwrap();
        }
        let e = t.elapsed().as_secs_f64();
        println!(
            "threads {threads} batch {batch}: {:.1} steps/s, {:.1} tokens/s",
            steps as f64 / e,
            (steps * batch) as f64 / e
        );
    });
}
