//! A decoder-only transformer read from a GGUF file: the llama family
//! (SmolLM2, Llama) and the Qwen2/Qwen3 family, on CPU.
//!
//! One forward pass takes any mix of sequences and new tokens (a prompt
//! prefill, one decode token per running request, or both): the projections
//! run over all rows at once, so the weights are read once per step whatever
//! the batch, and attention runs per row over that row's own KV cache. That
//! gives continuous batching without padding or masks. It returns the full
//! next-token logits of each sequence's last new token, which is where the
//! watermark embedder takes over.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Seek};
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;
use rayon::prelude::*;

use crate::matrix::{DenseMatrix, Matrix};
use crate::quant::{ActBlock, QMatrix, WeightFormat};
use crate::Error;

/// The supported architectures (`general.architecture`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    /// llama, SmolLM2: interleaved rotary pairs.
    Llama,
    /// Qwen2 / Qwen2.5: q/k/v biases, rotary over halves.
    Qwen2,
    /// Qwen3: per-head RMS norm on q and k, rotary over halves.
    Qwen3,
}

impl Architecture {
    fn parse(name: &str) -> Option<Architecture> {
        match name {
            "llama" => Some(Architecture::Llama),
            "qwen2" => Some(Architecture::Qwen2),
            "qwen3" => Some(Architecture::Qwen3),
            _ => None,
        }
    }

    /// The GGUF name.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
        }
    }

    /// Rotary pairs: (i, i+1) for llama's GGUF layout, (i, i + d/2) for Qwen.
    fn rope_halves(self) -> bool {
        !matches!(self, Architecture::Llama)
    }
}

/// The arithmetic a model is loaded for.
///
/// Q4_1 and Q8_0 tensors are kept as stored under both, and dotted against
/// activations quantized to 8 bits per 32-value block; the precisions differ
/// only for the other tensor types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// Every other matrix is dequantized and re-quantized to Q8_0, so all
    /// products run on the fast 8-bit kernels: serving and generation.
    #[default]
    Q8_0,
    /// The weights the file holds: F32 matrices kept as f32, F16 and BF16
    /// widened to f32 (exact), any other type dequantized to f32; those
    /// products take f32 activations and run in f32 (candle's matmul, the
    /// `gemm` crate). A stack (q/k/v, gate/up) whose parts differ in
    /// storage is dense f32. What audits use, so that a suspect's own
    /// weights are scored, not a re-quantization of them.
    AsStored,
}

/// Hyper-parameters read from the GGUF metadata.
#[derive(Clone, Debug)]
pub struct Config {
    /// Architecture.
    pub arch: Architecture,
    /// Transformer blocks.
    pub layers: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention).
    pub kv_heads: usize,
    /// Dimension of one head.
    pub head_dim: usize,
    /// Feed-forward size.
    pub ffn: usize,
    /// Vocabulary size (rows of the output matrix).
    pub vocab: usize,
    /// Trained context length: the most positions a sequence may use.
    pub context: usize,
    /// RMS-norm epsilon.
    pub eps: f32,
    /// Rotary base frequency.
    pub rope_base: f32,
}

struct Layer {
    attn_norm: Vec<f32>,
    /// q, k and v stacked: one pass over the normalized input.
    qkv: Matrix,
    qkv_bias: Option<Vec<f32>>,
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    out: Matrix,
    ffn_norm: Vec<f32>,
    /// gate and up stacked.
    gate_up: Matrix,
    down: Matrix,
}

/// A loaded model. Immutable after loading; [`KvCache`]s hold per-sequence
/// state, so one model serves many sequences.
pub struct Model {
    config: Config,
    embed: Matrix,
    /// `None` when the output matrix is tied to the embedding.
    output: Option<Matrix>,
    output_norm: Vec<f32>,
    layers: Vec<Layer>,
    /// cos/sin per (position, pair), grown on demand up to the context.
    inv_freq: Vec<f32>,
    formats: Vec<(WeightFormat, usize)>,
    precision: Precision,
}

