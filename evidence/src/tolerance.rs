//! Which recomputed numbers must be equal and which may differ in their
//! last digits (spec/report.md §4 step 5; SPEC §8 "Reported values and their
//! accuracy", revision 7).
//!
//! Counts, statistics of the top-1 tests (exact by SPEC §7), key-swap counts
//! and p-values (a quotient of integers), levels and every other number are
//! compared exactly. The approximations of real numbers — p-values, their
//! logarithms, `z`, and the values of an expected-score test, whose weights
//! come from a model's floating point — agree within a stated tolerance, so
//! a report from any conforming implementation verifies.

use serde_json::Value;

/// How two recorded numbers are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Bit for bit (by value: `2.0` and `2` are one number).
    Exact,
    /// A base-10 logarithm of a p-value: `|a − b| ≤ 1e−11 · max(1, |a|, |b|)`.
    Log10P,
    /// A p-value: `|a − b| ≤ 1e−10 · max(1, |log10 m|) · m + 2^−1074`, `m = max(a, b)`.
    PValue,
    /// Any other real value: `|a − b| ≤ 1e−11 · max(1, |a|, |b|)`.
    Relative,
}

/// Where a number sits: its member name (an array element takes its
/// array's), the member name of the object holding it, and whether that
/// object — or, for `key_swap`, the object holding it — is an
/// expected-score test (it has a `variance` member).
#[derive(Clone, Copy, Debug, Default)]
pub struct Place<'a> {
    /// The member's name.
    pub member: Option<&'a str>,
    /// The enclosing object's member name.
    pub parent: Option<&'a str>,
    /// Whether the enclosing test is an expected-score test (SPEC §8.5).
    pub expected: bool,
}

/// The comparison the spec prescribes for a number at `place`.
pub fn comparison(place: Place<'_>) -> Comparison {
    let Some(member) = place.member else {
        return Comparison::Exact;
    };
    match member {
        "log10_p" | "log10_p_raw" | "log10_p_holm" | "decision_log10_p" => Comparison::Log10P,
        // key_swap.p_value is (1 + at_least)/(keys + 1) in binary64: exact.
        "p_value" if place.parent == Some("key_swap") => Comparison::Exact,
        "p_value" => Comparison::PValue,
        "z" => Comparison::Relative,
        "statistic" | "variance" | "inheritance" if place.expected => Comparison::Relative,
        "statistics" if place.expected && place.parent == Some("key_swap") => Comparison::Relative,
        _ => Comparison::Exact,
    }
}

const LOG10_P: f64 = 1e-11;
const RELATIVE: f64 = 1e-11;
const P_VALUE: f64 = 1e-10;
/// 2^−1074, the smallest subnormal (5e−324 is its shortest decimal).
const ONE_SUBNORMAL: f64 = 5e-324;

/// Whether `a` and `b` agree under `how`.
pub fn agree(how: Comparison, a: f64, b: f64) -> bool {
    if a == b {
        return true;
    }
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    let diff = (a - b).abs();
    match how {
        Comparison::Exact => false,
        Comparison::Log10P => diff <= LOG10_P * 1f64.max(a.abs()).max(b.abs()),
        Comparison::Relative => diff <= RELATIVE * 1f64.max(a.abs()).max(b.abs()),
        Comparison::PValue => {
            if a < 0.0 || b < 0.0 {
                return false;
            }
            let m = a.max(b);
            diff <= P_VALUE * 1f64.max(m.log10().abs()) * m + ONE_SUBNORMAL
        }
    }
}

/// Whether two JSON leaves agree at `place`: numbers under
/// [`comparison`], anything else by equality.
pub fn leaves_agree(place: Place<'_>, old: &Value, new: &Value) -> bool {
    match (old.as_f64(), new.as_f64()) {
        (Some(a), Some(b)) if old.is_number() && new.is_number() => agree(comparison(place), a, b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(member: &'a str, parent: Option<&'a str>, expected: bool) -> Place<'a> {
        Place {
            member: Some(member),
            parent,
            expected,
        }
    }

    #[test]
    fn counts_and_statistics_are_exact() {
        for m in ["scored", "statistic", "at_least", "positions", "alpha"] {
            assert_eq!(comparison(at(m, None, false)), Comparison::Exact, "{m}");
        }
        assert_eq!(
            comparison(at("p_value", Some("key_swap"), false)),
            Comparison::Exact
        );
        assert_eq!(
            comparison(at("statistics", Some("key_swap"), false)),
            Comparison::Exact
        );
        assert!(!agree(Comparison::Exact, 55.0, 55.000_000_000_001));
    }

    #[test]
    fn expected_score_values_are_real() {
        for m in ["statistic", "variance", "inheritance"] {
            assert_eq!(comparison(at(m, None, true)), Comparison::Relative);
        }
        assert_eq!(
            comparison(at("statistics", Some("key_swap"), true)),
            Comparison::Relative
        );
    }

    #[test]
    fn log10_p_is_relative_and_absolute_near_zero() {
        let c = Comparison::Log10P;
        assert!(agree(c, -300.0, -300.0 * (1.0 + 0.9e-11)));
        assert!(!agree(c, -300.0, -300.0 * (1.0 + 1.1e-11)));
        // p ≈ 1: −4.8e−17 against the exact −1e−80 conforms (issue #12).
        assert!(agree(c, -4.8e-17, -1e-80));
        assert!(!agree(c, -2e-11, 0.0));
    }

    #[test]
    fn p_values_follow_their_logarithm_and_subnormals() {
        let c = Comparison::PValue;
        assert!(agree(c, 0.5, 0.5 * (1.0 + 0.9e-10)));
        assert!(!agree(c, 0.5, 0.5 * (1.0 + 1.1e-10)));
        // At 1e−300 the log10 bound allows 300 times more.
        assert!(agree(c, 1e-300, 1e-300 * (1.0 + 2e-8)));
        assert!(!agree(c, 1e-300, 1e-300 * (1.0 + 4e-8)));
        // One subnormal step, and 0 against the smallest subnormal.
        assert!(agree(c, 1.7e-313, 1.7e-313 + ONE_SUBNORMAL));
        assert!(agree(c, 0.0, ONE_SUBNORMAL));
        assert!(!agree(c, 0.0, 1e-320));
        assert!(!agree(c, -0.5, 0.5));
    }

    #[test]
    fn non_numbers_never_agree_by_tolerance() {
        let p = at("log10_p", None, false);
        assert!(!leaves_agree(p, &Value::Null, &serde_json::json!(0.0)));
        assert!(leaves_agree(
            p,
            &serde_json::json!(-3.0),
            &serde_json::json!(-3.0000000000001)
        ));
    }
}
