//! Grey-box audits: the top-k log-probabilities an OpenAI-compatible API
//! returns with each generated token (`logprobs: true, top_logprobs: k`),
//! turned into the weights of the expected-score test (spec §8.5).
//!
//! At every position of the suspect's own answer, the window is the `h`
//! tokens the suspect generated before it and the weights are its own
//! probabilities `q_v = e^{logprob}` on its top-k tokens, so the test sees
//! the suspect's whole distribution there rather than one sampled token.
//! Tokens are matched to the lab's vocabulary by their bytes (the API's
//! `bytes`, else the UTF-8 of `token`): the suspect must use the lab's
//! tokenizer for its answers to be scored; a chosen token that the lab's
//! vocabulary does not have ends the answer's scored part.

use std::collections::HashMap;

use provmark_verify::expected::{merge_by_token, WeightedTuples};
use provmark_verify::TextTokenizer;
use serde_json::{json, Value};

/// Most alternatives kept per position (the OpenAI API's maximum is 20).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// One generated token as the API reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprobs {
    /// The chosen token's bytes.
    pub bytes: Vec<u8>,
    /// The alternatives: bytes and natural-log probability.
    pub top: Vec<(Vec<u8>, f64)>,
}

/// A token entry's bytes: `bytes` (integers 0–255) when present, else the
/// UTF-8 of `token`.
fn entry_bytes(entry: &Value, what: &str) -> Result<Vec<u8>, String> {
    if let Some(list) = entry.get("bytes").and_then(Value::as_array) {
        return list
            .iter()
            .map(|b| {
                b.as_u64()
                    .filter(|&b| b < 256)
                    .map(|b| b as u8)
                    .ok_or_else(|| format!("{what}: bytes must be integers 0–255"))
            })
            .collect();
    }
    entry
        .get("token")
        .and_then(Value::as_str)
        .map(|t| t.as_bytes().to_vec())
        .ok_or_else(|| format!("{what}: neither bytes nor token"))
}

fn entry_logprob(entry: &Value, what: &str) -> Result<f64, String> {
    let lp = entry
        .get("logprob")
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("{what}: logprob missing or not a number"))?;
    // A log-probability is ≤ 0; allow float rounding just above it.
    if lp.is_nan() || lp > 1e-4 {
        return Err(format!("{what}: logprob {lp} is not a log-probability"));
    }
    Ok(lp.min(0.0))
}

