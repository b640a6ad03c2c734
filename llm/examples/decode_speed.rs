//! Quick decode-speed probe: `cargo run --release -p provmark-llm --example decode_speed [THREADS] [BATCH]`.
use provmark_llm::{
    default_model,
    model::{Model, Step},
};
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let threads = args.first().copied().unwrap_or(2);
    let batch = args.get(1).copied().unwrap_or(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let path = default_model::ensure(&mut |l| eprintln!("{l}")).unwrap();
    let t = Instant::now();
    let m = Model::load(&path).unwrap();
    eprintln!("load {:?}", t.elapsed());
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
