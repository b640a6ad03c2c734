//! Corpus-level tests: many texts pooled into one test, with the
//! (window, token) de-duplication applied across the whole corpus, so the
//! exact null of one text (spec §8) holds for the pool.
//!
//! The work splits in two: collecting the corpus's distinct tuples
//! ([`TupleSet`], key-independent, exact) and scoring them under a key
//! ([`score_tuples`]), so one collection serves the real key and any number
//! of random keys (the key-swap null). Tuples are packed exactly into a
//! `u128` (token in the low 32 bits, the window above it), which limits this
//! first version to h ≤ 3: 16 bytes per distinct tuple once compacted, at
//! most twice that while collecting. Collections are sharded by window
//! ([`Shard`]): shards are disjoint, so per-shard de-duplication stays
//! exact and shard scores simply add up.

use provmark_watermark::{Key, Profile};
use rayon::prelude::*;

use crate::detect::{Detector, TestResult};
use crate::Error;

/// The largest context width a corpus test supports in this version.
pub const MAX_CORPUS_CONTEXT: usize = 3;

/// Tuples scored per deterministic summation chunk: the statistic is the
/// in-order sum of chunk sums, whatever the thread count.
const CHUNK: usize = 4096;

/// Which part of the tuple space a collection keeps: tuples whose window
/// hashes to `index` modulo `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// The whole tuple space.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; `None` unless index < count.
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    /// This shard's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many shards there are.
    pub fn count(&self) -> u32 {
        self.count
    }

    fn keeps(&self, packed: u128) -> bool {
        if self.count == 1 {
            return true;
        }
        // splitmix64 of the window bits: stable across machines and versions.
        let mut z = ((packed >> 32) as u64) ^ ((packed >> 96) as u64).rotate_left(17);
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z % self.count as u64) as u32 == self.index
    }
}

/// The distinct (window, token) tuples of a corpus (one shard of them).
#[derive(Clone, Debug)]
pub struct TupleSet {
    h: usize,
    shard: Shard,
    tuples: Vec<u128>,
    /// Length of the sorted, de-duplicated prefix of `tuples`.
    compacted: usize,
    texts: u64,
    positions: u64,
}

impl TupleSet {
    /// An empty set for context width `h`; [`Error::ContextTooWide`]
    /// beyond [`MAX_CORPUS_CONTEXT`].
    pub fn new(h: usize, shard: Shard) -> Result<TupleSet, Error> {
        check_context(h)?;
        Ok(TupleSet {
            h,
            shard,
            tuples: Vec::new(),
            compacted: 0,
            texts: 0,
            positions: 0,
        })
    }

    /// Adds one text's scorable positions (those with h preceding tokens).
    pub fn add_text(&mut self, ids: &[u32]) {
        self.texts += 1;
        let h = self.h;
        for end in h..ids.len() {
            let mut packed = 0u128;
            for &id in &ids[end - h..=end] {
                packed = (packed << 32) | id as u128;
            }
            self.positions += 1;
            if self.shard.keeps(packed) {
                self.tuples.push(packed);
            }
        }
        // Keep memory near the distinct count: compact when the unsorted
        // tail outgrows the sorted part.
        if self.tuples.len() > 2 * self.compacted.max(1 << 16) {
            self.compact();
        }
    }

    /// Reading mode (open-weight audits): adds one text whose tokens are
    /// `ids` and whose suspect model predicted `predicted[i]` as its top-1
    /// choice for position i given `ids[..i]`. The tuple of position i is
    /// the real window followed by the prediction (`predicted[0]` is
    /// ignored: nothing precedes position 0). [`Error::PredictionCount`]
    /// unless there is one prediction per token.
    pub fn add_predictions(&mut self, ids: &[u32], predicted: &[u32]) -> Result<(), Error> {
        self.add_predictions_from(ids, predicted, 0)
    }

    /// As [`TupleSet::add_predictions`], scoring only the positions from
    /// `first` on: `ids[..first]` is a prompt the text was read after
    /// (reading in the student's chat context, spec §8.2), whose tokens
    /// still form the windows of the first answer positions.
    pub fn add_predictions_from(
        &mut self,
        ids: &[u32],
        predicted: &[u32],
        first: usize,
    ) -> Result<(), Error> {
        if predicted.len() != ids.len() {
            return Err(Error::PredictionCount {
                predictions: predicted.len(),
                tokens: ids.len(),
            });
        }
        self.add_reading(ids, first, (first..ids.len()).map(|j| (j, predicted[j])));
        Ok(())
    }