/// Parses `choices[0].logprobs` of a chat completion (the OpenAI shape:
/// `content` is a list of `{token, logprob, bytes, top_logprobs: [...]}`).
/// Errors say what is missing or malformed; an answer without any entry
/// is an error (the endpoint ignored `logprobs`).
pub fn parse_chat(logprobs: &Value) -> Result<Vec<TokenLogprobs>, String> {
    let content = logprobs
        .get("content")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or("no choices[0].logprobs.content: the endpoint did not return log-probabilities")?;
    content
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let what = format!("logprobs.content[{i}]");
            let bytes = entry_bytes(entry, &what)?;
            let top = entry
                .get("top_logprobs")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("{what}: no top_logprobs"))?;
            let top = top
                .iter()
                .take(MAX_TOP_LOGPROBS)
                .enumerate()
                .map(|(j, t)| {
                    let what = format!("{what}.top_logprobs[{j}]");
                    Ok((entry_bytes(t, &what)?, entry_logprob(t, &what)?))
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(TokenLogprobs { bytes, top })
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The cache's form of an answer's log-probabilities: a list of
/// `{"t": HEX, "top": [[HEX, logprob], …]}`.
pub fn to_cache(tokens: &[TokenLogprobs]) -> Value {
    Value::Array(
        tokens
            .iter()
            .map(|t| {
                let top: Vec<Value> = t.top.iter().map(|(b, lp)| json!([hex(b), lp])).collect();
                json!({"t": hex(&t.bytes), "top": top})
            })
            .collect(),
    )
}

/// Reads [`to_cache`]'s form back; `None` if it is not that form.
pub fn from_cache(v: &Value) -> Option<Vec<TokenLogprobs>> {
    v.as_array()?
        .iter()
        .map(|t| {
            let bytes = unhex(t.get("t")?.as_str()?)?;
            let top = t
                .get("top")?
                .as_array()?
                .iter()
                .map(|pair| {
                    let bytes = unhex(pair.get(0)?.as_str()?)?;
                    let lp = pair.get(1)?.as_f64().filter(|lp| *lp <= 0.0)?;
                    Some((bytes, lp))
                })
                .collect::<Option<Vec<_>>>()?;
            Some(TokenLogprobs { bytes, top })
        })
        .collect()
}

/// The lab's vocabulary by token bytes (the smallest id where several
/// tokens share their bytes).
pub struct ByteVocab {
    ids: HashMap<Vec<u8>, u32>,
}

impl ByteVocab {
    /// Every token of `tokenizer`, by its bytes.
    pub fn new(tokenizer: &TextTokenizer) -> ByteVocab {
        let inner = tokenizer.inner();
        let mut ids = HashMap::new();
        for id in 0..inner.get_vocab_size(true) as u32 {
            let bytes = provmark_llm::token_bytes::token_bytes(inner, id);
            if !bytes.is_empty() {
                ids.entry(bytes).or_insert(id);
            }
        }
        ByteVocab { ids }
    }

    /// The id of a token's bytes.
    pub fn id(&self, bytes: &[u8]) -> Option<u32> {
        self.ids.get(bytes).copied()
    }
}

/// What one answer contributed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Contribution {
    /// Positions offered to the test (those with a window in the answer).
    pub positions: usize,
    /// Generated tokens after (and including) the first one that the lab's
    /// vocabulary does not have: not scored.
    pub unmapped: usize,
}

/// Adds one answer's positions to `reading` (one text): position `i ≥ h`
/// with the window of the `h` generated tokens before it and weights
/// `e^{logprob}` on the mapped alternatives (summed where two share an id).
pub fn add_answer(
    reading: &mut WeightedTuples,
    vocab: &ByteVocab,
    tokens: &[TokenLogprobs],
) -> Contribution {
    let h = reading.context();
    let mut ids = Vec::with_capacity(tokens.len());
    for t in tokens {
        match vocab.id(&t.bytes) {
            Some(id) => ids.push(id),
            None => break,
        }
    }
    let unmapped = tokens.len() - ids.len();
    reading.begin_text();
    let mut positions = 0;
    for i in h..ids.len() {
        let weights = merge_by_token(
            tokens[i]
                .top
                .iter()
                .filter_map(|(b, lp)| vocab.id(b).map(|id| (id, lp.exp())))
                .collect(),
        );
        reading.add_position(&ids[i - h..i], &weights);
        positions += 1;
    }
    Contribution {
        positions,
        unmapped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_openai_shape_and_round_trips_the_cache_form() {
        let v = json!({"content": [
            {"token": "Hi", "logprob": -0.1, "bytes": [72, 105],
             "top_logprobs": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
                              {"token": "Hey", "logprob": -2.5}]},
            {"token": "!", "logprob": 0.0, "top_logprobs": []},
        ]});
        let t = parse_chat(&v).unwrap();
        assert_eq!(t[0].bytes, b"Hi");
        assert_eq!(t[0].top[1], (b"Hey".to_vec(), -2.5));
        assert_eq!(t[1].bytes, b"!");
        assert_eq!(from_cache(&to_cache(&t)).unwrap(), t);
    }

    #[test]
    fn malformed_logprobs_are_named() {
        for (v, needle) in [
            (json!(null), "did not return log-probabilities"),
            (json!({"content": []}), "did not return log-probabilities"),
            (
                json!({"content": [{"token": "a"}]}),
                "content[0]: no top_logprobs",
            ),
            (
                json!({"content": [{"bytes": [300], "top_logprobs": []}]}),
                "bytes must be integers",
            ),
            (
                json!({"content": [{"token": "a", "top_logprobs": [{"token": "b", "logprob": 3.0}]}]}),
                "top_logprobs[0]: logprob 3 is not a log-probability",
            ),
            (
                json!({"content": [{"token": "a", "top_logprobs": [{"logprob": -1.0}]}]}),
                "neither bytes nor token",
            ),
        ] {
            let e = parse_chat(&v).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
        assert!(from_cache(&json!([{"t": "zz", "top": []}])).is_none());
        assert!(from_cache(&json!([{"t": "61", "top": [["62", 1.0]]}])).is_none());
    }
}
