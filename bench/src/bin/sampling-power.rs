//! Detection power against the sampling settings a client sends (issue
//! #11): for each default scheme and each temperature / top-p setting,
//! answers of the real default model (SmolLM2-135M-Instruct) generated as
//! served (`Engine`, one `Embedder::response()` per answer, spec §6.1), then
//! per cell: per-answer p-values, pooled tokens to p ≤ 1e-6, the share of
//! positions where the key had a choice, a diversity figure and a
//! wrong-key null.
//!
//!   cargo run --release -p provmark-bench --bin sampling-power -- [PROMPTS] [MAX_TOKENS] [THREADS] [CHOICE_ANSWERS] [FIGURE_DIR]
//!
//! Defaults: 16 prompts, 160 tokens, 2 threads, the choice shares over the
//! first 8 answers of each cell (a teacher-forced forward pass each), no
//! figures. Prints Markdown tables for bench/RESULTS.md, each scheme's rows
//! as soon as its answers are analysed. Everything is seeded: a rerun on the same
//! CPU features gives the same answers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use provmark_bench::plot::{log_x_plot, Series};
use provmark_bench::prompts::prompt_set;
use provmark_bench::real::{
    answer_logits, default_schemes, encode_user_prompts, median, DEFAULT_CONTEXT,
};
use provmark_llm::default_model;
use provmark_llm::engine::{Answer, Engine, EngineConfig, Request};
use provmark_llm::runtime::Runtime;
use provmark_verify::corpus::null_detector;
use provmark_verify::{Detector, ScoredText, TextTokenizer};
use provmark_watermark::{Embedder, Key, Profile, SamplingConfig, Scheme};
use rayon::prelude::*;

const ALPHA: f64 = 1e-6;

/// The sampling settings of the grid: (label, temperature, top-p).
const SETTINGS: &[(&str, f32, f32)] = &[
    ("T=0 (greedy)", 0.0, 1.0),
    ("T=0.2", 0.2, 1.0),
    ("T=0.5", 0.5, 1.0),
    ("T=0.7", 0.7, 1.0),
    ("T=1", 1.0, 1.0),
    ("T=1, top-p 0.1", 1.0, 0.1),
    ("T=1, top-p 0.5", 1.0, 0.5),
    ("T=1, top-p 0.95", 1.0, 0.95),
    ("T=0.7, top-p 0.95", 0.7, 0.95),
    ("T=0.7, top-p 0.8", 0.7, 0.8),
];

/// The settings between the grid's points where the floors lie
/// (`SAMPLING_POWER_GRID=refine`), for the schemes named in
/// `SAMPLING_POWER_SCHEMES` (comma-separated names; default all).
const REFINE: &[(&str, f32, f32)] = &[
    ("T=0.8", 0.8, 1.0),
    ("T=0.9", 0.9, 1.0),
    ("T=1, top-p 0.8", 1.0, 0.8),
    ("T=1, top-p 0.9", 1.0, 0.9),
];

/// The candidate set one decode step drew from, as far as this experiment
/// needs it.
struct CandidateStats {
    /// Tokens in the set.
    count: usize,
    /// Largest probability in the set (renormalised).
    p_max: f64,
    /// Whether `token` is in the set (a check of this replication).
    contains: bool,
}

/// Replicates `provmark_watermark`'s candidate set (temperature → top-p,
/// top-k off; `Candidates::build` is crate-private) for one row of
/// (already KGW-biased) logits: the same weights exp((l − max)/T) summed in
/// id order, the same descending order with ties by id and the same
/// "first cumulative mass ≥ top_p · total" cut. Only tokens of weight
/// ≥ 1e-9 are sorted: the rest weigh < 5e-5 together, far below the
/// (1 − top_p) · total ≥ 0.05 that would let the cut reach them.
fn candidate_stats(
    row: &[f32],
    cfg: &SamplingConfig,
    token: u32,
    scratch: &mut Vec<(f64, u32)>,
) -> CandidateStats {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if cfg.temperature() == 0.0 || !max.is_finite() {
        let mut best = 0;
        for (i, &l) in row.iter().enumerate() {
            if l > row[best] {
                best = i;
            }
        }
        return CandidateStats {
            count: 1,
            p_max: 1.0,
            contains: best as u32 == token,
        };
    }
    let inv_t = 1.0 / cfg.temperature() as f64;
    let weight = |l: f32| (((l - max) as f64) * inv_t).exp();
    let total: f64 = row.iter().map(|&l| weight(l)).sum();
    if cfg.top_p() >= 1.0 {
        return CandidateStats {
            count: row.iter().filter(|&&l| weight(l) > 0.0).count(),
            p_max: 1.0 / total,
            contains: weight(row[token as usize]) > 0.0,
        };
    }
    scratch.clear();
    scratch.extend(
        row.iter()
            .enumerate()
            .map(|(i, &l)| (weight(l), i as u32))
            .filter(|&(w, _)| w >= 1e-9),
    );
    scratch.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let target = cfg.top_p() as f64 * total;
    let mut cumulative = 0.0;
    let mut keep = scratch.len();
    for (n, &(w, _)) in scratch.iter().enumerate() {
        cumulative += w;
        if cumulative >= target {
            keep = n + 1;
            break;
        }
    }
    let kept: f64 = scratch[..keep].iter().map(|x| x.0).sum();
    CandidateStats {
        count: keep,
        p_max: scratch[0].0 / kept,
        contains: scratch[..keep].iter().any(|x| x.1 == token),
    }
}

