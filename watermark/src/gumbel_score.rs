//! The Gumbel detection score in fixed point (spec §7, revision 7).
//!
//! The score of a position is `floor(2^16 · (−ln(1 − r))) / 2^16`. Every
//! score is then a binary64 multiple of 2^−16 below 37, so any sum of fewer
//! than about 3.7 · 10^9 of them is exact in binary64: the statistic does not
//! depend on summation order, shards add up exactly, and the key-swap
//! comparisons `S_i ≥ S` are exact. The fixed point only rounds down, so the
//! statistic never exceeds the ideal one and the Gamma tail stays a valid
//! (conservative) p-value; the loss is below 2^−16 per position.
//!
//! `−ln(1 − r)` is never a multiple of 2^−16 (it would make `1 − r`, a
//! rational, equal to e^q for a nonzero rational q), so the floor is always
//! decidable. A binary64 logarithm decides it unless the value lies within
//! 2^−40 (relative) of a unit boundary, about once in 10^6 positions; those
//! are decided by a logarithm at 128 bits and more, raised until decided.

use dashu_float::{round::mode::Down, FBig};
use dashu_int::IBig;

/// Fixed-point units per unit of score: scores are multiples of 1/65536.
pub const GUMBEL_SCORE_UNITS: u64 = 1 << 16;

/// Relative error bound assumed for a binary64 `ln`: 2^−40, some 4,000 times
/// the error of any faithful libm (≤ 1 ulp = 2^−52), so the fast path is
/// exact on any platform whose `ln` is faithful.
const FAST_RELATIVE_BOUND: f64 = 1.0 / (1u64 << 40) as f64;

/// `floor(2^16 · (−ln(x)))` for `x = (2k + 1) / 2^53`, `0 ≤ k < 2^52`.
pub fn score_units(k: u64) -> u64 {
    debug_assert!(k < 1 << 52);
    let x = (2 * k + 1) as f64 * (1.0 / 9007199254740992.0);
    let y = -x.ln() * GUMBEL_SCORE_UNITS as f64;
    let margin = y * FAST_RELATIVE_BOUND;
    let (lo, hi) = ((y - margin).floor(), (y + margin).floor());
    if lo == hi {
        return lo as u64;
    }
    score_units_precise(k)
}

/// [`score_units`] by a logarithm rounded toward zero at `p` bits: its error
/// is below one ulp, 2^(1−p) relative, and `p` doubles until the distance to
/// the nearest unit boundary exceeds that bound 256 times over.
pub(crate) fn score_units_precise(k: u64) -> u64 {
    type Big = FBig<Down, 2>;
    let mut precision = 128usize;
    loop {
        let x = Big::from_parts(IBig::from(2 * k + 1), -53)
            .with_precision(precision)
            .value();
        // ln(x) < 0; scaling by 2^16 is exact.
        let y = -x.ln() * Big::from_parts(IBig::ONE, 16);
        let floor = y.floor();
        let below = &y - &floor;
        let above = &floor + Big::ONE - &y;
        let bound = Big::from_parts(IBig::ONE, 9 - precision as isize) * (&y + Big::ONE);
        if below > bound && above > bound {
            let units: u64 = floor
                .to_int()
                .value()
                .try_into()
                .expect("−ln(2^−53) · 2^16 < 2^22");
            return units;
        }
        precision *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_and_precise_paths_agree_on_random_values() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = state >> 12;
            assert_eq!(score_units(k), score_units_precise(k), "k = {k}");
        }
    }

    #[test]
    fn values_next_to_a_unit_boundary_take_the_precise_path() {
        // 1 − r = e^(−q/2^16) rounded to the grid lies within ~2^−36 of the
        // boundary q; for large scores that is inside the binary64 margin.
        let mut deferred = 0;
        // (Below 1 − r ≈ 2^−12 the grid is too coarse to come that close.)
        for q in [3u64, 1000, 65536, 131_072, 300_000, 500_000] {
            let target = (-(q as f64) / GUMBEL_SCORE_UNITS as f64).exp() * 9007199254740992.0;
            let k = ((target - 1.0) / 2.0).round() as u64;
            let x = (2 * k + 1) as f64 * (1.0 / 9007199254740992.0);
            let y = -x.ln() * GUMBEL_SCORE_UNITS as f64;
            let margin = y * FAST_RELATIVE_BOUND;
            deferred += usize::from((y - margin).floor() != (y + margin).floor());
            let units = score_units(k);
            assert_eq!(units, score_units_precise(k), "q = {q}");
            assert!(units == q || units + 1 == q, "q = {q}: {units}");
        }
        assert!(
            deferred >= 4,
            "only {deferred} boundary cases reached the precise path"
        );
    }

    #[test]
    fn extremes() {
        // r closest to 1: 1 − r = 2^−53, −ln = 53 ln 2 = 36.7368005696771…
        assert_eq!(score_units(0), (36.736_800_569_677_1 * 65536.0) as u64);
        // r closest to 0: −ln(1 − 2^−53) ≈ 1.1e−16, floor 0.
        assert_eq!(score_units((1 << 52) - 1), 0);
    }
}
