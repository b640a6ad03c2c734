//! The keyed pseudo-random schedule (spec §4): a 32-byte seed per context
//! window, and a ChaCha20 keystream from that seed that gives every token id
//! its values at a word position derived from the id alone.

use hmac::{Hmac, Mac};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::Sha256;

use crate::key::Key;
use crate::profile::{Profile, Scheme};
use crate::{Error, SPEC_VERSION};

/// Seed of one context window: HMAC-SHA256 output.
pub type Seed = [u8; 32];

/// Word position of SynthID's keyed sampling uniform (past every token's word).
pub const SYNTHID_DRAW_WORD: u64 = 1 << 32;

/// The keyed PRF of one profile. Cheap to clone; holds the HMAC state already
/// keyed and fed with the message prefix, so a seed costs two compressions.
#[derive(Clone)]
pub struct Schedule {
    prefixed: Hmac<Sha256>,
    scheme: Scheme,
    context: usize,
}

impl Schedule {
    /// The schedule of `profile` under `key`; fails if the key is not the
    /// profile's.
    pub fn new(profile: &Profile, key: &Key) -> Result<Schedule, Error> {
        profile.check_key(key)?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.bytes())
            .expect("HMAC accepts any key length");
        let scheme = *profile.scheme();
        let name = scheme.name();
        mac.update(SPEC_VERSION.as_bytes());
        mac.update(b"/seed\0");
        mac.update(&[name.len() as u8]);
        mac.update(name.as_bytes());
        mac.update(&scheme.prf_params());
        mac.update(&(profile.context() as u32).to_le_bytes());
        Ok(Schedule {
            prefixed: mac,
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
        let mut mac = self.prefixed.clone();
        for id in window {
            mac.update(&id.to_le_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// The keystream of a context window.
    pub fn values(&self, window: &[u32]) -> TokenValues {
        TokenValues::new(&self.seed(window))
    }
}

/// Random access to the keystream words of one seed.
pub struct TokenValues {
    rng: ChaCha20Rng,
}

impl TokenValues {
    /// Keystream of ChaCha20 keyed with `seed`, stream 0, counter 0.
    pub fn new(seed: &Seed) -> TokenValues {
        TokenValues {
            rng: ChaCha20Rng::from_seed(*seed),
        }
    }

    /// Keystream word `pos` (little-endian u32 at byte 4·pos).
    pub fn word(&mut self, pos: u64) -> u32 {
        self.rng.set_word_pos(pos as u128);
        self.rng.next_u32()
    }

    /// Words `pos` and `pos + 1` as a little-endian u64.
    pub fn dword(&mut self, pos: u64) -> u64 {
        self.rng.set_word_pos(pos as u128);
        self.rng.next_u64()
    }

    /// Fills `out[i]` with word `i` (for whole-vocabulary steps).
    pub fn fill_words(&mut self, out: &mut [u32]) {
        self.rng.set_word_pos(0);
        for w in out.iter_mut() {
            *w = self.rng.next_u32();
        }
    }

    /// Fills `out[i]` with the u64 at words 2i, 2i+1.
    pub fn fill_dwords(&mut self, out: &mut [u64]) {
        self.rng.set_word_pos(0);
        for w in out.iter_mut() {
            *w = self.rng.next_u64();
        }
    }

    /// KGW value of token `id`: word `id`.
    pub fn kgw_value(&mut self, id: u32) -> u32 {
        self.word(id as u64)
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
    /// Detection score −ln(1 − r): Exp(1) under the null.
    pub fn score(self) -> f64 {
        -self.one_minus_r().ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{KgwParams, TokenizerDigest};

    #[test]
    fn sequential_and_random_access_agree() {
        let mut v = TokenValues::new(&[9u8; 32]);
        let mut words = vec![0u32; 300];
        v.fill_words(&mut words);
        for id in [0u32, 1, 15, 16, 17, 63, 64, 299] {
            assert_eq!(v.kgw_value(id), words[id as usize]);
        }
        let mut dwords = vec![0u64; 150];
        v.fill_dwords(&mut dwords);
        for id in [0u32, 7, 8, 9, 149] {
            assert_eq!(v.dword(2 * id as u64), dwords[id as usize]);
            assert_eq!(
                dwords[id as usize],
                words[2 * id as usize] as u64 | (words[2 * id as usize + 1] as u64) << 32
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
