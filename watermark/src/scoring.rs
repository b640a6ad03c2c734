//! Per-token detection scores (spec §7): what one scored position
//! contributes to each scheme's test statistic.

use crate::profile::Scheme;
use crate::schedule::TokenValues;

/// Score of token `id` under `scheme`, from its context's keystream:
/// KGW 1 if green else 0; SynthID the number of set g-value bits among the
/// m layers; Gumbel −ln(1 − r).
pub fn token_score(scheme: &Scheme, values: &mut TokenValues, id: u32) -> f64 {
    match scheme {
        Scheme::Kgw(p) => {
            if (values.kgw_value(id) as u64) < p.threshold() {
                1.0
            } else {
                0.0
            }
        }
        Scheme::Gumbel => values.gumbel_uniform(id).score(),
        Scheme::SynthId(p) => {
            let mask = if p.layers() == 32 {
                u32::MAX
            } else {
                (1u32 << p.layers()) - 1
            };
            (values.synthid_bits(id) & mask).count_ones() as f64
        }
    }
}
