//! A defensive reader for GGUF containers: a suspect's model file is
//! written by whoever we are auditing, so nothing in it is trusted.
//!
//! [`read_content`] streams the header, metadata and tensor infos from any
//! `Read + Seek` and checks every count, length, type and offset against
//! the bytes the file actually holds and against the caps below *before*
//! allocating for it. Only then is a candle [`Content`] built (the rest of
//! the runtime reads tensors through it), so candle's own parser, which
//! trusts `general.alignment` and multiplies tensor dimensions unchecked,
//! never sees the file.
//!
//! What a file that passes guarantees:
//!
//! - magic `GGUF`, version 2 or 3 (little-endian);
//! - at most [`MAX_TENSORS`] tensors and [`MAX_METADATA_ENTRIES`] metadata
//!   entries; keys at most [`MAX_KEY_BYTES`], string values at most
//!   [`MAX_STRING_BYTES`], each array at most [`MAX_ARRAY_LEN`] elements
//!   and all arrays together at most [`MAX_METADATA_VALUES`], nested at
//!   most [`MAX_ARRAY_DEPTH`] deep; every length also fits in the bytes
//!   left in the file; no key or tensor name twice;
//! - `general.alignment`, when present, an unsigned integer that is a
//!   power of two between 1 and [`MAX_ALIGNMENT`];
//! - every tensor: a name of at most [`MAX_TENSOR_NAME_BYTES`], 1 to 4
//!   dimensions each ≥ 1, a ggml type candle knows, a first dimension that
//!   is a whole number of the type's blocks, an element count and byte
//!   size computed with checked arithmetic, an aligned offset, and data
//!   that lies inside the file without overlapping another tensor's (so
//!   the tensors together hold at most the file's own bytes).
//!
//! Strings are decoded the way candle decodes them (trailing NULs dropped,
//! invalid UTF-8 replaced), so the metadata, and the tokenizers and their
//! digests built from it, are exactly what candle would have read.

use std::collections::HashMap;
use std::io::{BufReader, Read, Seek, SeekFrom};

use candle_core::quantized::gguf_file::{Content, TensorInfo, Value, VersionedMagic};
use candle_core::quantized::GgmlDType;
use provmark_watermark::TokenizerDigest;

use crate::Error;

/// Most tensors a file may list. Real models have a few hundred to a few
/// thousand (9 to 12 per block plus a handful).
pub const MAX_TENSORS: u64 = 1 << 16;
/// Most metadata entries. Real models have a few dozen.
pub const MAX_METADATA_ENTRIES: u64 = 1 << 16;
/// Longest metadata key, bytes (the GGUF specification's own limit).
pub const MAX_KEY_BYTES: u64 = 65_535;
/// Longest string value, bytes (16 MiB; chat templates, the longest
/// strings real files carry, are tens of KB).
pub const MAX_STRING_BYTES: u64 = 16 << 20;
/// Most elements of one metadata array (1,048,576): the largest real
/// vocabularies have about 262k tokens and the largest merge lists about
/// 500k, so this leaves twice the room.
pub const MAX_ARRAY_LEN: u64 = 1 << 20;
/// Most array elements in all the metadata together (4,194,304: tokens,
/// scores, token types and merges of a 1M-token vocabulary). Each element
/// costs about 32 bytes in memory, so the metadata's values never take
/// more than about 128 MiB beyond the string bytes the file itself holds.
pub const MAX_METADATA_VALUES: u64 = 1 << 22;
/// Deepest nesting of arrays in arrays (GGUF allows it; real files use
/// flat arrays).
pub const MAX_ARRAY_DEPTH: usize = 2;
/// Largest `general.alignment` (ggml's default is 32).
pub const MAX_ALIGNMENT: u64 = 1 << 16;
/// Longest tensor name, bytes (ggml's own limit is 63).
pub const MAX_TENSOR_NAME_BYTES: u64 = 1024;
/// Most dimensions of a tensor (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;
/// The alignment when the file names none.
pub const DEFAULT_ALIGNMENT: u64 = 32;

const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// A value type's tag in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    Str,
    Array,
    U64,
    I64,
    F64,
}

