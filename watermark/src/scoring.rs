//! Per-token detection scores (spec §7): what one scored position
//! contributes to each scheme's test statistic.

use crate::profile::Scheme;
use crate::schedule::{GumbelUniform, TokenValues};

/// Index of the keystream block that holds token `id`'s value under `scheme`
/// (half of word id/2 for KGW, word id for SynthID, words 2·id and 2·id+1
/// for Gumbel; both Gumbel words always share a block).
#[inline]
pub fn value_block(scheme: &Scheme, id: u32) -> u64 {
    match scheme {
        Scheme::Kgw(_) => id as u64 / 32,
        Scheme::Gumbel => id as u64 / 8,
        Scheme::SynthId(_) => id as u64 / 16,
    }
}

/// [`token_score`] from the block [`value_block`] named.
#[inline]
pub fn score_in_block(scheme: &Scheme, id: u32, block: &[u32; 16]) -> f64 {
    match scheme {
        Scheme::Kgw(p) => {
            let word = block[(id as usize % 32) / 2];
            if ((word >> (16 * (id & 1))) as u16 as u32) < p.threshold() {
                1.0
            } else {
                0.0
            }
        }
        Scheme::Gumbel => {
            let w = (2 * id as usize) % 16;
            GumbelUniform::from_u64(block[w] as u64 | (block[w + 1] as u64) << 32).score()
        }
        Scheme::SynthId(p) => {
            (block[id as usize % 16] & layer_mask(p.layers())).count_ones() as f64
        }
    }
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
pub fn token_score(scheme: &Scheme, values: &mut TokenValues, id: u32) -> f64 {
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
