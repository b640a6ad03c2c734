//! Byte-level BPE merges with the reference's priority rule, and a word
//! cache per thread.
//!
//! A word (one pre-token, as bytes) starts as one symbol per byte (the
//! byte's character in GPT-2's byte-to-character alphabet); then, again
//! and again, the adjacent pair whose merge comes first in the merges list
//! is merged, the leftmost such pair on a tie, until no adjacent pair has a
//! merge. This is what `tokenizers`' `Word::merge_all` does without
//! dropout (a min-heap on (rank, position) that skips expired entries), and
//! it is done here the same way. With `ignore_merges`, a word that is
//! itself in the vocabulary is that one token.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};

use ahash::AHashMap;

/// Longest word kept in the cache, in bytes.
const MAX_CACHED_WORD: usize = 64;
/// A thread's cache for one tokenizer is emptied beyond this many words.
const MAX_CACHED_WORDS: usize = 1 << 18;
/// Tokenizers whose caches a thread keeps at once.
const CACHES_PER_THREAD: usize = 4;

/// GPT-2's byte-to-character alphabet: printable Latin-1 bytes stand for
/// themselves, the other 68 bytes for U+0100 onwards in byte order.
pub fn byte_char(b: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        return char::from(b);
    }
    let rank = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(0x100 + rank).expect("below U+0200")
}

/// The byte a character of the alphabet stands for.
fn char_byte(c: char, table: &AHashMap<char, u8>) -> Option<u8> {
    table.get(&c).copied()
}

/// Why a model cannot be handled here (the caller then uses the reference).
pub type Unsupported = String;

/// [`Merges`]' id for a byte without a token.
const NO_TOKEN: u32 = u32::MAX;

/// The merges of one byte-level BPE model.
pub struct Merges {
    /// The id of each single byte ([`NO_TOKEN`] when the vocabulary has
    /// none: the reference then drops the byte, see [`Merges::new`]).
    byte_ids: [u32; 256],
    /// Whether some byte has no token.
    missing: bool,
    /// `(left << 32 | right)` → (rank, merged id).
    pairs: AHashMap<u64, (u32, u32)>,
    /// With `ignore_merges`: every vocabulary token by its bytes.
    whole: Option<AHashMap<Box<[u8]>, u32>>,
    /// Bytes of each model token (0 for ids outside the model).
    token_len: Vec<u32>,
    /// Names this model's caches in each thread.
    uid: u64,
}

#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    prev: i32,
    next: i32,
    len: u32,
}

/// One thread's cache of words for one model: word bytes → a range of
/// `ids`.
struct WordCache {
    owner: u64,
    words: AHashMap<Box<[u8]>, (u32, u32)>,
    ids: Vec<u32>,
}