impl Kind {
    fn from_tag(tag: u32) -> Option<Kind> {
        Some(match tag {
            0 => Kind::U8,
            1 => Kind::I8,
            2 => Kind::U16,
            3 => Kind::I16,
            4 => Kind::U32,
            5 => Kind::I32,
            6 => Kind::F32,
            7 => Kind::Bool,
            8 => Kind::Str,
            9 => Kind::Array,
            10 => Kind::U64,
            11 => Kind::I64,
            12 => Kind::F64,
            _ => return None,
        })
    }

    /// Fewest bytes one value of this kind takes in the file.
    fn min_bytes(self) -> u64 {
        match self {
            Kind::U8 | Kind::I8 | Kind::Bool => 1,
            Kind::U16 | Kind::I16 => 2,
            Kind::U32 | Kind::I32 | Kind::F32 => 4,
            Kind::U64 | Kind::I64 | Kind::F64 | Kind::Str => 8,
            Kind::Array => 12,
        }
    }
}

/// The ggml type with GGUF id `id`, if candle can hold it.
pub fn ggml_type(id: u32) -> Option<GgmlDType> {
    Some(match id {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        2 => GgmlDType::Q4_0,
        3 => GgmlDType::Q4_1,
        6 => GgmlDType::Q5_0,
        7 => GgmlDType::Q5_1,
        8 => GgmlDType::Q8_0,
        9 => GgmlDType::Q8_1,
        10 => GgmlDType::Q2K,
        11 => GgmlDType::Q3K,
        12 => GgmlDType::Q4K,
        13 => GgmlDType::Q5K,
        14 => GgmlDType::Q6K,
        15 => GgmlDType::Q8K,
        30 => GgmlDType::BF16,
        _ => return None,
    })
}

/// The bytes a tensor of `dims` (GGUF order: the first dimension is the
/// row length) and type `dtype` takes, or why it cannot exist: a zero
/// dimension, a row that is not a whole number of blocks, or a count that
/// overflows 64 bits.
pub fn tensor_bytes(dims: &[u64], dtype: GgmlDType) -> Result<u64, String> {
    let block = dtype.block_size() as u64;
    let mut elements: u64 = 1;
    for (i, &d) in dims.iter().enumerate() {
        if d == 0 {
            return Err(format!("dimension {i} is 0"));
        }
        elements = elements
            .checked_mul(d)
            .ok_or_else(|| format!("dimensions {dims:?} overflow: more than 2^64 elements"))?;
    }
    if dims.first().is_some_and(|&d0| d0 % block != 0) {
        return Err(format!(
            "rows of {} values are not a whole number of {dtype:?} blocks of {block}",
            dims[0]
        ));
    }
    (elements / block)
        .checked_mul(dtype.type_size() as u64)
        .filter(|&b| usize::try_from(b).is_ok())
        .ok_or_else(|| {
            format!("dimensions {dims:?} overflow: the tensor needs more than 2^64 bytes")
        })
}

/// Streams the file with a position and the file's length.
struct Cursor<R> {
    inner: R,
    pos: u64,
    len: u64,
    origin: String,
    /// Array elements read so far (all arrays).
    values: u64,
    /// When set, every byte read is appended here (the raw bytes of one
    /// metadata entry, for the tokenizer digest).
    capture: Option<Vec<u8>>,
}

