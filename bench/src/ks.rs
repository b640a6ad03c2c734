//! Kolmogorov–Smirnov checks of p-value uniformity.

/// max over the sorted sample of `gap(F_n just after u, F_n just before u, u)`.
fn sup_over_sorted(sample: &[f64], gap: impl Fn(f64, f64, f64) -> f64) -> f64 {
    let mut s = sample.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    s.iter()
        .enumerate()
        .map(|(i, &u)| gap((i + 1) as f64 / n, i as f64 / n, u))
        .fold(0.0, f64::max)
}

/// Two-sided statistic sup |F_n(u) − u| of a sample against U(0, 1).
pub fn ks_uniform(sample: &[f64]) -> f64 {
    sup_over_sorted(sample, |after, before, u| (after - u).max(u - before))
}

/// One-sided statistic sup (F_n(u) − u): large when small p-values are too
/// frequent (an anti-conservative test); discrete exact tests keep it small.
pub fn ks_excess(sample: &[f64]) -> f64 {
    sup_over_sorted(sample, |after, _, u| after - u)
}

/// Asymptotic two-sided KS critical value at level `alpha` for n samples.
pub fn ks_critical(n: usize, alpha: f64) -> f64 {
    (-(alpha / 2.0).ln() / 2.0).sqrt() / (n as f64).sqrt()
}

/// Asymptotic one-sided critical value (Smirnov) at level `alpha`.
pub fn ks_critical_one_sided(n: usize, alpha: f64) -> f64 {
    (-alpha.ln() / 2.0).sqrt() / (n as f64).sqrt()
}
