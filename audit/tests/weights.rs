//! The weights audit (reading mode) as a library call, on a tiny random
//! llama GGUF (llm/tests/data/tiny): the texts are read, the events come in
//! order, a reference model runs through the same pipeline, and a profile
//! made for another tokenizer is refused.

use std::path::PathBuf;
use std::sync::Mutex;

use provmark_audit::weights::{self, WeightsAuditConfig};
use provmark_audit::{Error, Event, Lab, NullKeys, Silent};
use provmark_llm::gguf_tokenizer::GgufTokenizer;
use provmark_verify::{Detector, TextTokenizer};
use provmark_watermark::{Key, Profile, Scheme, TokenizerDigest};
use serde_json::json;

fn model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../llm/tests/data/tiny/tiny-llama.gguf")
}

fn lab(tokenizer: TokenizerDigest) -> Lab {
    let key = Key::from_bytes([9; 32]);
    let profile = Profile::new(Scheme::Gumbel, 1, tokenizer, &key).unwrap();
    let detector = Detector::new(&profile, &key).unwrap();
    Lab { profile, detector }
}

fn config(texts: String) -> WeightsAuditConfig {
    WeightsAuditConfig {
        suspect: model(),
        reference_model: Some(model()),
        texts: vec![texts],
        field: "text".into(),
        threads: Some(1),
        null: NullKeys { keys: 9, seed: 1 },
    }
}

#[test]
fn reads_the_texts_with_each_model() {
    let gguf = GgufTokenizer::from_file(&model()).unwrap();
    let tok = TextTokenizer::from_bytes(gguf.to_json().as_bytes(), "tiny").unwrap();
    let lab = lab(tok.digest().clone());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("texts.jsonl");
    let texts = [
        "the cat sat on the mat",
        "a b c d e f g",
        "hello there world",
    ];
    let body: String = texts
        .iter()
        .map(|t| format!("{}\n", json!({ "text": t })))
        .collect();
    std::fs::write(&path, body).unwrap();
    let events = Mutex::new(Vec::new());
    let progress = |e: Event<'_>| {
        let name = match e {
            Event::LoadingModel { .. } => "load",
            Event::ReadingStarted { .. } => "start",
            Event::TextRead => "text",
            Event::ReadingFinished => "end",
            Event::NullKeysStarted { .. } => "null",
            _ => return,
        };
        events.lock().unwrap().push(name);
    };
    let t = weights::run(&lab, &config(path.display().to_string()), &progress).unwrap();
    assert_eq!(t.suspect.texts, 3);
    assert!(t.suspect.positions > 0);
    assert_eq!(t.suspect.null_statistics.len(), 9);
    let r = t.reference.expect("a reference");
    assert_eq!(r.scored, t.suspect.scored, "the same model reads the same");
    assert_eq!(r.statistic, t.suspect.statistic);
    let one_model = ["load", "start", "text", "text", "text", "end"];
    let want: Vec<&str> = one_model
        .iter()
        .chain(&one_model)
        .chain(&["null", "null"])
        .copied()
        .collect();
    assert_eq!(events.into_inner().unwrap(), want);
}

#[test]
fn another_tokenizer_is_refused() {
    let lab = lab(TokenizerDigest::of_bytes(b"another tokenizer"));
    let e = weights::run(&lab, &config("unused.jsonl".into()), &Silent).unwrap_err();
    assert!(matches!(e, Error::TokenizerMismatch { .. }), "{e}");
    assert!(e.to_string().contains("is not the profile's"));
}