impl<R: Read> Cursor<R> {
    fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::Gguf(format!("{}: not a valid GGUF file: {what}", self.origin))
    }

    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Error> {
        let mut b = [0u8; N];
        if self.remaining() < N as u64 {
            return Err(self.err(format_args!(
                "the file ends at byte {} inside {what}",
                self.len
            )));
        }
        self.inner
            .read_exact(&mut b)
            .map_err(|e| self.err(format_args!("reading {what} at byte {}: {e}", self.pos)))?;
        self.pos += N as u64;
        if let Some(c) = &mut self.capture {
            c.extend_from_slice(&b);
        }
        Ok(b)
    }

    fn u32(&mut self, what: &str) -> Result<u32, Error> {
        self.bytes::<4>(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, Error> {
        self.bytes::<8>(what).map(u64::from_le_bytes)
    }

    /// A length-prefixed string of at most `cap` bytes, decoded as candle
    /// decodes it.
    fn string(&mut self, what: &str, cap: u64) -> Result<String, Error> {
        let len = self.u64(what)?;
        if len > cap {
            return Err(self.err(format_args!(
                "{what} is {len} bytes long, more than the {cap} allowed"
            )));
        }
        if len > self.remaining() {
            return Err(self.err(format_args!(
                "{what} is {len} bytes long but only {} bytes remain in the file",
                self.remaining()
            )));
        }
        let mut v = vec![0u8; len as usize];
        self.inner
            .read_exact(&mut v)
            .map_err(|e| self.err(format_args!("reading {what} at byte {}: {e}", self.pos)))?;
        self.pos += len;
        if let Some(c) = &mut self.capture {
            c.extend_from_slice(&v);
        }
        while v.last() == Some(&0) {
            v.pop();
        }
        Ok(String::from_utf8_lossy(&v).into_owned())
    }

    fn value(&mut self, kind: Kind, key: &str, depth: usize) -> Result<Value, Error> {
        Ok(match kind {
            Kind::U8 => Value::U8(self.bytes::<1>(key)?[0]),
            Kind::I8 => Value::I8(self.bytes::<1>(key)?[0] as i8),
            Kind::U16 => Value::U16(u16::from_le_bytes(self.bytes(key)?)),
            Kind::I16 => Value::I16(i16::from_le_bytes(self.bytes(key)?)),
            Kind::U32 => Value::U32(self.u32(key)?),
            Kind::I32 => Value::I32(i32::from_le_bytes(self.bytes(key)?)),
            Kind::F32 => Value::F32(f32::from_le_bytes(self.bytes(key)?)),
            Kind::U64 => Value::U64(self.u64(key)?),
            Kind::I64 => Value::I64(i64::from_le_bytes(self.bytes(key)?)),
            Kind::F64 => Value::F64(f64::from_le_bytes(self.bytes(key)?)),
            Kind::Bool => match self.bytes::<1>(key)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => {
                    return Err(self.err(format_args!(
                        "metadata field {key}: {b} is not a boolean (0 or 1)"
                    )))
                }
            },
            Kind::Str => {
                Value::String(self.string(&format!("metadata field {key}"), MAX_STRING_BYTES)?)
            }
            Kind::Array => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.err(format_args!(
                        "metadata field {key}: arrays nested more than {MAX_ARRAY_DEPTH} deep"
                    )));
                }
                let tag = self.u32(key)?;
                let inner = Kind::from_tag(tag).ok_or_else(|| {
                    self.err(format_args!(
                        "metadata field {key}: unknown array element type {tag}"
                    ))
                })?;
                let len = self.u64(key)?;
                if len > MAX_ARRAY_LEN {
                    return Err(self.err(format_args!(
                        "metadata field {key}: an array of {len} elements, more than the {MAX_ARRAY_LEN} allowed"
                    )));
                }
                let need = len.saturating_mul(inner.min_bytes());
                if need > self.remaining() {
                    return Err(self.err(format_args!(
                        "metadata field {key}: an array of {len} elements needs at least {need} bytes but only {} remain in the file",
                        self.remaining()
                    )));
                }
                self.values = self.values.saturating_add(len);
                if self.values > MAX_METADATA_VALUES {
                    return Err(self.err(format_args!(
                        "metadata field {key}: the metadata's arrays hold more than {MAX_METADATA_VALUES} elements in all"
                    )));
                }
                let mut items = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    items.push(self.value(inner, key, depth + 1)?);
                }
                Value::Array(items)
            }
        })
    }
}

/// Reads and checks a GGUF container from `reader` (from its current
/// position to its end); `origin` names the file in errors.
///
/// Errors ([`Error::Gguf`], "`origin`: not a valid GGUF file: …") name the
/// field or tensor at fault and the bound it breaks (see the module
/// documentation for every bound). Never panics, and allocates only what
/// the file's own bytes and the caps allow. Tensor data is not read, only
/// its place checked; read it with [`Content::tensor`].
pub fn read_content<R: Read + Seek>(reader: &mut R, origin: &str) -> Result<Content, Error> {
    read_checked(reader, origin, false).map(|(content, _)| content)
}

