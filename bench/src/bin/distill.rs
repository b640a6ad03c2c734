//! The distillation experiment (issue #4): a watermarked teacher (the real
//! default model), students trained on its answers, and the audit of each
//! student in black-box and reading mode.
//!
//!   cargo run --release -p provmark-bench --bin distill -- [THREADS]
//!
//! Teacher answers are cached in `target/distill/` (a rerun resumes).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use provmark_bench::corpus::docs_corpus;
use provmark_bench::ks;
use provmark_bench::ngram::KneserNey;
use provmark_bench::plot::{log_x_plot, Series};
use provmark_bench::prompts::prompt_set;
use provmark_bench::teacher::{self, TeacherAnswer, TeacherRun};
use provmark_bench::transformer::{TinyConfig, TinyLm};
use provmark_llm::chat::Message;
use provmark_llm::default_model;
use provmark_llm::engine::{Engine, EngineConfig, Request};
use provmark_llm::runtime::Runtime;
use provmark_verify::corpus::{
    key_swap_null, null_detector, score_tuples, DistinctTuples, Shard, TupleSet,
};
use provmark_verify::{Detector, TextTokenizer};
use provmark_watermark::{Key, KgwParams, Profile, SamplingConfig, Scheme, SynthIdParams};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

/// The lab's key for the experiment (public: this is an experiment).
const LAB_KEY: [u8; 32] = [0x4c; 32];
/// Prompts (8 families × 24 topics) and answers per prompt.
const PROMPTS: usize = 192;
const SAMPLES: u32 = 2;
const MAX_TOKENS: usize = 128;

/// Families never shown to the students: black-box queries and reading
/// texts come from these.
const HELD_OUT: &[&str] = &["poem", "letter"];
/// Student answers per held-out prompt in black-box mode, and their length.
const STUDENT_SAMPLES: u32 = 64;
/// Order of the Kneser–Ney students.
const ORDER: usize = 4;
/// Watermarked share of the students' training answers.
const CONTAMINATION: &[f64] = &[1.0, 0.5, 0.1, 0.05];
/// Random keys in each key-swap null, and in the control students' check.
const SWAP_KEYS: usize = 99;
const CONTROL_KEYS: usize = 200;

/// One student's outputs.
struct StudentRow {
    label: String,
    /// Black-box answers (re-tokenized).
    answers: Vec<Vec<u32>>,
    /// Reading-mode predictions over the held-out lab texts.
    held_out: Vec<Vec<u32>>,
    /// Reading-mode predictions over all the lab's texts of the arm.
    all: Vec<Vec<u32>>,
}

/// One audit target: the tuples of a corpus and their exact test.
struct Outcome {
    tokens: usize,
    log10_p: f64,
}

fn figures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("figures")
}

fn distinct(h: usize, texts: &[Vec<u32>]) -> DistinctTuples {
    let mut set = TupleSet::new(h, Shard::new(0, 1).unwrap()).unwrap();
    for t in texts {
        set.add_text(t);
    }
    set.finish()
}

fn distinct_reading(h: usize, texts: &[Vec<u32>], predictions: &[Vec<u32>]) -> DistinctTuples {
    let mut set = TupleSet::new(h, Shard::new(0, 1).unwrap()).unwrap();
    for (t, p) in texts.iter().zip(predictions) {
        set.add_predictions(t, p).unwrap();
    }
    set.finish()
}

fn test(detector: &Detector, tuples: &DistinctTuples, tokens: usize) -> Outcome {
    let s = score_tuples(detector, tuples).unwrap();
    Outcome {
        tokens,
        log10_p: s.test(detector).map_or(0.0, |t| t.p.log10()),
    }
}

/// log10 p after growing prefixes of the corpus (≈ 24 points), for the
/// p-versus-tokens curve and the tokens needed for p ≤ 1e-6.
fn curve(
    detector: &Detector,
    h: usize,
    texts: &[Vec<u32>],
    reading: Option<&[Vec<u32>]>,
) -> Vec<Outcome> {
    let mut sizes: Vec<usize> = (0..24)
        .map(|i| ((texts.len() as f64).powf((i + 1) as f64 / 24.0)).round() as usize)
        .collect();
    sizes.dedup();
    sizes
        .into_iter()
        .map(|n| {
            let tuples = match reading {
                Some(p) => distinct_reading(h, &texts[..n], &p[..n]),
                None => distinct(h, &texts[..n]),
            };
            let tokens = texts[..n].iter().map(Vec::len).sum();
            test(detector, &tuples, tokens)
        })
        .collect()
}