    /// Reading mode (spec §8.2, revision 6): adds one text whose lab tokens
    /// are `lab`, answer from position `first`, read at `reads` — (lab
    /// position `j`, the suspect's prediction for it in lab ids) in
    /// increasing `j`. Position `j` is scored iff `j ≥ max(h, 1, first)`
    /// and its window is not the window of an earlier answer position of
    /// the text, read or not: there the earlier token was chosen under the
    /// same keyed values, and a model that copies it would score the key,
    /// not what it learned. Returns the positions skipped for that reason.
    pub fn add_reading(
        &mut self,
        lab: &[u32],
        first: usize,
        reads: impl IntoIterator<Item = (usize, u32)>,
    ) -> u64 {
        self.texts += 1;
        let h = self.h;
        let mut seen = ahash::AHashSet::new();
        let mut next = first.max(h);
        let mut repeats = 0;
        for (j, prediction) in reads {
            if j < next {
                continue;
            }
            for earlier in next..j {
                seen.insert(pack(&lab[earlier - h..earlier]));
            }
            next = j + 1;
            let window = pack(&lab[j - h..j]);
            let fresh = seen.insert(window);
            if j == 0 {
                continue;
            }
            // Every read position counts; only fresh windows are scored.
            self.positions += 1;
            if !fresh {
                repeats += 1;
                continue;
            }
            let packed = (window << 32) | prediction as u128;
            if self.shard.keeps(packed) {
                self.tuples.push(packed);
            }
        }
        if self.tuples.len() > 2 * self.compacted.max(1 << 16) {
            self.compact();
        }
        repeats
    }

    fn compact(&mut self) {
        self.tuples.par_sort_unstable();
        self.tuples.dedup();
        self.tuples.shrink_to_fit();
        self.compacted = self.tuples.len();
    }

    /// Adds another collection of the same h and shard (e.g. from another
    /// worker or an earlier run); [`Error::TupleSetMismatch`] otherwise.
    pub fn union(&mut self, mut other: TupleSet) -> Result<(), Error> {
        if other.h != self.h || other.shard != self.shard {
            return Err(Error::TupleSetMismatch {
                h: self.h,
                other_h: other.h,
                shard: self.shard,
                other_shard: other.shard,
            });
        }
        self.texts += other.texts;
        self.positions += other.positions;
        self.tuples.append(&mut other.tuples);
        self.compact();
        Ok(())
    }

    /// Sorts and de-duplicates; returns the collection's counts.
    pub fn finish(mut self) -> DistinctTuples {
        self.compact();
        DistinctTuples {
            h: self.h,
            shard: self.shard,
            texts: self.texts,
            positions: self.positions,
            tuples: self.tuples,
        }
    }
}

/// A finished collection: sorted distinct tuples and corpus counts.
#[derive(Clone, Debug)]
pub struct DistinctTuples {
    h: usize,
    shard: Shard,
    /// Texts added.
    pub texts: u64,
    /// Scorable positions seen (all shards).
    pub positions: u64,
    tuples: Vec<u128>,
}

impl DistinctTuples {
    /// Distinct tuples in this shard.
    pub fn len(&self) -> usize {
        self.tuples.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tuples.is_empty()
    }

    /// The shard.
    pub fn shard(&self) -> Shard {
        self.shard
    }
}

/// The statistic of a corpus (or of one shard) under one key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CorpusScore {
    /// Distinct tuples scored.
    pub scored: u64,
    /// Sum of their scores.
    pub statistic: f64,
}

impl CorpusScore {
    /// Adds the score of a disjoint shard.
    pub fn combine(self, other: CorpusScore) -> CorpusScore {
        CorpusScore {
            scored: self.scored + other.scored,
            statistic: self.statistic + other.statistic,
        }
    }

    /// The exact test (spec §8) of the pooled statistic.
    pub fn test(&self, detector: &Detector) -> Option<TestResult> {
        detector.test(self.scored, self.statistic)
    }
}

