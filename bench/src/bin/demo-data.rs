//! Texts for the end-to-end demo until the model runtime lands: generated
//! from a synthetic language model over the tokenizer's vocabulary through
//! the real embedding API (watermarked), the same model without the mark
//! (control), and human-written text.
//!
//!     demo-data texts PROFILE KEY TOKENIZER OUT.jsonl [N]

use std::path::Path;
use std::process::ExitCode;

use provmark_bench::corpus::docs_corpus;
use provmark_bench::generate;
use provmark_bench::synthetic::ZipfLm;
use provmark_verify::TextTokenizer;
use provmark_watermark::{Embedder, Key, Profile, SamplingConfig};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["texts", profile, key, tokenizer, out, rest @ ..] => {
            let n = rest
                .first()
                .map_or(Ok(4), |s| s.parse::<u64>())
                .unwrap_or(4);
            texts(profile, key, tokenizer, out, n)
        }
        _ => Err("usage: demo-data texts PROFILE KEY TOKENIZER OUT.jsonl [N]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-data: {e}");
            ExitCode::from(2)
        }
    }
}

fn texts(profile: &str, key: &str, tokenizer: &str, out: &str, n: u64) -> Result<(), String> {
    let profile = Profile::load(Path::new(profile)).map_err(|e| e.to_string())?;
    let key = Key::load(Path::new(key)).map_err(|e| e.to_string())?;
    let tok = TextTokenizer::load(Path::new(tokenizer)).map_err(|e| e.to_string())?;
    let vocab = tok.inner().get_vocab_size(true).next_power_of_two() / 2;
    let lm = ZipfLm::with_entropy(vocab, 3.0);
    let cfg = SamplingConfig::default();
    let mut emb = Embedder::new(&profile, &key).map_err(|e| e.to_string())?;
    let corpus = docs_corpus();
    let mut lines = Vec::new();
    for i in 0..n {
        let mut rng = ChaCha8Rng::seed_from_u64(i);
        let prompt = [i as u32 + 1, 2];
        let marked = generate(&lm, Some(&mut emb), &cfg, &mut rng, &prompt, 200);
        let control = generate(&lm, None, &cfg, &mut rng, &prompt, 200);
        let decode = |ids: &[u32]| tok.inner().decode(ids, false).map_err(|e| e.to_string());
        lines.push(json!({"id": format!("watermarked-{i}"), "text": decode(&marked)?}));
        lines.push(json!({"id": format!("control-{i}"), "text": decode(&control)?}));
        let start = (i as usize * 7919 * 13) % (corpus.len() - 1500);
        let start = (start..).find(|&s| corpus.is_char_boundary(s)).unwrap_or(0);
        let end = (start + 1000..)
            .find(|&s| corpus.is_char_boundary(s))
            .unwrap_or(corpus.len());
        lines.push(json!({"id": format!("human-{i}"), "text": &corpus[start..end]}));
    }
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(out, body).map_err(|e| format!("{out}: {e}"))
}