/// One sequence's keys and values for every layer.
pub struct KvCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
}

impl KvCache {
    /// Positions cached so far.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// New tokens for one sequence in a forward pass.
pub struct Step<'a> {
    /// The sequence's cache; its positions continue from `cache.len()`.
    pub cache: &'a mut KvCache,
    /// Tokens to append (at least one).
    pub tokens: &'a [u32],
}

/// Largest `context_length` accepted (16,777,216 positions; real models
/// train on up to about a million). Caches grow with the positions used,
/// not with this figure, but the context bounds every request.
pub const MAX_CONTEXT: usize = 1 << 24;

/// Largest head count (query or key/value) accepted: real models have at
/// most a few hundred.
pub const MAX_HEADS: usize = 1 << 14;

fn md_u32(md: &HashMap<String, Value>, key: &str, origin: &str) -> Result<usize, Error> {
    let v = md
        .get(key)
        .ok_or_else(|| Error::Gguf(format!("{origin}: metadata field {key} is missing")))?;
    v.to_u32()
        .map(u64::from)
        .or_else(|_| v.to_u64())
        .map_err(|e| Error::Gguf(format!("{origin}: metadata field {key}: {e}")))
        .and_then(|x| {
            usize::try_from(x).map_err(|_| {
                Error::Gguf(format!("{origin}: metadata field {key}: {x} is too large"))
            })
        })
}

/// `value` of metadata field `key` unless it lies outside `lo..=hi`.
fn in_range(value: usize, lo: usize, hi: usize, key: &str, origin: &str) -> Result<usize, Error> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(Error::Gguf(format!(
            "{origin}: metadata field {key} is {value}; it must be from {lo} to {hi}"
        )))
    }
}

/// The transformer blocks the tensors hold: every `N` of a `blk.N.` name.
fn blocks_present<'a>(names: impl Iterator<Item = &'a String>) -> BTreeSet<usize> {
    names
        .filter_map(|n| n.strip_prefix("blk.")?.split_once('.')?.0.parse().ok())
        .collect()
}

fn md_f32(md: &HashMap<String, Value>, key: &str, origin: &str) -> Result<Option<f32>, Error> {
    md.get(key)
        .map(|v| {
            v.to_f32()
                .map_err(|e| Error::Gguf(format!("{origin}: metadata field {key}: {e}")))
        })
        .transpose()
}