/// Scores every distinct tuple under `detector`'s key, on all cores; the
/// sum is deterministic (fixed chunks, summed in order).
/// [`Error::TuplesContextMismatch`] if the detector's h is not the tuples'.
pub fn score_tuples(detector: &Detector, tuples: &DistinctTuples) -> Result<CorpusScore, Error> {
    if detector.context_len() != tuples.h {
        return Err(Error::TuplesContextMismatch {
            tuples: tuples.h,
            profile: detector.context_len(),
        });
    }
    let h = tuples.h;
    let schedule = detector.schedule();
    let sums: Vec<f64> = tuples
        .tuples
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut sum = 0.0;
            let mut current: Option<(u128, provmark_watermark::TokenValues)> = None;
            let mut window = [0u32; MAX_CORPUS_CONTEXT];
            for &packed in chunk {
                let key = packed >> 32;
                if current.as_ref().is_none_or(|(k, _)| *k != key) {
                    for (i, w) in window[..h].iter_mut().enumerate() {
                        *w = (packed >> (32 * (h - i))) as u32;
                    }
                    current = Some((key, schedule.values(&window[..h])));
                }
                let (_, values) = current.as_mut().expect("set above");
                sum += schedule.token_score(values, packed as u32);
            }
            sum
        })
        .collect();
    let statistic: f64 = sums.iter().sum();
    if !is_exact_statistic(statistic) {
        return Err(Error::StatisticTooLarge);
    }
    Ok(CorpusScore {
        scored: tuples.tuples.len() as u64,
        statistic,
    })
}

/// The largest statistic a binary64 sum holds exactly: every score is a
/// multiple of 2^−16 (spec §7, revision 7), so sums below 2^37 are exact
/// in any order.
pub const MAX_EXACT_STATISTIC: f64 = (1u64 << 37) as f64;

/// Whether `statistic` is below [`MAX_EXACT_STATISTIC`], so that it (and
/// any sum of its parts) is the exact value spec §8 requires.
pub fn is_exact_statistic(statistic: f64) -> bool {
    statistic.abs() < MAX_EXACT_STATISTIC
}

/// Windows seen in the lab's own watermarked outputs: the filter Φ of a
/// corpus test keeps only suspect tuples whose window the lab actually
/// marked (Sander et al. 2024), which concentrates the evidence.
#[derive(Clone, Debug)]
pub struct WindowSet {
    h: usize,
    windows: Vec<u128>,
}

impl WindowSet {
    /// An empty set for context width `h`; [`Error::ContextTooWide`]
    /// beyond [`MAX_CORPUS_CONTEXT`].
    pub fn new(h: usize) -> Result<WindowSet, Error> {
        check_context(h)?;
        Ok(WindowSet {
            h,
            windows: Vec::new(),
        })
    }

    /// The windows of every position (with h preceding tokens) of `texts`.
    pub fn from_texts<'a>(
        h: usize,
        texts: impl IntoIterator<Item = &'a [u32]>,
    ) -> Result<WindowSet, Error> {
        let mut set = WindowSet::new(h)?;
        set.add_texts(texts);
        Ok(set.finish())
    }

    /// Adds the windows of more texts (compacting as it goes).
    pub fn add_texts<'a>(&mut self, texts: impl IntoIterator<Item = &'a [u32]>) {
        let h = self.h;
        for ids in texts {
            for end in h..ids.len() {
                self.windows.push(pack(&ids[end - h..end]));
            }
        }
        if self.windows.len() > 1 << 20 {
            self.compact();
        }
    }

    fn compact(&mut self) {
        self.windows.par_sort_unstable();
        self.windows.dedup();
    }

    /// Sorts and de-duplicates (needed before filtering).
    pub fn finish(mut self) -> WindowSet {
        self.compact();
        self
    }

    /// Distinct windows.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

fn check_context(h: usize) -> Result<(), Error> {
    if h > MAX_CORPUS_CONTEXT {
        return Err(Error::ContextTooWide {
            h,
            max: MAX_CORPUS_CONTEXT,
        });
    }
    Ok(())
}

fn pack(ids: &[u32]) -> u128 {
    ids.iter().fold(0u128, |acc, &id| (acc << 32) | id as u128)
}

