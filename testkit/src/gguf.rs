//! A small GGUF writer for tests that need well-formed and deliberately
//! malformed model files: every field is written as given, nothing is
//! checked, so a test can state any alignment, count, length, dimension,
//! type or offset it wants.

/// GGUF metadata value type tags.
pub mod tag {
    /// u8
    pub const U8: u32 = 0;
    /// u32
    pub const U32: u32 = 4;
    /// i32
    pub const I32: u32 = 5;
    /// f32
    pub const F32: u32 = 6;
    /// bool
    pub const BOOL: u32 = 7;
    /// string
    pub const STRING: u32 = 8;
    /// array
    pub const ARRAY: u32 = 9;
    /// u64
    pub const U64: u32 = 10;
}

/// ggml tensor type ids.
pub mod ggml {
    /// f32
    pub const F32: u32 = 0;
    /// f16
    pub const F16: u32 = 1;
    /// Q8_0 (blocks of 32 values, 34 bytes)
    pub const Q8_0: u32 = 8;
}

/// A length-prefixed GGUF string.
pub fn string(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

/// One tensor info and its data.
#[derive(Clone, Debug)]
pub struct TensorSpec {
    /// Name.
    pub name: String,
    /// Dimensions in GGUF order (row length first).
    pub dims: Vec<u64>,
    /// ggml type id.
    pub dtype: u32,
    /// Data bytes written for it.
    pub data: Vec<u8>,
    /// Offset to write instead of the one the data lands at.
    pub offset: Option<u64>,
}

/// A GGUF file under construction.
#[derive(Clone, Debug)]
pub struct GgufWriter {
    /// Version written in the header (3 unless changed).
    pub version: u32,
    /// Metadata entries: key, value type tag, value bytes.
    pub kvs: Vec<(String, u32, Vec<u8>)>,
    /// Tensors, in file order.
    pub tensors: Vec<TensorSpec>,
    /// Padding used to lay out the data (whatever `general.alignment`
    /// says).
    pub padding: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter::new()
    }
}

impl GgufWriter {
    /// An empty version-3 file with 32-byte padding.
    pub fn new() -> GgufWriter {
        GgufWriter {
            version: 3,
            kvs: Vec::new(),
            tensors: Vec::new(),
            padding: 32,
        }
    }

    /// Adds a metadata entry with raw value bytes.
    pub fn kv_raw(&mut self, key: &str, tag: u32, value: Vec<u8>) -> &mut Self {
        self.kvs.push((key.into(), tag, value));
        self
    }

    /// Removes every metadata entry named `key`.
    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.kvs.retain(|(k, _, _)| k != key);
        self
    }

    /// Sets (replaces) a metadata entry with raw value bytes.
    pub fn set_raw(&mut self, key: &str, tag: u32, value: Vec<u8>) -> &mut Self {
        match self.kvs.iter_mut().find(|(k, _, _)| k == key) {
            Some(kv) => *kv = (key.into(), tag, value),
            None => self.kvs.push((key.into(), tag, value)),
        }
        self
    }

    /// Sets a u32 entry.
    pub fn set_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.set_raw(key, tag::U32, v.to_le_bytes().to_vec())
    }

    /// Sets a string entry.
    pub fn set_str(&mut self, key: &str, v: &str) -> &mut Self {
        self.set_raw(key, tag::STRING, string(v.as_bytes()))
    }

    /// Sets an array of strings.
    pub fn set_str_array(&mut self, key: &str, items: &[String]) -> &mut Self {
        let mut v = tag::STRING.to_le_bytes().to_vec();
        v.extend((items.len() as u64).to_le_bytes());
        for s in items {
            v.extend(string(s.as_bytes()));
        }
        self.set_raw(key, tag::ARRAY, v)
    }

    /// Adds a tensor laid out after the previous one.
    pub fn tensor(&mut self, name: &str, dims: &[u64], dtype: u32, data: Vec<u8>) -> &mut Self {
        self.tensors.push(TensorSpec {
            name: name.into(),
            dims: dims.to_vec(),
            dtype,
            data,
            offset: None,
        });
        self
    }

    /// The tensor named `name`.
    pub fn tensor_mut(&mut self, name: &str) -> &mut TensorSpec {
        self.tensors
            .iter_mut()
            .find(|t| t.name == name)
            .expect("the tensor exists")
    }

    /// The file's bytes: header, metadata, tensor infos, padding to
    /// `padding`, then each tensor's data padded to `padding` (the last
    /// one unpadded, so that every shorter prefix cuts a tensor).
    pub fn bytes(&self) -> Vec<u8> {
        let pad = |n: u64| (self.padding - n % self.padding) % self.padding;
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.kvs.len() as u64).to_le_bytes());
        for (k, t, v) in &self.kvs {
            out.extend(string(k.as_bytes()));
            out.extend(t.to_le_bytes());
            out.extend(v);
        }
        let mut data = Vec::new();
        for (i, t) in self.tensors.iter().enumerate() {
            out.extend(string(t.name.as_bytes()));
            out.extend((t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(t.dtype.to_le_bytes());
            out.extend(t.offset.unwrap_or(data.len() as u64).to_le_bytes());
            data.extend(&t.data);
            if i + 1 < self.tensors.len() {
                data.resize(data.len() + pad(data.len() as u64) as usize, 0);
            }
        }
        out.resize(out.len() + pad(out.len() as u64) as usize, 0);
        out.extend(data);
        out
    }
}

