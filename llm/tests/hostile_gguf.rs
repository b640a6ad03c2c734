//! A suspect's GGUF is written by whoever is being audited (issue #13 §4):
//! every crafted file here must be refused with an error naming the file
//! and the field, never a panic or an abort, and without allocating more
//! than the file holds. The handed cases are kept in
//! `tests/data/hostile/`; the others are written with
//! `provmark_testkit::gguf`.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use provmark_llm::chat::{ChatTemplate, Message, TEMPLATE_FUEL};
use provmark_llm::gguf::{self, MAX_ARRAY_LEN};
use provmark_llm::gguf_tokenizer::GgufTokenizer;
use provmark_llm::model::{Model, Precision};
use provmark_llm::runtime::Runtime;
use provmark_testkit::gguf::{ggml, string, tag, tiny_llama, GgufWriter};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The error of loading `bytes` as a model (both precisions agree) and as
/// a tokenizer, each checked to be an error and no caught panic.
fn model_error(bytes: &[u8]) -> String {
    let mut first = None;
    for precision in [Precision::AsStored, Precision::Q8_0] {
        let e = match Model::from_reader(Cursor::new(bytes), "suspect.gguf", precision) {
            Ok(_) => panic!("the model loaded"),
            Err(e) => e.to_string(),
        };
        assert_no_panic(&e);
        assert!(e.starts_with("suspect.gguf: "), "{e}");
        first.get_or_insert(e);
    }
    first.unwrap()
}

fn tokenizer_error(bytes: &[u8]) -> String {
    let e = match GgufTokenizer::from_reader(Cursor::new(bytes), "suspect.gguf") {
        Ok(_) => panic!("the tokenizer loaded"),
        Err(e) => e.to_string(),
    };
    assert_no_panic(&e);
    assert!(e.starts_with("suspect.gguf: "), "{e}");
    e
}

fn assert_no_panic(e: &str) {
    assert!(!e.contains("internal error"), "a panic was caught: {e}");
}

fn u64_kv(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

#[test]
fn the_tiny_valid_model_loads_and_runs() {
    let bytes = tiny_llama(2).bytes();
    for precision in [Precision::AsStored, Precision::Q8_0] {
        let m = Model::from_reader(Cursor::new(&bytes), "tiny.gguf", precision).unwrap();
        assert_eq!(m.config().layers, 2);
        assert_eq!(m.config().vocab, 256);
        let mut cache = m.new_cache();
        let mut logits = Vec::new();
        m.forward_all(
            provmark_llm::model::Step {
                cache: &mut cache,
                tokens: &[72, 105],
            },
            &mut logits,
        )
        .unwrap();
        assert_eq!(logits.len(), 2 * 256);
        assert!(logits.iter().all(|v| v.is_finite()));
    }
    let t = GgufTokenizer::from_reader(Cursor::new(&bytes), "tiny.gguf").unwrap();
    assert_eq!(t.tokenizer.get_vocab_size(true), 256);
}

// --- the handed cases ---------------------------------------------------

#[test]
fn alignment_zero_is_refused_not_a_division_by_zero() {
    let path = data("hostile/alignment_zero.gguf");
    let want = "not a valid GGUF file: metadata field general.alignment is 0; it must be a power of two from 1 to 65536";
    let e = Model::load_with(&path, Precision::AsStored)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(e, format!("{}: {want}", path.display()));
    let e = GgufTokenizer::from_file(&path).err().unwrap().to_string();
    assert_eq!(e, format!("{}: {want}", path.display()));
}

#[test]
fn alignment_must_be_a_power_of_two_within_the_cap() {
    for (a, ok) in [
        (0u32, false),
        (3, false),
        (48, false),
        (1, true),
        (64, true),
        (1 << 17, false),
    ] {
        let mut w = tiny_llama(1);
        w.set_u32("general.alignment", a);
        w.padding = if a.is_power_of_two() { a as u64 } else { 32 };
        let bytes = w.bytes();
        if ok {
            Model::from_reader(Cursor::new(&bytes), "suspect.gguf", Precision::AsStored).unwrap();
        } else {
            let e = model_error(&bytes);
            assert!(
                e.contains(&format!(
                    "metadata field general.alignment is {a}; it must be a power of two from 1 to 65536"
                )),
                "{e}"
            );
        }
    }
    let mut w = tiny_llama(1);
    w.set_str("general.alignment", "32");
    let e = model_error(&w.bytes());
    assert!(
        e.contains("general.alignment is String(\"32\"); it must be an unsigned integer"),
        "{e}"
    );
}

#[test]
fn block_count_u32max_is_refused_before_allocating_layers() {
    let path = data("hostile/block_count_u32max.gguf");
    let e = Model::load_with(&path, Precision::AsStored)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}: metadata field llama.block_count is 4294967295 but the file holds tensors for 0 blocks (none); \
             they must agree, numbered from blk.0",
            path.display()
        )
    );
    // The tokenizer alone is fine: it is the weights that lie.
    GgufTokenizer::from_file(&path).unwrap();
    // A real block present, 2^32 − 1 claimed.
    let mut w = tiny_llama(1);
    w.set_u32("llama.block_count", u32::MAX);
    let e = model_error(&w.bytes());
    assert!(
        e.ends_with(
            "metadata field llama.block_count is 4294967295 but the file holds tensors for 1 blocks \
             (blk.0 to blk.0); they must agree, numbered from blk.0"
        ),
        "{e}"
    );
    // A count of 0, one too many, and a gap in the numbering.
    for (claimed, blocks, rename) in [
        (0u32, 1, None),
        (3, 2, None),
        (2, 2, Some(("blk.1.", "blk.7."))),
    ] {
        let mut w = tiny_llama(blocks);
        w.set_u32("llama.block_count", claimed);
        if let Some((from, to)) = rename {
            for t in &mut w.tensors {
                t.name = t.name.replace(from, to);
            }
        }
        let e = model_error(&w.bytes());
        assert!(e.contains("llama.block_count is"), "{e}");
    }
}

