//! Throughput of the detect pipeline on a JSONL file (issue #14,
//! bench/RESULTS.md "Text to token ids"), without the CLI around it:
//!
//!     RAYON_NUM_THREADS=2 cargo run --release -p provmark-verify \
//!       --example detect_throughput -- MODE TOKENIZER.json TEXTS.jsonl
//!
//! MODE `detect`: `scan::run` over the file with one kgw profile (γ 0.25,
//! δ 2, context 2, a fixed key), each result's JSON line written to
//! stdout, as `provmark detect --json` does; `tokenize`: the records read
//! into memory first, then text to ids alone on all threads; `score`: the
//! ids made first, then scoring and the exact test alone. Prints tokens,
//! seconds and tokens/s on stderr.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use provmark_verify::input::{InputFormat, ReadOptions, RecordReader};
use provmark_verify::scan::{self, DetectConfig, ScanError, Target};
use provmark_verify::{Detector, TextTokenizer};
use provmark_watermark::{Key, KgwParams, Profile, Scheme};
use rayon::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, tokenizer, texts] = &args[..] else {
        eprintln!("usage: detect_throughput detect|tokenize|score TOKENIZER.json TEXTS.jsonl");
        std::process::exit(2);
    };
    let tok = TextTokenizer::load(Path::new(tokenizer)).expect("tokenizer");
    let key = Key::from_bytes([7; 32]);
    let scheme = Scheme::Kgw(KgwParams::new(0.25, 2.0).expect("valid"));
    let profile = Profile::new(scheme, 2, tok.digest().clone(), &key).expect("profile");
    let detector = Detector::new(&profile, &key).expect("detector");
    let texts_of = || -> Vec<String> {
        RecordReader::open(texts, InputFormat::Jsonl, ReadOptions::default())
            .expect("input")
            .filter_map(|r| r.ok()?.text.ok())
            .collect()
    };
    let (tokens, secs) = match mode.as_str() {
        "detect" => {
            let config = DetectConfig::new(
                vec![Target {
                    profile,
                    detector,
                    tokenizer: 0,
                }],
                vec![tok],
                1e-6,
            );
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let mut tokens = 0;
            let start = Instant::now();
            scan::run::<ScanError>(&config, std::slice::from_ref(texts), |r| {
                if let Ok(o) = &r.outcome {
                    tokens += o.profiles[0].detection.tokens;
                }
                writeln!(out, "{}", r.to_json(&config)).expect("stdout");
                Ok(())
            })
            .expect("run");
            out.flush().expect("stdout");
            (tokens, start.elapsed().as_secs_f64())
        }
        "tokenize" => {
            let texts = texts_of();
            let start = Instant::now();
            let tokens: usize = texts
                .par_iter()
                .map(|t| tok.encode(t).expect("encodes").len())
                .sum();
            (tokens, start.elapsed().as_secs_f64())
        }
        "score" => {
            let ids: Vec<Vec<u32>> = texts_of()
                .par_iter()
                .map(|t| tok.encode(t).expect("encodes"))
                .collect();
            let start = Instant::now();
            let tokens: usize = ids.par_iter().map(|i| detector.detect(i).tokens).sum();
            (tokens, start.elapsed().as_secs_f64())
        }
        other => panic!("unknown mode {other}"),
    };
    eprintln!(
        "{mode}: {tokens} tokens in {secs:.3} s = {:.3} M tokens/s ({} threads)",
        tokens as f64 / secs / 1e6,
        rayon::current_num_threads()
    );
}