fn tokens_to(curve: &[Outcome], log10_alpha: f64) -> String {
    curve
        .iter()
        .find(|o| o.log10_p <= log10_alpha)
        .map_or("not reached".into(), |o| o.tokens.to_string())
}

fn at_tokens(curve: &[Outcome], tokens: usize) -> String {
    curve
        .iter()
        .rev()
        .find(|o| o.tokens <= tokens)
        .map_or("–".into(), |o| format!("{:.1}", o.log10_p))
}

fn is_held_out(a: &TeacherAnswer) -> bool {
    HELD_OUT.contains(&a.family.as_str())
}

/// The black-box queries (the held-out families' prompts, once each) and
/// the indices of the answers students may train on.
fn split(answers: &[TeacherAnswer]) -> (Vec<Vec<u32>>, Vec<usize>) {
    let mut queries: Vec<Vec<u32>> = answers
        .iter()
        .filter(|a| is_held_out(a) && a.sample == 0)
        .map(|a| a.prompt.clone())
        .collect();
    queries.dedup();
    let train = (0..answers.len())
        .filter(|&i| !is_held_out(&answers[i]))
        .collect();
    (queries, train)
}

/// Training sequences: prompt, answer, end token.
fn sequences<'a>(answers: impl IntoIterator<Item = &'a TeacherAnswer>, end: u32) -> Vec<Vec<u32>> {
    answers
        .into_iter()
        .map(|a| {
            let mut s = a.prompt.clone();
            s.extend_from_slice(&a.tokens);
            s.push(end);
            s
        })
        .collect()
}

fn train(seqs: &[Vec<u32>], vocab: usize, end: u32) -> KneserNey {
    KneserNey::train(ORDER, vocab, end, seqs.iter().map(Vec::as_slice))
}

/// A deterministic "is answer i watermarked" draw at contamination `c`.
fn chosen(i: usize, c: f64) -> bool {
    let mut rng = ChaCha20Rng::seed_from_u64(0xc0_7a_11 ^ i as u64);
    ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < c
}

/// The student's answers to `prompts`, as the auditor sees them: decoded
/// to text and re-tokenized with the lab's tokenizer.
fn student_answers(
    student: &KneserNey,
    prompts: &[Vec<u32>],
    stops: &[u32],
    rt: &Runtime,
    tokenizer: &TextTokenizer,
) -> Vec<Vec<u32>> {
    let jobs: Vec<(usize, u32)> = (0..prompts.len())
        .flat_map(|p| (0..STUDENT_SAMPLES).map(move |s| (p, s)))
        .collect();
    jobs.par_iter()
        .map(|&(p, s)| {
            let mut rng = ChaCha20Rng::seed_from_u64((p as u64) << 16 | s as u64);
            let mut history = prompts[p].clone();
            let start = history.len();
            for _ in 0..MAX_TOKENS {
                let t = student.sample(&history, &mut rng);
                if stops.contains(&t) {
                    break;
                }
                history.push(t);
            }
            let text = rt.decode(&history[start..]).unwrap();
            tokenizer.encode(&text).unwrap()
        })
        .collect()
}

/// The student's top-1 prediction at every position of each reading text
/// (given the prompt and the real answer so far).
fn student_reading(student: &KneserNey, texts: &[&TeacherAnswer]) -> Vec<Vec<u32>> {
    texts
        .par_iter()
        .map(|a| {
            let mut history = a.prompt.clone();
            let mut out = Vec::with_capacity(a.tokens.len());
            for &t in &a.tokens {
                out.push(student.top1(&history));
                history.push(t);
            }
            out
        })
        .collect()
}

/// Random edits an adversary might apply: substitute or delete each token
/// with probability `rate`.
fn perturb(texts: &[Vec<u32>], rate: f64, delete: bool, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    texts
        .iter()
        .map(|t| {
            let mut out = Vec::with_capacity(t.len());
            for &id in t {
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                if u >= rate {
                    out.push(id);
                } else if !delete {
                    out.push((rng.next_u64() % vocab as u64) as u32);
                }
            }
            out
        })
        .collect()
}

