//! Text → token ids with a Hugging Face `tokenizer.json`, pinned by digest.

use std::path::Path;

use provmark_watermark::{Profile, TokenizerDigest};

use crate::byte_bpe::ByteBpe;
use crate::Error;

/// A token's byte range `[start, end)` in its text.
pub type ByteRange = (usize, usize);

/// The largest tokenizer.json read: 64 MiB (the largest published ones
/// are a few tens of MB).
pub const MAX_TOKENIZER_BYTES: u64 = 64 << 20;

/// A tokenizer and the digest of the file it came from.
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    /// Our own encoder, when the tokenizer is of a shape it reproduces
    /// exactly ([`crate::byte_bpe`]); else `inner` encodes.
    fast: Option<ByteBpe>,
    digest: TokenizerDigest,
    /// A GGUF tokenizer's legacy digest (the SHA-256 of its exported
    /// JSON, spec §3), also accepted.
    legacy: Option<TokenizerDigest>,
}

impl TextTokenizer {
    /// Loads a `tokenizer.json` file.
    pub fn load(path: &Path) -> Result<TextTokenizer, Error> {
        use std::io::Read as _;
        let origin = path.display().to_string();
        let read = |io| Error::TokenizerRead {
            origin: origin.clone(),
            io,
        };
        let file = provmark_watermark::open_regular(path).map_err(read)?;
        let mut bytes = Vec::new();
        file.take(MAX_TOKENIZER_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > MAX_TOKENIZER_BYTES {
            return Err(read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("larger than the {MAX_TOKENIZER_BYTES}-byte limit of a tokenizer.json"),
            )));
        }
        TextTokenizer::from_bytes(&bytes, &origin)
    }

    /// Parses `tokenizer.json` bytes; `origin` names them in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<TextTokenizer, Error> {
        let inner =
            tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| Error::TokenizerParse {
                origin: origin.to_string(),
                reason: e.to_string(),
            })?;
        Ok(TextTokenizer {
            fast: ByteBpe::recognise(&inner).ok(),
            inner,
            digest: TokenizerDigest::of_bytes(bytes),
            legacy: None,
        })
    }

    /// A GGUF model's tokenizer from its exported `tokenizer.json` bytes
    /// `json`, identified by the GGUF metadata digest `digest` (spec §3);
    /// the SHA-256 of `json` is kept as its legacy digest, which profiles
    /// made before revision 7 record. `origin` names it in errors.
    pub fn from_gguf_json(
        json: &[u8],
        origin: &str,
        digest: TokenizerDigest,
    ) -> Result<TextTokenizer, Error> {
        let mut t = TextTokenizer::from_bytes(json, origin)?;
        t.legacy = Some(std::mem::replace(&mut t.digest, digest));
        Ok(t)
    }

    /// Digest of the tokenizer (what profiles made now record): the
    /// SHA-256 of a `tokenizer.json` file, or a GGUF's metadata digest.
    pub fn digest(&self) -> &TokenizerDigest {
        &self.digest
    }

    /// Whether a profile recording `digest` names this tokenizer: its
    /// [digest](Self::digest), or a GGUF tokenizer's legacy digest.
    pub fn accepts(&self, digest: &TokenizerDigest) -> bool {
        self.digest == *digest || self.legacy.as_ref() == Some(digest)
    }

    /// The digest a report records for this tokenizer used with
    /// `profiles`: the legacy digest when one of them records it (so a
    /// report made before revision 7 recomputes to the same bytes), else
    /// [`digest`](Self::digest).
    pub fn digest_for<'a>(
        &'a self,
        profiles: impl IntoIterator<Item = &'a Profile>,
    ) -> &'a TokenizerDigest {
        match &self.legacy {
            Some(l) if profiles.into_iter().any(|p| p.tokenizer() == l) => l,
            _ => &self.digest,
        }
    }

    /// Fails with [`Error::TokenizerMismatch`] unless this is the tokenizer
    /// the profile was made for; `force` turns the failure into acceptance
    /// (the caller should warn).
    pub fn check_profile(&self, profile: &Profile, force: bool) -> Result<(), Error> {
        if force || self.accepts(profile.tokenizer()) {
            return Ok(());
        }
        Err(Error::TokenizerMismatch {
            expected: profile.tokenizer().clone(),
            got: self.digest.clone(),
        })
    }

    /// Token ids of `text`, without special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, Error> {
        if let Some(fast) = &self.fast {
            return Ok(fast.encode(text));
        }
        self.inner
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::Tokenization(e.to_string()))
    }

    /// Token ids of `text` (without special tokens) with each token's byte
    /// range `[start, end)` in `text`, for aligning two tokenizations of
    /// the same text (spec §8.6).
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<u32>, Vec<ByteRange>), Error> {
        if let Some(encoded) = self.fast.as_ref().and_then(|f| f.encode_with_offsets(text)) {
            return Ok(encoded);
        }
        self.inner
            .encode(text, false)
            .map(|e| (e.get_ids().to_vec(), e.get_offsets().to_vec()))
            .map_err(|e| Error::Tokenization(e.to_string()))
    }

    /// The pre-tokenizer's name (`gpt2`, `smollm`, `qwen2`) when provmark's
    /// own byte-level BPE encoder ([`crate::byte_bpe`]) encodes for this
    /// tokenizer; `None` when the reference (`tokenizers`) does. The ids
    /// are the same either way.
    pub fn fast_path(&self) -> Option<&'static str> {
        self.fast.as_ref().map(|f| f.kind().name())
    }

    /// The underlying `tokenizers::Tokenizer`.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}
