//! A `tokenizers::Tokenizer` built from a GGUF file's own metadata
//! (`tokenizer.ggml.*`), so the tokenizer always matches the weights.
//!
//! candle's built-in GGUF tokenizer adds a prefix space and gives wrong ids
//! for SmolLM2 ("Hello" → 38699 instead of 19556); this one follows
//! llama.cpp: byte-level BPE from `tokens`/`merges` (each merge split on its
//! first space), the pre-tokenizer named by `tokenizer.ggml.pre`, a
//! byte-level decoder, and every control-type token as a special token.
//!
//! Control tokens (`<|im_start|>`, `<|im_end|>`, BOS, ...) come only from
//! text marked as the chat template's own ([`Span::Control`]); any other
//! text ([`Span::Plain`], [`GgufTokenizer::encode_text`]) is tokenized as the
//! characters it is, control-token text included, as llama.cpp does with
//! `parse_special = false`. The `tokenizers` crate matches added tokens
//! anywhere in its input, so plain text goes through a second copy of the
//! tokenizer that leaves special tokens unmatched
//! (`set_encode_special_tokens`); user-defined (non-control) added tokens
//! are matched in both, as llama.cpp does.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek};
use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use provmark_watermark::TokenizerDigest;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::SplitDelimiterBehavior;
use tokenizers::{AddedToken, Tokenizer};

use crate::Error;

/// llama.cpp's pre-tokenizer regex for "qwen2".
const QWEN2_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// A tokenizer read from a GGUF, with the facts a runtime needs.
pub struct GgufTokenizer {
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// `tokenizer.ggml.pre`: the pre-tokenizer rule used.
    pub pre: String,
    /// Beginning-of-sequence token, if the model names one.
    pub bos: Option<u32>,
    /// End-of-sequence token, if the model names one.
    pub eos: Option<u32>,
    /// Whether the model expects BOS to be prepended.
    pub add_bos: bool,
    /// The chat template, if the GGUF carries one.
    pub chat_template: Option<String>,
    /// `tokenizer` with special tokens left unmatched: plain text.
    plain: Tokenizer,
    /// The control tokens' text and ids, longest text first.
    control: Vec<(String, u32)>,
    /// The control tokens' ids.
    control_ids: HashSet<u32>,
    /// The digest of the file's `tokenizer.ggml.*` metadata (spec §3).
    metadata_digest: TokenizerDigest,
}

