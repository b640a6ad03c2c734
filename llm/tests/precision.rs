//! Loading at `Precision::AsStored`: F32/F16/BF16 weights are used as the
//! file holds them (f32 arithmetic), and Q4_1/Q8_0 weights behave exactly as
//! under the default `Precision::Q8_0`.
//!
//! The models are written here from `tests/data/tiny/tiny-llama.gguf`: its
//! weights, rounded to values that F16 (or BF16) holds exactly, stored as
//! F32, F16, BF16 or Q4_1. The F32 model's logits are checked against an
//! independent naive forward pass in f64 written below from the llama
//! definition.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use provmark_llm::model::{Model, Precision, Step};
use provmark_llm::quant::WeightFormat;
use provmark_llm::runtime::Runtime;

fn tiny(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tiny")
        .join(name)
}

fn sequence() -> Vec<u32> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tiny("expected.json")).unwrap()).unwrap();
    v["sequence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// The tiny llama's tensors as f32, each 2-D one rounded through `round`
/// (F16 or BF16) so that it is exactly representable there.
fn tiny_tensors(round: DType) -> (Content, Vec<(String, Tensor)>) {
    let mut f = File::open(tiny("tiny-llama.gguf")).unwrap();
    let content = Content::read(&mut f).unwrap();
    let mut names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    names.sort();
    let tensors = names
        .into_iter()
        .map(|n| {
            let t = content
                .tensor(&mut f, &n, &Device::Cpu)
                .unwrap()
                .dequantize(&Device::Cpu)
                .unwrap();
            let t = if t.rank() == 2 {
                t.to_dtype(round).unwrap().to_dtype(DType::F32).unwrap()
            } else {
                t
            };
            (n, t)
        })
        .collect();
    (content, tensors)
}

/// Writes the tiny llama with its 2-D tensors stored as `matrices` (the
/// embedding as `embedding`) and its vectors as F32.
fn write_model(
    path: &Path,
    content: &Content,
    tensors: &[(String, Tensor)],
    matrices: GgmlDType,
    embedding: GgmlDType,
) {
    let q: Vec<(String, QTensor)> = tensors
        .iter()
        .map(|(n, t)| {
            let dtype = match (t.rank(), n.as_str()) {
                (1, _) => GgmlDType::F32,
                (_, "token_embd.weight") => embedding,
                _ => matrices,
            };
            (n.clone(), QTensor::quantize(t, dtype).unwrap())
        })
        .collect();
    let mut md: Vec<(&String, &Value)> = content.metadata.iter().collect();
    md.sort_by_key(|(k, _)| k.as_str());
    let md: Vec<(&str, &Value)> = md.into_iter().map(|(k, v)| (k.as_str(), v)).collect();
    let qt: Vec<(&str, &QTensor)> = q.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut f = File::create(path).unwrap();
    gguf_file::write(&mut f, &md, &qt).unwrap();
}

fn out(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("provmark-precision-{}-{name}", std::process::id()))
}

fn logits(model: &Model, seq: &[u32]) -> Vec<f32> {
    let mut cache = model.new_cache();
    let mut logits = Vec::new();
    model
        .forward_all(
            Step {
                cache: &mut cache,
                tokens: seq,
            },
            &mut logits,
        )
        .unwrap();
    logits
}

