//! Windowed detection for texts that mix human and watermarked parts
//! (spec §9): the best of a fixed family of windows, Bonferroni-corrected
//! by the size of that family so the reported p-value stays valid.

use crate::detect::{null_test, ScoredText};
use std::cmp::Ordering;

use crate::precise::ln_error_bound;
use crate::stats::PValue;
use provmark_watermark::Scheme;

/// The best window found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowResult {
    /// Text token index of the window's first scored position.
    pub first_token: usize,
    /// Text token index of its last scored position.
    pub last_token: usize,
    /// Scored positions in the window.
    pub scored: usize,
    /// Statistic over the window.
    pub statistic: f64,
    /// The window's own p-value (not valid alone: it was selected).
    pub p_raw: PValue,
    /// Number of windows in the family.
    pub windows: u64,
    /// min(1, windows · p_raw): valid under any dependence.
    pub p: PValue,
}

/// Window family over n scored positions: lengths L = min_len·2^k < n, and
/// for each L the starts 0, L/2, L, … with s + L ≤ n, plus one window
/// ending at the last position when the stride misses it. `None` when
/// n ≤ min_len (use the whole-text result) or min_len < 2.
///
/// The best window has the smallest exact p-value (spec §9, revision 7);
/// among windows with the same exact p-value, the shorter, then the one
/// that starts earlier. Windows whose fast p-values are within twice
/// [`crate::precise::ln_error_bound`] of the smallest are compared exactly
/// ([`PValue::cmp_exact`]); the others cannot be the best.
pub fn best_window(scheme: &Scheme, scored: &ScoredText, min_len: usize) -> Option<WindowResult> {
    let n = scored.scores.len();
    if min_len < 2 || n <= min_len {
        return None;
    }
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0f64);
    for s in &scored.scores {
        prefix.push(prefix.last().unwrap() + s);
    }
    // Every window in family order (length, then start), with its p-value.
    let mut family: Vec<(PValue, usize, usize, f64)> = Vec::new();
    let mut consider = |start: usize, len: usize| {
        let stat = prefix[start + len] - prefix[start];
        let p = null_test(scheme, len as u64, stat).expect("len ≥ 2").p;
        family.push((p, start, len, stat));
    };
    let mut len = min_len;
    while len < n {
        let stride = len / 2;
        let mut start = 0;
        while start + len <= n {
            consider(start, len);
            start += stride;
        }
        if start - stride + len < n {
            consider(n - len, len);
        }
        len *= 2;
    }
    let windows = family.len() as u64;
    let fast_min = family
        .iter()
        .map(|w| w.0.ln())
        .fold(f64::INFINITY, f64::min);
    let reach = 2.0 * ln_error_bound(fast_min.abs() + 1.0);
    let mut best: Option<&(PValue, usize, usize, f64)> = None;
    for w in family.iter().filter(|w| w.0.ln() <= fast_min + reach) {
        // Strictly smaller only: ties keep the earlier (shorter, earlier) one.
        if best.is_none_or(|b| w.0.cmp_exact(&b.0) == Ordering::Less) {
            best = Some(w);
        }
    }
    let &(p_raw, start, len, statistic) = best?;
    Some(WindowResult {
        first_token: scored.positions[start],
        last_token: scored.positions[start + len - 1],
        scored: len,
        statistic,
        p_raw,
        windows,
        p: p_raw.times_count(windows),
    })
}