impl DistinctTuples {
    /// Keeps only tuples whose window is in `filter`; returns how many were
    /// dropped. [`Error::FilterContextMismatch`] if their h differ.
    pub fn retain_windows(&mut self, filter: &WindowSet) -> Result<usize, Error> {
        if filter.h != self.h {
            return Err(Error::FilterContextMismatch {
                filter: filter.h,
                tuples: self.h,
            });
        }
        let before = self.tuples.len();
        self.tuples
            .retain(|t| filter.windows.binary_search(&(t >> 32)).is_ok());
        Ok(before - self.tuples.len())
    }
}

/// The key-swap null: the same distinct tuples scored under `keys` random
/// keys derived from a public `seed` (never from the real key). The
/// empirical p-value (1 + #{S_i ≥ S}) / (M + 1) needs no assumption about
/// the PRF; it can never fall below 1/(M + 1).
#[derive(Clone, Debug)]
pub struct KeySwapNull {
    /// The statistic under each random key, in key order.
    pub statistics: Vec<f64>,
    /// Random keys whose statistic reached the real key's.
    pub at_least: usize,
    /// (1 + at_least) / (M + 1).
    pub p_value: f64,
}

/// Key `i` of the key-swap null for `seed`: SHA-256 of a tag, the seed and i.
pub fn null_key(seed: u64, i: u64) -> Key {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"provmark/key-swap-null/1\0");
    h.update(seed.to_le_bytes());
    h.update(i.to_le_bytes());
    Key::from_bytes(h.finalize().into())
}

/// The detector of `profile`'s scheme, h and tokenizer under key `i` of the
/// key-swap null for `seed` ([`null_key`], via [`Profile::with_key`]).
pub fn null_detector(profile: &Profile, seed: u64, i: u64) -> Detector {
    let key = null_key(seed, i);
    Detector::new(&profile.with_key(&key), &key).expect("a profile made for this key")
}

/// Runs the key-swap null for `profile`'s scheme and h over `tuples`;
/// `observed` is the real key's score. `progress` is called after each key.
/// Fails as [`score_tuples`] does.
pub fn key_swap_null(
    profile: &Profile,
    tuples: &DistinctTuples,
    observed: &CorpusScore,
    keys: usize,
    seed: u64,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<KeySwapNull, Error> {
    let mut statistics = Vec::with_capacity(keys);
    for i in 0..keys {
        let detector = null_detector(profile, seed, i as u64);
        statistics.push(score_tuples(&detector, tuples)?.statistic);
        progress(i + 1);
    }
    let p = crate::attribution::key_swap_p(&statistics, observed.statistic);
    Ok(KeySwapNull {
        p_value: p.p_value,
        statistics,
        at_least: p.at_least,
    })
}

/// The corpus test kept up to date text by text, for progress displays of
/// long audits: the same distinct tuples as a [`TupleSet`] over the same
/// texts (so the final count agrees exactly; the sum may differ in the last
/// bits because it is added in another order). Holds every distinct tuple
/// in memory (16 bytes plus hash overhead each).
pub struct RunningTest<'d> {
    detector: &'d Detector,
    seen: ahash::AHashSet<u128>,
    score: CorpusScore,
}

impl<'d> RunningTest<'d> {
    /// An empty running test under `detector`'s key.
    pub fn new(detector: &'d Detector) -> RunningTest<'d> {
        RunningTest {
            detector,
            seen: ahash::AHashSet::new(),
            score: CorpusScore {
                scored: 0,
                statistic: 0.0,
            },
        }
    }

    /// Adds one text's new distinct tuples.
    pub fn add_text(&mut self, ids: &[u32]) {
        let h = self.detector.context_len();
        let scored = self.detector.score(&[], ids);
        for (&pos, &s) in scored.positions.iter().zip(&scored.scores) {
            if self.seen.insert(pack(&ids[pos - h..=pos])) {
                self.score.scored += 1;
                self.score.statistic += s;
            }
        }
    }

    /// The pooled score so far.
    pub fn score(&self) -> CorpusScore {
        self.score
    }

    /// The exact test so far (`None` before anything was scored).
    pub fn test(&self) -> Option<TestResult> {
        self.score.test(self.detector)
    }
}
