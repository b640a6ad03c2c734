//! A small GPT-style transformer trained with candle on CPU: the neural
//! student of the distillation experiment. It is trained from scratch on
//! the teacher's token ids (over the sub-vocabulary the training data uses,
//! so the output layer stays small) and then either answers prompts
//! (black-box mode) or reads the lab's texts (reading mode).
//!
//! Weights are initialised from a seeded ChaCha stream (candle's CPU random
//! numbers cannot be seeded), so a run is reproducible on the same machine.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Shape and training settings.
#[derive(Clone, Copy, Debug)]
pub struct TinyConfig {
    /// Width of the residual stream.
    pub width: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads (divides `width`).
    pub heads: usize,
    /// Longest context in tokens.
    pub context: usize,
    /// Optimizer steps.
    pub steps: usize,
    /// Sequences per step.
    pub batch: usize,
    /// Peak learning rate (AdamW, linear decay to a tenth).
    pub learning_rate: f64,
    /// Most frequent training tokens given their own class; the rest share
    /// one "other" class (never predicted), which keeps the output layer,
    /// the bulk of the cost, small.
    pub vocab: usize,
}

struct Block {
    ln1: (Var, Var),
    qkv: (Var, Var),
    proj: (Var, Var),
    ln2: (Var, Var),
    fc: (Var, Var),
    out: (Var, Var),
}

/// A trained student.
pub struct TinyLm {
    cfg: TinyConfig,
    /// Local id → lab token id; local id `tokens.len()` is "other".
    tokens: Vec<u32>,
    /// Lab token id → local id (absent: "other").
    local: HashMap<u32, u32>,
    embed: Var,
    position: Var,
    blocks: Vec<Block>,
    ln_f: (Var, Var),
    head: Var,
    mask: Tensor,
}

fn normal(rng: &mut ChaCha20Rng, shape: &[usize], std: f64) -> candle_core::Result<Var> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| {
            // Box–Muller from two uniforms.
            let u1 = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * std) as f32
        })
        .collect();
    Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu)?)
}

fn constant(value: f32, shape: &[usize]) -> candle_core::Result<Var> {
    Var::from_tensor(&Tensor::full(value, shape, &Device::Cpu)?)
}

fn layer_norm(x: &Tensor, (g, b): &(Var, Var)) -> candle_core::Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
    normed
        .broadcast_mul(g.as_tensor())?
        .broadcast_add(b.as_tensor())
}

fn affine(x: &Tensor, (w, b): &(Var, Var)) -> candle_core::Result<Tensor> {
    x.broadcast_matmul(w.as_tensor())?
        .broadcast_add(b.as_tensor())
}