/// p-values of a corpus under `CONTROL_KEYS` random keys with `profile`'s
/// parameters: a student that never saw the key must look uniform.
fn random_key_ps(profile: &Profile, tuples: &DistinctTuples) -> Vec<f64> {
    (0..CONTROL_KEYS as u64)
        .map(|i| {
            let d = null_detector(profile, 7_000, i);
            let s = score_tuples(&d, tuples).unwrap();
            s.test(&d).map_or(1.0, |t| t.p.value())
        })
        .collect()
}

fn swap_p(profile: &Profile, detector: &Detector, tuples: &DistinctTuples) -> f64 {
    let observed = score_tuples(detector, tuples).unwrap();
    key_swap_null(profile, tuples, &observed, SWAP_KEYS, 1, &|_| {})
        .unwrap()
        .p_value
}

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("THREADS"))
        .unwrap_or(2);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/distill");
    let path = default_model::ensure(&mut |l| eprintln!("{l}")).expect("default model");
    let rt = Arc::new(Runtime::load(&path, "smollm2").expect("load"));
    let tokenizer = TextTokenizer::from_bytes(rt.tokenizer.to_json().as_bytes(), "model").unwrap();
    let key = Key::from_bytes(LAB_KEY);
    let kgw = Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap());
    let arms: Vec<(String, Option<Profile>)> = vec![
        ("none".to_string(), None, 0),
        ("kgw-h1".to_string(), Some(kgw), 1),
        ("kgw-h2".to_string(), Some(kgw), 2),
        ("kgw-h3".to_string(), Some(kgw), 3),
        ("gumbel-h2".to_string(), Some(Scheme::Gumbel), 2),
        (
            "synthid-h2".to_string(),
            Some(Scheme::SynthId(SynthIdParams::new(30).unwrap())),
            2,
        ),
    ]
    .into_iter()
    .map(|(name, scheme, h)| {
        let profile = scheme.map(|s| Profile::new(s, h, tokenizer.digest().clone(), &key).unwrap());
        (name, profile)
    })
    .collect::<Vec<_>>();
    let prompts = prompt_set(PROMPTS);
    // DISTILL_CACHED_ONLY=1: analyse only the arms already generated.
    let cached_only = std::env::var_os("DISTILL_CACHED_ONLY").is_some();
    let mut teachers = Vec::new();
    let mut kept = Vec::new();
    for (name, profile) in arms {
        let t = Instant::now();
        let run = TeacherRun {
            runtime: &rt,
            profile: profile.as_ref(),
            key: &key,
            prompts: &prompts,
            samples: SAMPLES,
            max_tokens: MAX_TOKENS,
            threads,
        };
        let path = dir.join(format!("teacher-{name}.jsonl"));
        let answers = if cached_only {
            match teacher::cached(&run, &path) {
                Some(a) => a,
                None => continue,
            }
        } else {
            teacher::answers(&run, &path)
        };
        let tokens: usize = answers.iter().map(|a| a.tokens.len()).sum();
        eprintln!(
            "teacher {name}: {} answers, {tokens} tokens ({:.0} s)",
            answers.len(),
            t.elapsed().as_secs_f64()
        );
        teachers.push(answers);
        kept.push((name, profile));
    }
    let arms = kept;

    analyse(&rt, &tokenizer, &key, &arms, &teachers);
    if std::env::var_os("DISTILL_SKIP_NN").is_none() {
        analyse_transformers(&rt, &tokenizer, &key, &arms, &teachers);
    }
}

/// Student answers paraphrased by the unwatermarked default model, per
/// 100%-contaminated student (the attack of rewriting a distilled copy's
/// output with another model).
const PARAPHRASED: usize = 48;

