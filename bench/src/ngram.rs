//! A token n-gram language model with interpolated Kneser–Ney smoothing
//! (Chen & Goodman 1998, one discount per order): the cheapest student a
//! distiller can train on a teacher's answers, over the teacher's tokenizer.
//!
//! Sampling is exact without building the distribution over the vocabulary:
//! interpolated KN at order k is a mixture of "the discounted observed
//! continuations of this context" and "the order k−1 model", so a draw walks
//! down the orders, stopping at each with the probability of its own mass.

use std::collections::HashMap;

use rand_chacha::rand_core::RngCore;

/// Contexts hold at most this many tokens (order ≤ 4), so a context and
/// its length pack into one u64.
const MAX_CONTEXT: usize = 3;

#[derive(Default)]
struct Continuations {
    /// (token, count) pairs, sorted by token.
    counts: Vec<(u32, u32)>,
    total: u64,
}

impl Continuations {
    fn add(&mut self, token: u32, by: u32) {
        match self.counts.binary_search_by_key(&token, |&(t, _)| t) {
            Ok(i) => self.counts[i].1 += by,
            Err(i) => self.counts.insert(i, (token, by)),
        }
        self.total += by as u64;
    }

    fn count(&self, token: u32) -> u32 {
        self.counts
            .binary_search_by_key(&token, |&(t, _)| t)
            .map(|i| self.counts[i].1)
            .unwrap_or(0)
    }
}

/// A trained interpolated Kneser–Ney model.
pub struct KneserNey {
    order: usize,
    vocab: usize,
    /// `levels[k]`: contexts of k tokens → continuations. Level `order − 1`
    /// holds raw counts; lower levels hold continuation counts (how many
    /// distinct tokens precede the (context, token) pair).
    levels: Vec<HashMap<u64, Continuations>>,
    /// Discount per level.
    discounts: Vec<f64>,
    /// Level-0 tokens by decreasing count (ties: smaller id first): the
    /// order of their lowest-order probability.
    unigram_rank: Vec<u32>,
}

fn context_key(ctx: &[u32]) -> u64 {
    ctx.iter()
        .fold(ctx.len() as u64, |k, &t| k << 16 | t as u64)
}