/// A llama forward pass in f64, straight from the definition: RMS norm,
/// q/k/v, rotary over interleaved pairs (GGUF's llama layout), causal
/// grouped-query attention, SwiGLU, tied or separate output. Logits at
/// every position.
fn naive_llama(content: &Content, tensors: &[(String, Tensor)], seq: &[u32]) -> Vec<Vec<f64>> {
    let t: HashMap<&str, Vec<f64>> = tensors
        .iter()
        .map(|(n, t)| {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (n.as_str(), v.into_iter().map(f64::from).collect())
        })
        .collect();
    let md = |k: &str| content.metadata[k].to_u32().unwrap() as usize;
    let mdf = |k: &str| content.metadata[k].to_f32().unwrap() as f64;
    let (hidden, heads, kv_heads, ffn, layers) = (
        md("llama.embedding_length"),
        md("llama.attention.head_count"),
        md("llama.attention.head_count_kv"),
        md("llama.feed_forward_length"),
        md("llama.block_count"),
    );
    let eps = mdf("llama.attention.layer_norm_rms_epsilon");
    let base = content
        .metadata
        .get("llama.rope.freq_base")
        .map_or(10_000.0, |v| v.to_f32().unwrap() as f64);
    let hd = hidden / heads;
    let mv = |w: &[f64], x: &[f64]| -> Vec<f64> {
        w.chunks_exact(x.len())
            .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
            .collect()
    };
    let norm = |x: &[f64], w: &[f64]| -> Vec<f64> {
        let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let s = 1.0 / (ms + eps).sqrt();
        x.iter().zip(w).map(|(v, w)| v * s * w).collect()
    };
    let rope = |v: &mut [f64], pos: usize| {
        for head in v.chunks_exact_mut(hd) {
            for i in 0..hd / 2 {
                let a = pos as f64 * base.powf(-2.0 * i as f64 / hd as f64);
                let (x0, x1) = (head[2 * i], head[2 * i + 1]);
                head[2 * i] = x0 * a.cos() - x1 * a.sin();
                head[2 * i + 1] = x0 * a.sin() + x1 * a.cos();
            }
        }
    };
    let embed = &t["token_embd.weight"];
    let mut xs: Vec<Vec<f64>> = seq
        .iter()
        .map(|&id| embed[id as usize * hidden..(id as usize + 1) * hidden].to_vec())
        .collect();
    for l in 0..layers {
        let w = |s: &str| &t[format!("blk.{l}.{s}").as_str()];
        let mut keys = Vec::new();
        let mut values = Vec::new();
        let mut attn_out = Vec::new();
        for (pos, x) in xs.iter().enumerate() {
            let n = norm(x, w("attn_norm.weight"));
            let mut q = mv(w("attn_q.weight"), &n);
            let mut k = mv(w("attn_k.weight"), &n);
            rope(&mut q, pos);
            rope(&mut k, pos);
            keys.push(k);
            values.push(mv(w("attn_v.weight"), &n));
            let mut o = vec![0f64; heads * hd];
            for h in 0..heads {
                let kv = h / (heads / kv_heads);
                let qh = &q[h * hd..(h + 1) * hd];
                let scores: Vec<f64> = keys
                    .iter()
                    .map(|k| {
                        qh.iter()
                            .zip(&k[kv * hd..(kv + 1) * hd])
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = e.iter().sum();
                for (p, v) in e.iter().zip(&values) {
                    for i in 0..hd {
                        o[h * hd + i] += p / total * v[kv * hd + i];
                    }
                }
            }
            attn_out.push(mv(w("attn_output.weight"), &o));
        }
        for (x, a) in xs.iter_mut().zip(attn_out) {
            x.iter_mut().zip(a).for_each(|(x, a)| *x += a);
            let n = norm(x, w("ffn_norm.weight"));
            let g = mv(w("ffn_gate.weight"), &n);
            let u = mv(w("ffn_up.weight"), &n);
            let hmid: Vec<f64> = g
                .iter()
                .zip(&u)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            assert_eq!(hmid.len(), ffn);
            let d = mv(w("ffn_down.weight"), &hmid);
            x.iter_mut().zip(d).for_each(|(x, d)| *x += d);
        }
    }
    let output = t.get("output.weight").unwrap_or(embed);
    xs.iter()
        .map(|x| mv(output, &norm(x, &t["output_norm.weight"])))
        .collect()
}

/// Largest |got − want| and largest |want|.
fn worst(got: &[f32], want: &[Vec<f64>]) -> (f64, f64) {
    let v = want[0].len();
    let mut worst = 0f64;
    let mut scale = 0f64;
    for (p, row) in want.iter().enumerate() {
        for (i, w) in row.iter().enumerate() {
            worst = worst.max((got[p * v + i] as f64 - w).abs());
            scale = scale.max(w.abs());
        }
    }
    (worst, scale)
}

#[test]
fn f32_model_as_stored_matches_a_naive_f32_forward_and_the_q8_path_does_not() {
    let seq = sequence();
    let (content, tensors) = tiny_tensors(DType::F16);
    let path = out("f32.gguf");
    write_model(&path, &content, &tensors, GgmlDType::F32, GgmlDType::F32);
    let want = naive_llama(&content, &tensors, &seq);

    let exact = Model::load_with(&path, Precision::AsStored).unwrap();
    assert_eq!(exact.precision(), Precision::AsStored);
    // 15 matrices: the embedding (tied output) and 7 in each of 2 blocks.
    assert_eq!(exact.weight_formats(), &[(WeightFormat::F32, 15)]);
    let got = logits(&exact, &seq);
    let (err, scale) = worst(&got, &want);
    assert!(scale > 1.0, "degenerate logits (largest {scale})");
    assert!(
        err <= 1e-4 * scale,
        "AsStored differs from the naive forward by {err} (largest logit {scale})"
    );

    let requantized = Model::load(&path).unwrap();
    assert_eq!(requantized.precision(), Precision::Q8_0);
    assert_eq!(requantized.weight_formats(), &[(WeightFormat::Q8_0, 15)]);
    let (q8_err, _) = worst(&logits(&requantized, &seq), &want);
    assert!(
        q8_err > 1e-3 * scale && q8_err > 20.0 * err,
        "the Q8_0 path should carry quantization noise: {q8_err} vs AsStored {err}"
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn f16_and_bf16_are_widened_exactly() {
    let seq = sequence();
    for (dtype, ggml) in [(DType::F16, GgmlDType::F16), (DType::BF16, GgmlDType::BF16)] {
        let (content, tensors) = tiny_tensors(dtype);
        let wide = out(&format!("{dtype:?}-as-f32.gguf"));
        let narrow = out(&format!("{dtype:?}.gguf"));
        write_model(&wide, &content, &tensors, GgmlDType::F32, GgmlDType::F32);
        write_model(&narrow, &content, &tensors, ggml, ggml);
        assert!(
            std::fs::metadata(&narrow).unwrap().len() < std::fs::metadata(&wide).unwrap().len()
        );
        let a = logits(&Model::load_with(&wide, Precision::AsStored).unwrap(), &seq);
        let m = Model::load_with(&narrow, Precision::AsStored).unwrap();
        assert_eq!(m.weight_formats(), &[(WeightFormat::F32, 15)]);
        let b = logits(&m, &seq);
        // Same f32 weights, same arithmetic: identical bits.
        assert_eq!(a, b, "{dtype:?} stored vs the same values stored as F32");
        std::fs::remove_file(&wide).unwrap();
        std::fs::remove_file(&narrow).unwrap();
    }
}

#[test]
fn quantized_models_are_identical_under_both_precisions() {
    let seq = sequence();
    let mut files: Vec<PathBuf> = ["tiny-llama.gguf", "tiny-qwen2.gguf", "tiny-qwen3.gguf"]
        .iter()
        .map(|n| tiny(n))
        .collect();
    // The default model's layout: Q4_1 matrices, Q8_0 embedding.
    let (content, tensors) = tiny_tensors(DType::F16);
    let q4 = out("q4_1.gguf");
    write_model(&q4, &content, &tensors, GgmlDType::Q4_1, GgmlDType::Q8_0);
    files.push(q4.clone());
    for path in &files {
        let a = Model::load_with(path, Precision::Q8_0).unwrap();
        let b = Model::load_with(path, Precision::AsStored).unwrap();
        assert_eq!(a.weight_formats(), b.weight_formats(), "{}", path.display());
        assert!(b
            .weight_formats()
            .iter()
            .all(|(f, _)| *f != WeightFormat::F32));
        assert_eq!(
            logits(&a, &seq),
            logits(&b, &seq),
            "{}: logits differ between precisions",
            path.display()
        );
    }
    let m = Model::load_with(&q4, Precision::AsStored).unwrap();
    assert_eq!(
        m.weight_formats(),
        &[(WeightFormat::Q4_1, 14), (WeightFormat::Q8_0, 1)]
    );
    std::fs::remove_file(&q4).unwrap();
}

#[test]
fn runtime_loads_at_a_precision() {
    let (content, tensors) = tiny_tensors(DType::F16);
    let path = out("runtime-f16.gguf");
    write_model(&path, &content, &tensors, GgmlDType::F16, GgmlDType::F16);
    let exact = Runtime::load_with(&path, "tiny", Precision::AsStored).unwrap();
    assert_eq!(exact.model.precision(), Precision::AsStored);
    assert_eq!(exact.model.weight_formats(), &[(WeightFormat::F32, 15)]);
    let default = Runtime::load(&path, "tiny").unwrap();
    assert_eq!(default.model.precision(), Precision::Q8_0);
    assert_eq!(default.model.weight_formats(), &[(WeightFormat::Q8_0, 15)]);
    std::fs::remove_file(&path).unwrap();
}