/// The handed `embd_dims_overflow_f32.gguf` (1.8 MB, SmolLM2's tokenizer)
/// reproduced in 40 KB: the token embedding claims `[32, 2^59]` F32
/// values, whose byte count wraps to 0 in 64 bits, so candle read an empty
/// tensor and `audit weights` panicked slicing it.
#[test]
fn wrapping_dimensions_are_refused() {
    let mut w = tiny_llama(1);
    let t = w.tensor_mut("token_embd.weight");
    t.dims = vec![32, 1 << 59];
    t.data.clear();
    let e = model_error(&w.bytes());
    assert_eq!(
        e,
        "suspect.gguf: not a valid GGUF file: tensor token_embd.weight: dimensions \
         [32, 576460752303423488] overflow: more than 2^64 elements"
    );
    tokenizer_error(&w.bytes());
    // Products that fit 64 bits but not the bytes: 2^62 f32 values.
    let mut w = tiny_llama(1);
    w.tensor_mut("token_embd.weight").dims = vec![1 << 31, 1 << 31];
    let e = model_error(&w.bytes());
    assert!(
        e.contains("overflow: the tensor needs more than 2^64 bytes"),
        "{e}"
    );
    // Large but representable: past the end of the file.
    let mut w = tiny_llama(1);
    w.tensor_mut("token_embd.weight").dims = vec![32, 1 << 40];
    let e = model_error(&w.bytes());
    assert!(e.contains("lie past the end of the file"), "{e}");
}

#[test]
fn a_32_mib_metadata_array_is_refused_without_reading_it() {
    let len: u64 = 32 << 20;
    let mut w = tiny_llama(1);
    let mut v = tag::U8.to_le_bytes().to_vec();
    v.extend(len.to_le_bytes());
    v.resize(v.len() + len as usize, 7);
    w.set_raw("general.padding", tag::ARRAY, v);
    let bytes = w.bytes();
    let start = Instant::now();
    let e = model_error(&bytes);
    assert!(
        e.ends_with(&format!(
            "metadata field general.padding: an array of {len} elements, more than the {MAX_ARRAY_LEN} allowed"
        )),
        "{e}"
    );
    tokenizer_error(&bytes);
    // Refused from the length alone: nothing near 32M values (1 GB as
    // candle's values) was built.
    assert!(start.elapsed() < Duration::from_secs(5));
    // At the cap it loads (a legit vocabulary is at most a quarter of it).
    let mut w = tiny_llama(1);
    let mut v = tag::U8.to_le_bytes().to_vec();
    v.extend(MAX_ARRAY_LEN.to_le_bytes());
    v.resize(v.len() + MAX_ARRAY_LEN as usize, 7);
    w.set_raw("general.padding", tag::ARRAY, v);
    Model::from_reader(Cursor::new(w.bytes()), "ok.gguf", Precision::Q8_0).unwrap();
}