fn paraphrase(
    engine: &Engine,
    tokenizer: &TextTokenizer,
    rt: &Runtime,
    answers: &[Vec<u32>],
) -> Vec<Vec<u32>> {
    let requests = answers
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let text = rt.decode(a).unwrap();
            let prompt = rt
                .encode_chat(&[Message {
                    role: "user".into(),
                    content: format!("Rewrite the following text in your own words, keeping its meaning:\n\n{text}"),
                }])
                .unwrap();
            Request {
                prompt,
                max_tokens: MAX_TOKENS + 32,
                sampling: SamplingConfig::new(0.7, 0, 0.95).unwrap(),
                seed: 5000 + i as u64,
                ..Request::default()
            }
        })
        .collect();
    engine
        .run_batch(requests)
        .unwrap()
        .into_iter()
        .map(|a| tokenizer.encode(&a.text).unwrap())
        .collect()
}

fn analyse(
    rt: &Arc<Runtime>,
    tokenizer: &TextTokenizer,
    key: &Key,
    arms: &[(String, Option<Profile>)],
    teachers: &[Vec<TeacherAnswer>],
) {
    let vocab = rt.model.config().vocab;
    let stops = rt.stop_tokens().to_vec();
    let end = stops[0];
    let held_out = |a: &&TeacherAnswer| is_held_out(a);
    let none = &teachers[0];
    let (query_prompts, train_idx) = split(none);
    let train_tokens: usize = train_idx.iter().map(|&i| none[i].tokens.len()).sum();
    println!("## Distillation: Kneser–Ney {ORDER}-gram students of SmolLM2-135M-Instruct\n");
    println!(
        "Teacher: the default model at T = 1, {PROMPTS} prompts × {SAMPLES} samples, ≤ {MAX_TOKENS} tokens; students train on the {} answers of the {} non-held-out families ({train_tokens} answer tokens in the unwatermarked run) and are queried with the {} prompts of the held-out families ({}) × {STUDENT_SAMPLES} samples. Reading mode: the student's top-1 prediction at every position of the lab's watermarked answers. Key-swap null: {SWAP_KEYS} keys.\n",
        train_idx.len(),
        8 - HELD_OUT.len(),
        query_prompts.len(),
        HELD_OUT.join(", ")
    );

    // Control students (never saw a watermark): trained on the unwatermarked
    // teacher, and on human text.
    let t = Instant::now();
    let clean_student = train(
        &sequences(train_idx.iter().map(|&i| &none[i]), end),
        vocab,
        end,
    );
    let docs = docs_corpus();
    let human_seqs: Vec<Vec<u32>> = docs
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let mut s = tokenizer.encode(p).unwrap();
            s.push(end);
            s
        })
        .collect();
    let human_student = train(&human_seqs, vocab, end);
    let clean_bb = student_answers(&clean_student, &query_prompts, &stops, rt, tokenizer);
    let human_bb = student_answers(&human_student, &query_prompts, &stops, rt, tokenizer);
    eprintln!("control students: {:.1} s", t.elapsed().as_secs_f64());

    println!("### Attribution per teacher profile and contamination\n");
    println!("Black-box: log10 p of the student's answers after 1k … 64k tokens and all of them, tokens needed for p ≤ 1e-6, key-swap p (floor 1/{}). Reading (held-out): the lab's {} answers to held-out prompts ({} tokens in the unwatermarked run), which no student saw. Reading (all): all {} of the lab's answers of that profile, as a lab would feed them (the students trained on some).\n", SWAP_KEYS + 1, query_prompts.len() * SAMPLES as usize, none.iter().filter(held_out).map(|a| a.tokens.len()).sum::<usize>(), none.len());
    println!("| teacher profile | student trained on | black-box tokens | log10 p @1k | @4k | @16k | @64k | all | tokens to 1e-6 | key-swap p | reading (held-out) log10 p | tokens to 1e-6 | key-swap p | reading (all) log10 p | key-swap p |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut robustness = Vec::new();
    let mut paraphrases = Vec::new();
    let paraphraser = Engine::start(
        rt.clone(),
        None,
        EngineConfig {
            threads: 2,
            max_batch: 16,
            prefill_chunk: 256,
        },
    )
    .unwrap();
    let mut controls = Vec::new();
    let mut figures = Vec::new();
    for (a, (name, profile)) in arms.iter().enumerate().skip(1) {
        let profile = profile.as_ref().unwrap();
        let h = profile.context();
        let detector = Detector::new(profile, key).unwrap();
        let marked = &teachers[a];
        let reading: Vec<&TeacherAnswer> = marked.iter().filter(held_out).collect();
        let reading_ids: Vec<Vec<u32>> = reading.iter().map(|r| r.tokens.clone()).collect();
        let lab_texts: Vec<&TeacherAnswer> = marked.iter().collect();
        let lab_ids: Vec<Vec<u32>> = marked.iter().map(|r| r.tokens.clone()).collect();
        let row = |label: String, student: &KneserNey, answers: Vec<Vec<u32>>| StudentRow {
            label,
            answers,
            held_out: student_reading(student, &reading),
            all: student_reading(student, &lab_texts),
        };
        let mut rows: Vec<StudentRow> = Vec::new();
        for &c in CONTAMINATION {
            let t = Instant::now();
            let mix: Vec<&TeacherAnswer> = train_idx
                .iter()
                .map(|&i| if chosen(i, c) { &marked[i] } else { &none[i] })
                .collect();
            let student = train(&sequences(mix, end), vocab, end);
            let bb = student_answers(&student, &query_prompts, &stops, rt, tokenizer);
            rows.push(row(format!("{:.0}% watermarked", c * 100.0), &student, bb));
            eprintln!("{name} at {c}: student {:.1} s", t.elapsed().as_secs_f64());
        }
        rows.push(row(
            "unwatermarked answers".into(),
            &clean_student,
            clean_bb.clone(),
        ));
        rows.push(row("human text".into(), &human_student, human_bb.clone()));
        let mut series = Vec::new();
        for StudentRow {
            label,
            answers: bb,
            held_out: preds,
            all,
        } in &rows
        {
            let bb_curve = curve(&detector, h, bb, None);
            let rd_curve = curve(&detector, h, &reading_ids, Some(preds));
            series.push(Series {
                label: label.clone(),
                points: bb_curve
                    .iter()
                    .map(|o| (o.tokens as f64, o.log10_p))
                    .collect(),
            });
            let bb_all = bb_curve.last().unwrap();
            let rd_all = rd_curve.last().unwrap();
            let bb_swap = swap_p(profile, &detector, &distinct(h, bb));
            let rd_swap = swap_p(
                profile,
                &detector,
                &distinct_reading(h, &reading_ids, preds),
            );
            let all_t = distinct_reading(h, &lab_ids, all);
            let all_o = test(&detector, &all_t, 0);
            let all_swap = swap_p(profile, &detector, &all_t);
            println!(
                "| {name} | {label} | {} | {} | {} | {} | {} | {:.1} | {} | {:.2} | {:.1} | {} | {:.2} | {:.1} | {:.2} |",
                bb_all.tokens,
                at_tokens(&bb_curve, 1000),
                at_tokens(&bb_curve, 4000),
                at_tokens(&bb_curve, 16000),
                at_tokens(&bb_curve, 64000),
                bb_all.log10_p,
                tokens_to(&bb_curve, -6.0),
                bb_swap,
                rd_all.log10_p,
                tokens_to(&rd_curve, -6.0),
                rd_swap,
                all_o.log10_p,
                all_swap,
            );
            if label.starts_with("100%") || label.starts_with("10%") {
                let mut cells = Vec::new();
                for (rate, delete) in [(0.1, false), (0.3, false), (0.1, true), (0.3, true)] {
                    let edited = perturb(bb, rate, delete, vocab, 99);
                    let tokens = edited.iter().map(Vec::len).sum();
                    cells.push(test(&detector, &distinct(h, &edited), tokens).log10_p);
                }
                robustness.push((name.clone(), label.clone(), bb_all.log10_p, cells));
            }
            if label.starts_with("100%") {
                let subset = &bb[..PARAPHRASED.min(bb.len())];
                let t = Instant::now();
                let rewritten = paraphrase(&paraphraser, tokenizer, rt, subset);
                eprintln!(
                    "{name}: paraphrased {} answers in {:.0} s",
                    subset.len(),
                    t.elapsed().as_secs_f64()
                );
                let tokens = |v: &[Vec<u32>]| v.iter().map(Vec::len).sum::<usize>();
                let before = test(&detector, &distinct(h, subset), tokens(subset));
                let after = test(&detector, &distinct(h, &rewritten), tokens(&rewritten));
                paraphrases.push((name.clone(), before, after));
            }
            if label.starts_with("unwatermarked") || label.starts_with("human") {
                // An eighth of the answers (8 per prompt) keeps 200 keys cheap.
                let bb_ps = random_key_ps(profile, &distinct(h, &bb[..bb.len() / 8]));
                let rd_ps = random_key_ps(profile, &distinct_reading(h, &reading_ids, preds));
                controls.push((name.clone(), label.clone(), bb_ps, rd_ps));
            }
        }
        let figure = format!("distill-{name}.svg");
        std::fs::create_dir_all(figures_dir()).unwrap();
        std::fs::write(
            figures_dir().join(&figure),
            log_x_plot(
                &format!("{name}: n-gram students queried as a black box"),
                "student tokens audited",
                "log10 p",
                &series,
                Some((-6.0, "p = 1e-6")),
            ),
        )
        .unwrap();
        figures.push(figure);
    }

    println!();
    for f in &figures {
        println!("![{f}](figures/{f})");
    }
    println!("\n### Robustness: the students' black-box answers edited at random (log10 p, all tokens)\n");
    println!("| teacher profile | student trained on | unedited | 10% substituted | 30% substituted | 10% deleted | 30% deleted |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (name, label, base, cells) in &robustness {
        println!(
            "| {name} | {label} | {base:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            cells[0], cells[1], cells[2], cells[3]
        );
    }

    println!("\n### Paraphrase: {PARAPHRASED} answers of each 100%-contaminated student rewritten by the unwatermarked default model (T = 0.7, top-p 0.95)\n");
    println!("| teacher profile | tokens before | log10 p before | tokens after | log10 p after |");
    println!("|---|---:|---:|---:|---:|");
    for (name, before, after) in &paraphrases {
        println!(
            "| {name} | {} | {:.1} | {} | {:.1} |",
            before.tokens, before.log10_p, after.tokens, after.log10_p
        );
    }

    println!("\n### Controls: students that never saw the watermark, tested under {CONTROL_KEYS} random keys\n");
    println!("| profile | student trained on | mode | min p | p ≤ 1e-3 | KS D (crit. 1%) |");
    println!("|---|---|---|---:|---:|---:|");
    for (name, label, bb, rd) in &controls {
        for (mode, ps) in [("black-box", bb), ("reading", rd)] {
            let min = ps.iter().copied().fold(1.0, f64::min);
            let low = ps.iter().filter(|&&p| p <= 1e-3).count();
            println!(
                "| {name} | {label} | {mode} | {min:.2e} | {low}/{} | {:.3} ({:.3}) |",
                ps.len(),
                ks::ks_uniform(ps),
                ks::ks_critical(ps.len(), 0.01)
            );
        }
    }
}