/// The 256 byte-level BPE tokens (GPT-2's byte-to-character map), in byte
/// order.
pub fn byte_tokens() -> Vec<String> {
    let mut bs: Vec<u32> = (33..127).chain(161..173).chain(174..256).collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut pairs: Vec<(u32, u32)> = bs.into_iter().zip(cs).collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(_, c)| char::from_u32(c).expect("a valid char").to_string())
        .collect()
}

/// `n` f32 values, small and deterministic, as bytes.
pub fn f32_bytes(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (((i * 7919 % 101) as f32 - 50.0) / 500.0).to_le_bytes())
        .collect()
}

/// A valid llama-family model with a byte-level tokenizer (256 tokens,
/// no merges, ChatML template): hidden size 32, 2 heads of 16, feed-forward
/// 64, context 64, `blocks` blocks, all weights f32 (about 40 KB for one
/// block).
pub fn tiny_llama(blocks: usize) -> GgufWriter {
    let (h, f, v) = (32u64, 64u64, 256u64);
    let mut w = GgufWriter::new();
    w.set_str("general.architecture", "llama")
        .set_u32("llama.block_count", blocks as u32)
        .set_u32("llama.context_length", 64)
        .set_u32("llama.embedding_length", h as u32)
        .set_u32("llama.feed_forward_length", f as u32)
        .set_u32("llama.attention.head_count", 2)
        .set_u32("llama.attention.head_count_kv", 2)
        .set_str("tokenizer.ggml.model", "gpt2")
        .set_str("tokenizer.ggml.pre", "gpt2")
        .set_str_array("tokenizer.ggml.tokens", &byte_tokens())
        .set_str_array("tokenizer.ggml.merges", &[])
        .set_u32("tokenizer.ggml.eos_token_id", 10)
        .set_str(
            "tokenizer.chat_template",
            "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}assistant: ",
        );
    let data = |dims: &[u64]| f32_bytes(dims.iter().product::<u64>() as usize);
    let mut t = |name: &str, dims: &[u64]| {
        w.tensor(name, dims, ggml::F32, data(dims));
    };
    t("token_embd.weight", &[h, v]);
    t("output_norm.weight", &[h]);
    for b in 0..blocks {
        let n = |s: &str| format!("blk.{b}.{s}");
        t(&n("attn_norm.weight"), &[h]);
        t(&n("attn_q.weight"), &[h, h]);
        t(&n("attn_k.weight"), &[h, h]);
        t(&n("attn_v.weight"), &[h, h]);
        t(&n("attn_output.weight"), &[h, h]);
        t(&n("ffn_norm.weight"), &[h]);
        t(&n("ffn_gate.weight"), &[h, f]);
        t(&n("ffn_up.weight"), &[h, f]);
        t(&n("ffn_down.weight"), &[f, h]);
    }
    w
}