impl Config {
    /// The hyper-parameters of `content`, each bounded: `block_count` must
    /// be the number of `blk.N` blocks the tensors hold (0 to N − 1, at
    /// least one), head counts 1 to [`MAX_HEADS`] with the query heads a
    /// multiple of the key/value heads, the head size even and at least 2,
    /// the hidden and feed-forward sizes at least 1, the context 1 to
    /// [`MAX_CONTEXT`], epsilon and rotary base finite and positive. Sizes
    /// are then checked against the tensors' shapes as each is loaded.
    fn from_content(content: &Content, origin: &str) -> Result<Config, Error> {
        let md = &content.metadata;
        let arch_name = md
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .ok_or_else(|| {
                Error::Gguf(format!(
                    "{origin}: metadata field general.architecture is missing"
                ))
            })?;
        let arch = Architecture::parse(arch_name).ok_or_else(|| {
            Error::Gguf(format!(
                "{origin}: architecture {arch_name:?} is not supported (supported: llama, qwen2, qwen3)"
            ))
        })?;
        let a = arch.name();
        let key = |k: &str| format!("{a}.{k}");
        let field = |k: &str, lo: usize, hi: usize| -> Result<usize, Error> {
            in_range(md_u32(md, &key(k), origin)?, lo, hi, &key(k), origin)
        };
        let blocks = blocks_present(content.tensor_infos.keys());
        let layers = md_u32(md, &key("block_count"), origin)?;
        let held = blocks.len();
        if layers == 0 || layers != held || blocks.last().is_some_and(|&b| b + 1 != held) {
            let range = match (blocks.first(), blocks.last()) {
                (Some(f), Some(l)) => format!("blk.{f} to blk.{l}"),
                _ => "none".to_string(),
            };
            return Err(Error::Gguf(format!(
                "{origin}: metadata field {} is {layers} but the file holds tensors for {held} blocks ({range}); \
                 they must agree, numbered from blk.0",
                key("block_count")
            )));
        }
        let hidden = field("embedding_length", 1, usize::MAX)?;
        let heads = field("attention.head_count", 1, MAX_HEADS)?;
        let kv_heads = match md.get(&key("attention.head_count_kv")) {
            Some(_) => field("attention.head_count_kv", 1, MAX_HEADS)?,
            None => heads,
        };
        let head_dim = match md.get(&key("attention.key_length")) {
            Some(_) => md_u32(md, &key("attention.key_length"), origin)?,
            None => hidden / heads,
        };
        let eps = md_f32(md, &key("attention.layer_norm_rms_epsilon"), origin)?.unwrap_or(1e-6);
        let rope_base = md_f32(md, &key("rope.freq_base"), origin)?.unwrap_or(10_000.0);
        for (k, v) in [
            ("attention.layer_norm_rms_epsilon", eps),
            ("rope.freq_base", rope_base),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::Gguf(format!(
                    "{origin}: metadata field {} is {v}; it must be finite and positive",
                    key(k)
                )));
            }
        }
        let config = Config {
            arch,
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim,
            ffn: field("feed_forward_length", 1, usize::MAX)?,
            vocab: 0,
            context: field("context_length", 1, MAX_CONTEXT)?,
            eps,
            rope_base,
        };
        if heads % kv_heads != 0
            || head_dim < 2
            || head_dim % 2 != 0
            || heads.checked_mul(head_dim).is_none()
        {
            return Err(Error::Gguf(format!(
                "{origin}: unsupported attention shape ({heads} heads, {kv_heads} kv heads, head size {head_dim})"
            )));
        }
        Ok(config)
    }
}

/// Reads tensors from an open GGUF file.
struct Loader<'a, R> {
    content: &'a Content,
    file: R,
    origin: &'a str,
    precision: Precision,
    formats: Vec<(WeightFormat, usize)>,
}

