//! Windowed detection for texts that mix human and watermarked parts
//! (spec §9): the best of a fixed family of windows, Bonferroni-corrected
//! by the size of that family so the reported p-value stays valid.

use crate::detect::{null_test, ScoredText};
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
    let mut windows = 0u64;
    let mut best: Option<(PValue, usize, usize, f64)> = None;
    let mut consider = |start: usize, len: usize, windows: &mut u64| {
        *windows += 1;
        let stat = prefix[start + len] - prefix[start];
        let p = null_test(scheme, len as u64, stat).expect("len ≥ 2").p;
        if best.is_none_or(|b| p.ln() < b.0.ln()) {
            best = Some((p, start, len, stat));
        }
    };
    let mut len = min_len;
    while len < n {
        let stride = len / 2;
        let mut start = 0;
        while start + len <= n {
            consider(start, len, &mut windows);
            start += stride;
        }
        if start - stride + len < n {
            consider(n - len, len, &mut windows);
        }
        len *= 2;
    }
    let (p_raw, start, len, statistic) = best?;
    Some(WindowResult {
        first_token: scored.positions[start],
        last_token: scored.positions[start + len - 1],
        scored: len,
        statistic,
        p_raw,
        windows,
        p: p_raw.times(windows as f64),
    })
}