/// The transformer students: fewer than the n-gram ones (each takes minutes
/// on two cores), on the profiles and contamination levels that matter most.
const NN_ARMS: &[&str] = &["kgw-h1", "kgw-h2"];
const NN_CONTAMINATION: &[f64] = &[1.0, 0.1];
const NN: TinyConfig = TinyConfig {
    width: 128,
    layers: 2,
    heads: 4,
    context: 64,
    steps: 300,
    batch: 16,
    learning_rate: 3e-3,
    vocab: 4096,
};
/// Black-box answers per held-out prompt from a transformer student.
const NN_SAMPLES: usize = 2;

fn train_nn(seqs: &[Vec<u32>], label: &str) -> (TinyLm, f32, f64) {
    let t = Instant::now();
    let mut last = f32::NAN;
    let lm = TinyLm::train(NN, seqs, 17, &mut |step, loss| {
        last = loss;
        if step % 100 == 0 {
            eprintln!(
                "  {label}: step {step}, loss {loss:.3} ({:.0} s)",
                t.elapsed().as_secs_f64()
            );
        }
    })
    .expect("training");
    (lm, last, t.elapsed().as_secs_f64())
}

fn nn_outputs(
    lm: &TinyLm,
    prompts: &[Vec<u32>],
    stops: &[u32],
    rt: &Runtime,
    tokenizer: &TextTokenizer,
    reading: &[&TeacherAnswer],
) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let queries: Vec<Vec<u32>> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.clone(), NN_SAMPLES))
        .collect();
    let answers = lm
        .generate(&queries, MAX_TOKENS, stops, 23)
        .expect("generation");
    let bb = answers
        .iter()
        .map(|a| tokenizer.encode(&rt.decode(a).unwrap()).unwrap())
        .collect();
    let preds = reading
        .iter()
        .map(|r| lm.read(&r.prompt, &r.tokens).expect("reading"))
        .collect();
    (bb, preds)
}