impl<R: Read + Seek> Loader<'_, R> {
    fn tensor(&mut self, name: &str) -> Result<QTensor, Error> {
        self.content
            .tensor(&mut self.file, name, &Device::Cpu)
            .map_err(|e| Error::Gguf(format!("{}: tensor {name}: {e}", self.origin)))
    }

    fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    fn vector(&mut self, name: &str, len: usize) -> Result<Vec<f32>, Error> {
        let t = self.tensor(name)?;
        let values = t
            .dequantize(&Device::Cpu)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| Error::Gguf(format!("{}: tensor {name}: {e}", self.origin)))?;
        if values.len() != len {
            return Err(Error::Gguf(format!(
                "{}: tensor {name} has {} values, expected {len}",
                self.origin,
                values.len()
            )));
        }
        Ok(values)
    }

    /// A weight matrix with `cols` inputs; rows are inferred and checked
    /// against `rows` when given.
    fn matrix(&mut self, name: &str, rows: Option<usize>, cols: usize) -> Result<Matrix, Error> {
        let t = self.tensor(name)?;
        let dims = t.shape().dims().to_vec();
        let origin = self.origin;
        let bad = |msg: String| Error::Gguf(format!("{origin}: tensor {name}: {msg}"));
        if dims.len() != 2 || dims[1] != cols || rows.is_some_and(|r| r != dims[0]) {
            return Err(bad(format!(
                "shape {dims:?}, expected [{}, {cols}]",
                rows.map_or("?".into(), |r| r.to_string())
            )));
        }
        let r = dims[0];
        let m = match t.dtype() {
            GgmlDType::Q4_1 => {
                let data = t.data().map_err(|e| bad(e.to_string()))?;
                QMatrix::from_q4_1_bytes(r, cols, &data).map(Matrix::Quantized)
            }
            GgmlDType::Q8_0 => {
                let data = t.data().map_err(|e| bad(e.to_string()))?;
                QMatrix::from_q8_0_bytes(r, cols, &data).map(Matrix::Quantized)
            }
            _ => {
                // candle's dequantize: F32 as is, F16/BF16 widened, block
                // types expanded.
                let values = t
                    .dequantize(&Device::Cpu)
                    .and_then(|t| t.flatten_all())
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(|e| bad(e.to_string()))?;
                match self.precision {
                    Precision::Q8_0 => {
                        QMatrix::quantize_q8_0(r, cols, &values).map(Matrix::Quantized)
                    }
                    Precision::AsStored => DenseMatrix::new(r, cols, values).map(Matrix::Dense),
                }
            }
        }
        .map_err(bad)?;
        self.count(m.format());
        Ok(m)
    }

    fn count(&mut self, format: WeightFormat) {
        match self.formats.iter_mut().find(|(f, _)| *f == format) {
            Some((_, n)) => *n += 1,
            None => self.formats.push((format, 1)),
        }
    }

    /// Stacks the parts for one product (see [`Matrix::stack`]); under
    /// [`Precision::AsStored`] parts of differing storage go dense rather
    /// than re-quantized.
    fn stack(&self, parts: Vec<Matrix>, block: usize) -> Result<Matrix, Error> {
        Matrix::stack(parts, self.precision == Precision::AsStored)
            .map_err(|e| Error::Gguf(format!("{}: block {block}: {e}", self.origin)))
    }
}

impl Model {
    /// Loads a GGUF model at [`Precision::Q8_0`] (what serving uses).
    /// Errors name the file and the tensor or field.
    pub fn load(path: &Path) -> Result<Model, Error> {
        Model::load_with(path, Precision::Q8_0)
    }

    /// Loads a GGUF model at the given precision. Errors name the file and
    /// the tensor or field; a file that breaks a bound of [`crate::gguf`]
    /// or of the hyper-parameters (see [`Model::from_reader`]) is refused
    /// before anything is allocated for it.
    pub fn load_with(path: &Path, precision: Precision) -> Result<Model, Error> {
        let origin = path.display().to_string();
        let file = crate::gguf::open_regular(path)?;
        Model::from_reader(file, &origin, precision)
    }

    /// Loads a GGUF model from any reader (`origin` names it in errors):
    /// what [`Model::load_with`] does with a file. The container is
    /// checked by [`crate::gguf::read_content`]; `block_count` must match
    /// the `blk.N` tensors present, head counts are at most [`MAX_HEADS`],
    /// the context at most [`MAX_CONTEXT`] positions, and every size is
    /// checked against the tensors' shapes. A panic while loading (a
    /// malformed file that slipped past the checks) is returned as
    /// [`Error::Gguf`] naming `origin` ([`crate::gguf::guard`]).
    pub fn from_reader<R: Read + Seek>(
        reader: R,
        origin: &str,
        precision: Precision,
    ) -> Result<Model, Error> {
        crate::gguf::guard(&format!("{origin}: the model could not be read"), || {
            Model::read(reader, origin, precision)
        })
    }

