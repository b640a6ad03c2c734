//! Reading mode for open-weight audits: run a suspect model over the lab's
//! own texts and take its top-1 prediction at every position, given the
//! real prefix. A model trained on the lab's watermarked outputs prefers the
//! lab's green tokens even where the text itself chose otherwise (Sander et
//! al. 2024); `provmark_verify::corpus::TupleSet::add_predictions` scores
//! exactly that.

use crate::model::{Model, Step};
use crate::Error;

/// Prompt tokens processed per forward call (bounds the logits buffer).
const CHUNK: usize = 256;

/// `predicted[i]` = the model's most likely token after `ids[..i]`, for
/// i ≥ 1 (`predicted[0]` = `ids[0]`, never scored). `adjust` may change
/// each row of logits first (given its prefix); texts longer than the
/// model's context are cut to it.
pub fn predict_top1(
    model: &Model,
    ids: &[u32],
    adjust: &mut dyn FnMut(&[u32], &mut [f32]),
) -> Result<Vec<u32>, Error> {
    let n = ids.len().min(model.config().context);
    let ids = &ids[..n];
    let mut predicted = Vec::with_capacity(n);
    if n == 0 {
        return Ok(predicted);
    }
    predicted.push(ids[0]);
    let vocab = model.config().vocab;
    let mut cache = model.new_cache();
    let mut logits = Vec::new();
    // Rows for tokens 0..n-1 predict positions 1..n.
    let inputs = &ids[..n - 1];
    let mut start = 0;
    while start < inputs.len() {
        let end = (start + CHUNK).min(inputs.len());
        model.forward_all(
            Step {
                cache: &mut cache,
                tokens: &inputs[start..end],
            },
            &mut logits,
        )?;
        for (r, row) in logits.chunks_exact_mut(vocab).enumerate() {
            adjust(&ids[..start + r + 1], row);
            let mut best = 0;
            for (i, &x) in row.iter().enumerate() {
                if x > row[best] {
                    best = i;
                }
            }
            predicted.push(best as u32);
        }
        start = end;
    }
    Ok(predicted)
}
