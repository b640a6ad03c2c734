//! Log-probabilities of generated tokens under the model's own
//! distribution: log-softmax of the raw logits at temperature 1, before any
//! watermark bias, temperature, top-k or top-p (spec §6.3). Reporting the
//! biased or tournament-reweighted distribution would hand out the green
//! lists or g-values a key-stealing attack needs.

/// One token and its log-probability (natural log).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenLogprob {
    /// Token id.
    pub id: u32,
    /// ln p(id) under the model.
    pub logprob: f32,
}

/// A generated token's log-probability and the most likely alternatives.
#[derive(Clone, Debug, PartialEq)]
pub struct Logprobs {
    /// The token generated.
    pub chosen: TokenLogprob,
    /// The `n` most likely tokens, most likely first (ties: smaller id).
    pub top: Vec<TokenLogprob>,
}

/// Most alternatives a request may ask for (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// The log-probability of `chosen` and the `top` most likely tokens under
/// the softmax of `logits` (index = token id; `-inf` entries have
/// probability 0). `top` is capped at [`MAX_TOP_LOGPROBS`].
///
/// Panics if `logits` is empty or `chosen` is out of range.
pub fn logprobs(logits: &[f32], chosen: u32, top: usize) -> Logprobs {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let lse = max as f64 + sum.ln();
    let lp = |id: u32| TokenLogprob {
        id,
        logprob: (logits[id as usize] as f64 - lse) as f32,
    };
    let n = top.min(MAX_TOP_LOGPROBS).min(logits.len());
    // A short list kept sorted (largest first, smaller id on ties): most
    // logits fail the first comparison.
    let mut best: Vec<u32> = Vec::with_capacity(n + 1);
    if n > 0 {
        for (id, &l) in logits.iter().enumerate() {
            if best.len() == n && l <= logits[best[n - 1] as usize] {
                continue;
            }
            let at = best.partition_point(|&b| logits[b as usize] >= l);
            best.insert(at, id as u32);
            best.truncate(n);
        }
    }
    Logprobs {
        chosen: lp(chosen),
        top: best.into_iter().map(lp).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_and_top_n() {
        let logits = [0.0f32, 2.0, 1.0, 2.0, f32::NEG_INFINITY];
        let l = logprobs(&logits, 2, 3);
        let z: f64 = logits.iter().map(|&x| (x as f64).exp()).sum();
        assert!((l.chosen.logprob as f64 - (1.0 - z.ln())).abs() < 1e-6);
        assert_eq!(
            l.top.iter().map(|t| t.id).collect::<Vec<_>>(),
            vec![1, 3, 2]
        );
        let total: f64 = (0..5)
            .map(|i| (logprobs(&logits, i, 0).chosen.logprob as f64).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert_eq!(logprobs(&logits, 4, 0).chosen.logprob, f32::NEG_INFINITY);
        assert!(logprobs(&logits, 0, 0).top.is_empty());
        assert_eq!(logprobs(&logits, 0, 99).top.len(), 5);
    }
}