#[test]
fn all_arrays_together_are_bounded() {
    let mut w = tiny_llama(1);
    for i in 0..5 {
        let mut v = tag::U8.to_le_bytes().to_vec();
        v.extend(MAX_ARRAY_LEN.to_le_bytes());
        v.resize(v.len() + MAX_ARRAY_LEN as usize, 0);
        w.set_raw(&format!("general.pad{i}"), tag::ARRAY, v);
    }
    let e = model_error(&w.bytes());
    assert!(
        e.ends_with("metadata field general.pad3: the metadata's arrays hold more than 4194304 elements in all"),
        "{e}"
    );
}

// --- truncations, lengths and offsets -------------------------------------

#[test]
fn every_prefix_of_a_valid_file_is_an_error() {
    let bytes = tiny_llama(1).bytes();
    for n in 0..bytes.len() {
        let prefix = &bytes[..n];
        let e = match gguf::read_content(&mut Cursor::new(prefix), "cut.gguf") {
            Ok(_) => panic!("a prefix of {n} bytes read as a whole file"),
            Err(e) => e.to_string(),
        };
        assert!(e.starts_with("cut.gguf: not a valid GGUF file: "), "{e}");
        if n % 97 == 0 || n + 64 > bytes.len() {
            assert!(
                Model::from_reader(Cursor::new(prefix), "cut.gguf", Precision::AsStored).is_err()
            );
            assert!(GgufTokenizer::from_reader(Cursor::new(prefix), "cut.gguf").is_err());
        }
    }
    gguf::read_content(&mut Cursor::new(&bytes), "whole.gguf").unwrap();
    // The same through a file on disk: a truncated real model.
    let real = std::fs::read(data("tiny/tiny-llama.gguf")).unwrap();
    let dir = Scratch::new("prefix");
    let path = dir.join("truncated.gguf");
    std::fs::write(&path, &real[..real.len() - 1]).unwrap();
    let e = Runtime::load(&path, "t").err().unwrap().to_string();
    assert!(e.contains("lie past the end of the file"), "{e}");
    assert!(e.starts_with(&path.display().to_string()), "{e}");
}

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("provmark-hostile-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn strings_longer_than_the_file_are_refused() {
    // A key whose length runs past the end.
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    bytes.extend(1u64.to_le_bytes());
    bytes.extend((1u64 << 40).to_le_bytes());
    bytes.extend(b"general.name");
    let e = model_error(&bytes);
    assert_eq!(
        e,
        "suspect.gguf: not a valid GGUF file: the key of metadata entry 0 is 1099511627776 bytes long, \
         more than the 65535 allowed"
    );
    let n = bytes.len();
    bytes[n - 20..n - 12].copy_from_slice(&1000u64.to_le_bytes());
    let e = model_error(&bytes);
    assert!(
        e.ends_with(
            "the key of metadata entry 0 is 1000 bytes long but only 12 bytes remain in the file"
        ),
        "{e}"
    );
    // A string value (the chat template) that claims more than is left.
    let mut w = tiny_llama(1);
    let mut v = 5_000_000u64.to_le_bytes().to_vec();
    v.extend(b"{{ x }}");
    w.set_raw("tokenizer.chat_template", tag::STRING, v);
    let e = tokenizer_error(&w.bytes());
    assert!(
        e.contains("metadata field tokenizer.chat_template is 5000000 bytes long but only"),
        "{e}"
    );
    // Past the string cap.
    let mut w = tiny_llama(1);
    w.set_raw("general.name", tag::STRING, u64_kv(1 << 30));
    let e = tokenizer_error(&w.bytes());
    assert!(
        e.contains("is 1073741824 bytes long, more than the 16777216 allowed"),
        "{e}"
    );
    // An array of strings whose count cannot fit in what is left.
    let mut w = tiny_llama(1);
    let mut v = tag::STRING.to_le_bytes().to_vec();
    v.extend(500_000u64.to_le_bytes());
    w.set_raw("tokenizer.ggml.tokens", tag::ARRAY, v);
    let e = tokenizer_error(&w.bytes());
    assert!(
        e.contains("metadata field tokenizer.ggml.tokens: an array of 500000 elements needs at least 4000000 bytes"),
        "{e}"
    );
}