impl KneserNey {
    /// Trains an `order`-gram model (2..=4) on token sequences over a
    /// vocabulary of `vocab` ids (< 65,536). Each sequence is padded on the
    /// left with `bos` so its first tokens have contexts.
    pub fn train<'a>(
        order: usize,
        vocab: usize,
        bos: u32,
        sequences: impl IntoIterator<Item = &'a [u32]>,
    ) -> KneserNey {
        assert!((2..=MAX_CONTEXT + 1).contains(&order), "order 2..=4");
        assert!(vocab <= 1 << 16, "ids fit 16 bits");
        let mut levels: Vec<HashMap<u64, Continuations>> =
            (0..order).map(|_| HashMap::new()).collect();
        // Highest order: raw counts of (context, token).
        let top = order - 1;
        let mut padded = Vec::new();
        for seq in sequences {
            padded.clear();
            padded.extend(std::iter::repeat_n(bos, top));
            padded.extend_from_slice(seq);
            for i in top..padded.len() {
                levels[top]
                    .entry(context_key(&padded[i - top..i]))
                    .or_default()
                    .add(padded[i], 1);
            }
        }
        // Lower orders: N1+(• ctx w) — each distinct (longer context, w)
        // adds one to its suffix (ctx, w).
        for k in (0..top).rev() {
            let mut lower: HashMap<u64, Continuations> = HashMap::new();
            for (&key, cont) in &levels[k + 1] {
                // Drop the oldest token of the (k+1)-token context.
                let suffix = key & ((1u64 << (16 * k)) - 1);
                let suffix_key = (k as u64) << (16 * k) | suffix;
                let entry = lower.entry(suffix_key).or_default();
                for &(t, _) in &cont.counts {
                    entry.add(t, 1);
                }
            }
            levels[k] = lower;
        }
        let discounts = levels
            .iter()
            .map(|level| {
                let (mut n1, mut n2) = (0f64, 0f64);
                for c in level.values() {
                    for &(_, n) in &c.counts {
                        match n {
                            1 => n1 += 1.0,
                            2 => n2 += 1.0,
                            _ => {}
                        }
                    }
                }
                if n1 + n2 == 0.0 {
                    0.5
                } else {
                    (n1 / (n1 + 2.0 * n2)).clamp(0.1, 0.9)
                }
            })
            .collect();
        let mut unigram_rank: Vec<(u32, u32)> = levels[0]
            .get(&0)
            .map(|c| c.counts.clone())
            .unwrap_or_default();
        unigram_rank.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        KneserNey {
            order,
            vocab,
            levels,
            discounts,
            unigram_rank: unigram_rank.into_iter().map(|(t, _)| t).collect(),
        }
    }

    /// The model's order n.
    pub fn order(&self) -> usize {
        self.order
    }

    fn level_context<'s>(&'s self, history: &[u32], k: usize) -> Option<&'s Continuations> {
        if history.len() < k {
            return None;
        }
        self.levels[k].get(&context_key(&history[history.len() - k..]))
    }

    /// P(token | history) under interpolated KN; `history` must already be
    /// padded (the caller's context, at least order − 1 tokens when known).
    pub fn probability(&self, history: &[u32], token: u32) -> f64 {
        // Bottom: uniform over the vocabulary.
        let mut p = 1.0 / self.vocab as f64;
        for k in 0..self.order {
            let Some(c) = self.level_context(history, k) else {
                continue;
            };
            let d = self.discounts[k];
            let total = c.total as f64;
            let own = (c.count(token) as f64 - d).max(0.0) / total;
            let backoff = d * c.counts.len() as f64 / total;
            p = own + backoff * p;
        }
        p
    }

    /// Draws the next token after `history`.
    pub fn sample<R: RngCore>(&self, history: &[u32], rng: &mut R) -> u32 {
        for k in (0..self.order).rev() {
            let Some(c) = self.level_context(history, k) else {
                continue;
            };
            let d = self.discounts[k];
            let total = c.total as f64;
            let own_mass = 1.0 - d * c.counts.len() as f64 / total;
            let u = unit(rng);
            if u < own_mass {
                // Proportional to (count − d) among this context's tokens.
                let mut x = unit(rng) * (total - d * c.counts.len() as f64);
                for &(t, n) in &c.counts {
                    x -= n as f64 - d;
                    if x < 0.0 {
                        return t;
                    }
                }
                return c.counts.last().unwrap().0;
            }
        }
        (rng.next_u64() % self.vocab as u64) as u32
    }

    /// A free-running answer: starts from the padding the model was trained
    /// with (`order − 1` copies of `bos`) and draws until `end` (not
    /// included) or `max_tokens` tokens.
    pub fn generate<R: RngCore>(
        &self,
        bos: u32,
        end: u32,
        max_tokens: usize,
        rng: &mut R,
    ) -> Vec<u32> {
        let pad = self.order - 1;
        let mut history = vec![bos; pad];
        while history.len() - pad < max_tokens {
            let t = self.sample(&history, rng);
            if t == end {
                break;
            }
            history.push(t);
        }
        history.split_off(pad)
    }

    /// The most probable next token after `history` (ties: smallest id).
    /// Candidates: the tokens observed after a non-empty suffix of the
    /// history, and the best-ranked unigram outside them (every other token
    /// gets only lower-order mass, which orders them like the unigram rank).
    pub fn top1(&self, history: &[u32]) -> u32 {
        let mut best = (f64::NEG_INFINITY, 0u32);
        let mut consider = |t: u32| {
            let p = self.probability(history, t);
            if p > best.0 || (p == best.0 && t < best.1) {
                best = (p, t);
            }
        };
        let mut seen = std::collections::HashSet::new();
        for k in 1..self.order {
            if let Some(c) = self.level_context(history, k) {
                for &(t, _) in &c.counts {
                    if seen.insert(t) {
                        consider(t);
                    }
                }
            }
        }
        match self.unigram_rank.iter().find(|t| !seen.contains(t)) {
            Some(&t) => consider(t),
            None if seen.is_empty() => consider(0),
            None => {}
        }
        best.1
    }
}

fn unit<R: RngCore>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn model() -> KneserNey {
        let seqs: Vec<Vec<u32>> = vec![
            vec![1, 2, 3, 4, 1, 2, 3, 5],
            vec![2, 3, 4, 4, 1, 2, 6],
            vec![7, 1, 2, 3, 4],
        ];
        KneserNey::train(3, 10, 0, seqs.iter().map(|s| s.as_slice()))
    }

    #[test]
    fn probabilities_sum_to_one() {
        let m = model();
        for history in [vec![0, 0], vec![1, 2], vec![2, 3], vec![9, 9], vec![4, 4]] {
            let total: f64 = (0..10).map(|t| m.probability(&history, t)).sum();
            assert!((total - 1.0).abs() < 1e-12, "{history:?}: {total}");
        }
    }

    #[test]
    fn sampling_matches_probabilities() {
        let m = model();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let history = [1u32, 2];
        let n = 200_000;
        let mut counts = [0usize; 10];
        for _ in 0..n {
            counts[m.sample(&history, &mut rng) as usize] += 1;
        }
        for t in 0..10u32 {
            let p = m.probability(&history, t);
            let f = counts[t as usize] as f64 / n as f64;
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!((f - p).abs() < 5.0 * sd + 1e-4, "token {t}: {f} vs {p}");
        }
    }

    #[test]
    fn top1_is_the_argmax() {
        let m = model();
        for history in [vec![1, 2], vec![2, 3], vec![3, 4], vec![9, 9]] {
            let argmax = (0..10u32)
                .max_by(|&a, &b| {
                    m.probability(&history, a)
                        .total_cmp(&m.probability(&history, b))
                        .then(b.cmp(&a))
                })
                .unwrap();
            assert_eq!(m.top1(&history), argmax, "{history:?}");
        }
    }
}
