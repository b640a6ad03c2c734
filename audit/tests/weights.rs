//! The weights audit (reading mode) as a library call, on a tiny random
//! llama GGUF (llm/tests/data/tiny): the texts are read, the events come in
//! order, a reference model runs through the same pipeline, and a profile
//! made for another tokenizer is refused; texts are read after their
//! prompts in chat context; the expected-score test finds nothing when the
//! suspect is its own reference.

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
        prompts: None,
        cross_tokenizer: false,
        lab_tokenizer: None,
        threads: Some(1),
        null: NullKeys { keys: 9, seed: 1 },
        locations: Default::default(),
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

fn tiny_lab() -> Lab {
    let gguf = GgufTokenizer::from_file(&model()).unwrap();
    let tok = TextTokenizer::from_bytes(gguf.to_json().as_bytes(), "tiny").unwrap();
    lab(tok.digest().clone())
}

fn write(dir: &std::path::Path, name: &str, lines: &[serde_json::Value]) -> String {
    let path = dir.join(name);
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

#[test]
fn chat_context_scores_only_answer_positions_and_reports_unmatched_records() {
    let lab = tiny_lab();
    let dir = tempfile::tempdir().unwrap();
    let answers = ["the cat sat on the mat", "a b c d e f g", "hello there"];
    let texts = write(
        dir.path(),
        "answers.jsonl",
        &[
            json!({"id": "p1", "text": answers[0]}),
            json!({"id": "p2", "text": answers[1]}),
            json!({"id": "nowhere", "text": answers[2]}),
        ],
    );
    let prompts = write(
        dir.path(),
        "prompts.jsonl",
        &[
            json!({"id": "p1", "prompt": "Tell me about cats."}),
            json!({"id": "p2", "prompt": "Say the alphabet."}),
        ],
    );
    let bare = weights::run(&lab, &config(texts.clone()), &Silent).unwrap();
    let mut chat_config = config(texts);
    chat_config.prompts = Some(prompts.into());
    let messages = Mutex::new(Vec::new());
    let progress = |e: Event<'_>| {
        if let Event::RecordError { message } = e {
            messages.lock().unwrap().push(message.to_string());
        }
    };
    let chat = weights::run(&lab, &chat_config, &progress).unwrap();
    assert_eq!(bare.suspect.texts, 3);
    assert_eq!((chat.suspect.texts, chat.suspect.unreadable), (2, 1));
    let messages = messages.into_inner().unwrap();
    assert_eq!(messages.len(), 2, "once per model: {messages:?}");
    assert!(messages[0].contains("nowhere") && messages[0].contains("--prompts"));
    // Every answer token is read in chat context (the prompt precedes it);
    // bare, the first token of each answer has no window (h = 1). Of those,
    // only positions whose window (the token before) is not an earlier
    // position's are scored (spec §8.2): at most one per distinct token.
    let tok = {
        let gguf = GgufTokenizer::from_file(&model()).unwrap();
        TextTokenizer::from_bytes(gguf.to_json().as_bytes(), "tiny").unwrap()
    };
    let len = |t: &str| tok.encode(t).unwrap().len() as u64;
    assert_eq!(chat.suspect.positions, len(answers[0]) + len(answers[1]));
    assert_eq!(
        bare.suspect.positions,
        answers.iter().map(|a| len(a) - 1).sum::<u64>()
    );
    let distinct = |t: &str| {
        let ids = tok.encode(t).unwrap();
        ids[..ids.len() - 1]
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len() as u64
    };
    let at_most: u64 = answers.iter().map(|a| distinct(a)).sum();
    assert!(
        bare.suspect.distinct_tuples <= at_most,
        "{:?}",
        bare.suspect
    );
}

