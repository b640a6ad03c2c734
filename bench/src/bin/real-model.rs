//! The watermark on the real default model (SmolLM2-135M-Instruct): power,
//! null behaviour, quality, diversity and serving overhead per scheme.
//!
//!   cargo run --release -p provmark-bench --bin real-model -- [PROMPTS] [MAX_TOKENS] [THREADS]
//!
//! Defaults: 48 prompts, 200 tokens, 2 threads. Prints Markdown tables for
//! bench/RESULTS.md. Everything is seeded: a rerun on the same CPU features
//! gives the same answers.

use std::sync::Arc;
use std::time::Instant;

use provmark_bench::prompts::prompt_set;
use provmark_bench::real::{
    answer_logits, default_schemes, encode_user_prompts, median, DEFAULT_CONTEXT,
};
use provmark_bench::{ks, tokens_to_detect};
use provmark_llm::default_model;
use provmark_llm::engine::{Answer, Engine, EngineConfig, Request};
use provmark_llm::runtime::Runtime;
use provmark_verify::{Detector, TextTokenizer};
use provmark_watermark::{Embedder, Key, Profile, SamplingConfig};

struct Arm {
    name: &'static str,
    profile: Option<Profile>,
}

fn run_all(engine: &Engine, requests: Vec<Request>) -> Vec<Answer> {
    engine.run_batch(requests).expect("answers")
}

