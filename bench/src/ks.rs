//! Kolmogorov–Smirnov checks of p-value uniformity.

/// Two-sided statistic sup |F_n(u) − u| of a sample against U(0, 1).
pub fn ks_uniform(sample: &[f64]) -> f64 {
    let mut s = sample.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    s.iter()
        .enumerate()
        .map(|(i, &u)| ((i + 1) as f64 / n - u).max(u - i as f64 / n))
        .fold(0.0, f64::max)
}

/// One-sided statistic sup (F_n(u) − u): large when small p-values are too
/// frequent (an anti-conservative test); discrete exact tests keep it small.
pub fn ks_excess(sample: &[f64]) -> f64 {
    let mut s = sample.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    s.iter()
        .enumerate()
        .map(|(i, &u)| (i + 1) as f64 / n - u)
        .fold(0.0, f64::max)
}

/// Asymptotic two-sided KS critical value at level `alpha` for n samples.
pub fn ks_critical(n: usize, alpha: f64) -> f64 {
    (-(alpha / 2.0).ln() / 2.0).sqrt() / (n as f64).sqrt()
}

/// Asymptotic one-sided critical value (Smirnov) at level `alpha`.
pub fn ks_critical_one_sided(n: usize, alpha: f64) -> f64 {
    (-alpha.ln() / 2.0).sqrt() / (n as f64).sqrt()
}
