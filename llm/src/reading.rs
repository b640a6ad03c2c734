//! Reading mode for open-weight audits: run a suspect model over the lab's
//! own texts and take its top-1 prediction at every position, given the
//! real prefix. A model trained on the lab's watermarked outputs prefers the
//! lab's green tokens even where the text itself chose otherwise (Sander et
//! al. 2024); `provmark_verify::corpus::TupleSet::add_predictions` scores
//! exactly that.

use rayon::prelude::*;

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
        }
        // Rows are independent: their argmaxes in parallel.
        let best: Vec<u32> = logits.par_chunks_exact(vocab).map(argmax).collect();
        predicted.extend(best);
        start = end;
    }
    Ok(predicted)
}

/// Reads `ids` with one or more models in lock step and calls
/// `visit(i, rows)` for every position `i` in `from.max(1)..n`, where
/// `rows[j]` is model `j`'s next-token probability distribution (softmax
/// of its logits, f32, one entry per vocabulary id) given `ids[..i]`:
/// the rows that the expected-score reading test weighs (spec §8.5).
/// Positions before `from` (a prompt) are read but not visited. Texts
/// longer than the shortest context are cut to it. The models must share
/// a vocabulary size ([`Error::Runtime`] otherwise).
pub fn read_distributions(
    models: &[&Model],
    ids: &[u32],
    from: usize,
    visit: &mut dyn FnMut(usize, &[&[f32]]),
) -> Result<(), Error> {
    let Some(first) = models.first() else {
        return Ok(());
    };
    let vocab = first.config().vocab;
    if models.iter().any(|m| m.config().vocab != vocab) {
        return Err(Error::Runtime(
            "the models read in lock step have different vocabulary sizes".into(),
        ));
    }
    let context = models.iter().map(|m| m.config().context).min().unwrap_or(0);
    let n = ids.len().min(context);
    if n < 2 || from >= n {
        return Ok(());
    }
    let mut caches: Vec<_> = models.iter().map(|m| m.new_cache()).collect();
    let mut logits: Vec<Vec<f32>> = vec![Vec::new(); models.len()];
    let inputs = &ids[..n - 1];
    let mut start = 0;
    while start < inputs.len() {
        let end = (start + CHUNK).min(inputs.len());
        for ((model, cache), out) in models.iter().zip(&mut caches).zip(&mut logits) {
            model.forward_all(
                Step {
                    cache,
                    tokens: &inputs[start..end],
                },
                out,
            )?;
        }
        // Rows visited: those of positions ≥ from; their softmaxes in
        // parallel (each row on its own).
        let skip = from.saturating_sub(start + 1).min(end - start);
        for out in logits.iter_mut() {
            out[skip * vocab..]
                .par_chunks_exact_mut(vocab)
                .for_each(softmax);
        }
        for r in skip..end - start {
            let position = start + r + 1;
            let rows: Vec<&[f32]> = logits
                .iter()
                .map(|out| &out[r * vocab..(r + 1) * vocab])
                .collect();
            visit(position, &rows);
        }
        start = end;
    }
    Ok(())
}

/// The index of the first largest value (0 for an empty row; NaN never
/// wins).
fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as u32
}

/// In-place softmax, accumulated in f64.
fn softmax(row: &mut [f32]) {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut z = 0f64;
    for x in row.iter_mut() {
        let e = ((*x - max) as f64).exp();
        z += e;
        *x = e as f32;
    }
    let inv = (1.0 / z) as f32;
    for x in row.iter_mut() {
        *x *= inv;
    }
}