/// The domain of the GGUF tokenizer digest (spec §3).
pub const TOKENIZER_DIGEST_DOMAIN: &[u8] = b"provmark-wm/1/gguf-tokenizer";

/// The metadata keys a GGUF tokenizer digest covers: those that start with
/// these bytes (spec §3).
pub const TOKENIZER_KEY_PREFIX: &[u8] = b"tokenizer.ggml.";

/// As [`read_content`], with the file's tokenizer digest (spec §3): with
/// `e_1 … e_k` the metadata entries whose key starts with
/// [`TOKENIZER_KEY_PREFIX`], each exactly as the file stores it
/// (`u64le(key length) ‖ key ‖ u32le(type) ‖ value`, GGUF v2/v3
/// little-endian encoding) and sorted by key bytes, the digest is
/// `"sha256:" ‖ hex(SHA-256(TOKENIZER_DIGEST_DOMAIN ‖ 0x00 ‖ u64le(k) ‖
/// e_1 ‖ … ‖ e_k))`. Anyone with the file and a GGUF reader can recompute
/// it; it does not depend on how provmark builds a tokenizer from it.
///
/// Errors: those of [`read_content`].
pub fn read_content_with_tokenizer_digest<R: Read + Seek>(
    reader: &mut R,
    origin: &str,
) -> Result<(Content, TokenizerDigest), Error> {
    read_checked(reader, origin, true)
        .map(|(content, digest)| (content, digest.expect("asked for the tokenizer digest")))
}

/// The tokenizer digest of raw metadata entries `(key, entry bytes)`.
fn tokenizer_digest(mut entries: Vec<(Vec<u8>, Vec<u8>)>) -> TokenizerDigest {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut pre = TOKENIZER_DIGEST_DOMAIN.to_vec();
    pre.push(0);
    pre.extend((entries.len() as u64).to_le_bytes());
    for (_, e) in &entries {
        pre.extend_from_slice(e);
    }
    TokenizerDigest::of_bytes(&pre)
}

