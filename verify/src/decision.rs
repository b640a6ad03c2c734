//! Detection decisions as typed values: the verdict at a significance level,
//! the text/window combination (spec §9) and the family-wise (Holm) decision
//! over several profiles.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::detect::Detection;
use crate::stats::{holm_adjust, holm_rejects, PValue};
use crate::window::WindowResult;

/// The verdict on one text. Serialises as today's strings: `watermarked`,
/// `not_detected`, `too_short`, `error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The decision p-value is at most alpha.
    Watermarked,
    /// The decision p-value is above alpha.
    NotDetected,
    /// Nothing could be scored, so there is no test.
    TooShort,
    /// The text could not be read or tokenized.
    Error,
}

impl Verdict {
    /// The verdict of decision p-value `p` at level `alpha`: `None` (no
    /// test) is [`Verdict::TooShort`]; `p ≤ alpha` is
    /// [`Verdict::Watermarked`], decided on the exact p (spec §8, revision
    /// 7: [`PValue::le`]), so p-values below 1e-308 and p-values within
    /// rounding of alpha decide correctly.
    pub fn at(p: Option<PValue>, alpha: f64) -> Verdict {
        match p {
            None => Verdict::TooShort,
            Some(p) if p.le(alpha) => Verdict::Watermarked,
            Some(_) => Verdict::NotDetected,
        }
    }

    /// The verdict's name as printed by `detect` and written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Watermarked => "watermarked",
            Verdict::NotDetected => "not_detected",
            Verdict::TooShort => "too_short",
            Verdict::Error => "error",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decision p-value of one text when a best window was also searched:
/// min(1, 2·min(p_text, p_window)), valid under any dependence between the
/// two tests (spec §9). Without a window it is `p_text`. The exact form
/// `min(1, 2·p_text, 2W·p_raw)` is kept, so the verdict is exact and a
/// value near 1 keeps its accuracy.
pub fn combine_text_window(p_text: PValue, window: Option<&WindowResult>) -> PValue {
    match window {
        Some(w) => p_text.min(w.p).times_count(2),
        None => p_text,
    }
}

/// The outcome of one profile on one text.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileOutcome {
    /// The whole-text detection.
    pub detection: Detection,
    /// The best window, when windows were searched and the text is longer
    /// than the shortest window.
    pub window: Option<WindowResult>,
    /// The p-value used for the decision: the text's, or the text/window
    /// combination ([`combine_text_window`]) when windows were searched;
    /// `None` when nothing was scored.
    pub decision: Option<PValue>,
}

impl ProfileOutcome {
    /// The outcome of `detection` with the best `window` found (if windows
    /// were searched): computes the decision p-value.
    pub fn new(detection: Detection, window: Option<WindowResult>) -> ProfileOutcome {
        let decision = detection
            .test
            .map(|t| combine_text_window(t.p, window.as_ref()));
        ProfileOutcome {
            detection,
            window,
            decision,
        }
    }
}

/// The family-wise decision over several profiles tested on one text.
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyDecision {
    /// Holm-adjusted p-value of each profile, in the profiles' order; `None`
    /// where the profile had no test (nothing scored).
    pub adjusted: Vec<Option<PValue>>,
    /// The smallest adjusted p-value, `None` when no profile had a test.
    pub p: Option<PValue>,
    /// The decision p-values the family was formed from.
    decisions: Vec<Option<PValue>>,
}

