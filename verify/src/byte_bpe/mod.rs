//! Our own encoder for the byte-level BPE tokenizers provmark supports: the
//! detection and audit hot path, several times faster than the reference
//! (`tokenizers`) and with the same ids and byte offsets.
//!
//! [`ByteBpe::recognise`] accepts a loaded `tokenizers::Tokenizer` only
//! when every part of it is one this module reproduces exactly; anything
//! else is refused (with the reason) and the caller keeps encoding with
//! the reference:
//!
//! - no normalizer, truncation or padding; special tokens matched in text
//!   (`encode_special_tokens` off);
//! - a byte-level pre-tokenizer of one of the shapes in [`pretok`]: GPT-2's
//!   (`ByteLevel` with its regex, with or without a prefix space), smollm
//!   (`Digits` with single digits, then that `ByteLevel` without a prefix
//!   space) or qwen2 (llama.cpp's `Split` regex, then `ByteLevel` without
//!   its regex or a prefix space), exactly as `provmark` builds them from a
//!   GGUF's `tokenizer.ggml.pre` or a `tokenizer.json` holds them;
//! - a BPE model without dropout, subword prefix or word suffix whose
//!   vocabulary has a token for every byte, or drops the bytes it has none
//!   for (no unknown token, no byte fallback: [`merge`]);
//! - added tokens without `single_word`, `lstrip` or `rstrip`, with
//!   distinct non-empty contents; they are found as the reference finds
//!   them: leftmost-longest, first those not `normalized`, then the
//!   `normalized` ones in the text between;
//! - no post-processor, or `ByteLevel`'s (which with `trim_offsets` changes
//!   offsets: then [`ByteBpe::encode_with_offsets`] declines).
//!
//! Offsets follow the reference's alignment rule: a token's range runs from
//! the start of the character holding its first byte to the end of the
//! character holding its last (so tokens splitting one character share
//! its range), and a prefix space belongs to the first character of its
//! piece.

mod classes;
mod merge;
mod pretok;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::Deserialize;
use serde_json::{json, Value};
use tokenizers::models::ModelWrapper;
use tokenizers::Tokenizer;

use crate::tokenize::ByteRange;
use merge::Merges;
pub use pretok::Kind;

/// Why a tokenizer is not handled here (the reference encodes it instead).
pub type Unsupported = String;

/// Added tokens of one kind, found leftmost-longest.
struct Added {
    finder: AhoCorasick,
    /// The id of each pattern.
    ids: Vec<u32>,
}

/// A piece of text: an added token, or text between added tokens.
enum Piece {
    Token(u32),
    Text,
}

/// A byte-level BPE tokenizer of a supported shape (see the module docs).
pub struct ByteBpe {
    kind: Kind,
    /// `ByteLevel`'s `add_prefix_space` (GPT-2 shape only).
    prefix_space: bool,
    merges: Merges,
    /// Added tokens matched in the raw text (`normalized: false`).
    raw: Option<Added>,
    /// Added tokens matched in the text between those (`normalized: true`).
    normalized: Option<Added>,
    /// Whether the reference's offsets are the untrimmed ones.
    offsets: bool,
}

/// The BPE model's fields that decide encoding, as `tokenizers` serialises
/// them (its merges in rank order).
#[derive(Deserialize)]
struct BpeFields {
    dropout: Option<f32>,
    unk_token: Option<String>,
    byte_fallback: bool,
    continuing_subword_prefix: Option<String>,
    end_of_word_suffix: Option<String>,
    ignore_merges: bool,
    merges: Vec<(String, String)>,
}

/// The serialised `ByteLevel` pre-tokenizer.
fn byte_level(prefix: bool, trim: &Value, regex: bool) -> Value {
    json!({"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": trim, "use_regex": regex})
}

/// The pre-tokenizer shape of a serialised pre-tokenizer, and its prefix
/// space.
fn shape(pre: &Value) -> Result<(Kind, bool), Unsupported> {
    let trim = |v: &Value| v.get("trim_offsets").cloned().unwrap_or(Value::Null);
    if pre.get("type") == Some(&json!("ByteLevel")) {
        for prefix in [false, true] {
            if *pre == byte_level(prefix, &trim(pre), true) {
                return Ok((Kind::Gpt2, prefix));
            }
        }
    }
    if let Some([first, second]) = pre
        .get("pretokenizers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        if pre.get("type") == Some(&json!("Sequence"))
            && pre.as_object().map(|o| o.len()) == Some(2)
        {
            let digits = json!({"type": "Digits", "individual_digits": true});
            if *first == digits && *second == byte_level(false, &trim(second), true) {
                return Ok((Kind::Smollm, false));
            }
            let split = json!({
                "type": "Split",
                "pattern": {"Regex": pretok::QWEN2_REGEX},
                "behavior": "Isolated",
                "invert": false,
            });
            if *first == split && *second == byte_level(false, &trim(second), false) {
                return Ok((Kind::Qwen2, false));
            }
        }
    }
    Err(format!(
        "pre-tokenizer {pre} is not one of the supported shapes"
    ))
}