fn read_checked<R: Read + Seek>(
    reader: &mut R,
    origin: &str,
    want_digest: bool,
) -> Result<(Content, Option<TokenizerDigest>), Error> {
    let io = |e: std::io::Error| Error::Gguf(format!("{origin}: {e}"));
    let start = reader.stream_position().map_err(io)?;
    let end = reader.seek(SeekFrom::End(0)).map_err(io)?;
    reader.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut c = Cursor {
        inner: BufReader::new(&mut *reader),
        pos: start,
        len: end,
        origin: origin.to_string(),
        values: 0,
        capture: None,
    };
    let magic = c.bytes::<4>("the magic number")?;
    if magic != GGUF_MAGIC {
        return Err(c.err(format_args!(
            "the file starts with {magic:02x?}, not the magic \"GGUF\""
        )));
    }
    let version = c.u32("the version")?;
    let magic = match version {
        2 => VersionedMagic::GgufV2,
        3 => VersionedMagic::GgufV3,
        v => {
            return Err(c.err(format_args!(
                "version {v} is not supported (supported: 2 and 3)"
            )))
        }
    };
    let tensors = c.u64("the tensor count")?;
    let entries = c.u64("the metadata entry count")?;
    if tensors > MAX_TENSORS {
        return Err(c.err(format_args!(
            "the header lists {tensors} tensors, more than the {MAX_TENSORS} allowed"
        )));
    }
    if entries > MAX_METADATA_ENTRIES {
        return Err(c.err(format_args!(
            "the header lists {entries} metadata entries, more than the {MAX_METADATA_ENTRIES} allowed"
        )));
    }
    // A metadata entry takes at least 8 + 4 + 1 bytes, a tensor info
    // 8 + 4 + 8 + 4 + 8.
    let need = entries * 13 + tensors * 32;
    if need > c.remaining() {
        return Err(c.err(format_args!(
            "the header lists {tensors} tensors and {entries} metadata entries, which need at least {need} bytes, but only {} remain",
            c.remaining()
        )));
    }
    let mut metadata = HashMap::with_capacity(entries as usize);
    let mut tokenizer_entries = Vec::new();
    for i in 0..entries {
        if want_digest {
            c.capture = Some(Vec::new());
        }
        let key = c.string(&format!("the key of metadata entry {i}"), MAX_KEY_BYTES)?;
        let tag = c.u32(&key)?;
        let kind = Kind::from_tag(tag).ok_or_else(|| {
            c.err(format_args!(
                "metadata field {key}: unknown value type {tag}"
            ))
        })?;
        let value = c.value(kind, &key, 0)?;
        if let Some(raw) = c.capture.take() {
            // The key's raw bytes follow its u64 length (read above).
            let len = u64::from_le_bytes(raw[..8].try_into().expect("8 bytes")) as usize;
            let raw_key = raw[8..8 + len].to_vec();
            if raw_key.starts_with(TOKENIZER_KEY_PREFIX) {
                tokenizer_entries.push((raw_key, raw));
            }
        }
        if metadata.contains_key(&key) {
            return Err(c.err(format_args!("metadata field {key} appears twice")));
        }
        metadata.insert(key, value);
    }
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(v) => {
            let a = match v {
                Value::U8(a) => Some(*a as u64),
                Value::U16(a) => Some(*a as u64),
                Value::U32(a) => Some(*a as u64),
                Value::U64(a) => Some(*a),
                Value::I8(a) => u64::try_from(*a).ok(),
                Value::I16(a) => u64::try_from(*a).ok(),
                Value::I32(a) => u64::try_from(*a).ok(),
                Value::I64(a) => u64::try_from(*a).ok(),
                _ => None,
            };
            match a {
                Some(a) if a.is_power_of_two() && a <= MAX_ALIGNMENT => a,
                Some(a) => {
                    return Err(c.err(format_args!(
                        "metadata field general.alignment is {a}; it must be a power of two from 1 to {MAX_ALIGNMENT}"
                    )))
                }
                None => {
                    return Err(c.err(format_args!(
                        "metadata field general.alignment is {v:?}; it must be an unsigned integer"
                    )))
                }
            }
        }
    };
    let mut infos: Vec<(String, Vec<u64>, GgmlDType, u64, u64)> =
        Vec::with_capacity(tensors as usize);
    let mut seen = HashMap::with_capacity(tensors as usize);
    for i in 0..tensors {
        let name = c.string(&format!("the name of tensor {i}"), MAX_TENSOR_NAME_BYTES)?;
        let bad = |c: &Cursor<_>, what: String| c.err(format_args!("tensor {name}: {what}"));
        let n_dims = c.u32(&name)?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(bad(
                &c,
                format!("{n_dims} dimensions; a tensor has 1 to {MAX_DIMS}"),
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(c.u64(&name)?);
        }
        let type_id = c.u32(&name)?;
        let dtype = ggml_type(type_id)
            .ok_or_else(|| bad(&c, format!("unknown or unsupported ggml type {type_id}")))?;
        let offset = c.u64(&name)?;
        let bytes = tensor_bytes(&dims, dtype).map_err(|e| bad(&c, e))?;
        if offset % alignment != 0 {
            return Err(bad(
                &c,
                format!("data offset {offset} is not a multiple of the alignment {alignment}"),
            ));
        }
        if seen.insert(name.clone(), i).is_some() {
            return Err(bad(&c, "appears twice".into()));
        }
        infos.push((name, dims, dtype, offset, bytes));
    }
    let data_start = c
        .pos
        .checked_next_multiple_of(alignment)
        .filter(|&s| s <= end)
        .ok_or_else(|| {
            c.err(format_args!(
                "the tensor data would start past the end of the file ({end} bytes)"
            ))
        })?;
    let data_len = end - data_start;
    // Each tensor inside the file, none overlapping another.
    let mut spans: Vec<(u64, u64, usize)> = infos
        .iter()
        .enumerate()
        .map(|(i, (_, _, _, offset, bytes))| (*offset, *bytes, i))
        .collect();
    spans.sort_unstable();
    let mut previous_end = 0u64;
    let mut previous: Option<usize> = None;
    for &(offset, bytes, i) in &spans {
        let name = &infos[i].0;
        let stop = offset.checked_add(bytes).filter(|&s| s <= data_len);
        let Some(stop) = stop else {
            return Err(c.err(format_args!(
                "tensor {name}: {bytes} bytes at data offset {offset} lie past the end of the file \
                 (the data section holds {data_len} bytes from byte {data_start})"
            )));
        };
        if offset < previous_end {
            let other = previous.map_or("", |p| infos[p].0.as_str());
            return Err(c.err(format_args!(
                "tensor {name}: its data at offset {offset} overlaps tensor {other}'s"
            )));
        }
        previous_end = stop;
        previous = Some(i);
    }
    let tensor_infos = infos
        .into_iter()
        .map(|(name, mut dims, dtype, offset, _)| {
            dims.reverse();
            // Checked above: the byte size, hence every dimension and
            // their product, fits in usize.
            let dims: Vec<usize> = dims.into_iter().map(|d| d as usize).collect();
            let info = TensorInfo {
                ggml_dtype: dtype,
                shape: candle_core::Shape::from(dims),
                offset,
            };
            (name, info)
        })
        .collect();
    let content = Content {
        magic,
        metadata,
        tensor_infos,
        tensor_data_offset: data_start,
    };
    Ok((
        content,
        want_digest.then(|| tokenizer_digest(tokenizer_entries)),
    ))
}

