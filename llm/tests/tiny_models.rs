//! Every supported architecture against llama.cpp, on tiny random models
//! (`tests/data/tiny`, made with `make_tiny_models.py`): llama (interleaved
//! rotary pairs, tied output), Qwen2 (q/k/v biases, rotary over halves, its
//! own pre-tokenizer) and Qwen3 (per-head q/k RMS norms, head size ≠
//! hidden/heads). Logits at every position and tokenizer ids must agree.

use std::path::PathBuf;

use provmark_llm::gguf_tokenizer::GgufTokenizer;
use provmark_llm::model::{Architecture, Model, Step};
use serde_json::Value;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tiny")
        .join(name)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(data("expected.json")).unwrap()).unwrap()
}

#[test]
fn logits_match_llama_cpp_for_every_architecture() {
    let exp = expected();
    let seq: Vec<u32> = exp["sequence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    for (arch, want_arch) in [
        ("llama", Architecture::Llama),
        ("qwen2", Architecture::Qwen2),
        ("qwen3", Architecture::Qwen3),
    ] {
        let m = &exp["models"][arch];
        let model = Model::load(&data(m["file"].as_str().unwrap())).unwrap();
        assert_eq!(model.config().arch, want_arch);
        let v = model.config().vocab;
        let mut cache = model.new_cache();
        let mut logits = Vec::new();
        model
            .forward_all(
                Step {
                    cache: &mut cache,
                    tokens: &seq,
                },
                &mut logits,
            )
            .unwrap();
        let mut worst = 0f64;
        let mut scale = 0f64;
        for (pos, row) in m["logits"].as_array().unwrap().iter().enumerate() {
            for (i, want) in row.as_array().unwrap().iter().enumerate() {
                let want = want.as_f64().unwrap();
                worst = worst.max((logits[pos * v + i] as f64 - want).abs());
                scale = scale.max(want.abs());
            }
        }
        // Same quantized weights and activation scheme; the differences are
        // f16 KV-cache rounding in llama.cpp and summation order.
        assert!(
            worst <= 0.02 * scale,
            "{arch}: logits differ by up to {worst} (largest logit {scale})"
        );
    }
}

#[test]
fn pre_tokenizers_match_llama_cpp() {
    let exp = expected();
    for arch in ["llama", "qwen2", "qwen3"] {
        let m = &exp["models"][arch];
        let t = GgufTokenizer::from_file(&data(m["file"].as_str().unwrap())).unwrap();
        for (text, ids) in m["ids"].as_object().unwrap() {
            let want: Vec<u32> = ids
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let got = t.tokenizer.encode_fast(text.as_str(), false).unwrap();
            assert_eq!(got.get_ids(), &want[..], "{arch} ({}): {text:?}", t.pre);
            // Detection's encoder (provmark's own byte-level BPE) agrees
            // too; it matches control-token text as the control token, as
            // `tokenizer` does.
            let fast = t.text_tokenizer(arch).unwrap();
            assert_eq!(fast.fast_path(), Some(t.pre.as_str()), "{arch}");
            assert_eq!(
                fast.encode(text).unwrap(),
                want,
                "{arch} ({}): {text:?}",
                t.pre
            );
        }
    }
}

/// Detection's encoder against the reference on random texts, for every
/// supported pre-tokenizer (llama: smollm; qwen2 and qwen3: qwen2).
#[test]
fn fast_encoder_matches_the_reference_on_random_texts() {
    let exp = expected();
    for (seed, arch) in ["llama", "qwen2", "qwen3"].into_iter().enumerate() {
        let m = &exp["models"][arch];
        let t = GgufTokenizer::from_file(&data(m["file"].as_str().unwrap())).unwrap();
        let fast = t.text_tokenizer(arch).unwrap();
        assert_eq!(fast.fast_path(), Some(t.pre.as_str()), "{arch}");
        let tokens =
            provmark_testkit::texts::assert_matches_reference(arch, &fast, seed as u64, 6000);
        assert!(tokens > 6000);
    }
}