/// A piece of text to tokenize: see [`GgufTokenizer::encode_spans`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span<'a> {
    /// Text written by the chat template itself: control-token text here
    /// is that control token.
    Control(&'a str),
    /// Anything else (message contents, raw prompts): text, never a
    /// control token.
    Plain(&'a str),
}

impl GgufTokenizer {
    /// Reads the tokenizer of a GGUF file (metadata only; tensors are not
    /// loaded). Errors name the file and the field; see
    /// [`GgufTokenizer::from_reader`].
    pub fn from_file(path: &Path) -> Result<GgufTokenizer, Error> {
        let origin = path.display().to_string();
        let file = crate::gguf::open_regular(path)?;
        GgufTokenizer::from_reader(file, &origin)
    }

    /// Reads the tokenizer of a GGUF held by any reader; `origin` names it
    /// in errors. The container is checked by
    /// [`crate::gguf::read_content`] first (so a vocabulary is at most
    /// [`crate::gguf::MAX_ARRAY_LEN`] tokens), and a panic while building
    /// the tokenizer is returned as [`Error::Gguf`] naming `origin`
    /// ([`crate::gguf::guard`]).
    pub fn from_reader<R: Read + Seek>(
        mut reader: R,
        origin: &str,
    ) -> Result<GgufTokenizer, Error> {
        crate::gguf::guard(
            &format!("{origin}: the tokenizer could not be read"),
            || {
                let (content, digest) =
                    crate::gguf::read_content_with_tokenizer_digest(&mut reader, origin)?;
                GgufTokenizer::from_metadata(&content.metadata, digest, origin)
            },
        )
    }

    /// Builds the tokenizer from GGUF metadata whose tokenizer digest
    /// (spec §3, [`crate::gguf::read_content_with_tokenizer_digest`]) is
    /// `metadata_digest`; `origin` names it in errors.
    pub fn from_metadata(
        md: &HashMap<String, Value>,
        metadata_digest: TokenizerDigest,
        origin: &str,
    ) -> Result<GgufTokenizer, Error> {
        let field = |key: &str| {
            md.get(key)
                .ok_or_else(|| Error::Gguf(format!("{origin}: metadata field {key} is missing")))
        };
        let bad = |key: &str, e: candle_core::Error| {
            Error::Gguf(format!("{origin}: metadata field {key}: {e}"))
        };
        let model = field("tokenizer.ggml.model")?
            .to_string()
            .map_err(|e| bad("tokenizer.ggml.model", e))?;
        if model != "gpt2" {
            return Err(Error::Gguf(format!(
                "{origin}: tokenizer.ggml.model is {model:?}; only byte-level BPE (\"gpt2\") is supported"
            )));
        }
        let pre = match md.get("tokenizer.ggml.pre") {
            Some(v) => v
                .to_string()
                .map_err(|e| bad("tokenizer.ggml.pre", e))?
                .clone(),
            None => "default".to_string(),
        };
        let pre_tokenizer: PreTokenizerWrapper = match pre.as_str() {
            // llama.cpp's "smollm" rule: every digit alone, then GPT-2's
            // byte-level split without a prefix space.
            "smollm" => Sequence::new(vec![
                Digits::new(true).into(),
                ByteLevel::new(false, true, true).into(),
            ])
            .into(),
            "gpt2" | "default" => ByteLevel::new(false, true, true).into(),
            // Qwen2/Qwen3: llama.cpp's "qwen2" rule (single digits; letters
            // may carry one leading non-letter), then bytes without GPT-2's
            // own split.
            "qwen2" => Sequence::new(vec![
                Split::new(
                    SplitPattern::Regex(QWEN2_SPLIT.into()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .map_err(|e| Error::Gguf(format!("{origin}: qwen2 pre-tokenizer: {e}")))?
                .into(),
                ByteLevel::new(false, true, false).into(),
            ])
            .into(),
            other => {
                return Err(Error::Gguf(format!(
                    "{origin}: pre-tokenizer {other:?} (tokenizer.ggml.pre) is not supported yet \
                     (supported: smollm, gpt2, qwen2)"
                )))
            }
        };
        let tokens = field("tokenizer.ggml.tokens")?
            .to_vec()
            .map_err(|e| bad("tokenizer.ggml.tokens", e))?;
        let mut vocab = Vocab::default();
        let mut names = Vec::with_capacity(tokens.len());
        for (id, t) in tokens.iter().enumerate() {
            let s = t.to_string().map_err(|e| bad("tokenizer.ggml.tokens", e))?;
            vocab.insert(s.clone(), id as u32);
            names.push(s.clone());
        }
        let merges = field("tokenizer.ggml.merges")?
            .to_vec()
            .map_err(|e| bad("tokenizer.ggml.merges", e))?
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let s = m.to_string().map_err(|e| bad("tokenizer.ggml.merges", e))?;
                s.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| Error::Gguf(format!("{origin}: merge {i} ({s:?}) has no space")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| Error::Gguf(format!("{origin}: BPE from tokens and merges: {e}")))?;
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer
            .with_pre_tokenizer(Some(pre_tokenizer))
            .with_decoder(Some(ByteLevelDecoder::default()));
        if let Some(types) = md.get("tokenizer.ggml.token_type") {
            let types = types
                .to_vec()
                .map_err(|e| bad("tokenizer.ggml.token_type", e))?;
            let mut special = Vec::new();
            let mut added = Vec::new();
            for (id, t) in types.iter().enumerate() {
                let kind = t
                    .to_i32()
                    .map_err(|e| bad("tokenizer.ggml.token_type", e))?;
                let Some(name) = names.get(id) else { break };
                match kind {
                    TOKEN_TYPE_CONTROL => special.push(AddedToken::from(name.clone(), true)),
                    TOKEN_TYPE_USER_DEFINED => added.push(AddedToken::from(name.clone(), false)),
                    _ => {}
                }
            }
            let added_err =
                |e: tokenizers::Error| Error::Gguf(format!("{origin}: added tokens: {e}"));
            tokenizer.add_special_tokens(special).map_err(added_err)?;
            tokenizer.add_tokens(added).map_err(added_err)?;
        }
        let id = |key: &str| -> Result<Option<u32>, Error> {
            md.get(key)
                .map(|v| v.to_u32().map_err(|e| bad(key, e)))
                .transpose()
        };
        let mut plain = tokenizer.clone();
        plain.set_encode_special_tokens(true);
        let mut control: Vec<(String, u32)> = tokenizer
            .get_added_vocabulary()
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special && !t.content.is_empty())
            .map(|(id, t)| (t.content.clone(), *id))
            .collect();
        control.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let control_ids = control.iter().map(|(_, id)| *id).collect();
        Ok(GgufTokenizer {
            tokenizer,
            plain,
            control,
            control_ids,
            metadata_digest,
            pre,
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos: id("tokenizer.ggml.eos_token_id")?,
            add_bos: match md.get("tokenizer.ggml.add_bos_token") {
                Some(v) => v
                    .to_bool()
                    .map_err(|e| bad("tokenizer.ggml.add_bos_token", e))?,
                None => false,
            },
            chat_template: md
                .get("tokenizer.chat_template")
                .and_then(|v| v.to_string().ok().cloned()),
        })
    }

    /// Whether `id` is a control token.
    pub fn is_control(&self, id: u32) -> bool {
        self.control_ids.contains(&id)
    }

    /// The first control token whose text occurs in `text` (leftmost, then
    /// longest), as `(byte offset, text, id)`.
    pub fn find_control<'s>(&'s self, text: &str) -> Option<(usize, &'s str, u32)> {
        let mut best: Option<(usize, &str, u32)> = None;
        for (t, id) in &self.control {
            if let Some(at) = text.find(t.as_str()) {
                // `control` is longest first: a later token wins only by
                // starting earlier.
                if best.is_none_or(|(b, _, _)| at < b) {
                    best = Some((at, t.as_str(), *id));
                }
            }
        }
        best
    }

    /// Token ids of plain text: control-token text is tokenized as the
    /// characters it is. No BOS.
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>, Error> {
        self.encode_spans(&[Span::Plain(text)])
    }

    /// Token ids of text made of spans: control-token text in
    /// [`Span::Control`] spans gives control tokens, and everything between
    /// two control tokens is tokenized as one piece of text whichever spans
    /// it came from (so the ids are those of tokenizing the whole text when
    /// no control-token text lies in a plain span; no seams between spans).
    /// No BOS. The result never holds a control token that a control span
    /// did not write.
    pub fn encode_spans(&self, spans: &[Span]) -> Result<Vec<u32>, Error> {
        let mut ids = Vec::new();
        let mut text = String::new();
        for span in spans {
            match *span {
                Span::Plain(s) => text.push_str(s),
                Span::Control(mut s) => {
                    while let Some((at, t, id)) = self.find_control(s) {
                        text.push_str(&s[..at]);
                        self.encode_plain_into(&text, &mut ids)?;
                        text.clear();
                        ids.push(id);
                        s = &s[at + t.len()..];
                    }
                    text.push_str(s);
                }
            }
        }
        self.encode_plain_into(&text, &mut ids)?;
        Ok(ids)
    }

    /// Appends the ids of `text` (no control tokens) to `ids`.
    fn encode_plain_into(&self, text: &str, ids: &mut Vec<u32>) -> Result<(), Error> {
        if text.is_empty() {
            return Ok(());
        }
        let enc = self
            .plain
            .encode_fast(text, false)
            .map_err(|e| Error::Runtime(format!("tokenizing the prompt: {e}")))?;
        if let Some(id) = enc.get_ids().iter().find(|id| self.is_control(**id)) {
            // BPE merges reaching a control token: the vocabulary would let
            // text forge one, so refuse rather than pass it on.
            return Err(Error::Runtime(format!(
                "the tokenizer turned plain text into the control token {id}"
            )));
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(())
    }

    /// The tokenizer as `tokenizer.json` text (what `provmark tokenizer
    /// export` writes); its SHA-256 is the [legacy digest](Self::legacy_digest).
    pub fn to_json(&self) -> String {
        self.tokenizer
            .to_string(false)
            .expect("a built tokenizer always serialises")
    }

    /// The digest a profile records for this tokenizer (spec §3): SHA-256
    /// over the GGUF's own `tokenizer.ggml.*` metadata entries, which an
    /// independent party can recompute from the file.
    pub fn digest(&self) -> TokenizerDigest {
        self.metadata_digest.clone()
    }

    /// The digest profiles made before revision 7 of the spec record: the
    /// SHA-256 of [`to_json`](Self::to_json) (the same value as hashing an
    /// exported `tokenizer.json`). Only provmark can re-derive it; it is
    /// still accepted ([`accepts`](Self::accepts)).
    pub fn legacy_digest(&self) -> TokenizerDigest {
        TokenizerDigest::of_bytes(self.to_json().as_bytes())
    }

    /// Whether a profile recording `digest` was made for this tokenizer:
    /// `digest` is its [digest](Self::digest) or its
    /// [legacy digest](Self::legacy_digest) (spec §3).
    pub fn accepts(&self, digest: &TokenizerDigest) -> bool {
        *digest == self.metadata_digest || *digest == self.legacy_digest()
    }

    /// This tokenizer for detection: a [`TextTokenizer`] that carries both
    /// digests, so that it matches profiles of either form and reports
    /// record the form the profile names. `origin` names it in errors.
    ///
    /// Errors: [`Error::Runtime`] if the exported JSON does not parse back
    /// (it always does).
    pub fn text_tokenizer(&self, origin: &str) -> Result<provmark_verify::TextTokenizer, Error> {
        provmark_verify::TextTokenizer::from_gguf_json(
            self.to_json().as_bytes(),
            origin,
            self.digest(),
        )
        .map_err(|e| Error::Runtime(format!("{origin}: {e}")))
    }
}
