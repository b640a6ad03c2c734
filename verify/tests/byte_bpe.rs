//! provmark's own byte-level BPE encoder (`verify::byte_bpe`) against the
//! reference (`tokenizers`) for every supported pre-tokenizer shape: the
//! same ids as `encode_fast(text, false)` and the same ids and byte offsets
//! as `encode(text, false)`, on tens of thousands of random texts (code,
//! prose, CJK, emoji, digits, white-space runs, contractions, added-token
//! text, long words, any scalar value), and the reference keeps encoding
//! any tokenizer of another shape.

use provmark_testkit::corpus::{docs_corpus, train_bpe};
use provmark_testkit::texts::assert_matches_reference;
use provmark_verify::TextTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn pre_tokenizer(shape: &str) -> PreTokenizerWrapper {
    match shape {
        "gpt2-prefix" => ByteLevel::default().into(),
        "gpt2" => ByteLevel::new(false, true, true).into(),
        "smollm" => Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])
        .into(),
        "qwen2" => Sequence::new(vec![
            Split::new(
                SplitPattern::Regex(QWEN2.into()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .unwrap()
            .into(),
            ByteLevel::new(false, true, false).into(),
        ])
        .into(),
        other => panic!("{other}"),
    }
}

/// A byte-level BPE of `shape` trained on the bundled corpus, with special
/// tokens and a normalized added token overlapping one of them.
fn trained(shape: &str, vocab: usize) -> Tokenizer {
    let mut t = train_bpe(&docs_corpus(), vocab, pre_tokenizer(shape));
    t.add_special_tokens(vec![
        AddedToken::from("<|im_start|>", true),
        AddedToken::from("<|im_end|>", true),
    ])
    .unwrap();
    t.add_tokens(vec![
        AddedToken::from("<|im", false),
        AddedToken::from("<think>", false),
    ])
    .unwrap();
    t
}

fn text_tokenizer(json: &str) -> TextTokenizer {
    TextTokenizer::from_bytes(json.as_bytes(), "test").unwrap()
}

/// Compares `tok` with its reference on `n` random texts from `seed`.
fn compare(name: &str, tok: &TextTokenizer, seed: u64, n: usize) {
    let tokens = assert_matches_reference(name, tok, seed, n);
    assert!(tokens > n, "{name}: the texts hold tokens");
}

#[test]
fn every_shape_matches_the_reference_on_random_texts() {
    for (seed, (shape, kind)) in [
        ("gpt2-prefix", "gpt2"),
        ("gpt2", "gpt2"),
        ("smollm", "smollm"),
        ("qwen2", "qwen2"),
    ]
    .into_iter()
    .enumerate()
    {
        let tok = text_tokenizer(&trained(shape, 3000).to_string(false).unwrap());
        assert_eq!(
            tok.fast_path(),
            Some(kind),
            "{shape} is encoded by our own path"
        );
        compare(shape, &tok, seed as u64, 8000);
    }
}

#[test]
fn ignore_merges_takes_whole_words_from_the_vocabulary() {
    let json = trained("smollm", 2000).to_string(false).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["model"]["ignore_merges"] = true.into();
    // A whole-word token BPE would never reach: merges can skip it.
    let tok = text_tokenizer(&v.to_string());
    assert_eq!(tok.fast_path(), Some("smollm"));
    compare("ignore_merges", &tok, 7, 3000);
}

#[test]
fn other_shapes_stay_with_the_reference() {
    let json = trained("gpt2", 1000).to_string(false).unwrap();
    let edits: [(&str, serde_json::Value); 5] = [
        ("normalizer", serde_json::json!({"type": "NFKC"})),
        ("pre_tokenizer", serde_json::json!({"type": "Whitespace"})),
        (
            "pre_tokenizer",
            serde_json::json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]}),
        ),
        (
            "pre_tokenizer",
            serde_json::json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]}),
        ),
        (
            "post_processor",
            serde_json::json!({"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}], "pair": [{"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}}),
        ),
    ];
    for (field, value) in edits {
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v[field] = value.clone();
        let tok = text_tokenizer(&v.to_string());
        assert_eq!(tok.fast_path(), None, "{field} = {value}");
        let text = "Hello, World's 123 text";
        assert_eq!(
            tok.encode(text).unwrap(),
            tok.inner().encode_fast(text, false).unwrap().get_ids()
        );
    }
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["model"]["dropout"] = 0.5.into();
    assert_eq!(text_tokenizer(&v.to_string()).fast_path(), None, "dropout");
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["added_tokens"][0]["lstrip"] = true.into();
    assert_eq!(text_tokenizer(&v.to_string()).fast_path(), None, "lstrip");
}

#[test]
fn trimmed_offsets_come_from_the_reference() {
    let json = trained("gpt2", 1000).to_string(false).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["post_processor"] = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    let tok = text_tokenizer(&v.to_string());
    assert_eq!(tok.fast_path(), Some("gpt2"));
    let text = "  spaced   words \n here";
    let want = tok.inner().encode(text, false).unwrap();
    let (ids, offsets) = tok.encode_with_offsets(text).unwrap();
    assert_eq!(ids, want.get_ids());
    assert_eq!(offsets, want.get_offsets());
    assert_eq!(tok.encode(text).unwrap(), want.get_ids());
}

/// A vocabulary without tokens for some bytes (SmolLM2's has none for a
/// few control bytes): the reference drops those bytes, and so does ours;
/// offsets of such texts come from the reference.
#[test]
fn bytes_without_a_token_are_dropped_as_the_reference_does() {
    let json = trained("smollm", 2000).to_string(false).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let gone: Vec<String> = ["\u{100}", "\u{101}", "\u{104}", "\u{109}", "\u{10b}"]
        .map(String::from)
        .to_vec();
    let vocab = v["model"]["vocab"].as_object_mut().unwrap();
    for g in &gone {
        assert!(vocab.remove(g).is_some(), "{g:?} was a token");
    }
    let merges = v["model"]["merges"].as_array_mut().unwrap();
    merges.retain(|m| {
        let m: Vec<&str> = m
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        !gone
            .iter()
            .any(|g| m.iter().any(|t| t.contains(g.as_str())))
    });
    let tok = text_tokenizer(&v.to_string());
    assert_eq!(tok.fast_path(), Some("smollm"));
    let text = "a\u{4}b \u{0}\u{0}x\u{9}\u{4}";
    assert_eq!(
        tok.encode(text).unwrap(),
        tok.inner().encode_fast(text, false).unwrap().get_ids()
    );
    compare("bytes dropped", &tok, 9, 3000);
}