/// Where a panic was caught: `context` (which names the file) and the
/// panic's message.
fn panic_error(context: &str, payload: Box<dyn std::any::Any + Send>) -> Error {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    Error::Gguf(format!(
        "{context}: internal error ({message}); the file is malformed in a way provmark does \
         not check for, please report it"
    ))
}

thread_local! {
    static GUARDED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether a [`guard`]ed call is running on this thread: a panic here now
/// is caught and reported as an error, so a panic hook may stay quiet (the
/// `provmark` binary's does, unless `RUST_BACKTRACE` is set). Panics on
/// other threads (a server's other requests, or a rayon worker of the
/// guarded call itself) are not covered and still reach the hook.
pub fn guarded() -> bool {
    GUARDED.with(|g| g.get() > 0)
}

/// Runs `f`, turning a panic inside it into [`Error::Gguf`] ("`context`:
/// internal error (…)", where `context` names the file, e.g.
/// "m.gguf: the model could not be read"): the last line of
/// defence when reading an untrusted file, behind the checks of
/// [`read_content`] and the loaders. Aborts (such as a failed allocation)
/// are not panics and cannot be caught; the checks exist to prevent them.
pub fn guard<T>(context: &str, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    struct Count;
    impl Drop for Count {
        fn drop(&mut self) {
            GUARDED.with(|g| g.set(g.get() - 1));
        }
    }
    GUARDED.with(|g| g.set(g.get() + 1));
    let _count = Count;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(panic_error(context, payload)))
}

/// Opens a GGUF file that must be a regular file: a device such as
/// /dev/zero or a pipe would be read without end.
///
/// Errors: [`Error::Gguf`] naming the file.
pub fn open_regular(path: &std::path::Path) -> Result<std::fs::File, Error> {
    provmark_watermark::open_regular(path)
        .map_err(|e| Error::Gguf(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_naming_the_file() {
        let r: Result<(), Error> = guard("m.gguf: the model could not be read", || {
            let v: Vec<u8> = Vec::new();
            let i = v.len() + 3;
            Err(Error::Runtime(format!("{}", v[i])))
        });
        let e = r.unwrap_err().to_string();
        assert!(
            e.starts_with(
                "m.gguf: the model could not be read: internal error (index out of bounds"
            ),
            "{e}"
        );
        assert!(!guarded());
    }

    #[test]
    fn tensor_sizes_are_checked() {
        assert_eq!(tensor_bytes(&[32, 4], GgmlDType::F32), Ok(512));
        assert_eq!(tensor_bytes(&[64, 2], GgmlDType::Q8_0), Ok(4 * 34));
        assert!(tensor_bytes(&[32, 1 << 59], GgmlDType::F32)
            .unwrap_err()
            .contains("overflow"));
        assert!(tensor_bytes(&[1 << 62], GgmlDType::F32)
            .unwrap_err()
            .contains("overflow"));
        assert!(tensor_bytes(&[33, 2], GgmlDType::Q8_0)
            .unwrap_err()
            .contains("whole number"));
        assert!(tensor_bytes(&[4, 0], GgmlDType::F32)
            .unwrap_err()
            .contains("dimension 1 is 0"));
    }
}