/// What the model offered the key along one cell's answers.
#[derive(Default)]
struct Choice {
    positions: usize,
    /// Positions with ≥ 2 candidates.
    choice: usize,
    /// Positions the embedder marked (fresh window, spec §6.1) with ≥ 2
    /// candidates: where the key had a choice.
    marked_choice: usize,
    /// Σ (1 − p_max) over positions.
    open_mass: f64,
    /// Generated tokens outside the replicated candidate set (should be 0).
    outside: usize,
}

impl Choice {
    fn add(&mut self, o: Choice) {
        self.positions += o.positions;
        self.choice += o.choice;
        self.marked_choice += o.marked_choice;
        self.open_mass += o.open_mass;
        self.outside += o.outside;
    }
}

/// The candidate sets along one answer, from the model's logits and, for
/// KGW, the bias the embedder applies at a marked position.
fn answer_choice(
    rt: &Runtime,
    embedder: &Embedder,
    h: usize,
    prompt: &[u32],
    answer: &Answer,
    cfg: &SamplingConfig,
) -> Choice {
    let logits = answer_logits(rt, prompt, &answer.tokens);
    let v = rt.model.config().vocab;
    let kgw = matches!(embedder.schedule().scheme(), Scheme::Kgw(_));
    let mut response = embedder.response();
    let mut context = prompt.to_vec();
    let mut seen: HashSet<Vec<u32>> = HashSet::new();
    let mut row = vec![0f32; v];
    let mut scratch = Vec::new();
    let mut out = Choice::default();
    for (&token, raw) in answer.tokens.iter().zip(logits.chunks_exact(v)) {
        let marked = context.len() >= h && seen.insert(context[context.len() - h..].to_vec());
        row.copy_from_slice(raw);
        if kgw && marked {
            response.bias_logits(&context, &mut row);
        }
        let c = candidate_stats(&row, cfg, token, &mut scratch);
        out.positions += 1;
        out.choice += (c.count >= 2) as usize;
        out.marked_choice += (marked && c.count >= 2) as usize;
        out.open_mass += 1.0 - c.p_max;
        out.outside += (!c.contains) as usize;
        context.push(token);
    }
    out
}

/// One cell's texts tested under `detector`: per-answer log10 p, and the
/// pooled test over the answers concatenated in prompt order (each distinct
/// tuple once across the cell): log10 p and the text tokens read before it
/// first reaches `ALPHA`.
struct Tested {
    log10: Vec<f64>,
    pooled_log10: f64,
    pooled_tokens: usize,
    pooled_needed: Option<usize>,
}

fn test_cell(detector: &Detector, texts: &[Vec<u32>]) -> Tested {
    let h = detector.context_len();
    let mut log10 = Vec::new();
    let mut seen: HashSet<&[u32]> = HashSet::new();
    let (mut n, mut sum, mut offset) = (0u64, 0.0, 0usize);
    let mut needed = None;
    for ids in texts {
        let scored: ScoredText = detector.score(&[], ids);
        if let Some(t) = detector.detect_scored(&scored).test {
            log10.push(t.p.log10());
        }
        for (&pos, &s) in scored.positions.iter().zip(&scored.scores) {
            if !seen.insert(&ids[pos - h..=pos]) {
                continue;
            }
            n += 1;
            sum += s;
            if needed.is_none() && detector.test(n, sum).expect("n ≥ 1").p.ln() <= ALPHA.ln() {
                needed = Some(offset + pos + 1);
            }
        }
        offset += ids.len();
    }
    Tested {
        log10,
        pooled_log10: detector.test(n, sum).map_or(0.0, |t| t.p.log10()),
        pooled_tokens: offset,
        pooled_needed: needed,
    }
}

