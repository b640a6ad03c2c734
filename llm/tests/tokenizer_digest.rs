//! The GGUF tokenizer digest (spec §3, revision 7) is computed from the
//! file's own `tokenizer.ggml.*` metadata, so an independent reader gets the
//! same value: checked against the Python reference's digest of the
//! committed vector file, which testkit's GGUF writer produces byte for
//! byte. Profiles made before (the exported JSON's digest) stay valid.

use std::io::Cursor;
use std::path::PathBuf;

use provmark_llm::gguf_tokenizer::GgufTokenizer;
use provmark_testkit::gguf::{byte_tokens, tag, GgufWriter};
use provmark_watermark::TokenizerDigest;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
}

/// The vector file: a tokenizer-only GGUF (no tensors) with a byte-level
/// vocabulary, one merge, token types, a bool, a u32, and keys outside the
/// digest (`general.*`, `tokenizer.chat_template`), not in sorted order.
fn vector_gguf() -> GgufWriter {
    let mut tokens = byte_tokens();
    tokens.push("Ġt".into());
    let mut types = tag::I32.to_le_bytes().to_vec();
    types.extend((tokens.len() as u64).to_le_bytes());
    for _ in &tokens {
        types.extend(1i32.to_le_bytes());
    }
    let mut w = GgufWriter::new();
    w.set_str("general.architecture", "llama")
        .set_str("tokenizer.ggml.pre", "gpt2")
        .set_str("tokenizer.ggml.model", "gpt2")
        .set_str_array("tokenizer.ggml.tokens", &tokens)
        .set_str_array("tokenizer.ggml.merges", &["Ġ t".to_string()])
        .kv_raw("tokenizer.ggml.token_type", tag::ARRAY, types)
        .set_u32("tokenizer.ggml.eos_token_id", 10)
        .kv_raw("tokenizer.ggml.add_bos_token", tag::BOOL, vec![0])
        .set_str("tokenizer.chat_template", "{{ messages }}")
        .set_str("general.name", "provmark tokenizer digest vector");
    w
}

/// The digest straight from the container reader (some changes below
/// make metadata the tokenizer builder refuses; the digest does not care).
fn digest_of(w: &GgufWriter) -> TokenizerDigest {
    let mut r = Cursor::new(w.bytes());
    provmark_llm::gguf::read_content_with_tokenizer_digest(&mut r, "v.gguf")
        .unwrap()
        .1
}

/// One change to a GGUF file being written.
type Change = Box<dyn Fn(&mut GgufWriter)>;

#[test]
fn the_digest_is_the_reference_implementations() {
    let bytes = vector_gguf().bytes();
    assert_eq!(
        digest_of(&vector_gguf()),
        GgufTokenizer::from_reader(Cursor::new(&bytes), "v.gguf")
            .unwrap()
            .digest()
    );
    let path = vectors().join("gguf-tokenizer.gguf");
    if std::env::var_os("PROVMARK_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    let committed = std::fs::read(&path).unwrap();
    assert!(
        committed == bytes,
        "testkit writes the committed vector file"
    );
    let vector: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(vectors().join("gguf-tokenizer.json")).unwrap(),
    )
    .unwrap();
    let t = GgufTokenizer::from_reader(Cursor::new(&bytes), "gguf-tokenizer.gguf").unwrap();
    assert_eq!(
        t.digest().as_str(),
        vector["tokenizer_digest"].as_str().unwrap()
    );
    assert_ne!(t.digest(), t.legacy_digest());
    // The tokenizer it names works: " t" is the one merge.
    assert_eq!(t.encode_text("a t").unwrap(), vec![97, 256]);
}

