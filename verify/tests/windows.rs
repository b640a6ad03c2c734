//! Windowed detection (spec §9), pinned against an enumeration written
//! from the spec's text: the window family, which window is best (the
//! smallest p; ties to the shorter length, then the earlier start), what
//! `first_token`/`last_token` index, `windows` (= `windows_tested`), the
//! raw and corrected p-values, and the case of no window.

use provmark_verify::{best_window, null_test, ProfileOutcome, ScoredText};
use provmark_watermark::{KgwParams, Scheme};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn kgw() -> Scheme {
    Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap())
}

/// The family of §9 as `(a, L)` in the order the spec lists it: lengths
/// L0, 2L0, … below n; for each, starts 0, ⌊L/2⌋, … with a + L ≤ n, then
/// [n − L, n) when the last of those does not end at n.
fn family(n: usize, l0: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut l = l0;
    while l < n {
        let mut a = 0;
        let mut last_end = 0;
        while a + l <= n {
            out.push((a, l));
            last_end = a + l;
            a += l / 2;
        }
        if last_end != n {
            out.push((n - l, l));
        }
        l *= 2;
    }
    out
}

/// A text whose scored positions are token indices `positions` (gaps are
/// positions skipped as repeats or without a window) with `scores`.
fn text(positions: Vec<usize>, scores: Vec<f64>) -> ScoredText {
    ScoredText {
        tokens: positions.last().map_or(0, |p| p + 3),
        duplicates: 0,
        positions,
        scores,
    }
}

#[test]
fn family_sizes_follow_the_spec() {
    // n = 10, L0 = 2: L = 2 (a = 0…8: 9), L = 4 (a = 0, 2, 4, 6: 4),
    // L = 8 (a = 0, then the tail [2, 10): 2); L = 16 ≥ n stops.
    assert_eq!(family(10, 2).len(), 15);
    for (n, l0) in [(10, 2), (33, 32), (64, 32), (65, 32), (100, 3), (7, 2)] {
        let t = text((0..n).collect(), vec![1.0; n]);
        let w = best_window(&kgw(), &t, l0).unwrap();
        assert_eq!(
            w.windows as usize,
            family(n, l0).len(),
            "n = {n}, L0 = {l0}"
        );
    }
}

#[test]
fn no_window_when_the_text_is_not_longer_than_the_shortest() {
    for n in [0, 1, 2, 31, 32] {
        let t = text((0..n).collect(), vec![1.0; n]);
        assert!(best_window(&kgw(), &t, 32).is_none(), "n = {n}");
    }
    let t = text((0..33).collect(), vec![1.0; 33]);
    assert!(best_window(&kgw(), &t, 32).is_some());
    // L0 < 2 is refused the same way (the CLI refuses it earlier).
    assert!(best_window(&kgw(), &t, 1).is_none());
    // The decision then uses the text's p-value alone, not doubled.
    let short = text((0..20).collect(), vec![1.0; 20]);
    let test = null_test(&kgw(), 20, 20.0).unwrap();
    let detection = provmark_verify::Detection {
        tokens: 22,
        scored: 20,
        duplicates: 0,
        statistic: 20.0,
        test: Some(test),
    };
    let outcome = ProfileOutcome::new(detection, best_window(&kgw(), &short, 32));
    assert!(outcome.window.is_none());
    assert_eq!(outcome.decision, Some(test.p));
}

#[test]
fn best_window_is_the_smallest_p_then_shorter_then_earlier() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let scheme = kgw();
    for case in 0..300 {
        let n = 3 + (rng.next_u32() % 80) as usize;
        let l0 = 2 + (rng.next_u32() % 6) as usize;
        // Green with probability 1/2, some texts all red (every p = 1, a
        // tie across every length).
        let all_red = case % 10 == 0;
        let scores: Vec<f64> = (0..n)
            .map(|_| {
                if !all_red && rng.next_u32() % 2 == 0 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        // Scored positions with gaps: token indices are not score indices.
        let mut positions = Vec::with_capacity(n);
        let mut at = 2;
        for _ in 0..n {
            at += 1 + (rng.next_u32() % 3) as usize;
            positions.push(at);
        }
        let t = text(positions.clone(), scores.clone());
        let got = best_window(&scheme, &t, l0);
        let fam = family(n, l0);
        if n <= l0 {
            assert!(got.is_none());
            continue;
        }
        let got = got.unwrap();
        // The spec's rule, by brute force over the family.
        let mut best: Option<(f64, usize, usize)> = None;
        for &(a, l) in &fam {
            let s: f64 = scores[a..a + l].iter().sum();
            let p = null_test(&scheme, l as u64, s).unwrap().p.ln();
            let better = match best {
                None => true,
                Some((bp, bl, ba)) => (p, l, a) < (bp, bl, ba),
            };
            if better {
                best = Some((p, l, a));
            }
        }
        let (p, l, a) = best.unwrap();
        let s: f64 = scores[a..a + l].iter().sum();
        assert_eq!(got.scored, l, "case {case}");
        assert_eq!(
            got.first_token, positions[a],
            "case {case}: first scored position's token index"
        );
        assert_eq!(
            got.last_token,
            positions[a + l - 1],
            "case {case}: last, inclusive"
        );
        assert_eq!(got.statistic, s);
        assert_eq!(got.p_raw.ln(), p);
        assert_eq!(got.windows as usize, fam.len());
        let corrected = (p + (fam.len() as f64).ln()).min(0.0);
        assert!((got.p.ln() - corrected).abs() <= 1e-12 * corrected.abs().max(1.0));
        if all_red {
            assert_eq!(
                (a, l),
                (0, l0),
                "every p is 1: the first window of the shortest length"
            );
        }
    }
}

#[test]
fn the_decision_combines_text_and_window_with_factor_two() {
    let n = 200;
    // A human text with one marked passage: positions 120..160 green.
    let scores: Vec<f64> = (0..n)
        .map(|i| if (120..160).contains(&i) { 1.0 } else { 0.0 })
        .collect();
    let t = text((0..n).map(|i| i + 2).collect(), scores);
    let w = best_window(&kgw(), &t, 32).unwrap();
    assert_eq!(
        (w.first_token, w.last_token),
        (128 + 2, 159 + 2),
        "[128, 160) of L = 32, stride 16"
    );
    let test = null_test(&kgw(), n as u64, 40.0).unwrap();
    let detection = provmark_verify::Detection {
        tokens: n + 2,
        scored: n,
        duplicates: 0,
        statistic: 40.0,
        test: Some(test),
    };
    let outcome = ProfileOutcome::new(detection, Some(w));
    let want = (test.p.ln().min(w.p.ln()) + 2f64.ln()).min(0.0);
    assert!((outcome.decision.unwrap().ln() - want).abs() < 1e-12 * want.abs());
}