#[test]
fn tensor_data_beyond_the_end_is_refused() {
    let mut w = tiny_llama(1);
    w.tensor_mut("blk.0.ffn_down.weight").offset = Some(1 << 20);
    let e = model_error(&w.bytes());
    assert!(
        e.contains("not a valid GGUF file: tensor blk.0.ffn_down.weight: 8192 bytes at data offset 1048576 lie past the end of the file"),
        "{e}"
    );
    let mut w = tiny_llama(1);
    w.tensor_mut("output_norm.weight").offset = Some(u64::MAX - 31);
    let e = model_error(&w.bytes());
    assert!(
        e.contains("tensor output_norm.weight: 128 bytes at data offset"),
        "{e}"
    );
    // Overlapping tensors (data read twice) and misaligned offsets.
    let mut w = tiny_llama(1);
    w.tensor_mut("output_norm.weight").offset = Some(0);
    let e = model_error(&w.bytes());
    assert!(e.contains("overlaps tensor"), "{e}");
    let mut w = tiny_llama(1);
    w.tensor_mut("output_norm.weight").offset = Some(32768 + 4);
    let e = model_error(&w.bytes());
    assert!(e.contains("is not a multiple of the alignment 32"), "{e}");
}

#[test]
fn malformed_tensor_infos_are_refused() {
    type Edit = Box<dyn Fn(&mut GgufWriter)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|w| w.tensor_mut("output_norm.weight").dtype = 99),
            "tensor output_norm.weight: unknown or unsupported ggml type 99",
        ),
        (
            Box::new(|w| w.tensor_mut("output_norm.weight").dims = vec![1, 1, 1, 1, 32]),
            "tensor output_norm.weight: 5 dimensions; a tensor has 1 to 4",
        ),
        (
            Box::new(|w| w.tensor_mut("output_norm.weight").dims = vec![]),
            "tensor output_norm.weight: 0 dimensions; a tensor has 1 to 4",
        ),
        (
            Box::new(|w| w.tensor_mut("output_norm.weight").dims = vec![32, 0]),
            "tensor output_norm.weight: dimension 1 is 0",
        ),
        (
            Box::new(|w| {
                let t = w.tensor_mut("output_norm.weight");
                t.dtype = ggml::Q8_0;
                t.dims = vec![16, 2];
            }),
            "tensor output_norm.weight: rows of 16 values are not a whole number of Q8_0 blocks of 32",
        ),
        (
            Box::new(|w| w.tensor_mut("output_norm.weight").name = "token_embd.weight".into()),
            "tensor token_embd.weight: appears twice",
        ),
        (
            Box::new(|w| {
                w.kv_raw("general.architecture", tag::STRING, string(b"llama"));
            }),
            "metadata field general.architecture appears twice",
        ),
        (
            Box::new(|w| {
                w.set_raw("general.x", 13, vec![]);
            }),
            "metadata field general.x: unknown value type 13",
        ),
        (
            Box::new(|w| {
                w.set_raw("general.x", tag::BOOL, vec![2]);
            }),
            "metadata field general.x: 2 is not a boolean (0 or 1)",
        ),
        (
            Box::new(|w| {
                // [[[u8]]]: three levels.
                let mut v = tag::ARRAY.to_le_bytes().to_vec();
                v.extend(1u64.to_le_bytes());
                v.extend(tag::ARRAY.to_le_bytes());
                v.extend(1u64.to_le_bytes());
                v.extend(tag::U8.to_le_bytes());
                v.extend(1u64.to_le_bytes());
                v.push(0);
                w.set_raw("general.x", tag::ARRAY, v);
            }),
            "metadata field general.x: arrays nested more than 2 deep",
        ),
        (
            Box::new(|w| w.version = 1),
            "version 1 is not supported (supported: 2 and 3)",
        ),
    ];
    for (edit, want) in cases {
        let mut w = tiny_llama(1);
        edit(&mut w);
        let e = model_error(&w.bytes());
        assert!(e.contains(want), "want {want:?}, got {e}");
        tokenizer_error(&w.bytes());
    }
    let mut bytes = tiny_llama(1).bytes();
    bytes[..4].copy_from_slice(b"FUGG");
    let e = model_error(&bytes);
    assert!(e.contains("not the magic \"GGUF\""), "{e}");
    let mut bytes = tiny_llama(1).bytes();
    bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(model_error(&bytes).contains("more than the 65536 allowed"));
}