/// A thread's caches and scratch space.
#[derive(Default)]
pub struct Local {
    caches: Vec<WordCache>,
    symbols: Vec<Symbol>,
    heap: BinaryHeap<Reverse<(u32, u32, u32)>>,
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

impl Merges {
    /// Builds the merges from a vocabulary (token → id) and the merges
    /// list in rank order (the left and right tokens of each).
    ///
    /// A byte without a token (SmolLM2's vocabulary has none for some
    /// control bytes) is dropped from its word before merging, as the
    /// reference does when the model has no unknown token and no byte
    /// fallback (`bytes_dropped`); with either of those, such a vocabulary
    /// is refused. Also refused: a merged token not in the vocabulary.
    pub fn new(
        vocab: &std::collections::HashMap<String, u32>,
        merges: &[(String, String)],
        ignore_merges: bool,
        bytes_dropped: bool,
    ) -> Result<Merges, Unsupported> {
        let mut byte_ids = [NO_TOKEN; 256];
        let mut missing = false;
        let mut alphabet = AHashMap::new();
        for b in 0..=255u8 {
            let c = byte_char(b);
            alphabet.insert(c, b);
            match vocab.get(c.to_string().as_str()) {
                Some(&id) => byte_ids[b as usize] = id,
                None if bytes_dropped => missing = true,
                None => return Err(format!("byte {b:#04x} has no token")),
            }
        }
        let max_id = vocab.values().copied().max().unwrap_or(0) as usize;
        let mut token_len = vec![0u32; max_id + 1];
        let mut whole = ignore_merges.then(AHashMap::new);
        for (token, &id) in vocab {
            let bytes: Option<Vec<u8>> = token.chars().map(|c| char_byte(c, &alphabet)).collect();
            if let Some(bytes) = bytes {
                token_len[id as usize] = bytes.len() as u32;
                if let Some(w) = whole.as_mut() {
                    w.insert(bytes.into_boxed_slice(), id);
                }
            }
        }
        let mut pairs = AHashMap::with_capacity(merges.len());
        let mut joined = String::new();
        for (rank, (a, b)) in merges.iter().enumerate() {
            let id = |t: &str| {
                vocab
                    .get(t)
                    .copied()
                    .ok_or_else(|| format!("merge token {t:?} is not in the vocabulary"))
            };
            joined.clear();
            joined.push_str(a);
            joined.push_str(b);
            let key = (u64::from(id(a)?) << 32) | u64::from(id(b)?);
            // A pair listed twice keeps its last rank, as the reference's
            // map does.
            pairs.insert(key, (rank as u32, id(&joined)?));
        }
        Ok(Merges {
            byte_ids,
            missing,
            pairs,
            whole,
            token_len,
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Whether `text` holds a byte without a token (which the reference
    /// drops, shifting the offsets after it by its own rule: callers take
    /// such a text's offsets from the reference).
    pub fn drops_bytes(&self, text: &str) -> bool {
        self.missing && text.bytes().any(|b| self.byte_ids[b as usize] == NO_TOKEN)
    }

    /// The number of bytes model token `id` stands for (0 if it is not a
    /// model token made of byte characters).
    #[inline]
    pub fn token_len(&self, id: u32) -> usize {
        self.token_len.get(id as usize).map_or(0, |&n| n as usize)
    }

    #[inline]
    fn pair(&self, a: u32, b: u32) -> Option<(u32, u32)> {
        self.pairs
            .get(&((u64::from(a) << 32) | u64::from(b)))
            .copied()
    }

    /// Runs `f` with this thread's cache for this model.
    pub fn with_cache<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        LOCAL.with(|cell| match cell.try_borrow_mut() {
            Ok(mut local) => {
                let local = &mut *local;
                let at = match local.caches.iter().position(|c| c.owner == self.uid) {
                    Some(at) => at,
                    None => {
                        if local.caches.len() >= CACHES_PER_THREAD {
                            local.caches.remove(0);
                        }
                        local.caches.push(WordCache {
                            owner: self.uid,
                            words: AHashMap::new(),
                            ids: Vec::new(),
                        });
                        local.caches.len() - 1
                    }
                };
                f(&mut Session {
                    merges: self,
                    cache: Some(&mut local.caches[at]),
                    symbols: &mut local.symbols,
                    heap: &mut local.heap,
                })
            }
            // Re-entered (never in practice): work without a cache.
            Err(_) => f(&mut Session {
                merges: self,
                cache: None,
                symbols: &mut Vec::new(),
                heap: &mut BinaryHeap::new(),
            }),
        })
    }
}

/// Encoding words with one model on one thread.
pub struct Session<'a> {
    merges: &'a Merges,
    cache: Option<&'a mut WordCache>,
    symbols: &'a mut Vec<Symbol>,
    heap: &'a mut BinaryHeap<Reverse<(u32, u32, u32)>>,
}

impl Session<'_> {
    /// Appends the ids of `word` (non-empty) to `out`.
    #[inline]
    pub fn word(&mut self, word: &[u8], out: &mut Vec<u32>) {
        let m = self.merges;
        if let Some(whole) = &m.whole {
            if let Some(&id) = whole.get(word) {
                out.push(id);
                return;
            }
        }
        if word.len() == 1 {
            let id = m.byte_ids[word[0] as usize];
            if id != NO_TOKEN {
                out.push(id);
            }
            return;
        }
        if word.len() > MAX_CACHED_WORD {
            self.merge(word, out);
            return;
        }
        if let Some(cache) = self.cache.as_deref() {
            if let Some(&(start, len)) = cache.words.get(word) {
                out.extend_from_slice(&cache.ids[start as usize..(start + len) as usize]);
                return;
            }
        }
        let before = out.len();
        self.merge(word, out);
        if let Some(cache) = self.cache.as_deref_mut() {
            if cache.words.len() >= MAX_CACHED_WORDS {
                cache.words.clear();
                cache.ids.clear();
            }
            let start = cache.ids.len() as u32;
            cache.ids.extend_from_slice(&out[before..]);
            cache
                .words
                .insert(word.into(), (start, (out.len() - before) as u32));
        }
    }

    /// The merges of `word`, appended to `out`.
    fn merge(&mut self, word: &[u8], out: &mut Vec<u32>) {
        let m = self.merges;
        let symbols = &mut *self.symbols;
        let heap = &mut *self.heap;
        symbols.clear();
        heap.clear();
        let ids = word
            .iter()
            .map(|&b| m.byte_ids[b as usize])
            .filter(|&id| id != NO_TOKEN);
        symbols.extend(ids.enumerate().map(|(i, id)| Symbol {
            id,
            prev: i as i32 - 1,
            next: i as i32 + 1,
            len: 1,
        }));
        let n = symbols.len();
        if n == 0 {
            return;
        }
        symbols[n - 1].next = -1;
        for i in 0..n - 1 {
            if let Some((rank, new)) = m.pair(symbols[i].id, symbols[i + 1].id) {
                heap.push(Reverse((rank, i as u32, new)));
            }
        }
        while let Some(Reverse((_, pos, new))) = heap.pop() {
            let pos = pos as usize;
            let here = symbols[pos];
            if here.len == 0 || here.next < 0 {
                continue;
            }
            let next = here.next as usize;
            let right = symbols[next];
            if m.pair(here.id, right.id).map(|p| p.1) != Some(new) {
                continue; // expired
            }
            symbols[pos].id = new;
            symbols[pos].len += right.len;
            symbols[pos].next = right.next;
            symbols[next].len = 0;
            if right.next >= 0 {
                symbols[right.next as usize].prev = pos as i32;
            }
            let cur = symbols[pos];
            if cur.prev >= 0 {
                let prev = cur.prev as usize;
                if let Some((rank, id)) = m.pair(symbols[prev].id, cur.id) {
                    heap.push(Reverse((rank, prev as u32, id)));
                }
            }
            if cur.next >= 0 {
                if let Some((rank, id)) = m.pair(cur.id, symbols[cur.next as usize].id) {
                    heap.push(Reverse((rank, pos as u32, id)));
                }
            }
        }
        let mut i = 0i32;
        while i >= 0 {
            let s = symbols[i as usize];
            out.push(s.id);
            i = s.next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_is_gpt2s() {
        assert_eq!(byte_char(b'a'), 'a');
        assert_eq!(byte_char(b' '), 'Ġ');
        assert_eq!(byte_char(b'\n'), 'Ċ');
        assert_eq!(byte_char(0), 'Ā');
        assert_eq!(byte_char(0xAD), '\u{143}');
        let all: std::collections::HashSet<char> = (0..=255u8).map(byte_char).collect();
        assert_eq!(all.len(), 256);
    }
}