#[test]
fn expected_test_of_a_model_against_itself_finds_nothing() {
    let lab = tiny_lab();
    let dir = tempfile::tempdir().unwrap();
    let texts = write(
        dir.path(),
        "texts.jsonl",
        &[
            json!({"text": "the cat sat on the mat and the dog sat on the log"}),
            json!({"text": "one two three four five six seven"}),
        ],
    );
    let a = weights::run_expected(&lab, &config(texts.clone()), 8, 0.01, &Silent).unwrap();
    assert!(a.suspect.positions > 0);
    // q − r is zero everywhere: nothing is weighed, p = 1.
    assert_eq!(a.suspect.pairs, 0);
    assert_eq!(a.suspect.p.value(), 1.0);
    assert_eq!(a.verdict.as_str(), "not_attributed");
    let alone = a.suspect_alone.as_ref().unwrap();
    let reference = a.reference.as_ref().unwrap();
    assert_eq!(alone, reference, "the same model alone, twice");
    assert!(alone.pairs > 0 && alone.positions == a.suspect.positions);
    assert_eq!(alone.null_statistics.len(), 9);
    // Without a reference the suspect alone is the test.
    let mut unpaired = config(texts.clone());
    unpaired.reference_model = None;
    let u = weights::run_expected(&lab, &unpaired, 8, 0.01, &Silent).unwrap();
    assert_eq!(&u.suspect, alone);
    assert!(u.reference.is_none());
    let e = weights::run_expected(&lab, &unpaired, 0, 0.01, &Silent).unwrap_err();
    assert!(matches!(e, Error::TopK), "{e}");
}

#[test]
fn a_suspect_with_another_tokenizer_is_read_through_the_text() {
    let lab = tiny_lab();
    let dir = tempfile::tempdir().unwrap();
    let texts = write(
        dir.path(),
        "texts.jsonl",
        &[
            json!({"text": "Hello world! The river ran past the old mill, slowly."}),
            json!({"text": "one two three four five six seven eight nine ten"}),
        ],
    );
    let lab_json = dir.path().join("lab-tokenizer.json");
    let gguf = GgufTokenizer::from_file(&model()).unwrap();
    std::fs::write(&lab_json, gguf.to_json()).unwrap();
    let other =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../llm/tests/data/tiny/tiny-qwen2.gguf");
    let mut c = config(texts);
    c.suspect = other.clone();
    c.reference_model = Some(other.clone());
    // Refused unless asked to read across tokenizers.
    let e = weights::run(&lab, &c, &Silent).unwrap_err();
    assert!(e.to_string().contains("--cross-tokenizer"), "{e}");
    c.cross_tokenizer = true;
    c.lab_tokenizer = Some(lab_json.clone());
    let top1 = weights::run(&lab, &c, &Silent).unwrap();
    assert_eq!(top1.suspect.texts, 2);
    assert!(top1.suspect.positions > 10, "{:?}", top1.suspect);
    let reference = top1.reference.unwrap();
    assert_eq!(reference.scored, top1.suspect.scored);
    let expected = weights::run_expected(&lab, &c, 8, 0.01, &Silent).unwrap();
    assert_eq!(
        expected.suspect.pairs, 0,
        "the suspect is its own reference"
    );
    let alone = expected.suspect_alone.unwrap();
    assert!(alone.positions > 10 && alone.pairs > 0);
    // Top-1 drops predictions the lab's vocabulary cannot take.
    assert!(alone.positions + alone.repeats >= top1.suspect.positions);
    // The paired test reads both models over the same tokens.
    c.reference_model = Some(model());
    let e = weights::run_expected(&lab, &c, 8, 0.01, &Silent).unwrap_err();
    assert!(matches!(e, Error::ReferenceTokenizer { .. }), "{e}");
    // A lab tokenizer that is not the profile's is refused by name.
    let wrong = dir.path().join("wrong.json");
    let q = GgufTokenizer::from_file(&other).unwrap();
    std::fs::write(&wrong, q.to_json()).unwrap();
    c.lab_tokenizer = Some(wrong);
    let e = weights::run(&lab, &c, &Silent).unwrap_err();
    assert!(e.to_string().contains("wrong.json"), "{e}");
}