#[test]
fn hyper_parameters_are_bounded_by_the_tensors() {
    let cases: &[(&str, u32, &str)] = &[
        (
            "llama.attention.head_count",
            0,
            "llama.attention.head_count is 0; it must be from 1 to 16384",
        ),
        (
            "llama.attention.head_count",
            u32::MAX,
            "llama.attention.head_count is 4294967295; it must be from 1 to 16384",
        ),
        (
            "llama.attention.head_count_kv",
            0,
            "llama.attention.head_count_kv is 0",
        ),
        (
            "llama.attention.head_count_kv",
            3,
            "unsupported attention shape (2 heads, 3 kv heads, head size 16)",
        ),
        (
            "llama.attention.key_length",
            0,
            "unsupported attention shape (2 heads, 2 kv heads, head size 0)",
        ),
        (
            "llama.attention.key_length",
            7,
            "unsupported attention shape (2 heads, 2 kv heads, head size 7)",
        ),
        (
            "llama.attention.key_length",
            u32::MAX - 1,
            "tensor blk.0.attn_q.weight: shape [32, 32], expected [8589934588, 32]",
        ),
        (
            "llama.attention.head_count",
            4,
            "tensor blk.0.attn_k.weight: shape [32, 32], expected [16, 32]",
        ),
        (
            "llama.embedding_length",
            0,
            "llama.embedding_length is 0; it must be from 1 to",
        ),
        (
            "llama.embedding_length",
            u32::MAX,
            "unsupported attention shape (2 heads, 2 kv heads, head size 2147483647)",
        ),
        (
            "llama.feed_forward_length",
            0,
            "llama.feed_forward_length is 0",
        ),
        (
            "llama.feed_forward_length",
            u32::MAX,
            "tensor blk.0.ffn_gate.weight: shape [64, 32], expected [4294967295, 32]",
        ),
        (
            "llama.context_length",
            0,
            "llama.context_length is 0; it must be from 1 to 16777216",
        ),
        (
            "llama.context_length",
            u32::MAX,
            "llama.context_length is 4294967295; it must be from 1 to 16777216",
        ),
    ];
    for &(key, value, want) in cases {
        let mut w = tiny_llama(1);
        w.set_u32(key, value);
        let e = model_error(&w.bytes());
        assert!(e.contains(want), "{key} = {value}: want {want:?}, got {e}");
    }
    // key_length 4 with 2 heads: q is 8 rows, the tensor 32.
    let mut w = tiny_llama(1);
    w.set_u32("llama.attention.key_length", 4);
    assert!(model_error(&w.bytes()).contains("expected [8, 32]"));
    // A float that is not a float, and a non-finite epsilon.
    let mut w = tiny_llama(1);
    w.set_raw(
        "llama.attention.layer_norm_rms_epsilon",
        tag::F32,
        f32::NAN.to_le_bytes().to_vec(),
    );
    assert!(model_error(&w.bytes())
        .contains("llama.attention.layer_norm_rms_epsilon is NaN; it must be finite and positive"));
    let mut w = tiny_llama(1);
    w.set_raw("llama.block_count", tag::U64, u64_kv(u64::MAX));
    assert!(model_error(&w.bytes()).contains("llama.block_count is 18446744073709551615"));
}

// --- the chat template's fuel ---------------------------------------------

const NESTED_RANGES: &str =
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}";

fn chat(n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| Message {
            role: if i % 2 == 0 { "user" } else { "assistant" }.into(),
            content: format!("message number {i}"),
        })
        .collect()
}