struct Cell {
    scheme: &'static str,
    setting: &'static str,
    temperature: f32,
    top_p: f32,
    answers: usize,
    mean_tokens: f64,
    choice: Choice,
    own: Tested,
    wrong: Tested,
    distinct_ratio: f64,
}

fn fmt_needed(t: &Tested) -> String {
    match t.pooled_needed {
        Some(k) => k.to_string(),
        None => format!("> {}", t.pooled_tokens),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| {
        args.get(i).map_or(d, |a| {
            a.parse()
                .expect("arguments: PROMPTS MAX_TOKENS THREADS CHOICE_ANSWERS [FIGURE_DIR]")
        })
    };
    let (n_prompts, max_tokens, threads) = (num(0, 16), num(1, 160), num(2, 2));
    let n_choice = num(3, 8).min(n_prompts);
    let figure_dir = args.get(4).cloned();
    let started = Instant::now();
    let path = default_model::ensure(&mut |l| eprintln!("{l}")).expect("default model");
    let rt = Arc::new(Runtime::load(&path, "smollm2").expect("load"));
    let tokenizer = TextTokenizer::from_bytes(rt.tokenizer.to_json().as_bytes(), "model").unwrap();
    let key = Key::from_bytes([0x5a; 32]);
    let prompts = prompt_set(n_prompts);
    let encoded = encode_user_prompts(&rt, &prompts);
    let grid = match std::env::var("SAMPLING_POWER_GRID").as_deref() {
        Ok("refine") => REFINE,
        _ => SETTINGS,
    };
    let wanted = std::env::var("SAMPLING_POWER_SCHEMES").ok();
    let chosen = || {
        default_schemes().into_iter().filter(|(_, s)| {
            wanted
                .as_deref()
                .is_none_or(|w| w.split(',').any(|n| n == s.name()))
        })
    };
    let settings: Vec<SamplingConfig> = grid
        .iter()
        .map(|&(_, t, p)| SamplingConfig::new(t, 0, p).unwrap())
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();

    println!(
        "## Detection power against sampling settings: SmolLM2-135M-Instruct (Q4_1), {n_prompts} prompts, ≤ {max_tokens} tokens, h = {DEFAULT_CONTEXT}, {threads} threads\n"
    );
    println!("### Per cell\n");
    println!("Choice (first {n_choice} answers of each cell): share of generated positions whose candidate set (after the KGW bias, temperature, top-p) has ≥ 2 tokens, and of those the embedder marked (fresh window, spec §6.1); open mass: mean 1 − p_max over the candidate set. Detection re-tokenizes the text. Pooled: the cell's answers concatenated in prompt order, each distinct tuple once.\n");
    println!("| scheme | setting | mean tokens | ≥ 2 candidates | marked with ≥ 2 | open mass | median log10 p | p ≤ 1e-6 | pooled tokens to 1e-6 | pooled log10 p | wrong key: median log10 p | wrong key: pooled log10 p | distinct-token ratio |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut cells = Vec::new();
    for (scheme_name, scheme) in chosen() {
        let profile =
            Profile::new(scheme, DEFAULT_CONTEXT, tokenizer.digest().clone(), &key).unwrap();
        let embedder = Embedder::new(&profile, &key).unwrap();
        let detector = Detector::new(&profile, &key).unwrap();
        let wrong = null_detector(&profile, 11, 0);
        let engine = Engine::start(
            rt.clone(),
            Some(embedder.clone()),
            EngineConfig {
                threads,
                max_batch: 8,
                prefill_chunk: 256,
            },
        )
        .unwrap();
        // Every setting's requests in one queue, so batches stay full.
        let t = Instant::now();
        let requests = settings
            .iter()
            .flat_map(|&sampling| {
                encoded.iter().enumerate().map(move |(i, p)| Request {
                    prompt: p.clone(),
                    max_tokens,
                    sampling,
                    seed: i as u64,
                    ..Request::default()
                })
            })
            .collect();
        let answers = engine.run_batch(requests).expect("answers");
        engine.shutdown();
        let generated: usize = answers.iter().map(|a| a.tokens.len()).sum();
        eprintln!(
            "{scheme_name}: {generated} tokens in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        for (s, (cfg, &(label, temperature, top_p))) in settings.iter().zip(grid).enumerate() {
            let cell = &answers[s * encoded.len()..(s + 1) * encoded.len()];
            let choice = pool.install(|| {
                cell[..n_choice]
                    .par_iter()
                    .zip(&encoded)
                    .map(|(a, p)| {
                        answer_choice(&rt, &embedder, DEFAULT_CONTEXT as usize, p, a, cfg)
                    })
                    .collect::<Vec<_>>()
            });
            let mut total = Choice::default();
            for c in choice {
                total.add(c);
            }
            // Detection reads the answers' text, re-tokenized, as an
            // auditor would.
            let texts: Vec<Vec<u32>> = cell
                .iter()
                .map(|a| tokenizer.encode(&a.text).unwrap())
                .collect();
            let distinct = cell
                .iter()
                .filter(|a| !a.tokens.is_empty())
                .map(|a| {
                    let d: HashSet<u32> = a.tokens.iter().copied().collect();
                    d.len() as f64 / a.tokens.len() as f64
                })
                .collect();
            cells.push(Cell {
                scheme: scheme_name,
                setting: label,
                temperature,
                top_p,
                answers: cell.len(),
                mean_tokens: cell.iter().map(|a| a.tokens.len() as f64).sum::<f64>()
                    / cell.len() as f64,
                choice: total,
                own: test_cell(&detector, &texts),
                wrong: test_cell(&wrong, &texts),
                distinct_ratio: median(distinct),
            });
        }
        eprintln!(
            "{scheme_name}: analysis in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        for c in &cells[cells.len() - grid.len()..] {
            let pos = c.choice.positions.max(1) as f64;
            let detected = c.own.log10.iter().filter(|&&l| l <= ALPHA.log10()).count();
            println!(
                "| {} | {} | {:.0} | {:.1}% | {:.1}% | {:.3} | {:.2} | {}/{} | {} | {:.1} | {:.2} | {:.2} | {:.2} |",
                c.scheme,
                c.setting,
                c.mean_tokens,
                100.0 * c.choice.choice as f64 / pos,
                100.0 * c.choice.marked_choice as f64 / pos,
                c.choice.open_mass / pos,
                median(c.own.log10.clone()),
                detected,
                c.answers,
                fmt_needed(&c.own),
                c.own.pooled_log10,
                median(c.wrong.log10.clone()),
                c.wrong.pooled_log10,
                c.distinct_ratio,
            );
        }
    }

    println!("\n### Pooled tokens to p ≤ 1e-6 (ratio to T = 1, top-p 1)\n");
    let schemes: Vec<&str> = chosen().map(|s| s.0).collect();
    println!("| setting | {} |", schemes.join(" | "));
    println!("|---|{}", "---:|".repeat(schemes.len()));
    for &(label, _, _) in grid {
        let row: Vec<String> = schemes
            .iter()
            .map(|&s| {
                let c = cells
                    .iter()
                    .find(|c| c.scheme == s && c.setting == label)
                    .unwrap();
                let base = cells
                    .iter()
                    .find(|b| b.scheme == s && b.setting == "T=1")
                    .and_then(|b| b.own.pooled_needed);
                match (c.own.pooled_needed, base) {
                    (Some(k), Some(b)) => format!("{k} ({:.1}×)", k as f64 / b as f64),
                    _ => fmt_needed(&c.own),
                }
            })
            .collect();
        println!("| {label} | {} |", row.join(" | "));
    }
    let outside: usize = cells.iter().map(|c| c.choice.outside).sum();
    let positions: usize = cells.iter().map(|c| c.choice.positions).sum();
    println!("\nReplication check: {outside} of {positions} generated tokens fall outside the candidate set recomputed from a teacher-forced forward pass.");
    println!("\nWall time: {:.0} s.", started.elapsed().as_secs_f64());

    if let Some(dir) = figure_dir {
        let series = |pick: &dyn Fn(&Cell) -> Option<f64>| -> Vec<Series> {
            schemes
                .iter()
                .map(|&s| Series {
                    label: s.to_string(),
                    points: cells
                        .iter()
                        .filter(|c| c.scheme == s)
                        .filter_map(|c| pick(c).map(|x| (x, median(c.own.log10.clone()))))
                        .collect(),
                })
                .collect()
        };
        let by_t =
            series(&|c| (c.top_p == 1.0 && c.temperature > 0.0).then_some(c.temperature as f64));
        let by_p = series(&|c| (c.temperature == 1.0).then_some(c.top_p as f64));
        for (name, title, x, s) in [
            (
                "sampling-power-temperature.svg",
                "Median per-answer log10 p vs temperature (top-p 1; T = 0 in the table)",
                "temperature",
                by_t,
            ),
            (
                "sampling-power-top-p.svg",
                "Median per-answer log10 p vs top-p (T = 1)",
                "top-p",
                by_p,
            ),
        ] {
            let svg = log_x_plot(title, x, "median log10 p", &s, Some((-6.0, "p = 1e-6")));
            std::fs::write(format!("{dir}/{name}"), svg).expect("write figure");
        }
    }
}