impl TinyLm {
    /// Trains a student on `sequences` (lab token ids); `seed` fixes the
    /// initial weights and the order of training windows. `progress` gets
    /// (step, loss).
    pub fn train(
        cfg: TinyConfig,
        sequences: &[Vec<u32>],
        seed: u64,
        progress: &mut dyn FnMut(usize, f32),
    ) -> candle_core::Result<TinyLm> {
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for &t in sequences.iter().flatten() {
            *counts.entry(t).or_default() += 1;
        }
        let mut by_count: Vec<(u32, usize)> = counts.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        by_count.truncate(cfg.vocab.saturating_sub(1).max(1));
        let tokens: Vec<u32> = by_count.into_iter().map(|(t, _)| t).collect();
        let local: HashMap<u32, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, i as u32))
            .collect();
        let other = tokens.len() as u32;
        let stream: Vec<u32> = sequences
            .iter()
            .flatten()
            .map(|t| local.get(t).copied().unwrap_or(other))
            .collect();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (v, w, t) = (tokens.len() + 1, cfg.width, cfg.context);
        let std = 0.02;
        let resid_std = std / (2.0 * cfg.layers as f64).sqrt();
        let mut blocks = Vec::new();
        for _ in 0..cfg.layers {
            blocks.push(Block {
                ln1: (constant(1.0, &[w])?, constant(0.0, &[w])?),
                qkv: (
                    normal(&mut rng, &[w, 3 * w], std)?,
                    constant(0.0, &[3 * w])?,
                ),
                proj: (normal(&mut rng, &[w, w], resid_std)?, constant(0.0, &[w])?),
                ln2: (constant(1.0, &[w])?, constant(0.0, &[w])?),
                fc: (
                    normal(&mut rng, &[w, 4 * w], std)?,
                    constant(0.0, &[4 * w])?,
                ),
                out: (
                    normal(&mut rng, &[4 * w, w], resid_std)?,
                    constant(0.0, &[w])?,
                ),
            });
        }
        let mask: Vec<f32> = (0..t * t)
            .map(|i| {
                if i % t > i / t {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let lm = TinyLm {
            cfg,
            local,
            embed: normal(&mut rng, &[v, w], std)?,
            position: normal(&mut rng, &[t, w], std)?,
            blocks,
            ln_f: (constant(1.0, &[w])?, constant(0.0, &[w])?),
            head: normal(&mut rng, &[w, v], std)?,
            mask: Tensor::from_vec(mask, (t, t), &Device::Cpu)?,
            tokens,
        };
        let mut opt = AdamW::new(
            lm.vars(),
            ParamsAdamW {
                lr: cfg.learning_rate,
                weight_decay: 0.01,
                ..Default::default()
            },
        )?;
        let span = t + 1;
        assert!(stream.len() > span, "training data shorter than one window");
        for step in 0..cfg.steps {
            let mut inputs = Vec::with_capacity(cfg.batch * t);
            let mut targets = Vec::with_capacity(cfg.batch * t);
            for _ in 0..cfg.batch {
                let start = (rng.next_u64() % (stream.len() - span) as u64) as usize;
                inputs.extend_from_slice(&stream[start..start + t]);
                targets.extend_from_slice(&stream[start + 1..start + span]);
            }
            let x = Tensor::from_vec(inputs, (cfg.batch, t), &Device::Cpu)?;
            let y = Tensor::from_vec(targets, cfg.batch * t, &Device::Cpu)?;
            let logits = lm.forward(&x)?.reshape((cfg.batch * t, v))?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            let frac = step as f64 / cfg.steps.max(1) as f64;
            opt.set_learning_rate(cfg.learning_rate * (1.0 - 0.9 * frac));
            opt.backward_step(&loss)?;
            progress(step, loss.to_scalar::<f32>()?);
        }
        Ok(lm)
    }

    fn vars(&self) -> Vec<Var> {
        let mut v = vec![self.embed.clone(), self.position.clone(), self.head.clone()];
        v.extend([self.ln_f.0.clone(), self.ln_f.1.clone()]);
        for b in &self.blocks {
            for (x, y) in [&b.ln1, &b.qkv, &b.proj, &b.ln2, &b.fc, &b.out] {
                v.extend([x.clone(), y.clone()]);
            }
        }
        v
    }

    /// Logits [batch, len, local vocab] for local ids [batch, len ≤ context].
    fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let (w, h) = (self.cfg.width, self.cfg.heads);
        let hd = w / h;
        let tok = self
            .embed
            .as_tensor()
            .index_select(&ids.flatten_all()?, 0)?;
        let mut x = tok
            .reshape((b, t, w))?
            .broadcast_add(&self.position.as_tensor().narrow(0, 0, t)?)?;
        let mask = self.mask.narrow(0, 0, t)?.narrow(1, 0, t)?;
        for blk in &self.blocks {
            let a = layer_norm(&x, &blk.ln1)?;
            let qkv = affine(&a, &blk.qkv)?;
            let split = |i: usize| -> candle_core::Result<Tensor> {
                qkv.narrow(2, i * w, w)?
                    .reshape((b, t, h, hd))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let (q, k, v) = (split(0)?, split(1)?, split(2)?);
            let att = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?.broadcast_add(&mask)?;
            let att = candle_nn::ops::softmax(&att, D::Minus1)?;
            let y = att
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b, t, w))?;
            x = (x + affine(&y, &blk.proj)?)?;
            let m = layer_norm(&x, &blk.ln2)?;
            let m = affine(&affine(&m, &blk.fc)?.gelu()?, &blk.out)?;
            x = (x + m)?;
        }
        layer_norm(&x, &self.ln_f)?.broadcast_matmul(self.head.as_tensor())
    }

    fn local_id(&self, token: u32) -> u32 {
        self.local
            .get(&token)
            .copied()
            .unwrap_or(self.tokens.len() as u32)
    }

    /// The last `context` tokens of `history` as local ids.
    fn window(&self, history: &[u32]) -> Vec<u32> {
        let mut ids: Vec<u32> = history.iter().map(|&t| self.local_id(t)).collect();
        if ids.len() > self.cfg.context {
            ids.drain(..ids.len() - self.cfg.context);
        }
        ids
    }

    /// Samples up to `max_tokens` continuations of every prompt at
    /// temperature 1, all prompts advanced together; a sequence ends at a
    /// token in `stops` (not included). `seed` fixes the draws.
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        max_tokens: usize,
        stops: &[u32],
        seed: u64,
    ) -> candle_core::Result<Vec<Vec<u32>>> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut histories: Vec<Vec<u32>> = prompts.iter().map(|p| self.window(p)).collect();
        let mut out = vec![Vec::new(); prompts.len()];
        let mut live: Vec<usize> = (0..prompts.len()).collect();
        for _ in 0..max_tokens {
            if live.is_empty() {
                break;
            }
            // Same-length groups share one forward pass.
            let mut by_len: HashMap<usize, Vec<usize>> = HashMap::new();
            for &i in &live {
                let len = histories[i].len().min(self.cfg.context);
                by_len.entry(len).or_default().push(i);
            }
            let mut groups: Vec<(usize, Vec<usize>)> = by_len.into_iter().collect();
            groups.sort();
            let mut ended = Vec::new();
            for (len, members) in groups {
                let mut flat = Vec::with_capacity(members.len() * len);
                for &i in &members {
                    let hst = &histories[i];
                    flat.extend_from_slice(&hst[hst.len() - len..]);
                }
                let x = Tensor::from_vec(flat, (members.len(), len), &Device::Cpu)?;
                let last = self.forward(&x)?.narrow(1, len - 1, 1)?.squeeze(1)?;
                let probs = candle_nn::ops::softmax(&last.to_dtype(DType::F64)?, D::Minus1)?
                    .to_vec2::<f64>()?;
                for (&i, p) in members.iter().zip(probs) {
                    // "other" is never emitted: draw among the real tokens.
                    let known = &p[..self.tokens.len()];
                    let mass: f64 = known.iter().sum();
                    let mut u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * mass;
                    let mut pick = known.len() - 1;
                    for (j, &pj) in known.iter().enumerate() {
                        u -= pj;
                        if u < 0.0 {
                            pick = j;
                            break;
                        }
                    }
                    let token = self.tokens[pick];
                    if stops.contains(&token) {
                        ended.push(i);
                    } else {
                        out[i].push(token);
                        histories[i].push(pick as u32);
                        if histories[i].len() > self.cfg.context {
                            histories[i].remove(0);
                        }
                    }
                }
            }
            live.retain(|i| !ended.contains(i));
        }
        Ok(out)
    }

    /// Reading mode: the student's top-1 prediction (never "other") at
    /// every position of `answer` given `prompt` and the answer so far (lab
    /// token ids). Each forward pass keeps half a context of history and
    /// predicts the next half context of positions at once (causal
    /// attention makes that the same as one pass per position).
    pub fn read(&self, prompt: &[u32], answer: &[u32]) -> candle_core::Result<Vec<u32>> {
        let half = (self.cfg.context / 2).max(1);
        let known = self.tokens.len();
        let mut out = Vec::with_capacity(answer.len());
        let mut history = self.window(prompt);
        let mut start = 0;
        if history.is_empty() && !answer.is_empty() {
            // Nothing to condition the first position on.
            out.push(self.tokens[0]);
            history.push(self.local_id(answer[0]));
            start = 1;
        }
        while start < answer.len() {
            let keep = history.len().min(half);
            let mut ids = history[history.len() - keep..].to_vec();
            let take = (self.cfg.context - ids.len()).min(answer.len() - start);
            ids.extend(
                answer[start..start + take - 1]
                    .iter()
                    .map(|&t| self.local_id(t)),
            );
            let n = ids.len();
            let x = Tensor::from_vec(ids, (1, n), &Device::Cpu)?;
            let logits = self.forward(&x)?.squeeze(0)?.narrow(1, 0, known)?;
            let best = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
            out.extend(best[keep - 1..].iter().map(|&b| self.tokens[b as usize]));
            history.extend(
                answer[start..start + take]
                    .iter()
                    .map(|&t| self.local_id(t)),
            );
            start += take;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> TinyConfig {
        TinyConfig {
            width: 32,
            layers: 1,
            heads: 2,
            context: 16,
            steps: 150,
            batch: 8,
            learning_rate: 1e-2,
            vocab: 64,
        }
    }

    #[test]
    fn learns_a_deterministic_sequence_and_reads_it_back() {
        // A repeating pattern over sparse lab ids: a student that learns it
        // predicts every next token.
        let pattern: Vec<u32> = vec![100, 7, 4242, 9, 31, 100, 5, 77];
        let seq: Vec<u32> = pattern.iter().copied().cycle().take(400).collect();
        let mut last = f32::NAN;
        let lm =
            TinyLm::train(tiny(), std::slice::from_ref(&seq), 1, &mut |_, l| last = l).unwrap();
        assert!(last < 0.3, "final loss {last}");
        let answer = &seq[16..60];
        let read = lm.read(&seq[..16], answer).unwrap();
        let right = read.iter().zip(answer).filter(|(a, b)| a == b).count();
        assert!(right >= answer.len() - 2, "{right}/{}", answer.len());
        // Generation continues the pattern (the stop token ends nothing here).
        let gen = lm.generate(&[seq[..16].to_vec()], 24, &[1], 3).unwrap();
        let expected = &seq[16..40];
        let same = gen[0].iter().zip(expected).filter(|(a, b)| a == b).count();
        assert!(same >= 20, "{:?}", gen[0]);
    }

    #[test]
    fn training_is_reproducible() {
        let seq: Vec<u32> = (0..300).map(|i| (i * 7 % 23) as u32).collect();
        let mut cfg = tiny();
        cfg.steps = 5;
        let a = TinyLm::train(cfg, std::slice::from_ref(&seq), 9, &mut |_, _| {}).unwrap();
        let b = TinyLm::train(cfg, std::slice::from_ref(&seq), 9, &mut |_, _| {}).unwrap();
        assert_eq!(
            a.read(&seq[..5], &seq[5..40]).unwrap(),
            b.read(&seq[..5], &seq[5..40]).unwrap()
        );
    }
}