#[test]
fn a_hostile_template_runs_out_of_fuel_quickly() {
    let t = ChatTemplate::new(Some(NESTED_RANGES), "", "").unwrap();
    let start = Instant::now();
    let e = t.render(&chat(1)).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "chat template: the template ran more than {TEMPLATE_FUEL} instructions for this chat and was stopped"
        )),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // Through a model carrying it: loading is fine, every chat is refused.
    let mut w = tiny_llama(1);
    w.set_str("tokenizer.chat_template", NESTED_RANGES);
    let dir = Scratch::new("template");
    let path = dir.join("hostile-template.gguf");
    std::fs::write(&path, w.bytes()).unwrap();
    let rt = Runtime::load(&path, "hostile").unwrap();
    let start = Instant::now();
    let e = rt.encode_chat(&chat(1)).unwrap_err().to_string();
    assert!(
        e.contains("instructions for this chat and was stopped"),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn real_templates_fit_the_fuel_with_room() {
    // SmolLM2's template (the default model's), and ChatML.
    let path = provmark_llm::default_model::ensure(&mut |line| eprintln!("{line}")).unwrap();
    let tok = GgufTokenizer::from_file(&path).unwrap();
    let smollm = tok.chat_template.clone().expect("SmolLM2 has a template");
    for source in [Some(smollm.as_str()), None] {
        let t = ChatTemplate::new(source, "<|im_start|>", "<|im_end|>").unwrap();
        // 20,000 messages, far more than any real chat (these templates
        // spend about 20 instructions a message: 64,000 fit, 128,000 not).
        let text = t.render(&chat(20_000)).unwrap();
        assert!(text.contains("message number 19999"));
        assert!(t.render(&chat(128_000)).is_err());
    }
}

// --- seeded mutations ------------------------------------------------------

/// Stable-Rust companion of the `gguf_loader` fuzz target: seeded random
/// mutations of valid files (bit flips, interesting integers written over
/// counts and lengths, truncations, insertions) never panic, in the
/// container reader, the model loader or the tokenizer.
#[test]
fn seeded_mutations_never_panic() {
    let files = [
        tiny_llama(1).bytes(),
        std::fs::read(data("tiny/tiny-llama.gguf")).unwrap(),
        std::fs::read(data("tiny/tiny-qwen3.gguf")).unwrap(),
    ];
    const INTERESTING: [u64; 10] = [0, 1, 2, 3, 31, 255, 0xFFFF_FFFF, 1 << 59, 1 << 63, u64::MAX];
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut loaded = 0;
    for round in 0..1500 {
        let base = &files[round % files.len()];
        let mut bytes = base.clone();
        // Most of the structure (and the interesting fields) is in the
        // first few KB; aim most mutations there.
        for _ in 0..1 + rng.next_u32() % 4 {
            if bytes.is_empty() {
                break;
            }
            let head = bytes.len().min(4096);
            let span = if rng.next_u32() % 4 == 0 {
                bytes.len()
            } else {
                head
            };
            let at = rng.next_u32() as usize % span.max(1);
            match rng.next_u32() % 5 {
                0 => bytes[at] ^= 1 << (rng.next_u32() % 8),
                1 => bytes[at] = rng.next_u32() as u8,
                2 if at + 8 <= bytes.len() => {
                    let v = INTERESTING[rng.next_u32() as usize % INTERESTING.len()];
                    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
                3 if at + 4 <= bytes.len() => {
                    let v = INTERESTING[rng.next_u32() as usize % INTERESTING.len()] as u32;
                    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                _ => bytes.truncate(at),
            }
        }
        match Model::from_reader(Cursor::new(&bytes), "m.gguf", Precision::AsStored) {
            Ok(m) => {
                loaded += 1;
                let mut cache = m.new_cache();
                let mut logits = Vec::new();
                let _ = m.forward(
                    &mut [provmark_llm::model::Step {
                        cache: &mut cache,
                        tokens: &[1, 2],
                    }],
                    &mut logits,
                );
            }
            Err(e) => assert_no_panic(&e.to_string()),
        }
        if let Err(e) = GgufTokenizer::from_reader(Cursor::new(&bytes), "m.gguf") {
            assert_no_panic(&e.to_string());
        }
    }
    // Some mutations hit only data bytes: the loader still loads those.
    assert!(loaded > 0);
}
