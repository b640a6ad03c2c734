//! What a suspect reads and where it is scored: the lab's positions paired
//! with the positions of the suspect's own token sequence, in its own
//! tokenizer when it differs from the lab's (spec §8.6).

use provmark_verify::align::shared_starts;
use provmark_verify::TextTokenizer;

/// The suspect's vocabulary mapped to the lab's (spec §8.6): token `v`'s
/// text (its bytes, when they are UTF-8) tokenized by the lab's tokenizer,
/// first id; `None` for control tokens, empty or partial-character tokens.
pub(crate) struct VocabMap {
    ids: Vec<Option<u32>>,
}

impl VocabMap {
    /// The map from `suspect`'s vocabulary to `lab`'s.
    pub(crate) fn new(suspect: &TextTokenizer, lab: &TextTokenizer) -> VocabMap {
        let inner = suspect.inner();
        let added = inner.get_added_vocabulary().get_added_tokens_decoder();
        let ids = (0..inner.get_vocab_size(true) as u32)
            .map(|v| {
                if added.contains_key(&v) {
                    return None;
                }
                let bytes = provmark_llm::token_bytes::token_bytes(inner, v);
                let text = String::from_utf8(bytes).ok().filter(|t| !t.is_empty())?;
                lab.encode(&text).ok()?.first().copied()
            })
            .collect();
        VocabMap { ids }
    }

    /// The lab id of suspect token `v`.
    pub(crate) fn get(&self, v: u32) -> Option<u32> {
        self.ids.get(v as usize).copied().flatten()
    }
}

/// One text as a suspect reads it.
pub(crate) struct Alignment {
    /// What the suspect reads: its prompt (chat context) then the answer,
    /// in its own ids.
    pub seq: Vec<u32>,
    /// The lab's ids whose windows and positions are scored.
    pub lab: Vec<u32>,
    /// First lab position that is part of the answer.
    pub lab_first: usize,
    /// `(j, i)`: lab position `j` is predicted by the suspect at `seq`
    /// position `i` (given `seq[..i]`), in increasing order; `j ≥ h`,
    /// `j ≥ lab_first`, `i ≥ 1`.
    pub pairs: Vec<(usize, usize)>,
}

impl Alignment {
    /// The suspect shares the lab's tokenizer: `prefix ‖ answer` is read
    /// and every answer position with a window is scored.
    pub(crate) fn same(prefix: Vec<u32>, answer: &[u32], h: usize) -> Alignment {
        let first = prefix.len();
        let mut seq = prefix;
        seq.extend_from_slice(answer);
        let pairs = (first.max(h).max(1)..seq.len()).map(|i| (i, i)).collect();
        Alignment {
            lab: seq.clone(),
            seq,
            lab_first: first,
            pairs,
        }
    }

    /// The suspect has its own tokenizer: it reads `prefix ‖ suspect(text)`;
    /// the lab's tokens of the answer are scored at its positions `j ≥ h`
    /// where both tokenizations start a token at the same byte.
    pub(crate) fn across(
        prefix: Vec<u32>,
        text: &str,
        lab: &TextTokenizer,
        suspect: &TextTokenizer,
        h: usize,
    ) -> Result<Alignment, String> {
        let (lab_ids, lab_offsets) = lab.encode_with_offsets(text).map_err(|e| e.to_string())?;
        let (ids, offsets) = suspect
            .encode_with_offsets(text)
            .map_err(|e| e.to_string())?;
        let first = prefix.len();
        let pairs = shared_starts(&lab_offsets, &offsets)
            .into_iter()
            .filter(|&(j, k)| j >= h && first + k >= 1)
            .map(|(j, k)| (j, first + k))
            .collect();
        let mut seq = prefix;
        seq.extend_from_slice(&ids);
        Ok(Alignment {
            seq,
            lab: lab_ids,
            lab_first: 0,
            pairs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer(file: &str) -> TextTokenizer {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../llm/tests/data/tiny")
            .join(file);
        let gguf = provmark_llm::gguf_tokenizer::GgufTokenizer::from_file(&path).unwrap();
        TextTokenizer::from_bytes(gguf.to_json().as_bytes(), file).unwrap()
    }

    #[test]
    fn a_tokenizer_aligned_with_itself_pairs_every_position() {
        let t = tokenizer("tiny-llama.gguf");
        let text = "the cat sat on the mat, naïvely — twice!";
        let ids = t.encode(text).unwrap();
        let a = Alignment::across(vec![7, 8, 9], text, &t, &t, 2).unwrap();
        let want: Vec<(usize, usize)> = (2..ids.len()).map(|j| (j, 3 + j)).collect();
        // Every lab token starts a boundary except the pieces of a
        // multi-byte character (ï, —).
        assert!(a.pairs.len() + 4 >= want.len(), "{:?}", a.pairs);
        assert!(a.pairs.iter().all(|p| want.contains(p)));
        assert_eq!(a.lab, ids);
        assert_eq!(&a.seq[3..], &ids[..]);
        // A whole-character token's text is that token again; pieces of a
        // character have no text and map to nothing.
        let map = VocabMap::new(&t, &t);
        for &v in &ids {
            let bytes = provmark_llm::token_bytes::token_bytes(t.inner(), v);
            match String::from_utf8(bytes) {
                Ok(_) => assert_eq!(map.get(v), Some(v), "token {v}"),
                Err(_) => assert_eq!(map.get(v), None, "token {v}"),
            }
        }
    }

    #[test]
    fn two_tokenizers_share_some_boundaries() {
        let (lab, suspect) = (tokenizer("tiny-llama.gguf"), tokenizer("tiny-qwen2.gguf"));
        let text = "Hello world! The river ran past the old mill.";
        let a = Alignment::across(Vec::new(), text, &lab, &suspect, 1).unwrap();
        assert!(!a.pairs.is_empty());
        let (lab_ids, lab_off) = lab.encode_with_offsets(text).unwrap();
        let (_, sus_off) = suspect.encode_with_offsets(text).unwrap();
        for &(j, k) in &a.pairs {
            assert!(j >= 1 && j < lab_ids.len());
            assert_eq!(
                lab_off[j].0, sus_off[k].0,
                "pair ({j}, {k}) starts at one byte"
            );
        }
    }
}
