//! The ChaCha20 keystream blocks behind every token value (spec §4.2).
//!
//! Whole-vocabulary sweeps go through `rand_chacha`; detection needs one
//! block per scored token, under a different seed each time, so it computes
//! single blocks here, eight independent blocks at a time in "vertical"
//! layout (lane i = block i) that the compiler turns into SIMD.

/// One ChaCha20 double round (four column, then four diagonal quarter
/// rounds), for any representation of the 16-word state.
macro_rules! double_round {
    ($quarter:ident, $state:expr) => {{
        let state = $state;
        $quarter(state, 0, 4, 8, 12);
        $quarter(state, 1, 5, 9, 13);
        $quarter(state, 2, 6, 10, 14);
        $quarter(state, 3, 7, 11, 15);
        $quarter(state, 0, 5, 10, 15);
        $quarter(state, 1, 6, 11, 12);
        $quarter(state, 2, 7, 8, 13);
        $quarter(state, 3, 4, 9, 14);
    }};
}

/// One ChaCha20 block (20 rounds; 64-bit block counter in state words 12–13,
/// stream id 0 in words 14–15), as 16 little-endian words.
#[inline]
pub fn chacha20_block(seed: &[u8; 32], counter: u64) -> [u32; 16] {
    #[inline(always)]
    fn quarter(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
        s[a] = s[a].wrapping_add(s[b]);
        s[d] = (s[d] ^ s[a]).rotate_left(16);
        s[c] = s[c].wrapping_add(s[d]);
        s[b] = (s[b] ^ s[c]).rotate_left(12);
        s[a] = s[a].wrapping_add(s[b]);
        s[d] = (s[d] ^ s[a]).rotate_left(8);
        s[c] = s[c].wrapping_add(s[d]);
        s[b] = (s[b] ^ s[c]).rotate_left(7);
    }
    let mut input = [0u32; 16];
    input[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    for (i, chunk) in seed.chunks_exact(4).enumerate() {
        input[4 + i] = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    input[12] = counter as u32;
    input[13] = (counter >> 32) as u32;
    let mut s = input;
    for _ in 0..10 {
        double_round!(quarter, &mut s);
    }
    for (o, i) in s.iter_mut().zip(input) {
        *o = o.wrapping_add(i);
    }
    s
}

/// Lanes computed together by [`chacha20_blocks_x8`].
pub const LANES: usize = 8;

/// The eight initial states in vertical layout.
#[allow(clippy::needless_range_loop)] // lanes index several rows at once
fn vertical_input(seeds: &[[u8; 32]; LANES], counters: &[u64; LANES]) -> [[u32; LANES]; 16] {
    let mut input = [[0u32; LANES]; 16];
    const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];
    for (w, c) in SIGMA.iter().enumerate() {
        input[w] = [*c; LANES];
    }
    for lane in 0..LANES {
        for i in 0..8 {
            let b = &seeds[lane][4 * i..4 * i + 4];
            input[4 + i][lane] = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        input[12][lane] = counters[lane] as u32;
        input[13][lane] = (counters[lane] >> 32) as u32;
    }
    input
}

/// Portable form of the eight-block computation.
#[allow(clippy::needless_range_loop)] // lanes index several rows at once
fn blocks_x8_portable(seeds: &[[u8; 32]; LANES], counters: &[u64; LANES]) -> [[u32; 16]; LANES] {
    let input = vertical_input(seeds, counters);
    let mut x = input;
    #[inline(always)]
    #[allow(clippy::needless_range_loop)]
    fn quarter(x: &mut [[u32; LANES]; 16], a: usize, b: usize, c: usize, d: usize) {
        for l in 0..LANES {
            x[a][l] = x[a][l].wrapping_add(x[b][l]);
            x[d][l] = (x[d][l] ^ x[a][l]).rotate_left(16);
            x[c][l] = x[c][l].wrapping_add(x[d][l]);
            x[b][l] = (x[b][l] ^ x[c][l]).rotate_left(12);
            x[a][l] = x[a][l].wrapping_add(x[b][l]);
            x[d][l] = (x[d][l] ^ x[a][l]).rotate_left(8);
            x[c][l] = x[c][l].wrapping_add(x[d][l]);
            x[b][l] = (x[b][l] ^ x[c][l]).rotate_left(7);
        }
    }
    for _ in 0..10 {
        double_round!(quarter, &mut x);
    }
    let mut out = [[0u32; 16]; LANES];
    for w in 0..16 {
        for l in 0..LANES {
            out[l][w] = x[w][l].wrapping_add(input[w][l]);
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::LANES;
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn rotl(v: __m256i, n: i32) -> __m256i {
        match n {
            16 => _mm256_shuffle_epi8(
                v,
                _mm256_setr_epi8(
                    2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5,
                    10, 11, 8, 9, 14, 15, 12, 13,
                ),
            ),
            8 => _mm256_shuffle_epi8(
                v,
                _mm256_setr_epi8(
                    3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0, 1, 2, 7, 4, 5, 6,
                    11, 8, 9, 10, 15, 12, 13, 14,
                ),
            ),
            12 => _mm256_or_si256(_mm256_slli_epi32(v, 12), _mm256_srli_epi32(v, 20)),
            _ => _mm256_or_si256(_mm256_slli_epi32(v, 7), _mm256_srli_epi32(v, 25)),
        }
    }

    #[inline(always)]
    unsafe fn quarter(x: &mut [__m256i; 16], a: usize, b: usize, c: usize, d: usize) {
        x[a] = _mm256_add_epi32(x[a], x[b]);
        x[d] = rotl(_mm256_xor_si256(x[d], x[a]), 16);
        x[c] = _mm256_add_epi32(x[c], x[d]);
        x[b] = rotl(_mm256_xor_si256(x[b], x[c]), 12);
        x[a] = _mm256_add_epi32(x[a], x[b]);
        x[d] = rotl(_mm256_xor_si256(x[d], x[a]), 8);
        x[c] = _mm256_add_epi32(x[c], x[d]);
        x[b] = rotl(_mm256_xor_si256(x[b], x[c]), 7);
    }

    /// Vertical layout: vector w holds word w of all eight blocks.
    #[target_feature(enable = "avx2")]
    pub unsafe fn blocks_x8(input: &[[u32; LANES]; 16]) -> [[u32; LANES]; 16] {
        let mut init = [_mm256_setzero_si256(); 16];
        for (v, words) in init.iter_mut().zip(input) {
            *v = _mm256_loadu_si256(words.as_ptr() as *const __m256i);
        }
        let mut x = init;
        for _ in 0..10 {
            double_round!(quarter, &mut x);
        }
        let mut out = [[0u32; LANES]; 16];
        for w in 0..16 {
            let sum = _mm256_add_epi32(x[w], init[w]);
            _mm256_storeu_si256(out[w].as_mut_ptr() as *mut __m256i, sum);
        }
        out
    }
}

/// Eight independent ChaCha20 blocks: block `counters[i]` of seed `seeds[i]`.
pub fn chacha20_blocks_x8(
    seeds: &[[u8; 32]; LANES],
    counters: &[u64; LANES],
) -> [[u32; 16]; LANES] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            let v = unsafe { avx2::blocks_x8(&vertical_input(seeds, counters)) };
            let mut out = [[0u32; 16]; LANES];
            for (w, words) in v.iter().enumerate() {
                for (lane, &word) in words.iter().enumerate() {
                    out[lane][w] = word;
                }
            }
            return out;
        }
    }
    blocks_x8_portable(seeds, counters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn single_and_batched_blocks_match_rand_chacha() {
        let counters = [0u64, 1, 7, 1 << 20, (1 << 29) + 3, 1 << 33, 5, 2];
        let mut seeds = [[0u8; 32]; LANES];
        for (i, s) in seeds.iter_mut().enumerate() {
            *s = [0x5a ^ i as u8; 32];
        }
        let batched = chacha20_blocks_x8(&seeds, &counters);
        let portable = blocks_x8_portable(&seeds, &counters);
        for lane in 0..LANES {
            let mut rng = ChaCha20Rng::from_seed(seeds[lane]);
            rng.set_word_pos(counters[lane] as u128 * 16);
            let want: Vec<u32> = (0..16).map(|_| rng.next_u32()).collect();
            assert_eq!(chacha20_block(&seeds[lane], counters[lane]).to_vec(), want);
            assert_eq!(batched[lane].to_vec(), want, "lane {lane}");
            assert_eq!(portable[lane].to_vec(), want, "lane {lane}");
        }
    }
}