impl FamilyDecision {
    /// Holm's step-down adjustment over the profiles that have a decision
    /// p-value (those without one do not count in the family size).
    pub fn holm(decisions: &[Option<PValue>]) -> FamilyDecision {
        let tested: Vec<(usize, PValue)> = decisions
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.map(|p| (i, p)))
            .collect();
        let adjusted_tested = holm_adjust(&tested.iter().map(|t| t.1).collect::<Vec<_>>());
        let mut adjusted = vec![None; decisions.len()];
        for ((i, _), a) in tested.iter().zip(&adjusted_tested) {
            adjusted[*i] = Some(*a);
        }
        let p = adjusted
            .iter()
            .flatten()
            .copied()
            .fold(None, |best: Option<PValue>, p| {
                Some(best.map_or(p, |b| if p.ln() < b.ln() { p } else { b }))
            });
        FamilyDecision {
            adjusted,
            p,
            decisions: decisions.to_vec(),
        }
    }

    /// Which profiles Holm's procedure rejects at `alpha`, decided on the
    /// exact p-values ([`holm_rejects`]); `None` where the profile had no
    /// test.
    pub fn rejected(&self, alpha: f64) -> Vec<Option<bool>> {
        let tested: Vec<PValue> = self.decisions.iter().flatten().copied().collect();
        let mut flags = holm_rejects(&tested, alpha).into_iter();
        self.decisions
            .iter()
            .map(|d| d.map(|_| flags.next().unwrap_or(false)))
            .collect()
    }

    /// The verdict of profile `i` at `alpha`: watermarked iff Holm rejects
    /// its hypothesis (its adjusted p-value is ≤ alpha, exactly).
    pub fn profile_verdict(&self, i: usize, alpha: f64) -> Verdict {
        match self.rejected(alpha).get(i).copied().flatten() {
            None => Verdict::TooShort,
            Some(true) => Verdict::Watermarked,
            Some(false) => Verdict::NotDetected,
        }
    }

    /// The family-wise verdict at `alpha`: some profile's hypothesis is
    /// rejected while controlling the family-wise error at `alpha`
    /// (decided exactly: some `K·p_j ≤ alpha`).
    pub fn verdict(&self, alpha: f64) -> Verdict {
        let tested: Vec<PValue> = self.decisions.iter().flatten().copied().collect();
        if tested.is_empty() {
            return Verdict::TooShort;
        }
        if holm_rejects(&tested, alpha).iter().any(|&r| r) {
            Verdict::Watermarked
        } else {
            Verdict::NotDetected
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::TestResult;

    fn p(x: f64) -> PValue {
        PValue::from_ln(x.ln())
    }

    fn close(a: PValue, b: f64) {
        assert!(
            (a.value() - b).abs() < 1e-12 * b.max(1e-300),
            "{a:?} vs {b}"
        );
    }

    #[test]
    fn verdict_at_alpha() {
        assert_eq!(Verdict::at(None, 0.01), Verdict::TooShort);
        assert_eq!(Verdict::at(Some(p(0.01)), 0.01), Verdict::Watermarked);
        assert_eq!(Verdict::at(Some(p(0.009)), 0.01), Verdict::Watermarked);
        assert_eq!(Verdict::at(Some(p(0.011)), 0.01), Verdict::NotDetected);
        // Far below binary64's range, decided in log space.
        let tiny = PValue::from_ln(-2000.0);
        assert_eq!(tiny.value(), 0.0);
        assert_eq!(Verdict::at(Some(tiny), 1e-300), Verdict::Watermarked);
    }

    #[test]
    fn verdict_strings_and_serde() {
        for (v, s) in [
            (Verdict::Watermarked, "watermarked"),
            (Verdict::NotDetected, "not_detected"),
            (Verdict::TooShort, "too_short"),
            (Verdict::Error, "error"),
        ] {
            assert_eq!(v.as_str(), s);
            assert_eq!(v.to_string(), s);
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(s));
            assert_eq!(serde_json::from_value::<Verdict>(s.into()).unwrap(), v);
        }
    }

    fn window(p_window: f64) -> WindowResult {
        WindowResult {
            first_token: 0,
            last_token: 10,
            scored: 10,
            statistic: 0.0,
            p_raw: p(p_window),
            windows: 1,
            p: p(p_window),
        }
    }

    #[test]
    fn text_window_combination() {
        close(combine_text_window(p(0.3), None), 0.3);
        // 2 · min(0.3, 0.01)
        close(combine_text_window(p(0.3), Some(&window(0.01))), 0.02);
        // 2 · min(0.001, 0.4)
        close(combine_text_window(p(0.001), Some(&window(0.4))), 0.002);
        // Capped at 1.
        close(combine_text_window(p(0.7), Some(&window(0.9))), 1.0);
        let detection = Detection {
            tokens: 20,
            scored: 19,
            duplicates: 1,
            statistic: 12.0,
            test: Some(TestResult { p: p(0.3), z: 1.0 }),
        };
        let o = ProfileOutcome::new(detection.clone(), Some(window(0.01)));
        close(o.decision.unwrap(), 0.02);
        let short = Detection {
            test: None,
            ..detection
        };
        assert_eq!(ProfileOutcome::new(short, None).decision, None);
    }

    #[test]
    fn holm_family_by_hand() {
        // Tested p-values 0.01, 0.04, 0.03 (one profile untested, so k = 3).
        // Sorted: 0.01·3 = 0.03; 0.03·2 = 0.06; 0.04·1 = 0.04 → running max
        // gives 0.03, 0.06, 0.06.
        let family = FamilyDecision::holm(&[Some(p(0.01)), None, Some(p(0.04)), Some(p(0.03))]);
        assert_eq!(family.adjusted[1], None);
        close(family.adjusted[0].unwrap(), 0.03);
        close(family.adjusted[2].unwrap(), 0.06);
        close(family.adjusted[3].unwrap(), 0.06);
        close(family.p.unwrap(), 0.03);
        assert_eq!(family.verdict(0.05), Verdict::Watermarked);
        assert_eq!(family.verdict(0.02), Verdict::NotDetected);
        // Nothing tested: too short.
        let none = FamilyDecision::holm(&[None, None]);
        assert_eq!(none.adjusted, vec![None, None]);
        assert_eq!(none.verdict(0.5), Verdict::TooShort);
        // One profile: no adjustment.
        let one = FamilyDecision::holm(&[Some(p(0.2))]);
        close(one.p.unwrap(), 0.2);
    }
}