fn finder(tokens: Vec<(String, u32)>) -> Result<Option<Added>, Unsupported> {
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut seen = std::collections::HashSet::new();
    for (content, _) in &tokens {
        if content.is_empty() || !seen.insert(content.as_str()) {
            return Err(format!("added token {content:?} is empty or repeated"));
        }
    }
    let finder = AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostLongest)
        .build(tokens.iter().map(|(c, _)| c.as_str()))
        .map_err(|e| format!("added tokens: {e}"))?;
    Ok(Some(Added {
        finder,
        ids: tokens.into_iter().map(|(_, id)| id).collect(),
    }))
}

/// Calls `f` with each piece of `text[start..end]`: the added tokens of
/// `added` found leftmost-longest, and the non-empty text between them.
fn pieces(
    added: Option<&Added>,
    text: &str,
    (start, end): (usize, usize),
    f: &mut impl FnMut(Piece, usize, usize),
) {
    let Some(added) = added else {
        f(Piece::Text, start, end);
        return;
    };
    let mut at = start;
    for m in added.finder.find_iter(&text[start..end]) {
        let (a, b) = (start + m.start(), start + m.end());
        if at < a {
            f(Piece::Text, at, a);
        }
        f(Piece::Token(added.ids[m.pattern().as_usize()]), a, b);
        at = b;
    }
    if at < end {
        f(Piece::Text, at, end);
    }
}

/// The start of the character holding byte `i` of `s`.
fn char_start(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The end of the character holding byte `i` of `s`.
fn char_end(s: &str, i: usize) -> usize {
    let mut j = i + 1;
    while !s.is_char_boundary(j) {
        j += 1;
    }
    j
}

/// Where the ids (and, when asked, their offsets) go.
struct Out<'a> {
    ids: &'a mut Vec<u32>,
    offsets: Option<&'a mut Vec<ByteRange>>,
}

impl ByteBpe {
    /// This module's encoder for `tokenizer`, or why it is not handled
    /// here (see the module docs).
    pub fn recognise(tokenizer: &Tokenizer) -> Result<ByteBpe, Unsupported> {
        if tokenizer.get_normalizer().is_some() {
            return Err("has a normalizer".into());
        }
        if tokenizer.get_truncation().is_some() || tokenizer.get_padding().is_some() {
            return Err("truncates or pads".into());
        }
        if tokenizer.get_encode_special_tokens() {
            return Err("leaves special tokens unmatched".into());
        }
        let offsets = match tokenizer.get_post_processor() {
            None => true,
            Some(p) => {
                let p = serde_json::to_value(p).map_err(|e| e.to_string())?;
                let trim = p.get("trim_offsets").cloned().unwrap_or(Value::Null);
                let prefix = p.get("add_prefix_space").cloned().unwrap_or(Value::Null);
                let regex = p.get("use_regex").cloned().unwrap_or(Value::Null);
                if p != json!({"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": trim, "use_regex": regex})
                {
                    return Err(format!("post-processor {p}"));
                }
                trim == json!(false)
            }
        };
        let pre = tokenizer
            .get_pre_tokenizer()
            .ok_or("has no pre-tokenizer")?;
        let (kind, prefix_space) = shape(&serde_json::to_value(pre).map_err(|e| e.to_string())?)?;
        let ModelWrapper::BPE(bpe) = tokenizer.get_model() else {
            return Err("the model is not BPE".into());
        };
        let fields: BpeFields = serde_json::to_vec(bpe)
            .and_then(|v| serde_json::from_slice(&v))
            .map_err(|e| format!("BPE model: {e}"))?;
        if fields.dropout.is_some()
            || fields.continuing_subword_prefix.is_some()
            || fields.end_of_word_suffix.is_some()
        {
            return Err("BPE with dropout, a subword prefix or a word suffix".into());
        }
        let vocab = tokenizers::Model::get_vocab(bpe);
        let bytes_dropped = fields.unk_token.is_none() && !fields.byte_fallback;
        let merges = Merges::new(&vocab, &fields.merges, fields.ignore_merges, bytes_dropped)?;
        let (mut raw, mut normalized) = (Vec::new(), Vec::new());
        for (id, t) in tokenizer.get_added_tokens_decoder() {
            if t.single_word || t.lstrip || t.rstrip {
                return Err(format!(
                    "added token {:?} strips or matches words",
                    t.content
                ));
            }
            let set = if t.normalized {
                &mut normalized
            } else {
                &mut raw
            };
            set.push((t.content, id));
        }
        raw.sort_by_key(|t| t.1);
        normalized.sort_by_key(|t| t.1);
        classes::init();
        Ok(ByteBpe {
            kind,
            prefix_space,
            merges,
            raw: finder(raw)?,
            normalized: finder(normalized)?,
            offsets,
        })
    }