    fn read<R: Read + Seek>(
        mut file: R,
        origin: &str,
        precision: Precision,
    ) -> Result<Model, Error> {
        let origin = origin.to_string();
        let content = crate::gguf::read_content(&mut file, &origin)?;
        let mut config = Config::from_content(&content, &origin)?;
        let mut l = Loader {
            content: &content,
            file,
            origin: &origin,
            precision,
            formats: Vec::new(),
        };
        let (h, hd) = (config.hidden, config.head_dim);
        let embed = l.matrix("token_embd.weight", None, h)?;
        config.vocab = embed.rows();
        let output = if l.has("output.weight") {
            Some(l.matrix("output.weight", Some(config.vocab), h)?)
        } else {
            None
        };
        let output_norm = l.vector("output_norm.weight", h)?;
        // Checked in from_content: heads × head size does not overflow, and
        // kv_heads ≤ heads.
        let (q_rows, kv_rows) = (config.heads * hd, config.kv_heads * hd);
        // Bounded by the blocks the tensors hold.
        let mut layers = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            let n = |s: &str| format!("blk.{i}.{s}");
            let parts = vec![
                l.matrix(&n("attn_q.weight"), Some(q_rows), h)?,
                l.matrix(&n("attn_k.weight"), Some(kv_rows), h)?,
                l.matrix(&n("attn_v.weight"), Some(kv_rows), h)?,
            ];
            let qkv = l.stack(parts, i)?;
            let qkv_bias = if config.arch == Architecture::Qwen2 {
                let mut b = l.vector(&n("attn_q.bias"), q_rows)?;
                b.extend(l.vector(&n("attn_k.bias"), kv_rows)?);
                b.extend(l.vector(&n("attn_v.bias"), kv_rows)?);
                Some(b)
            } else {
                None
            };
            let (q_norm, k_norm) = if config.arch == Architecture::Qwen3 {
                (
                    Some(l.vector(&n("attn_q_norm.weight"), hd)?),
                    Some(l.vector(&n("attn_k_norm.weight"), hd)?),
                )
            } else {
                (None, None)
            };
            let ffn = config.ffn;
            let parts = vec![
                l.matrix(&n("ffn_gate.weight"), Some(ffn), h)?,
                l.matrix(&n("ffn_up.weight"), Some(ffn), h)?,
            ];
            let gate_up = l.stack(parts, i)?;
            layers.push(Layer {
                attn_norm: l.vector(&n("attn_norm.weight"), h)?,
                qkv,
                qkv_bias,
                q_norm,
                k_norm,
                out: l.matrix(&n("attn_output.weight"), Some(h), q_rows)?,
                ffn_norm: l.vector(&n("ffn_norm.weight"), h)?,
                gate_up,
                down: l.matrix(&n("ffn_down.weight"), Some(h), ffn)?,
            });
        }
        let inv_freq = (0..hd / 2)
            .map(|i| (config.rope_base as f64).powf(-2.0 * i as f64 / hd as f64) as f32)
            .collect();
        let mut formats = l.formats;
        formats.sort_by_key(|(f, _)| *f as u8);
        Ok(Model {
            config,
            embed,
            output,
            output_norm,
            layers,
            inv_freq,
            formats,
            precision,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many weight matrices each storage format holds, as read (before
    /// stacking q/k/v and gate/up), in [`WeightFormat`] order.
    pub fn weight_formats(&self) -> &[(WeightFormat, usize)] {
        &self.formats
    }

    /// The precision the model was loaded at.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// An empty cache for a new sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache {
            keys: vec![Vec::new(); self.config.layers],
            values: vec![Vec::new(); self.config.layers],
            len: 0,
        }
    }

    /// Runs the new tokens of every step through the model, appends them to
    /// the caches, and writes each step's next-token logits (vocab values per
    /// step, in step order) to `logits`. Runs on the current rayon pool.
    pub fn forward(&self, steps: &mut [Step<'_>], logits: &mut Vec<f32>) -> Result<(), Error> {
        self.run(steps, logits, false)
    }

    /// Like [`Model::forward`] for one sequence, but writes the next-token
    /// logits after every new token (vocab values per token): what scoring a
    /// text (perplexity, reading-mode audits) needs.
    pub fn forward_all(&self, step: Step<'_>, logits: &mut Vec<f32>) -> Result<(), Error> {
        self.run(&mut [step], logits, true)
    }

    fn run(
        &self,
        steps: &mut [Step<'_>],
        logits: &mut Vec<f32>,
        all_rows: bool,
    ) -> Result<(), Error> {
        let c = &self.config;
        let (h, hd) = (c.hidden, c.head_dim);
        // Row bookkeeping: which step and which position each row is.
        let mut row_step = Vec::new();
        let mut row_pos = Vec::new();
        for (s, step) in steps.iter().enumerate() {
            if step.tokens.is_empty() {
                return Err(Error::Runtime(
                    "a forward step needs at least one token".into(),
                ));
            }
            let end = step.cache.len + step.tokens.len();
            if end > c.context {
                return Err(Error::Runtime(format!(
                    "sequence of {end} tokens exceeds the model's context of {}",
                    c.context
                )));
            }
            for (i, &t) in step.tokens.iter().enumerate() {
                if t as usize >= c.vocab {
                    return Err(Error::Runtime(format!(
                        "token id {t} is outside the vocabulary of {}",
                        c.vocab
                    )));
                }
                row_step.push(s);
                row_pos.push(step.cache.len + i);
            }
        }
        let n = row_step.len();
        let mut x: Vec<f32> = Vec::with_capacity(n * h);
        let runtime = Error::Runtime;
        for step in steps.iter() {
            for &t in step.tokens {
                x.extend(self.embed.row(t as usize).map_err(runtime)?);
            }
        }
        let (q_rows, kv_rows) = (c.heads * hd, c.kv_heads * hd);
        let qkv_width = q_rows + 2 * kv_rows;
        let mut normed = vec![0f32; n * h];
        let mut acts: Vec<ActBlock> = Vec::new();
        let mut qkv = vec![0f32; n * qkv_width];
        let mut attn = vec![0f32; n * q_rows];
        let mut proj = vec![0f32; n * h];
        let mut gate_up = vec![0f32; n * 2 * c.ffn];
        let mut hidden_ffn = vec![0f32; n * c.ffn];
        let (cos, sin) = self.rope_tables(&row_pos);

        for (li, layer) in self.layers.iter().enumerate() {
            rms_norm_rows(&x, &layer.attn_norm, c.eps, &mut normed);
            layer
                .qkv
                .matmul(&normed, &mut acts, &mut qkv)
                .map_err(runtime)?;
            for row in qkv.chunks_exact_mut(qkv_width) {
                if let Some(b) = &layer.qkv_bias {
                    row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
                }
                let (q, kv) = row.split_at_mut(q_rows);
                let k = &mut kv[..kv_rows];
                if let (Some(qn), Some(kn)) = (&layer.q_norm, &layer.k_norm) {
                    q.chunks_exact_mut(hd)
                        .for_each(|v| rms_norm_in_place(v, qn, c.eps));
                    k.chunks_exact_mut(hd)
                        .for_each(|v| rms_norm_in_place(v, kn, c.eps));
                }
            }
            for (r, row) in qkv.chunks_exact_mut(qkv_width).enumerate() {
                let (cs, sn) = (
                    &cos[r * hd / 2..(r + 1) * hd / 2],
                    &sin[r * hd / 2..(r + 1) * hd / 2],
                );
                let (q, kv) = row.split_at_mut(q_rows);
                for head in q
                    .chunks_exact_mut(hd)
                    .chain(kv[..kv_rows].chunks_exact_mut(hd))
                {
                    rotate(head, cs, sn, c.arch.rope_halves());
                }
            }
            // Append every row's k and v before attending (rows of one step
            // are in position order, and each row only sees positions ≤ its own).
            for (r, row) in qkv.chunks_exact(qkv_width).enumerate() {
                let cache = &mut *steps[row_step[r]].cache;
                cache.keys[li].extend_from_slice(&row[q_rows..q_rows + kv_rows]);
                cache.values[li].extend_from_slice(&row[q_rows + kv_rows..]);
            }
            {
                let caches: Vec<(&[f32], &[f32])> = steps
                    .iter()
                    .map(|s| (&s.cache.keys[li][..], &s.cache.values[li][..]))
                    .collect();
                let qkv = &qkv;
                let group = c.heads / c.kv_heads;
                let scale = 1.0 / (hd as f32).sqrt();
                let work = |r: usize, out: &mut [f32]| {
                    let (keys, values) = caches[row_step[r]];
                    let upto = row_pos[r] + 1;
                    let q = &qkv[r * qkv_width..r * qkv_width + q_rows];
                    let mut scores = vec![0f32; upto];
                    for (hq, o) in out.chunks_exact_mut(hd).enumerate() {
                        let kvh = hq / group;
                        attend(
                            &q[hq * hd..(hq + 1) * hd],
                            keys,
                            values,
                            kvh * hd,
                            kv_rows,
                            upto,
                            scale,
                            &mut scores,
                            o,
                        );
                    }
                };
                let total: usize = row_pos.iter().map(|p| p + 1).sum();
                if total * c.heads * hd > 1 << 18 {
                    attn.par_chunks_exact_mut(q_rows)
                        .enumerate()
                        .for_each(|(r, out)| work(r, out));
                } else {
                    attn.chunks_exact_mut(q_rows)
                        .enumerate()
                        .for_each(|(r, out)| work(r, out));
                }
            }
            layer
                .out
                .matmul(&attn, &mut acts, &mut proj)
                .map_err(runtime)?;
            add_in_place(&mut x, &proj);

            rms_norm_rows(&x, &layer.ffn_norm, c.eps, &mut normed);
            layer
                .gate_up
                .matmul(&normed, &mut acts, &mut gate_up)
                .map_err(runtime)?;
            let swiglu = |(gu, hf): (&[f32], &mut [f32])| {
                let (g, u) = gu.split_at(c.ffn);
                for ((o, &g), &u) in hf.iter_mut().zip(g).zip(u) {
                    *o = g / (1.0 + (-g).exp()) * u;
                }
            };
            if n * c.ffn >= PARALLEL_VALUES {
                gate_up
                    .par_chunks_exact(2 * c.ffn)
                    .zip(hidden_ffn.par_chunks_exact_mut(c.ffn))
                    .for_each(swiglu);
            } else {
                gate_up
                    .chunks_exact(2 * c.ffn)
                    .zip(hidden_ffn.chunks_exact_mut(c.ffn))
                    .for_each(swiglu);
            }
            layer
                .down
                .matmul(&hidden_ffn, &mut acts, &mut proj)
                .map_err(runtime)?;
            add_in_place(&mut x, &proj);
        }
        for step in steps.iter_mut() {
            step.cache.len += step.tokens.len();
        }
        // Logits for each step's last row (or every row).
        let mut picked = Vec::with_capacity(steps.len() * h);
        let mut r = 0;
        for step in steps.iter() {
            let first = if all_rows {
                r
            } else {
                r + step.tokens.len() - 1
            };
            r += step.tokens.len();
            picked.extend_from_slice(&x[first * h..r * h]);
        }
        let mut last = vec![0f32; picked.len()];
        rms_norm_rows(&picked, &self.output_norm, c.eps, &mut last);
        logits.clear();
        logits.resize(last.len() / h * c.vocab, 0.0);
        self.output
            .as_ref()
            .unwrap_or(&self.embed)
            .matmul(&last, &mut acts, logits)
            .map_err(runtime)?;
        Ok(())
    }

    /// cos and sin of position × inverse frequency for each row's position.
    fn rope_tables(&self, positions: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            for &f in &self.inv_freq {
                let angle = p as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        (cos, sin)
    }
}

fn rms_norm_in(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let mean_sq = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let scale = 1.0 / (mean_sq + eps).sqrt();
    for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

/// Values below which the row-wise steps of a forward pass (norms, the
/// gated activation, residual adds) run on one thread. Each value is
/// computed on its own either way, so the results are the same.
const PARALLEL_VALUES: usize = 1 << 16;

fn rms_norm_rows(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let h = weight.len();
    let norm = |(xr, or): (&[f32], &mut [f32])| rms_norm_in(xr, weight, eps, or);
    if x.len() >= PARALLEL_VALUES {
        x.par_chunks_exact(h)
            .zip(out.par_chunks_exact_mut(h))
            .for_each(norm);
    } else {
        x.chunks_exact(h)
            .zip(out.chunks_exact_mut(h))
            .for_each(norm);
    }
}

/// x += y, element by element.
fn add_in_place(x: &mut [f32], y: &[f32]) {
    if x.len() >= PARALLEL_VALUES {
        x.par_chunks_mut(PARALLEL_VALUES / 4)
            .zip(y.par_chunks(PARALLEL_VALUES / 4))
            .for_each(|(x, y)| x.iter_mut().zip(y).for_each(|(a, b)| *a += b));
    } else {
        x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
    }
}

fn rms_norm_in_place(x: &mut [f32], weight: &[f32], eps: f32) {
    let mean_sq = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let scale = 1.0 / (mean_sq + eps).sqrt();
    x.iter_mut().zip(weight).for_each(|(v, w)| *v *= scale * w);
}

/// Rotary embedding of one head in place.
fn rotate(head: &mut [f32], cos: &[f32], sin: &[f32], halves: bool) {
    let half = head.len() / 2;
    for i in 0..half {
        let (a, b) = if halves {
            (i, i + half)
        } else {
            (2 * i, 2 * i + 1)
        };
        let (x0, x1) = (head[a], head[b]);
        head[a] = x0 * cos[i] - x1 * sin[i];
        head[b] = x0 * sin[i] + x1 * cos[i];
    }
}

/// Keys scored together in [`attend`].
const KEYS: usize = 8;

/// Softmax attention of one query head over the first `upto` cached
/// positions of one kv head (`offset` into each cached row of `stride`).
#[allow(clippy::too_many_arguments)]
fn attend(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    offset: usize,
    stride: usize,
    upto: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let hd = q.len();
    let mut max = f32::NEG_INFINITY;
    let key = |j: usize| &keys[j * stride + offset..j * stride + offset + hd];
    // KEYS keys at a time: that many independent sums in flight instead of
    // one chain of dependent adds. Each score is still its own sum of
    // q[d]·k[d] in order of d from −0.0 (as `Iterator::sum`), so the scores
    // are exactly those of one key at a time.
    let mut j = 0;
    while j + KEYS <= upto {
        let ks: [&[f32]; KEYS] = std::array::from_fn(|t| key(j + t));
        let mut acc = [-0.0f32; KEYS];
        for (d, &qd) in q.iter().enumerate() {
            for (a, k) in acc.iter_mut().zip(&ks) {
                *a += qd * k[d];
            }
        }
        for (s, a) in scores[j..j + KEYS].iter_mut().zip(acc) {
            *s = a * scale;
            max = max.max(*s);
        }
        j += KEYS;
    }
    for (j, s) in scores[..upto].iter_mut().enumerate().skip(j) {
        *s = q.iter().zip(key(j)).map(|(a, b)| a * b).sum::<f32>() * scale;
        max = max.max(*s);
    }
    let mut total = 0f32;
    for s in scores[..upto].iter_mut() {
        *s = (*s - max).exp();
        total += *s;
    }
    out.fill(0.0);
    for (j, &p) in scores[..upto].iter().enumerate() {
        let v = &values[j * stride + offset..j * stride + offset + hd];
        let w = p / total;
        out.iter_mut().zip(v).for_each(|(o, v)| *o += w * v);
    }
}