/// Perplexity of `answer` after `prompt` under the unmodified model (T = 1).
fn perplexity(rt: &Runtime, prompt: &[u32], answer: &[u32]) -> f64 {
    if answer.is_empty() {
        return f64::NAN;
    }
    let logits = answer_logits(rt, prompt, answer);
    let v = rt.model.config().vocab;
    let mut nll = 0.0;
    for (&t, row) in answer.iter().zip(logits.chunks_exact(v)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = row
            .iter()
            .map(|&l| (l as f64 - max).exp())
            .sum::<f64>()
            .ln()
            + max;
        nll += lse - row[t as usize] as f64;
    }
    (nll / answer.len() as f64).exp()
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: PROMPTS MAX_TOKENS THREADS"))
        .collect();
    let n_prompts = args.first().copied().unwrap_or(48);
    let max_tokens = args.get(1).copied().unwrap_or(200);
    let threads = args.get(2).copied().unwrap_or(2);
    let path = default_model::ensure(&mut |l| eprintln!("{l}")).expect("default model");
    let rt = Arc::new(Runtime::load(&path, "smollm2").expect("load"));
    let tokenizer = TextTokenizer::from_bytes(rt.tokenizer.to_json().as_bytes(), "model").unwrap();
    let key = Key::from_bytes([0x5a; 32]);
    let profile =
        |scheme| Profile::new(scheme, DEFAULT_CONTEXT, tokenizer.digest().clone(), &key).unwrap();
    let mut arms = vec![Arm {
        name: "none",
        profile: None,
    }];
    arms.extend(default_schemes().into_iter().map(|(name, scheme)| Arm {
        name,
        profile: Some(profile(scheme)),
    }));
    let start_engine = |arm: &Arm, max_batch| {
        let embedder = arm
            .profile
            .as_ref()
            .map(|p| Embedder::new(p, &key).unwrap());
        Engine::start(
            rt.clone(),
            embedder,
            EngineConfig {
                threads,
                max_batch,
                prefill_chunk: 256,
            },
        )
        .unwrap()
    };
    let prompts = prompt_set(n_prompts);
    let encoded = encode_user_prompts(&rt, &prompts);
    let t1 = SamplingConfig::new(1.0, 0, 1.0).unwrap();
    println!("## Real model: SmolLM2-135M-Instruct (Q4_1), {n_prompts} prompts, {max_tokens} tokens, T = 1, h = 2, {threads} threads\n");

    // 1. Answers per arm.
    let mut answers = Vec::new();
    for arm in &arms {
        let engine = start_engine(arm, 8);
        let t = Instant::now();
        let reqs = encoded
            .iter()
            .enumerate()
            .map(|(i, p)| Request {
                prompt: p.clone(),
                max_tokens,
                sampling: t1,
                seed: i as u64,
                ..Request::default()
            })
            .collect();
        let a = run_all(&engine, reqs);
        let tokens: usize = a.iter().map(|x| x.tokens.len()).sum();
        eprintln!(
            "{}: {tokens} tokens in {:.1} s (batch 8)",
            arm.name,
            t.elapsed().as_secs_f64()
        );
        answers.push(a);
    }

    // 2. Detection: marked answers under their own profile, and every
    //    arm's answers under every profile (the off-diagonal is the null).
    println!("### Detection (texts re-tokenized from their text, as an auditor would)\n");
    println!("| answers | tested with | mean tokens | detected at p ≤ 1e-6 | median log10 p | median tokens to 1e-6 | KS D vs U(0,1) |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (ai, arm) in arms.iter().enumerate() {
        for tester in arms.iter().filter(|t| t.profile.is_some()) {
            let tp = tester.profile.as_ref().unwrap();
            let detector = Detector::new(tp, &key).unwrap();
            let mut detected = 0;
            let mut log10s = Vec::new();
            let mut ps = Vec::new();
            let mut needed = Vec::new();
            let mut lens = Vec::new();
            for a in &answers[ai] {
                let ids = tokenizer.encode(&a.text).unwrap();
                lens.push(ids.len() as f64);
                let scored = detector.score(&[], &ids);
                let d = detector.detect_scored(&scored);
                let Some(test) = d.test else { continue };
                log10s.push(test.p.log10());
                ps.push(test.p.value());
                if test.p.log10() <= -6.0 {
                    detected += 1;
                }
                if let Some(k) = tokens_to_detect(&detector, &scored, 1e-6) {
                    needed.push(k as f64);
                }
            }
            let own = tester.name == arm.name;
            let needed = if needed.is_empty() {
                "–".to_string()
            } else {
                format!("{:.0}", median(needed))
            };
            let ks = if own {
                "–".to_string()
            } else {
                format!(
                    "{:.3} (n={}, crit. {:.3})",
                    ks::ks_uniform(&ps),
                    ps.len(),
                    ks::ks_critical(ps.len(), 0.01)
                )
            };
            println!(
                "| {} | {}{} | {:.0} | {}/{} | {:.2} | {} | {} |",
                arm.name,
                tester.name,
                if own { " (own key)" } else { "" },
                median(lens),
                detected,
                answers[ai].len(),
                median(log10s),
                needed,
                ks
            );
        }
    }

    // 3. Quality: perplexity under the unmodified model.
    let n_ppl = n_prompts.min(24);
    println!("\n### Quality: perplexity of the answers under the unmodified model (first {n_ppl} answers per arm)\n");
    println!("| answers | median PPL | mean PPL | mean length |");
    println!("|---|---:|---:|---:|");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    for (ai, arm) in arms.iter().enumerate() {
        let ppl: Vec<f64> = pool.install(|| {
            answers[ai][..n_ppl]
                .iter()
                .zip(&encoded)
                .map(|(a, p)| perplexity(&rt, p, &a.tokens))
                .filter(|x| x.is_finite())
                .collect()
        });
        let mean = ppl.iter().sum::<f64>() / ppl.len() as f64;
        let len = answers[ai]
            .iter()
            .map(|a| a.tokens.len() as f64)
            .sum::<f64>()
            / answers[ai].len() as f64;
        println!(
            "| {} | {:.2} | {:.2} | {:.0} |",
            arm.name,
            median(ppl),
            mean,
            len
        );
    }

    // 4. Diversity: the same prompt with different seeds.
    let (n_div, seeds) = (8usize.min(n_prompts), 4u64);
    println!("\n### Diversity: distinct answers among {seeds} seeds per prompt ({n_div} prompts, 48 tokens)\n");
    println!("| answers | distinct / total |");
    println!("|---|---:|");
    for arm in &arms {
        let engine = start_engine(arm, 8);
        let mut distinct = 0;
        for p in &encoded[..n_div] {
            let reqs = (0..seeds)
                .map(|s| Request {
                    prompt: p.clone(),
                    max_tokens: 48,
                    sampling: t1,
                    seed: 1000 + s,
                    ..Request::default()
                })
                .collect();
            let mut outs: Vec<Vec<u32>> = run_all(&engine, reqs)
                .into_iter()
                .map(|a| a.tokens)
                .collect();
            outs.sort();
            outs.dedup();
            distinct += outs.len();
        }
        println!("| {} | {distinct}/{} |", arm.name, n_div as u64 * seeds);
    }

    // 5. Overhead: one sequence at a time, arms interleaved in rounds.
    println!("\n### Serving overhead: single sequence, {max_tokens} tokens, arms interleaved over 3 rounds\n");
    println!("| sampling | answers | decode tokens/s | ratio to none | token choice µs/token | share of the step |");
    println!("|---|---|---:|---:|---:|---:|");
    for (label, cfg) in [
        ("T=1", t1),
        (
            "T=1, top-p 0.95",
            SamplingConfig::new(1.0, 0, 0.95).unwrap(),
        ),
    ] {
        let engines: Vec<Engine> = arms.iter().map(|a| start_engine(a, 1)).collect();
        let mut rates = vec![Vec::new(); arms.len()];
        let mut choice = vec![Vec::new(); arms.len()];
        for round in 0..3 {
            for (i, e) in engines.iter().enumerate() {
                let req = Request {
                    prompt: encoded[0].clone(),
                    max_tokens,
                    sampling: cfg,
                    seed: 77 + round,
                    ..Request::default()
                };
                let a = run_all(e, vec![req]).remove(0);
                let n = a.tokens.len().max(2) - 1;
                rates[i].push(n as f64 / a.decode_s);
                choice[i].push(a.sampling_s / a.tokens.len().max(1) as f64);
            }
        }
        let base = median(rates[0].clone());
        for (i, arm) in arms.iter().enumerate() {
            let r = median(rates[i].clone());
            let c = median(choice[i].clone());
            println!(
                "| {label} | {} | {:.1} | {:.3} | {:.0} | {:.1}% |",
                arm.name,
                r,
                r / base,
                c * 1e6,
                c * r * 100.0
            );
        }
    }
}
