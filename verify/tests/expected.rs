//! The expected-score reading test (spec §8.5) by simulation, fixed seeds:
//! its Chernoff p-value and key-swap p-value are valid under the null (key-
//! independent weights, many keys) for every scheme, and it finds a
//! simulated student whose inherited bias is a small fraction of the
//! teacher's, where pairing against the student's base model is what
//! makes it powerful.

use provmark_testkit::fixtures::{key, profile, schemes};
use provmark_verify::expected::{self, position_weights, ValueLaw, WeightedTuples};
use provmark_watermark::{Profile, Schedule, Scheme};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const H: usize = 2;

fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller.
    let (u, v) = (uniform(rng).max(1e-300), uniform(rng));
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// A peaked next-token distribution over `vocab` tokens (logits N(0, 3²)).
fn distribution(rng: &mut ChaCha8Rng, vocab: usize) -> Vec<f64> {
    let logits: Vec<f64> = (0..vocab).map(|_| 3.0 * normal(rng)).collect();
    softmax(&logits)
}

fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|x| (x - max).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|x| x / z).collect()
}

fn as_f32(p: &[f64]) -> Vec<f32> {
    p.iter().map(|&x| x as f32).collect()
}

/// A reading whose weights do not depend on any key: a reference and a
/// "student" drifted from it by key-independent noise.
fn null_reading(seed: u64, positions: usize, vocab: usize) -> WeightedTuples {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut reading = WeightedTuples::new(H).unwrap();
    for text in 0..positions / 50 {
        reading.begin_text();
        for _ in 0..50 {
            let window = [
                (rng.next_u64() % 400) as u32,
                (rng.next_u64() % 400 + text as u64) as u32,
            ];
            let r = distribution(&mut rng, vocab);
            let q: Vec<f64> = r
                .iter()
                .map(|&p| p * (0.4 * normal(&mut rng)).exp())
                .collect();
            let z: f64 = q.iter().sum();
            let q: Vec<f64> = q.into_iter().map(|x| x / z).collect();
            reading.add_position(
                &window,
                &position_weights(&as_f32(&q), Some(&as_f32(&r)), 20),
            );
        }
    }
    reading
}

#[test]
fn chernoff_p_is_valid_under_the_null_for_every_scheme() {
    for scheme in schemes() {
        let reading = null_reading(7, 400, 300);
        assert!(reading.repeats() > 0 || reading.positions() == 400);
        let keys = 400;
        let mut small = [0usize; 3];
        for k in 0..keys {
            let key = key(1000 + k);
            let p = profile(scheme, H as u32, &key);
            let schedule = Schedule::new(&p, &key).unwrap();
            let t = expected::test(&p, &schedule, &reading, 0, 0, &|_| {});
            for (i, alpha) in [0.2, 0.05, 0.01].iter().enumerate() {
                small[i] += (t.p.value() <= *alpha) as usize;
            }
        }
        // P(p ≤ α) ≤ α, with 3σ of binomial slack over 400 keys.
        for (count, alpha) in small.iter().zip([0.2, 0.05, 0.01]) {
            let bound = keys as f64 * alpha + 3.0 * (keys as f64 * alpha * (1.0 - alpha)).sqrt();
            assert!(
                (*count as f64) <= bound,
                "{}: {count} of {keys} p-values ≤ {alpha}",
                scheme.name()
            );
        }
        // The bound is not vacuous: at α = 0.2 it rejects some.
        assert!(small[0] > 0, "{}: the test never rejects", scheme.name());
    }
}

#[test]
fn key_swap_p_is_uniform_under_the_null() {
    let scheme = schemes()[2];
    let reading = null_reading(11, 200, 300);
    let (real_keys, null_keys) = (60, 19);
    let mut histogram = [0usize; 20];
    for k in 0..real_keys {
        let key = key(5000 + k);
        let p: Profile = profile(scheme, H as u32, &key);
        let schedule = Schedule::new(&p, &key).unwrap();
        let t = expected::test(&p, &schedule, &reading, null_keys, k, &|_| {});
        histogram[t.swap.at_least] += 1;
    }
    // Exchangeable under the null (fresh null keys per real key): at_least
    // is uniform on 0..=19, so each
    // cell expects 3; no cell may hold more than 12 (P < 1e-4 each).
    assert!(histogram.iter().all(|&c| c <= 12), "{histogram:?}");
    assert!(histogram[..10].iter().sum::<usize>() >= 15, "{histogram:?}");
}

/// The keyed values of every token after `window`.
fn values(schedule: &Schedule, window: &[u32; 2], vocab: usize) -> Vec<f64> {
    let tuples: Vec<u32> = (0..vocab as u32)
        .flat_map(|v| [window[0], window[1], v])
        .collect();
    let mut out = Vec::new();
    schedule.value_tuples(tuples.chunks_exact(3), &mut out);
    out
}

/// A simulated student of `scheme`: its base model's distribution drifted
/// by key-independent noise (the rest of fine-tuning) and tilted by
/// `epsilon` toward tokens of high value under the lab's key (the
/// inherited bias). Returns the test paired against the base, and unpaired.
fn student(
    scheme: Scheme,
    epsilon: f64,
    positions: usize,
) -> (expected::ExpectedTest, expected::ExpectedTest) {
    let lab = key(42);
    let p = profile(scheme, H as u32, &lab);
    let schedule = Schedule::new(&p, &lab).unwrap();
    let law = ValueLaw::of(&scheme);
    let (mu, sd) = (law.mean(), law.variance().sqrt());
    let vocab = 600;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut paired = WeightedTuples::new(H).unwrap();
    let mut alone = WeightedTuples::new(H).unwrap();
    for text in 0..positions / 100 {
        paired.begin_text();
        alone.begin_text();
        for i in 0..100 {
            let window = [text as u32, i as u32];
            let base = distribution(&mut rng, vocab);
            let g = values(&schedule, &window, vocab);
            let logits: Vec<f64> = base
                .iter()
                .zip(&g)
                .map(|(b, g)| b.ln() + 0.05 * normal(&mut rng) + epsilon * (g - mu) / sd)
                .collect();
            let q = as_f32(&softmax(&logits));
            let r = as_f32(&base);
            paired.add_position(&window, &position_weights(&q, Some(&r), 20));
            alone.add_position(&window, &position_weights(&q, None, 20));
        }
    }
    let test = |reading: &WeightedTuples| expected::test(&p, &schedule, reading, 99, 5, &|_| {});
    (test(&paired), test(&alone))
}

#[test]
fn a_weakly_inheriting_student_is_found_when_paired_with_its_base() {
    for scheme in schemes() {
        // A tilt of 0.05 sd on the logits: far below a serving watermark's.
        let (paired, alone) = student(scheme, 0.05, 3000);
        assert!(
            paired.p.log10() < -6.0 && paired.swap.at_least == 0,
            "{}: paired log10 p {} swap {}",
            scheme.name(),
            paired.p.log10(),
            paired.swap.p_value
        );
        assert!(paired.attributed(0.01));
        assert!(paired.inheritance > 0.0);
        // Pairing removes the base model's own key-noise: z grows.
        assert!(
            paired.z > 2.0 * alone.z,
            "{}: paired z {} alone z {}",
            scheme.name(),
            paired.z,
            alone.z
        );
        // The same student without the tilt (the control) is not attributed.
        let (control, _) = student(scheme, 0.0, 3000);
        assert!(
            !control.attributed(0.01),
            "{}: control attributed",
            scheme.name()
        );
        assert!(control.p.log10() > -3.0);
    }
}
