//! The serve-time embedding API: an [`Embedder`] per profile, and from it
//! one [`ResponseEmbedder`] per response, called once per decode step.

use std::collections::HashSet;
use std::sync::Arc;

use rand_core::RngCore;

use crate::key::Key;
use crate::profile::{Profile, Scheme, MAX_CONTEXT};
use crate::sampling::{Candidates, SamplingConfig};
use crate::schedule::{GumbelUniform, Schedule, TokenValues};
use crate::Error;

/// The context windows already marked in one response (spec §6.1): an
/// exact set, a few dozen bytes per generated token.
#[derive(Clone, Debug, Default)]
struct MarkedWindows {
    seen: HashSet<[u32; MAX_CONTEXT as usize]>,
}

impl MarkedWindows {
    /// Records `window`; `false` if it was already there.
    fn insert(&mut self, window: &[u32]) -> bool {
        let mut key = [u32::MAX; MAX_CONTEXT as usize];
        key[..window.len()].copy_from_slice(window);
        self.seen.insert(key)
    }
}

/// How a response treats a position whose context window it has already
/// marked (spec §6.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RepeatedWindows {
    /// The spec's rule, and the default: the position is drawn like a
    /// position without a window (with h = 0 every position is marked).
    /// Repeated windows add nothing to detection (their tuples are
    /// de-duplicated), and re-marking them makes Gumbel and SynthID repeat
    /// themselves.
    #[default]
    Skip,
    /// Every position with a full window is marked, even when its window
    /// repeats (the rule before spec revision 2). Gumbel and SynthID then
    /// repeat their choice and can lock a response into a loop; serving
    /// must not use this. It exists so experiments recorded with it
    /// (`bench/`) and tests that replay one window many times reproduce.
    Remark,
}

/// Embeds one profile's watermark: the keyed schedule, shared. Cheap to
/// clone and `Send + Sync`; it does no work itself: each response gets its
/// own [`ResponseEmbedder`] from [`Embedder::response`].
#[derive(Clone)]
pub struct Embedder {
    schedule: Arc<Schedule>,
}

impl Embedder {
    /// An embedder for `profile` under `key` (which must be the profile's
    /// key; [`Error::KeyMismatch`] otherwise).
    ///
    /// Refuses a profile that [`Profile::check_embeddable`] refuses (gumbel
    /// or synthid with h = 0); such a profile can still be detected
    /// ([`Schedule::new`] accepts it).
    pub fn new(profile: &Profile, key: &Key) -> Result<Embedder, Error> {
        profile.check_embeddable()?;
        Ok(Embedder {
            schedule: Arc::new(Schedule::new(profile, key)?),
        })
    }

    /// The keyed schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The handle for one new response, following spec §6.1 (repeated
    /// windows are not marked again). Owned and `Send`: keep it with the
    /// response's state (e.g. one per sequence in a batching engine) and
    /// call [`ResponseEmbedder::next_token`] at each of its decode steps.
    pub fn response(&self) -> ResponseEmbedder {
        self.response_with(RepeatedWindows::Skip)
    }

    /// [`Embedder::response`] with an explicit rule for repeated windows
    /// (see [`RepeatedWindows::Remark`] before using it).
    pub fn response_with(&self, repeats: RepeatedWindows) -> ResponseEmbedder {
        ResponseEmbedder {
            schedule: Arc::clone(&self.schedule),
            repeats,
            marked: MarkedWindows::default(),
            candidates: Candidates::default(),
            biased: Vec::new(),
            keystream: Vec::new(),
            bits: Vec::new(),
            last_marked: false,
            marked_positions: 0,
        }
    }
}

/// Embeds the watermark into the decode steps of one response: owns the
/// windows this response has already marked (spec §6.1) and scratch
/// buffers, so after the first step at a vocabulary size it allocates
/// nothing but the marked-window set's growth (none at all with
/// [`RepeatedWindows::Remark`], or after [`ResponseEmbedder::reset`] once
/// the set has grown). One response at a time: use one per concurrent
/// response.
pub struct ResponseEmbedder {
    schedule: Arc<Schedule>,
    repeats: RepeatedWindows,
    marked: MarkedWindows,
    candidates: Candidates,
    biased: Vec<f32>,
    keystream: Vec<u8>,
    bits: Vec<u32>,
    last_marked: bool,
    marked_positions: usize,
}

/// Candidate counts below vocab / RANDOM_ACCESS_RATIO are read by random
/// access (one 4-block refill each) instead of one sweep of the keystream.
const RANDOM_ACCESS_RATIO: usize = 64;

impl ResponseEmbedder {
    /// The keyed schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The rule for repeated windows this handle follows.
    pub fn repeats(&self) -> RepeatedWindows {
        self.repeats
    }

    /// Distinct windows marked so far in this response (always 0 with
    /// [`RepeatedWindows::Remark`], which does not track them).
    pub fn marked_windows(&self) -> usize {
        self.marked.seen.len()
    }