    /// The pre-tokenizer (`gpt2`, `smollm` or `qwen2`).
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The ids of `text` (no special tokens added; special-token text in
    /// it is that token), as the reference's `encode_fast(text, false)`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_into(
            text,
            &mut Out {
                ids: &mut ids,
                offsets: None,
            },
        );
        ids
    }

    /// The ids of `text` and each token's byte range, as the reference's
    /// `encode(text, false)`; `None` when the reference trims offsets or
    /// `text` holds a byte the vocabulary has no token for (the reference
    /// drops it and shifts the offsets after it).
    pub fn encode_with_offsets(&self, text: &str) -> Option<(Vec<u32>, Vec<ByteRange>)> {
        if !self.offsets || self.merges.drops_bytes(text) {
            return None;
        }
        let mut ids = Vec::with_capacity(text.len() / 3 + 1);
        let mut offsets = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_into(
            text,
            &mut Out {
                ids: &mut ids,
                offsets: Some(&mut offsets),
            },
        );
        Some((ids, offsets))
    }

    fn encode_into(&self, text: &str, out: &mut Out) {
        self.merges.with_cache(|session| {
            pieces(
                self.raw.as_ref(),
                text,
                (0, text.len()),
                &mut |p, a, b| match p {
                    Piece::Token(id) => push_token(out, id, a, b),
                    Piece::Text => pieces(
                        self.normalized.as_ref(),
                        text,
                        (a, b),
                        &mut |p, a, b| match p {
                            Piece::Token(id) => push_token(out, id, a, b),
                            Piece::Text => self.plain(session, text, (a, b), out),
                        },
                    ),
                },
            )
        })
    }

    /// Encodes `text[a..b]`, text without added tokens.
    fn plain(
        &self,
        session: &mut merge::Session,
        text: &str,
        (a, b): (usize, usize),
        out: &mut Out,
    ) {
        let piece = &text[a..b];
        if self.prefix_space && !piece.starts_with(' ') {
            // The reference prepends the space to the piece; it aligns with
            // the piece's first character.
            let mut buf = String::with_capacity(piece.len() + 1);
            buf.push(' ');
            buf.push_str(piece);
            let first = char_end(text, a);
            pretok::split(self.kind, &buf, 0, &mut |x, y| {
                let before = out.ids.len();
                session.word(&buf.as_bytes()[x..y], out.ids);
                if let Some(offsets) = out.offsets.as_deref_mut() {
                    let mut p = x;
                    for &id in &out.ids[before..] {
                        let q = p + self.merges.token_len(id);
                        let start = if p == 0 {
                            a
                        } else {
                            char_start(text, a + p - 1)
                        };
                        let end = if q == 1 {
                            first
                        } else {
                            char_end(text, a + q - 2)
                        };
                        offsets.push((start, end));
                        p = q;
                    }
                }
            });
            return;
        }
        pretok::split(self.kind, piece, a, &mut |x, y| {
            let before = out.ids.len();
            session.word(&text.as_bytes()[x..y], out.ids);
            if let Some(offsets) = out.offsets.as_deref_mut() {
                let mut p = x;
                for &id in &out.ids[before..] {
                    let q = p + self.merges.token_len(id);
                    offsets.push((char_start(text, p), char_end(text, q - 1)));
                    p = q;
                }
            }
        });
    }
}

fn push_token(out: &mut Out, id: u32, a: usize, b: usize) {
    out.ids.push(id);
    if let Some(offsets) = out.offsets.as_deref_mut() {
        offsets.push((a, b));
    }
}
