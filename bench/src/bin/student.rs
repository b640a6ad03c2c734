//! The demo's distiller: trains a Kneser–Ney n-gram student on a teacher's
//! answers (the JSONL that `provmark generate` writes, or any JSONL with a
//! text field) and writes free-running answers of the student as JSONL for
//! `provmark audit corpus`.
//!
//!   student --train answers.jsonl --out student.jsonl
//!           [--answers 200] [--max-tokens 128] [--order 4] [--seed 1]
//!           [--field text] [--tokenizer tokenizer.json]
//!
//! The student sees only the answers' text, as a distiller calling an API
//! would: it tokenizes them with the lab's tokenizer (the default model's,
//! fetched once and cached, or `--tokenizer`). An n-gram student conditions
//! on its last `order − 1` tokens only, and after any chat prompt those are
//! the template's assistant header, so its answers do not depend on the
//! prompt: it is sampled free-running, each answer from its own seed.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use provmark_bench::ngram::KneserNey;
use provmark_llm::default_model;
use provmark_llm::gguf_tokenizer::GgufTokenizer;
use provmark_verify::TextTokenizer;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::Value;

struct Args {
    train: PathBuf,
    out: PathBuf,
    answers: usize,
    max_tokens: usize,
    order: usize,
    seed: u64,
    field: String,
    tokenizer: Option<PathBuf>,
}

const USAGE: &str = "usage: student --train ANSWERS.jsonl --out STUDENT.jsonl [--answers N] [--max-tokens N] [--order 2..4] [--seed S] [--field NAME] [--tokenizer tokenizer.json]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        train: PathBuf::new(),
        out: PathBuf::new(),
        answers: 200,
        max_tokens: 128,
        order: 4,
        seed: 1,
        field: "text".into(),
        tokenizer: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--train" => args.train = value()?.into(),
            "--out" => args.out = value()?.into(),
            "--answers" => args.answers = number(value()?)? as usize,
            "--max-tokens" => args.max_tokens = number(value()?)? as usize,
            "--order" => args.order = number(value()?)? as usize,
            "--seed" => args.seed = number(value()?)?,
            "--field" => args.field = value()?,
            "--tokenizer" => args.tokenizer = Some(value()?.into()),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if args.train.as_os_str().is_empty() || args.out.as_os_str().is_empty() {
        return Err(USAGE.into());
    }
    if !(2..=4).contains(&args.order) {
        return Err("--order must be 2, 3 or 4".into());
    }
    if args.answers == 0 || args.max_tokens == 0 {
        return Err("--answers and --max-tokens must be at least 1".into());
    }
    Ok(args)
}

/// The texts of a JSONL file's records (blank lines skipped).
fn read_texts(args: &Args) -> Result<Vec<String>, String> {
    let file =
        std::fs::File::open(&args.train).map_err(|e| format!("{}: {e}", args.train.display()))?;
    let mut texts = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", args.train.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let where_ = || format!("{}:{}", args.train.display(), n + 1);
        let record: Value =
            serde_json::from_str(&line).map_err(|e| format!("{}: {e}", where_()))?;
        let text = record
            .get(&args.field)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{}: no string field {:?}", where_(), args.field))?;
        texts.push(text.to_string());
    }
    Ok(texts)
}

fn tokenizer(args: &Args) -> Result<TextTokenizer, String> {
    match &args.tokenizer {
        Some(path) => TextTokenizer::load(path).map_err(|e| e.to_string()),
        None => {
            let model = default_model::ensure(&mut |l| eprintln!("student: {l}"))
                .map_err(|e| e.to_string())?;
            let gguf = GgufTokenizer::from_file(&model).map_err(|e| e.to_string())?;
            TextTokenizer::from_bytes(gguf.to_json().as_bytes(), "default model")
                .map_err(|e| e.to_string())
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let started = Instant::now();
    let tokenizer = tokenizer(args)?;
    let texts = read_texts(args)?;
    if texts.is_empty() {
        return Err(format!("{}: no answers to train on", args.train.display()));
    }
    // One id past the tokenizer's vocabulary pads the start of each answer
    // and marks its end; it is never decoded.
    let vocab = tokenizer.inner().get_vocab_size(true);
    let end = vocab as u32;
    if vocab + 1 > 1 << 16 {
        return Err(format!(
            "a vocabulary of {vocab} tokens is too large for the n-gram student (at most 65,535)"
        ));
    }
    let sequences = texts
        .iter()
        .map(|t| {
            let mut ids = tokenizer.encode(t).map_err(|e| e.to_string())?;
            ids.push(end);
            Ok(ids)
        })
        .collect::<Result<Vec<Vec<u32>>, String>>()?;
    let student = KneserNey::train(
        args.order,
        vocab + 1,
        end,
        sequences.iter().map(Vec::as_slice),
    );
    let train_tokens: usize = sequences.iter().map(|s| s.len() - 1).sum();
    let file =
        std::fs::File::create(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let mut out = BufWriter::new(file);
    let mut tokens = 0;
    for i in 0..args.answers {
        let mut rng = ChaCha20Rng::seed_from_u64(args.seed.wrapping_mul(1 << 20) ^ i as u64);
        let ids = student.generate(end, end, args.max_tokens, &mut rng);
        tokens += ids.len();
        let text = tokenizer
            .inner()
            .decode(&ids, true)
            .map_err(|e| format!("decoding: {e}"))?;
        let record = serde_json::json!({
            "id": format!("student-{i:04}"),
            "text": text,
            "student_tokens": ids.len(),
        });
        writeln!(out, "{record}").map_err(|e| format!("{}: {e}", args.out.display()))?;
    }
    out.flush()
        .map_err(|e| format!("{}: {e}", args.out.display()))?;
    eprintln!(
        "student: {}-gram Kneser–Ney trained on {} answers ({train_tokens} tokens); {} answers, {tokens} tokens → {} ({:.1} s)",
        args.order,
        texts.len(),
        args.answers,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("student: {e}");
            ExitCode::FAILURE
        }
    }
}