    /// Whether the key could change the token chosen at the last
    /// [`ResponseEmbedder::next_token`] (spec §6.2): the position had a new
    /// window and the keyed rule had a choice: gumbel and synthid, at least
    /// two candidates; kgw, at least two candidates after the bias, or (one
    /// candidate, greedy) a second token whose raw logit lies within δ of
    /// the largest. A position the key could not change carries no mark.
    pub fn last_marked(&self) -> bool {
        self.last_marked
    }

    /// Decode steps of this response whose token the key could change
    /// ([`ResponseEmbedder::last_marked`]), counted since the handle was made
    /// or [`ResponseEmbedder::reset`]. Includes a final stop token if one
    /// was chosen; callers that drop it count `last_marked` themselves.
    pub fn marked_positions(&self) -> usize {
        self.marked_positions
    }

    /// Starts a new response with this handle: forgets the marked windows
    /// and the marked-position count, and keeps every buffer's capacity (a
    /// worker that serves responses one after another then stops
    /// allocating).
    pub fn reset(&mut self) {
        self.marked.seen.clear();
        self.marked_positions = 0;
        self.last_marked = false;
    }

    /// The context window for the next position, or `None` when fewer than h
    /// tokens precede it (such positions are neither marked nor scored).
    fn window<'a>(&self, context: &'a [u32]) -> Option<&'a [u32]> {
        let h = self.schedule.context_len();
        (context.len() >= h).then(|| &context[context.len() - h..])
    }

    /// KGW: adds δ to the logit of every green token of the window ending
    /// `context`, in place (reading mode: a model that learned the bias).
    /// A no-op for the other schemes and when the context is shorter than
    /// h; it records no marked window.
    pub fn bias_logits(&mut self, context: &[u32], logits: &mut [f32]) {
        if let Some(window) = self.window(context) {
            self.bias_window(window, logits);
        }
    }

    fn bias_window(&mut self, window: &[u32], logits: &mut [f32]) {
        let Scheme::Kgw(params) = *self.schedule.scheme() else {
            return;
        };
        let mut values = self.schedule.values(window);
        self.keystream.resize(2 * logits.len(), 0);
        values.fill_keystream(&mut self.keystream);
        let threshold = params.threshold();
        let delta = params.delta() as f32;
        for (logit, pair) in logits.iter_mut().zip(self.keystream.chunks_exact(2)) {
            let green = (u16::from_le_bytes([pair[0], pair[1]]) as u32) < threshold;
            *logit += if green { delta } else { 0.0 };
        }
    }

    /// One decode step: picks the next token from the model's raw `logits`
    /// (index = token id) given every preceding token id in `context`
    /// (prompt, then the response so far). `rng` supplies ordinary sampling
    /// randomness (KGW, positions with a short context, and repeated
    /// windows under [`RepeatedWindows::Skip`]).
    ///
    /// Panics if `logits` is empty.
    pub fn next_token<R: RngCore + ?Sized>(
        &mut self,
        context: &[u32],
        logits: &[f32],
        cfg: &SamplingConfig,
        rng: &mut R,
    ) -> u32 {
        let window = self.window(context);
        let window = match self.repeats {
            RepeatedWindows::Remark => window,
            // h = 0 has a single, empty window: every position is marked.
            RepeatedWindows::Skip => {
                let marked = &mut self.marked;
                window.filter(|w| w.is_empty() || marked.insert(w))
            }
        };
        self.choose(window, logits, cfg, rng)
    }

    /// Batched form: one decode step of each response in `responses`;
    /// `logits` holds one row of `vocab` logits per response, row i for
    /// `contexts[i]` drawn with `rngs[i]`; tokens are written to `out`.
    /// The same as calling [`ResponseEmbedder::next_token`] row by row.
    ///
    /// Panics unless `responses`, `contexts`, `rngs` and `out` have the
    /// same length and `logits` holds that many rows.
    pub fn next_tokens<R: RngCore>(
        responses: &mut [ResponseEmbedder],
        contexts: &[&[u32]],
        logits: &[f32],
        vocab: usize,
        cfg: &SamplingConfig,
        rngs: &mut [R],
        out: &mut [u32],
    ) {
        assert_eq!(
            logits.len(),
            contexts.len() * vocab,
            "one row of logits per context"
        );
        assert!(
            responses.len() == contexts.len()
                && rngs.len() == contexts.len()
                && out.len() == contexts.len()
        );
        for (i, (response, ctx)) in responses.iter_mut().zip(contexts).enumerate() {
            let row = &logits[i * vocab..(i + 1) * vocab];
            out[i] = response.next_token(ctx, row, cfg, &mut rngs[i]);
        }
    }

    fn choose<R: RngCore + ?Sized>(
        &mut self,
        window: Option<&[u32]>,
        logits: &[f32],
        cfg: &SamplingConfig,
        rng: &mut R,
    ) -> u32 {
        assert!(!logits.is_empty(), "a decode step needs at least one logit");
        let mut biased = std::mem::take(&mut self.biased);
        let raw = logits;
        let logits = match window {
            Some(w) if matches!(self.schedule.scheme(), Scheme::Kgw(_)) => {
                biased.clear();
                biased.extend_from_slice(logits);
                self.bias_window(w, &mut biased);
                &biased[..]
            }
            _ => logits,
        };
        self.candidates.build(logits, cfg);
        self.last_marked = window.is_some()
            && (self.candidates.ids.len() >= 2
                || match self.schedule.scheme() {
                    Scheme::Kgw(p) => greedy_choice_open(raw, p.delta() as f32),
                    _ => false,
                });
        self.marked_positions += self.last_marked as usize;
        let token = match (window, *self.schedule.scheme()) {
            (Some(w), Scheme::Gumbel) => {
                let mut values = self.schedule.values(w);
                self.choose_gumbel(&mut values, logits.len())
            }
            (Some(w), Scheme::SynthId(p)) => {
                let mut values = self.schedule.values(w);
                self.choose_synthid(&mut values, logits.len(), p.layers())
            }
            _ => self.candidates.draw(uniform(rng)),
        };
        self.biased = biased;
        token
    }

    /// Aaronson's rule: the candidate maximising r^(1/p), i.e. ln(r)/p;
    /// ties go to the smaller id.
    fn choose_gumbel(&mut self, values: &mut TokenValues, vocab: usize) -> u32 {
        let c = &self.candidates;
        let sweep = c.ids.len() * RANDOM_ACCESS_RATIO / 8 >= vocab;
        if sweep {
            self.keystream.resize(8 * vocab, 0);
            values.fill_keystream(&mut self.keystream);
        }
        let mut best = (f64::NEG_INFINITY, c.ids[0]);
        for (&id, &p) in c.ids.iter().zip(&c.probs) {
            let raw = if sweep {
                let i = 8 * id as usize;
                u64::from_le_bytes(self.keystream[i..i + 8].try_into().expect("8 bytes"))
            } else {
                values.dword(2 * id as u64)
            };
            let r = GumbelUniform::from_u64(raw).r();
            // ln(r) ≤ r − 1: skip the logarithm when even the bound loses.
            if (r - 1.0) / p < best.0 {
                continue;
            }
            let key = r.ln() / p;
            if key > best.0 {
                best = (key, id);
            }
        }
        best.1
    }

    /// SynthID's m-layer two-candidate tournament in closed form: after
    /// layer l, q(x) ← q(x)·(1 + g_l(x) − Σ_y q(y) g_l(y)); then a keyed draw.
    fn choose_synthid(&mut self, values: &mut TokenValues, vocab: usize, layers: u32) -> u32 {
        let n = self.candidates.ids.len();
        let sweep = n * RANDOM_ACCESS_RATIO / 4 >= vocab;
        if sweep {
            self.keystream.resize(4 * vocab, 0);
            values.fill_keystream(&mut self.keystream);
        }
        let ids = &self.candidates.ids;
        let bits = &mut self.bits;
        bits.resize(n, 0);
        for (b, &id) in bits.iter_mut().zip(ids) {
            *b = if sweep {
                let i = 4 * id as usize;
                u32::from_le_bytes(self.keystream[i..i + 4].try_into().expect("4 bytes"))
            } else {
                values.synthid_bits(id)
            };
        }
        let probs = &mut self.candidates.probs;
        // One pass per layer: apply layer l and accumulate Σ q·g for layer
        // l + 1 (four partial sums, so the additions pipeline).
        let layer_mean = |probs: &[f64], layer: u32| -> f64 {
            let mut acc = [0f64; 4];
            for (p4, b4) in probs.chunks(4).zip(bits.chunks(4)) {
                for (k, (p, b)) in p4.iter().zip(b4).enumerate() {
                    acc[k] += p * ((b >> layer) & 1) as f64;
                }
            }
            acc.iter().sum()
        };
        let mut mean = layer_mean(probs, 0);
        for layer in 0..layers {
            let (lose, win) = (1.0 - mean, 2.0 - mean);
            let next = layer + 1;
            let mut acc = [0f64; 4];
            for (p4, b4) in probs.chunks_mut(4).zip(bits.chunks(4)) {
                for (k, (p, b)) in p4.iter_mut().zip(b4).enumerate() {
                    *p *= if (b >> layer) & 1 == 1 { win } else { lose };
                    if next < 32 {
                        acc[k] += *p * ((b >> next) & 1) as f64;
                    }
                }
            }
            mean = acc.iter().sum();
        }
        self.candidates.draw(values.synthid_draw())
    }
}

/// Whether a second raw logit lies within `delta` of the largest: then a
/// kgw bias of δ can change which token a one-candidate step takes.
fn greedy_choice_open(raw: &[f32], delta: f32) -> bool {
    let max = raw.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    raw.iter().filter(|&&l| l > max - delta).take(2).count() >= 2
}

pub(crate) fn uniform<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / 9007199254740992.0)
}
