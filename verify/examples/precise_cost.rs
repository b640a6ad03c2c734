//! Measures the exact-decision machinery of `provmark_verify::precise`
//! (spec §8, revision 7) over random (n, S) pairs:
//!
//! - the fast path's worst error on ln p against 128-bit interval bounds
//!   (on every 20th pair);
//! - how often a verdict at fixed α defers to the slow path;
//! - the cost of a slow-path decision (α set at the nearest binary64 to p);
//! - how often `p_value`/`log10_p` from the fast path are correctly rounded.
//!
//! `cargo run --release -p provmark-verify --example precise_cost [pairs]`

use std::time::Instant;

use provmark_verify::precise::{self, Tail};
use provmark_verify::stats::{binomial_upper_tail, gamma_upper_tail};
use provmark_verify::PValue;
use rand_chacha::rand_core::{RngCore, SeedableRng};

fn uniform(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn main() {
    let pairs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut worst = 0.0f64;
    let (mut deferred, mut decided) = (0u64, 0u64);
    let mut slow_time = 0.0f64;
    let mut slow_n = 0u64;
    let mut bounds_time = [0.0f64; 3];
    let mut bounds_n = [0u64; 3];
    let (mut p_ok, mut l_ok, mut reported) = (0u64, 0u64, 0u64);
    let mut fast_time = 0.0f64;
    for i in 0..pairs {
        // Scheme mix: kgw γ* = 1/4, synthid (n·30 trials at 1/2), gumbel.
        let n = (10f64.powf(1.0 + 3.0 * uniform(&mut rng))) as u64;
        let z = 8.0 * uniform(&mut rng) - 2.0;
        let t0 = Instant::now();
        let (p, tail): (PValue, Tail) = match i % 3 {
            0 => {
                let k = ((n as f64 * 0.25 + z * (n as f64 * 0.1875).sqrt()).round() as i64)
                    .clamp(0, n as i64) as u64;
                (
                    binomial_upper_tail(k, n, 0.25, 0.75),
                    Tail::Binomial { k, n, a: 1, b: 2 },
                )
            }
            1 => {
                let m = n * 30;
                let k = ((m as f64 * 0.5 + z * (m as f64 * 0.25).sqrt()).round() as i64)
                    .clamp(0, m as i64) as u64;
                (
                    binomial_upper_tail(k, m, 0.5, 0.5),
                    Tail::Binomial {
                        k,
                        n: m,
                        a: 1,
                        b: 1,
                    },
                )
            }
            _ => {
                let x = ((n as f64 + z * (n as f64).sqrt()).max(0.0) * 65536.0).round() / 65536.0;
                (gamma_upper_tail(n, x), Tail::Gamma { n, x })
            }
        };
        fast_time += t0.elapsed().as_secs_f64();
        if tail.is_one() {
            continue;
        }
        // Verdicts at the usual levels: how often the fast path defers.
        for alpha in [0.05, 0.01, 1e-3, 1e-6] {
            let before = precise::slow_calls();
            let _ = p.le(alpha);
            deferred += precise::slow_calls() - before;
            decided += 1;
        }
        // Bounds at 128 bits (every 20th pair: they cost milliseconds):
        // the fast error and the reported values.
        if i % 20 != 0 {
            continue;
        }
        let t1 = Instant::now();
        let Some((lo, hi)) = precise::tail_ln_bounds(&tail, 128) else {
            continue;
        };
        bounds_time[i % 3] += t1.elapsed().as_secs_f64();
        bounds_n[i % 3] += 1;
        let (plo, phi) = precise::tail_bounds_f64(&tail, 128);
        let exact_ln = 0.5 * (lo + hi);
        worst = worst.max((p.ln() - exact_ln).abs() / exact_ln.abs().max(1.0));
        let l10 = precise::tail_log10_bounds(&tail, 128);
        if let (Some(nearest), true) = (precise::tail_nearest_f64(&tail, 128), l10.0 == l10.1) {
            reported += 1;
            p_ok += (p.value() == nearest) as u64;
            l_ok += (p.log10() == l10.0) as u64;
        }
        // A forced slow decision: alpha at the binary64 just below p.
        if i % 200 == 0 && plo > 0.0 {
            let alpha = if plo < phi {
                plo
            } else {
                f64::from_bits(plo.to_bits() - 1)
            };
            let t2 = Instant::now();
            assert!(!p.le(alpha));
            slow_time += t2.elapsed().as_secs_f64();
            slow_n += 1;
        }
    }
    println!("pairs: {pairs}");
    println!(
        "fast path: {:.2} µs per p-value",
        1e6 * fast_time / pairs as f64
    );
    println!("worst |ln p_fast − ln p| / max(1, |ln p|): {worst:.3e} (stated bound 1e-9)");
    println!("verdicts at α ∈ {{0.05, 0.01, 1e-3, 1e-6}}: {decided}, deferred to the slow path: {deferred}");
    for (s, name) in ["kgw", "synthid (30 layers)", "gumbel"].iter().enumerate() {
        println!(
            "128-bit bounds, {name}: {:.1} µs per tail",
            1e6 * bounds_time[s] / bounds_n[s].max(1) as f64
        );
    }
    println!(
        "forced slow decisions (α one ulp below p): {slow_n}, {:.1} µs each",
        1e6 * slow_time / slow_n.max(1) as f64
    );
    println!("fast p_value correctly rounded: {p_ok}/{reported}; log10_p: {l_ok}/{reported}");
}
