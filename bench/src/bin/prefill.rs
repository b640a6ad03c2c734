//! Reading mode at prefill speed (issue #14): positions per second of the
//! open-weight audit's model work on the default model, loaded as audits
//! load it (`Precision::AsStored`).
//!
//!   cargo run --release -p provmark-bench --bin prefill -- [TEXTS] [TOKENS] [ROUNDS] [THREADS...]
//!
//! Defaults: 8 texts of 256 tokens (slices of the bundled Python
//! documentation, `bench/data/python-docs-topics.txt`), 3 rounds, threads
//! 1 and 2. For each thread count it times, over the same texts:
//!
//! - `prefill`: the bare forward pass, [`Model::forward_all`] over each
//!   whole text (next-token logits at every position, nothing else);
//! - `top1`: [`reading::predict_top1`], what `audit weights` runs per text;
//! - `expected`: [`reading::read_distributions`] plus the top-20 support
//!   weights of every position (`provmark_verify::expected::position_weights`),
//!   what `audit weights --statistic expected` runs per text, one model.
//!
//! A position is one token of a text (a text of L tokens has L − 1 scored
//! positions, but L rows go through the model; rows are counted). Prints a
//! Markdown table: the best and the median round.

use std::time::Instant;

use provmark_llm::default_model;
use provmark_llm::model::{Model, Precision, Step};
use provmark_llm::reading;
use provmark_llm::runtime::Runtime;
use provmark_verify::expected::position_weights;

fn texts(rt: &Runtime, count: usize, tokens: usize) -> Vec<Vec<u32>> {
    let doc = include_str!("../../data/python-docs-topics.txt");
    let ids = rt.encode_prompt(doc).expect("the bundled text tokenizes");
    assert!(
        ids.len() >= count * tokens,
        "the bundled text holds {} tokens, fewer than {count} × {tokens}",
        ids.len()
    );
    ids.chunks_exact(tokens)
        .take(count)
        .map(<[u32]>::to_vec)
        .collect()
}

fn prefill(model: &Model, ids: &[u32]) -> usize {
    let mut cache = model.new_cache();
    let mut logits = Vec::new();
    model
        .forward_all(
            Step {
                cache: &mut cache,
                tokens: ids,
            },
            &mut logits,
        )
        .expect("forward");
    logits.len()
}

fn top1(model: &Model, ids: &[u32]) -> usize {
    reading::predict_top1(model, ids, &mut |_, _| {})
        .expect("reading")
        .len()
}

fn expected(model: &Model, ids: &[u32]) -> usize {
    let mut support = 0;
    reading::read_distributions(&[model], ids, 1, &mut |_, rows| {
        support += position_weights(rows[0], None, 20).len();
    })
    .expect("reading");
    support
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: TEXTS TOKENS ROUNDS THREADS..."))
        .collect();
    let count = args.first().copied().unwrap_or(8);
    let tokens = args.get(1).copied().unwrap_or(256);
    let rounds = args.get(2).copied().unwrap_or(3).max(1);
    let threads: Vec<usize> = if args.len() > 3 {
        args[3..].to_vec()
    } else {
        vec![1, 2]
    };
    let path = default_model::ensure(&mut |l| eprintln!("{l}")).expect("default model");
    let rt = Runtime::load_with(&path, "smollm2", Precision::AsStored).expect("load");
    let model = &rt.model;
    eprintln!("weights: {:?}", model.weight_formats());
    let texts = texts(&rt, count, tokens);
    let rows = (count * tokens) as f64;
    println!("{count} texts × {tokens} tokens, {rounds} rounds; positions/s (best, median)\n");
    println!("| work | threads | positions/s best | median |");
    println!("|---|---:|---:|---:|");
    type Work = fn(&Model, &[u32]) -> usize;
    let works: [(&str, Work); 3] = [("prefill", prefill), ("top1", top1), ("expected", expected)];
    for &t in &threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .expect("pool");
        for (name, work) in works {
            let mut rates: Vec<f64> = (0..rounds)
                .map(|_| {
                    let start = Instant::now();
                    let out: usize =
                        pool.install(|| texts.iter().map(|ids| work(model, ids)).sum());
                    std::hint::black_box(out);
                    rows / start.elapsed().as_secs_f64()
                })
                .collect();
            rates.sort_by(f64::total_cmp);
            println!(
                "| {name} | {t} | {:.0} | {:.0} |",
                rates[rates.len() - 1],
                rates[rates.len() / 2]
            );
        }
    }
}