fn analyse_transformers(
    rt: &Runtime,
    tokenizer: &TextTokenizer,
    key: &Key,
    arms: &[(String, Option<Profile>)],
    teachers: &[Vec<TeacherAnswer>],
) {
    let stops = rt.stop_tokens().to_vec();
    let end = stops[0];
    let held_out = |a: &&TeacherAnswer| is_held_out(a);
    let none = &teachers[0];
    let (query_prompts, train_idx) = split(none);
    println!(
        "\n### Transformer students (candle, {} layers, width {}, {} heads, context {}, {} AdamW steps of {} × {} tokens)\n",
        NN.layers, NN.width, NN.heads, NN.context, NN.steps, NN.batch, NN.context
    );
    println!("Black-box: {} held-out prompts × {NN_SAMPLES} answers. Reading mode as for the n-gram students.\n", query_prompts.len());
    println!("| teacher profile | student trained on | final loss | train s | black-box tokens | log10 p | key-swap p | reading (held-out) log10 p | key-swap p | reading (all) log10 p | key-swap p |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let (clean_lm, clean_loss, clean_s) = train_nn(
        &sequences(train_idx.iter().map(|&i| &none[i]), end),
        "unwatermarked",
    );
    for (a, (name, profile)) in arms.iter().enumerate() {
        if !NN_ARMS.contains(&name.as_str()) {
            continue;
        }
        let profile = profile.as_ref().unwrap();
        let h = profile.context();
        let detector = Detector::new(profile, key).unwrap();
        let marked = &teachers[a];
        // Predictions over all the lab's texts; the held-out ones are a subset.
        let reading: Vec<&TeacherAnswer> = marked.iter().collect();
        let reading_ids: Vec<Vec<u32>> = reading.iter().map(|r| r.tokens.clone()).collect();
        let held: Vec<usize> = (0..marked.len())
            .filter(|&i| held_out(&&marked[i]))
            .collect();
        let pick =
            |v: &[Vec<u32>]| -> Vec<Vec<u32>> { held.iter().map(|&i| v[i].clone()).collect() };
        let mut rows = Vec::new();
        for &c in NN_CONTAMINATION {
            let mix: Vec<&TeacherAnswer> = train_idx
                .iter()
                .map(|&i| if chosen(i, c) { &marked[i] } else { &none[i] })
                .collect();
            let label = format!("{:.0}% watermarked", c * 100.0);
            let (lm, loss, secs) = train_nn(&sequences(mix, end), &format!("{name} {label}"));
            let (bb, preds) = nn_outputs(&lm, &query_prompts, &stops, rt, tokenizer, &reading);
            rows.push((label, loss, secs, bb, preds));
        }
        let (bb, preds) = nn_outputs(&clean_lm, &query_prompts, &stops, rt, tokenizer, &reading);
        rows.push((
            "unwatermarked answers".into(),
            clean_loss,
            clean_s,
            bb,
            preds,
        ));
        for (label, loss, secs, bb, preds) in rows {
            let tokens = bb.iter().map(Vec::len).sum();
            let bb_t = distinct(h, &bb);
            let held_t = distinct_reading(h, &pick(&reading_ids), &pick(&preds));
            let all_t = distinct_reading(h, &reading_ids, &preds);
            let bb_o = test(&detector, &bb_t, tokens);
            let held_o = test(&detector, &held_t, 0);
            let all_o = test(&detector, &all_t, 0);
            println!(
                "| {name} | {label} | {loss:.2} | {secs:.0} | {tokens} | {:.1} | {:.2} | {:.1} | {:.2} | {:.1} | {:.2} |",
                bb_o.log10_p,
                swap_p(profile, &detector, &bb_t),
                held_o.log10_p,
                swap_p(profile, &detector, &held_t),
                all_o.log10_p,
                swap_p(profile, &detector, &all_t),
            );
        }
    }
}
