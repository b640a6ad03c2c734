//! Per-token detection scores (spec §7): what one scored position
//! contributes to each scheme's test statistic. Public through
//! [`crate::Schedule::token_score`] and [`crate::Schedule::score_tuples`].

use crate::keystream::{chacha20_blocks_x8, LANES};
use crate::profile::Scheme;
use crate::schedule::{GumbelUniform, Seed, TokenValues};

/// What a batch computes per tuple.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Output {
    /// The detection score of spec §7.
    #[default]
    Score,
    /// The bounded token value of the expected-score test (spec §8.5):
    /// as the score, except Gumbel's uniform r itself.
    Value,
}

/// Up to eight positions waiting for their keystream blocks.
#[derive(Default)]
pub(crate) struct Batch {
    seeds: [Seed; LANES],
    blocks: [u64; LANES],
    tokens: [u32; LANES],
    len: usize,
    output: Output,
}

impl Batch {
    /// An empty batch computing `output`.
    pub(crate) fn new(output: Output) -> Batch {
        Batch {
            output,
            ..Batch::default()
        }
    }

    /// Queues `token` with its window's `seed`; scores the batch into
    /// `scores` when it is full.
    #[inline]
    pub(crate) fn push(&mut self, scheme: &Scheme, seed: Seed, token: u32, scores: &mut Vec<f64>) {
        let lane = self.len;
        self.seeds[lane] = seed;
        self.blocks[lane] = value_block(scheme, token);
        self.tokens[lane] = token;
        self.len += 1;
        if self.len == LANES {
            self.flush(scheme, scores);
        }
    }

    /// Scores what is queued into `scores`.
    pub(crate) fn flush(&mut self, scheme: &Scheme, scores: &mut Vec<f64>) {
        if self.len == 0 {
            return;
        }
        let words = chacha20_blocks_x8(&self.seeds, &self.blocks);
        let tokens = self.tokens[..self.len].iter().zip(&words);
        // One branch per batch: the scoring loop is the detection hot path.
        if self.output == Output::Value && matches!(scheme, Scheme::Gumbel) {
            scores.extend(tokens.map(|(t, block)| gumbel_in_block(*t, block).r()));
        } else {
            scores.extend(tokens.map(|(t, block)| score_in_block(scheme, *t, block)));
        }
        self.len = 0;
    }
}

/// Index of the keystream block that holds token `id`'s value under `scheme`
/// (half of word id/2 for KGW, word id for SynthID, words 2·id and 2·id+1
/// for Gumbel; both Gumbel words always share a block).
#[inline]
fn value_block(scheme: &Scheme, id: u32) -> u64 {
    match scheme {
        Scheme::Kgw(_) => id as u64 / 32,
        Scheme::Gumbel => id as u64 / 8,
        Scheme::SynthId(_) => id as u64 / 16,
    }
}

/// [`token_score`] from the block [`value_block`] named.
#[inline]
fn score_in_block(scheme: &Scheme, id: u32, block: &[u32; 16]) -> f64 {
    match scheme {
        Scheme::Kgw(p) => {
            let word = block[(id as usize % 32) / 2];
            if ((word >> (16 * (id & 1))) as u16 as u32) < p.threshold() {
                1.0
            } else {
                0.0
            }
        }
        Scheme::Gumbel => gumbel_in_block(id, block).score(),
        Scheme::SynthId(p) => {
            (block[id as usize % 16] & layer_mask(p.layers())).count_ones() as f64
        }
    }
}

/// Token `id`'s Gumbel uniform from the block [`value_block`] named.
#[inline]
fn gumbel_in_block(id: u32, block: &[u32; 16]) -> GumbelUniform {
    let w = (2 * id as usize) % 16;
    GumbelUniform::from_u64(block[w] as u64 | (block[w + 1] as u64) << 32)
}

fn layer_mask(layers: u32) -> u32 {
    if layers == 32 {
        u32::MAX
    } else {
        (1u32 << layers) - 1
    }
}

/// Score of token `id` under `scheme`, from its context's keystream:
/// KGW 1 if green else 0; SynthID the number of set g-value bits among the
/// m layers; Gumbel −ln(1 − r).
pub(crate) fn token_score(scheme: &Scheme, values: &mut TokenValues, id: u32) -> f64 {
    match scheme {
        Scheme::Kgw(p) => {
            if (values.kgw_value(id) as u32) < p.threshold() {
                1.0
            } else {
                0.0
            }
        }
        Scheme::Gumbel => values.gumbel_uniform(id).score(),
        Scheme::SynthId(p) => {
            (values.synthid_bits(id) & layer_mask(p.layers())).count_ones() as f64
        }
    }
}
