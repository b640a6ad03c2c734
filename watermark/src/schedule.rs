//! The keyed pseudo-random schedule (spec §4): a 32-byte seed per context
//! window, and a ChaCha20 keystream from that seed that gives every token id
//! its values at a word position derived from the id alone.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::digest::generic_array::GenericArray;
use zeroize::Zeroize;

use crate::key::Key;
use crate::keystream::chacha20_block;
use crate::profile::{Profile, Scheme};
use crate::scoring;
use crate::{Error, SPEC_VERSION};

/// Seed of one context window: HMAC-SHA256 output.
pub type Seed = [u8; 32];

/// Word position of SynthID's keyed sampling uniform (past every token's word).
pub const SYNTHID_DRAW_WORD: u64 = 1 << 32;

const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The keyed PRF of one profile. Cheap to clone.
///
/// HMAC-SHA256 (RFC 2104) framed directly on `sha2`'s compression function:
/// the key's inner and outer pad blocks are compressed once here, so a seed
/// costs exactly two compressions (the hot path of detection). The `hmac`
/// crate checks this framing in the tests, the spec vectors check both.
#[derive(Clone)]
pub struct Schedule {
    inner: [u32; 8],
    outer: [u32; 8],
    prefix: Vec<u8>,
    scheme: Scheme,
    context: usize,
}

