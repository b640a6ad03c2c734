//! A seeded synthetic language model with controlled entropy: at every
//! position the next-token distribution is a Zipf law over the vocabulary,
//! its ranks shuffled by a hash of the last two tokens. It stands in for a
//! real model in power experiments, where only the entropy per token matters.

/// Zipf-like next-token distributions of a chosen entropy.
pub struct ZipfLm {
    vocab: usize,
    exponent: f64,
    rank_logits: Vec<f32>,
}

impl ZipfLm {
    /// Vocabulary `vocab` (a power of two) and Zipf exponent `s`.
    pub fn new(vocab: usize, exponent: f64) -> ZipfLm {
        assert!(vocab.is_power_of_two(), "vocab must be a power of two");
        let rank_logits = (0..vocab)
            .map(|r| (-exponent * ((r + 1) as f64).ln()) as f32)
            .collect();
        ZipfLm {
            vocab,
            exponent,
            rank_logits,
        }
    }

    /// The exponent whose distribution has `bits` of entropy per token.
    pub fn with_entropy(vocab: usize, bits: f64) -> ZipfLm {
        let (mut lo, mut hi) = (0.0f64, 20.0f64);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if ZipfLm::new(vocab, mid).entropy_bits() > bits {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        ZipfLm::new(vocab, 0.5 * (lo + hi))
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Zipf exponent.
    pub fn exponent(&self) -> f64 {
        self.exponent
    }

    /// Shannon entropy of each next-token distribution, in bits.
    pub fn entropy_bits(&self) -> f64 {
        let max = self.rank_logits[0] as f64;
        let w: Vec<f64> = self
            .rank_logits
            .iter()
            .map(|&l| (l as f64 - max).exp())
            .collect();
        let z: f64 = w.iter().sum();
        -w.iter()
            .map(|&x| x / z)
            .filter(|&p| p > 0.0)
            .map(|p| p * p.log2())
            .sum::<f64>()
    }

    /// Writes the logits for the next token after `context` into `out`.
    pub fn logits(&self, context: &[u32], out: &mut [f32]) {
        let mut h = 0x9e37_79b9_7f4a_7c15u64;
        for &t in context.iter().rev().take(2) {
            h = (h ^ t as u64).wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
        }
        let mask = self.vocab as u64 - 1;
        let a = (h | 1) & mask;
        let b = (h >> 32) & mask;
        for (rank, &l) in self.rank_logits.iter().enumerate() {
            let token = (a.wrapping_mul(rank as u64).wrapping_add(b)) & mask;
            out[token as usize] = l;
        }
    }
}