#[test]
fn the_digest_covers_the_tokenizer_entries_only() {
    let base = digest_of(&vector_gguf());
    // Entries outside tokenizer.ggml.* and the entries' order do not count.
    let mut w = vector_gguf();
    w.set_str("general.name", "renamed")
        .set_str("tokenizer.chat_template", "other")
        .set_str("tokenizer.huggingface.json", "{}");
    w.kvs.reverse();
    assert_eq!(digest_of(&w), base);
    // Every tokenizer.ggml.* entry does: a token, a merge, a type, an id,
    // a flag, and an entry added or removed.
    let changes: Vec<Change> = vec![
        Box::new(|w| {
            let mut t = byte_tokens();
            t.extend(["Ġt".to_string(), "Ġu".to_string()]);
            w.set_str_array("tokenizer.ggml.tokens", &t);
        }),
        Box::new(|w| {
            w.set_str_array("tokenizer.ggml.merges", &[]);
        }),
        Box::new(|w| {
            w.set_u32("tokenizer.ggml.eos_token_id", 11);
        }),
        Box::new(|w| {
            w.set_raw("tokenizer.ggml.add_bos_token", tag::BOOL, vec![1]);
        }),
        Box::new(|w| {
            w.set_u32("tokenizer.ggml.bos_token_id", 1);
        }),
        Box::new(|w| {
            w.remove("tokenizer.ggml.token_type");
        }),
        Box::new(|w| {
            // The same value under another type is another entry.
            w.set_raw(
                "tokenizer.ggml.eos_token_id",
                tag::U64,
                10u64.to_le_bytes().to_vec(),
            );
        }),
    ];
    for (i, change) in changes.iter().enumerate() {
        let mut w = vector_gguf();
        change(&mut w);
        assert_ne!(digest_of(&w), base, "change {i}");
    }
}

#[test]
fn profiles_made_before_revision_7_are_still_accepted() {
    let t = GgufTokenizer::from_reader(Cursor::new(vector_gguf().bytes()), "v.gguf").unwrap();
    let legacy = TokenizerDigest::of_bytes(t.to_json().as_bytes());
    assert_eq!(t.legacy_digest(), legacy);
    assert!(t.accepts(&t.digest()) && t.accepts(&legacy));
    assert!(!t.accepts(&TokenizerDigest::of_bytes(b"another tokenizer")));
    // For detection both forms match, and a report records the form the
    // profile names.
    let text = t.text_tokenizer("v.gguf").unwrap();
    assert_eq!(text.digest(), &t.digest());
    assert!(text.accepts(&legacy) && text.accepts(&t.digest()));
    let key = provmark_watermark::Key::from_bytes([7; 32]);
    let scheme = provmark_watermark::Scheme::Gumbel;
    let old = provmark_watermark::Profile::new(scheme, 2, legacy.clone(), &key).unwrap();
    let new = provmark_watermark::Profile::new(scheme, 2, t.digest(), &key).unwrap();
    assert_eq!(text.digest_for([&old]), &legacy);
    assert_eq!(text.digest_for([&new]), &t.digest());
    assert!(text.check_profile(&old, false).is_ok() && text.check_profile(&new, false).is_ok());
}

/// The committed tiny models (real llama.cpp-style metadata: BOS/EOS,
/// token types, merges) against the digests the Python reference's GGUF
/// reader computes for them (`provmark_ref.gguf_tokenizer_digest`).
#[test]
fn tiny_models_digests_are_the_reference_implementations() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny");
    for (file, want) in [
        (
            "tiny-llama.gguf",
            "sha256:5c15fdf128d4890374743a18bf3f112f77a6f293863317286cdadeed5b1e0cde",
        ),
        // The two Qwen files share one tokenizer, so one digest.
        (
            "tiny-qwen2.gguf",
            "sha256:bfdfee696de30ef895545d88cd88f69cec639e6aaba75060c3d19ec0001f7e0a",
        ),
        (
            "tiny-qwen3.gguf",
            "sha256:bfdfee696de30ef895545d88cd88f69cec639e6aaba75060c3d19ec0001f7e0a",
        ),
    ] {
        let t = GgufTokenizer::from_file(&data.join(file)).unwrap();
        assert_eq!(t.digest().as_str(), want, "{file}");
    }
}