impl Drop for Schedule {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

fn compress(state: &mut [u32; 8], block: &[u8]) {
    sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

impl Schedule {
    /// The schedule of `profile` under `key`; fails if the key is not the
    /// profile's.
    pub fn new(profile: &Profile, key: &Key) -> Result<Schedule, Error> {
        profile.check_key(key)?;
        let mut pads = [[0x36u8; 64], [0x5cu8; 64]];
        for pad in pads.iter_mut() {
            for (p, k) in pad.iter_mut().zip(key.bytes()) {
                *p ^= k;
            }
        }
        let (mut inner, mut outer) = (SHA256_IV, SHA256_IV);
        compress(&mut inner, &pads[0]);
        compress(&mut outer, &pads[1]);
        pads.zeroize();
        let scheme = *profile.scheme();
        let name = scheme.name();
        let mut prefix = Vec::new();
        prefix.extend_from_slice(SPEC_VERSION.as_bytes());
        prefix.extend_from_slice(b"/seed\0");
        prefix.push(name.len() as u8);
        prefix.extend_from_slice(name.as_bytes());
        prefix.extend_from_slice(&scheme.prf_params());
        prefix.extend_from_slice(&(profile.context() as u32).to_le_bytes());
        Ok(Schedule {
            inner,
            outer,
            prefix,
            scheme,
            context: profile.context(),
        })
    }

    /// The scheme this schedule serves.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// Context width h.
    pub fn context_len(&self) -> usize {
        self.context
    }

    /// Seed for a context window of exactly h token ids (oldest first).
    pub fn seed(&self, window: &[u32]) -> Seed {
        debug_assert_eq!(window.len(), self.context);
        // Inner hash over ipad ‖ message: the message and its padding fit in
        // two blocks (prefix ≤ 39 bytes, window ≤ 64 bytes).
        let mut buf = [0u8; 128];
        let len = self.prefix.len() + 4 * window.len();
        buf[..self.prefix.len()].copy_from_slice(&self.prefix);
        for (chunk, id) in buf[self.prefix.len()..len].chunks_exact_mut(4).zip(window) {
            chunk.copy_from_slice(&id.to_le_bytes());
        }
        buf[len] = 0x80;
        let blocks = if len + 9 <= 64 { 1 } else { 2 };
        let bits = ((64 + len) as u64) * 8;
        buf[blocks * 64 - 8..blocks * 64].copy_from_slice(&bits.to_be_bytes());
        let mut state = self.inner;
        for block in buf[..blocks * 64].chunks_exact(64) {
            compress(&mut state, block);
        }
        // Outer hash over opad ‖ inner digest.
        let mut block = [0u8; 64];
        for (chunk, word) in block[..32].chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        block[32] = 0x80;
        block[56..].copy_from_slice(&((64u64 + 32) * 8).to_be_bytes());
        let mut state = self.outer;
        compress(&mut state, &block);
        let mut seed = [0u8; 32];
        for (chunk, word) in seed.chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        seed
    }

    /// The keystream of a context window.
    pub fn values(&self, window: &[u32]) -> TokenValues {
        TokenValues::new(&self.seed(window))
    }

    /// Detection score of `token` (spec §7) read from its window's
    /// keystream `values` (from [`Schedule::values`]): KGW 1 if green else
    /// 0; SynthID the number of set g-value bits among the m layers; Gumbel
    /// −ln(1 − r). Scoring several tokens after one window with the same
    /// `values` computes its seed once.
    pub fn token_score(&self, values: &mut TokenValues, token: u32) -> f64 {
        scoring::token_score(&self.scheme, values, token)
    }

    /// Scores (window, token) tuples, the detection hot path: each tuple is
    /// h + 1 token ids, the window (oldest first) then the scored token; the
    /// scores (as [`Schedule::token_score`]) are appended to `scores` in
    /// tuple order. Seeds are computed one by one and their keystream
    /// blocks eight at a time (SIMD where the CPU has it).
    ///
    /// Panics (in debug builds) if a tuple is not h + 1 ids long.
    #[inline]
    pub fn score_tuples<'a, I>(&self, tuples: I, scores: &mut Vec<f64>)
    where
        I: IntoIterator<Item = &'a [u32]>,
    {
        self.tuples_into(tuples, scoring::Output::Score, scores)
    }

    /// Token values of (window, token) tuples for the expected-score test
    /// (spec §8.5), appended to `values` in tuple order: KGW 1 if green
    /// else 0, SynthID the number of set g-value bits among the m layers
    /// (as [`Schedule::score_tuples`]), Gumbel the uniform r itself, which
    /// unlike its score −ln(1 − r) is bounded. Same batching as
    /// [`Schedule::score_tuples`].
    pub fn value_tuples<'a, I>(&self, tuples: I, values: &mut Vec<f64>)
    where
        I: IntoIterator<Item = &'a [u32]>,
    {
        self.tuples_into(tuples, scoring::Output::Value, values)
    }

    #[inline]
    fn tuples_into<'a, I>(&self, tuples: I, output: scoring::Output, scores: &mut Vec<f64>)
    where
        I: IntoIterator<Item = &'a [u32]>,
    {
        let h = self.context;
        let mut batch = scoring::Batch::new(output);
        for tuple in tuples {
            debug_assert_eq!(tuple.len(), h + 1, "a tuple is h + 1 ids");
            batch.push(&self.scheme, self.seed(&tuple[..h]), tuple[h], scores);
        }
        batch.flush(&self.scheme, scores);
    }
}

/// Random access to the keystream words of one seed.
///
/// Whole-vocabulary sweeps use `rand_chacha` (several blocks at once with
/// SIMD); single words, the detection hot path, compute just the one block
/// they need. Both produce the same stream (tested, and checked against the
/// spec's vectors).
pub struct TokenValues {
    seed: Seed,
    /// The block last computed by random access, and its index.
    block: [u32; 16],
    block_index: u64,
}

impl TokenValues {
    /// Keystream of ChaCha20 keyed with `seed`, stream 0, counter 0.
    pub fn new(seed: &Seed) -> TokenValues {
        TokenValues {
            seed: *seed,
            block: [0; 16],
            block_index: u64::MAX,
        }
    }

    /// Keystream word `pos` (little-endian u32 at byte 4·pos).
    #[inline]
    pub fn word(&mut self, pos: u64) -> u32 {
        let index = pos / 16;
        if index != self.block_index {
            self.block = chacha20_block(&self.seed, index);
            self.block_index = index;
        }
        self.block[(pos % 16) as usize]
    }

    /// Words `pos` and `pos + 1` as a little-endian u64.
    #[inline]
    pub fn dword(&mut self, pos: u64) -> u64 {
        self.word(pos) as u64 | (self.word(pos + 1) as u64) << 32
    }

    /// Fills `out` with the keystream from byte 0 (whole-vocabulary sweeps:
    /// token t's KGW value is bytes 2t..2t+2, its SynthID word bytes
    /// 4t..4t+4, its Gumbel value bytes 8t..8t+8).
    pub fn fill_keystream(&mut self, out: &mut [u8]) {
        ChaCha20Rng::from_seed(self.seed).fill_bytes(out);
    }

    /// KGW value of token `id`: the little-endian u16 at keystream bytes
    /// 2·id, 2·id+1 (half of word id/2).
    pub fn kgw_value(&mut self, id: u32) -> u16 {
        (self.word(id as u64 / 2) >> (16 * (id & 1))) as u16
    }

    /// Gumbel uniform of token `id` from words 2·id, 2·id+1.
    pub fn gumbel_uniform(&mut self, id: u32) -> GumbelUniform {
        GumbelUniform::from_u64(self.dword(2 * id as u64))
    }

    /// SynthID g-value bits of token `id`: word `id` (bit l = layer l).
    pub fn synthid_bits(&mut self, id: u32) -> u32 {
        self.word(id as u64)
    }

    /// SynthID's keyed sampling uniform in [0, 1), from words 2^32, 2^32+1.
    pub fn synthid_draw(&mut self) -> f64 {
        (self.dword(SYNTHID_DRAW_WORD) >> 11) as f64 * (1.0 / 9007199254740992.0)
    }
}

/// The Gumbel scheme's uniform r = (2j+1)/2^53 with j the top 52 bits of a
/// 64-bit keystream value; r lies strictly inside (0, 1) and 1 − r is exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GumbelUniform {
    j: u64,
}

impl GumbelUniform {
    /// From the 64-bit keystream value.
    pub fn from_u64(x: u64) -> GumbelUniform {
        GumbelUniform { j: x >> 12 }
    }
    /// r itself.
    pub fn r(self) -> f64 {
        (2 * self.j + 1) as f64 * (1.0 / 9007199254740992.0)
    }
    /// 1 − r, computed exactly.
    pub fn one_minus_r(self) -> f64 {
        (2 * ((1u64 << 52) - 1 - self.j) + 1) as f64 * (1.0 / 9007199254740992.0)
    }
    /// Detection score (spec §7, revision 7): −ln(1 − r) rounded down to a
    /// multiple of 2^−16, exactly ([`crate::gumbel_score`]). Exp(1) under
    /// the null to within 2^−16, never above it.
    pub fn score(self) -> f64 {
        self.score_units() as f64 / crate::GUMBEL_SCORE_UNITS as f64
    }
    /// The score in units of 2^−16: `floor(2^16 · (−ln(1 − r)))`.
    pub fn score_units(self) -> u64 {
        crate::gumbel_score::score_units((1u64 << 52) - 1 - self.j)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{KgwParams, TokenizerDigest};

    #[test]
    fn seeds_equal_the_hmac_crate() {
        use hmac::{Hmac, Mac};
        let key = Key::from_bytes([0xc3; 32]);
        let tok = TokenizerDigest::of_bytes(b"t");
        for (scheme, h) in [
            (Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap()), 2u32),
            (Scheme::Gumbel, 0),
            (Scheme::Kgw(KgwParams::new(0.1, 2.0).unwrap()), 6),
            (Scheme::Gumbel, 16),
        ] {
            let profile = Profile::new(scheme, h, tok.clone(), &key).unwrap();
            let schedule = Schedule::new(&profile, &key).unwrap();
            let window: Vec<u32> = (0..h).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
            let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.bytes()).unwrap();
            mac.update(&schedule.prefix);
            for id in &window {
                mac.update(&id.to_le_bytes());
            }
            let want: [u8; 32] = mac.finalize().into_bytes().into();
            assert_eq!(schedule.seed(&window), want, "h = {h}");
        }
    }

    #[test]
    fn sequential_and_random_access_agree() {
        let mut v = TokenValues::new(&[9u8; 32]);
        let mut bytes = vec![0u8; 1200];
        v.fill_keystream(&mut bytes);
        let word = |i: usize| u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
        for id in [0u32, 1, 15, 16, 17, 63, 64, 299] {
            assert_eq!(v.word(id as u64), word(id as usize));
            assert_eq!(v.synthid_bits(id), word(id as usize));
            let half = u16::from_le_bytes([bytes[2 * id as usize], bytes[2 * id as usize + 1]]);
            assert_eq!(v.kgw_value(id), half);
        }
        for id in [0u32, 7, 8, 9, 149] {
            let i = 8 * id as usize;
            assert_eq!(
                v.dword(2 * id as u64),
                u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap())
            );
        }
    }

    #[test]
    fn gumbel_uniform_edges() {
        let lo = GumbelUniform::from_u64(0);
        let hi = GumbelUniform::from_u64(u64::MAX);
        assert!(lo.r() > 0.0 && hi.r() < 1.0);
        assert_eq!(lo.r() + lo.one_minus_r(), 1.0);
        assert_eq!(hi.one_minus_r(), 1.0 / 9007199254740992.0);
        assert!(hi.score() > 36.0 && hi.score() < 37.0);
    }

    #[test]
    fn seed_depends_on_every_input() {
        let key = Key::from_bytes([3u8; 32]);
        let tok = TokenizerDigest::of_bytes(b"t");
        let kgw = |g| Scheme::Kgw(KgwParams::new(g, 2.0).unwrap());
        let a = Schedule::new(
            &Profile::new(kgw(0.25), 2, tok.clone(), &key).unwrap(),
            &key,
        )
        .unwrap();
        let b =
            Schedule::new(&Profile::new(kgw(0.5), 2, tok.clone(), &key).unwrap(), &key).unwrap();
        let c = Schedule::new(
            &Profile::new(Scheme::Gumbel, 2, tok.clone(), &key).unwrap(),
            &key,
        )
        .unwrap();
        let other = Key::from_bytes([4u8; 32]);
        let d = Schedule::new(&Profile::new(kgw(0.25), 2, tok, &other).unwrap(), &other).unwrap();
        let s = a.seed(&[1, 2]);
        assert_ne!(s, a.seed(&[2, 1]));
        assert_ne!(s, b.seed(&[1, 2]));
        assert_ne!(s, c.seed(&[1, 2]));
        assert_ne!(s, d.seed(&[1, 2]));
        assert_eq!(s, a.clone().seed(&[1, 2]));
    }
}
