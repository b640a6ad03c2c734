//! Detection results and p-values of the spec's test vectors (computed by
//! the independent Python reference with mpmath at 60 digits).

use provmark_testkit::vectors::{detector, ids, keys, vectors};
use provmark_verify::corpus::{key_swap_null, score_tuples, Shard, TupleSet};
use provmark_verify::stats::{binomial_upper_tail, gamma_upper_tail};
use provmark_verify::Detector;
use provmark_watermark::Profile;

fn close(got: f64, want: f64, what: &str) {
    let tol = 1e-11 * want.abs().max(1.0);
    assert!((got - want).abs() <= tol, "{what}: got {got}, want {want}");
}

#[test]
fn binomial_tails_match_mpmath() {
    for case in vectors()["binomial_tails"].as_array().unwrap() {
        let (k, n, p) = (
            case["k"].as_u64().unwrap(),
            case["n"].as_u64().unwrap(),
            case["p"].as_f64().unwrap(),
        );
        let got = binomial_upper_tail(k, n, p, 1.0 - p).log10();
        close(
            got,
            case["log10_p"].as_f64().unwrap(),
            &format!("Bin({n},{p}) ≥ {k}"),
        );
    }
}

#[test]
fn gamma_tails_match_mpmath() {
    for case in vectors()["gamma_tails"].as_array().unwrap() {
        let (n, x) = (case["n"].as_u64().unwrap(), case["x"].as_f64().unwrap());
        let got = gamma_upper_tail(n, x).log10();
        close(
            got,
            case["log10_p"].as_f64().unwrap(),
            &format!("Gamma({n}) ≥ {x}"),
        );
    }
}

#[test]
fn full_detections_match_reference() {
    let v = vectors();
    let keys = keys(&v);
    let detectors: Vec<Detector> = v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| detector(p, &keys))
        .collect();
    let cases = v["detections"].as_array().unwrap();
    let mut strong = 0;
    for (i, case) in cases.iter().enumerate() {
        let detector = &detectors[case["profile_index"].as_u64().unwrap() as usize];
        let d = detector.detect(&ids(&case["token_ids"]));
        assert_eq!(
            d.tokens as u64,
            case["tokens"].as_u64().unwrap(),
            "case {i}"
        );
        assert_eq!(
            d.scored as u64,
            case["scored"].as_u64().unwrap(),
            "case {i}"
        );
        assert_eq!(
            d.duplicates as u64,
            case["duplicates"].as_u64().unwrap(),
            "case {i}"
        );
        // Exact (spec §7, revision 7).
        assert_eq!(
            d.statistic,
            case["statistic"].as_f64().unwrap(),
            "case {i} statistic"
        );
        match (d.test, case.get("log10_p")) {
            (None, None) => {}
            (Some(t), Some(want)) => {
                close(
                    t.p.log10(),
                    want.as_f64().unwrap(),
                    &format!("case {i} log10_p"),
                );
                close(t.z, case["z"].as_f64().unwrap(), &format!("case {i} z"));
                if t.p.log10() < -100.0 {
                    strong += 1;
                }
            }
            (got, want) => panic!("case {i}: test {got:?} vs reference {want:?}"),
        }
    }
    assert!(strong >= 5, "vectors include strongly marked texts");
}

#[test]
fn corpus_tests_match_reference() {
    let v = vectors();
    let keys = keys(&v);
    let detections = v["detections"].as_array().unwrap();
    for (i, case) in v["corpora"].as_array().unwrap().iter().enumerate() {
        let p = &v["profiles"][case["profile_index"].as_u64().unwrap() as usize];
        let detector = detector(p, &keys);
        let mut set = TupleSet::new(detector.context_len(), Shard::ALL).unwrap();
        for j in case["detection_indices"].as_array().unwrap() {
            set.add_text(&ids(&detections[j.as_u64().unwrap() as usize]["token_ids"]));
        }
        let tuples = set.finish();
        let score = score_tuples(&detector, &tuples).unwrap();
        assert_eq!(score.scored, case["scored"].as_u64().unwrap(), "corpus {i}");
        // The key-swap null (§8.3) under the spec's null keys.
        let profile = Profile::from_json(&p["profile"]).unwrap();
        let nulls = case["null_statistics"].as_array().unwrap();
        let swap = key_swap_null(
            &profile,
            &tuples,
            &score,
            nulls.len(),
            case["null_seed"].as_u64().unwrap(),
            &|_| {},
        )
        .unwrap();
        for (k, (got, want)) in swap.statistics.iter().zip(nulls).enumerate() {
            // Exact (spec §7, revision 7).
            assert_eq!(*got, want.as_f64().unwrap(), "corpus {i} null key {k}");
        }
        assert_eq!(
            swap.at_least as u64,
            case["swap_at_least"].as_u64().unwrap()
        );
        // Exact (spec §7, revision 7).
        assert_eq!(
            score.statistic,
            case["statistic"].as_f64().unwrap(),
            "corpus {i} statistic"
        );
        let log10_p = score.test(&detector).unwrap().p.log10();
        close(
            log10_p,
            case["log10_p"].as_f64().unwrap(),
            &format!("corpus {i} log10_p"),
        );
    }
}

#[test]
fn reading_mode_tests_match_reference() {
    let v = vectors();
    let keys = keys(&v);
    let detections = v["detections"].as_array().unwrap();
    for (i, case) in v["readings"].as_array().unwrap().iter().enumerate() {
        let p = &v["profiles"][case["profile_index"].as_u64().unwrap() as usize];
        let detector = detector(p, &keys);
        let text =
            ids(&detections[case["detection_index"].as_u64().unwrap() as usize]["token_ids"]);
        let mut set = TupleSet::new(detector.context_len(), Shard::ALL).unwrap();
        set.add_predictions(&text, &ids(&case["predictions"]))
            .unwrap();
        let score = score_tuples(&detector, &set.finish()).unwrap();
        assert_eq!(
            score.scored,
            case["scored"].as_u64().unwrap(),
            "reading {i}"
        );
        // Exact (spec §7, revision 7).
        assert_eq!(
            score.statistic,
            case["statistic"].as_f64().unwrap(),
            "reading {i} statistic"
        );
        // h = 0: every window repeats the first position's; nothing is scored.
        match score.test(&detector) {
            Some(t) => close(
                t.p.log10(),
                case["log10_p"].as_f64().unwrap(),
                &format!("reading {i} log10_p"),
            ),
            None => assert_eq!(case["scored"], 0, "reading {i}"),
        }
    }
}

#[test]
fn expected_readings_match_the_reference() {
    use provmark_verify::expected::{self, WeightedTuples};
    let v = vectors();
    let keys = keys(&v);
    let detections = v["detections"].as_array().unwrap();
    let cases = v["expected_readings"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for (i, case) in cases.iter().enumerate() {
        let p = &v["profiles"][case["profile_index"].as_u64().unwrap() as usize];
        let detector = detector(p, &keys);
        let profile = Profile::from_json(&p["profile"]).unwrap();
        let h = detector.context_len();
        let all = ids(&detections[case["detection_index"].as_u64().unwrap() as usize]["token_ids"]);
        let text = &all[..case["tokens"].as_u64().unwrap() as usize];
        let first = case["first"].as_u64().unwrap() as usize;
        let weights: Vec<Vec<(u32, f64)>> = case["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(token_weights)
            .collect();
        let mut reading = WeightedTuples::new(h).unwrap();
        reading.begin_text();
        // Position 0 has no prefix: its window is noted, not read.
        reading.note_windows(text, first.max(h)..first.max(h).max(1));
        for pos in first.max(h).max(1)..text.len() {
            reading.add_position(&text[pos - h..pos], &weights[pos]);
        }
        let what = |m: &str| format!("expected reading {i} {m}");
        assert_eq!(
            reading.positions(),
            case["positions"].as_u64().unwrap(),
            "{}",
            what("positions")
        );
        assert_eq!(
            reading.repeats(),
            case["repeats"].as_u64().unwrap(),
            "{}",
            what("repeats")
        );
        assert_eq!(
            reading.pairs() as u64,
            case["pairs"].as_u64().unwrap(),
            "{}",
            what("pairs")
        );
        let nulls = case["null_statistics"].as_array().unwrap();
        let t = expected::test(
            &profile,
            detector.schedule(),
            &reading,
            nulls.len(),
            case["null_seed"].as_u64().unwrap(),
            &|_| {},
        );
        // Sums of products in another order: agree to 1e-11 of their scale.
        let scale = t.variance.sqrt().max(1.0);
        let near = |got: f64, want: f64, m: &str| {
            assert!(
                (got - want).abs() <= 1e-11 * scale,
                "{}: got {got}, want {want}",
                what(m)
            )
        };
        near(
            t.statistic,
            case["statistic"].as_f64().unwrap(),
            "statistic",
        );
        close(
            t.variance,
            case["variance"].as_f64().unwrap(),
            &what("variance"),
        );
        for (k, want) in nulls.iter().enumerate() {
            near(
                t.null_statistics[k],
                want.as_f64().unwrap(),
                &format!("null {k}"),
            );
        }
        close(
            t.p.log10(),
            case["log10_p"].as_f64().unwrap(),
            &what("log10_p"),
        );
    }
}

#[test]
fn cross_readings_match_the_reference() {
    use provmark_verify::align::shared_starts;
    use provmark_verify::expected::{self, WeightedTuples};
    let v = vectors();
    let keys = keys(&v);
    let detections = v["detections"].as_array().unwrap();
    let ranges = |x: &serde_json::Value| -> Vec<(usize, usize)> {
        x.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r[0].as_u64().unwrap() as usize,
                    r[1].as_u64().unwrap() as usize,
                )
            })
            .collect()
    };
    for (i, case) in v["cross_readings"].as_array().unwrap().iter().enumerate() {
        let p = &v["profiles"][case["profile_index"].as_u64().unwrap() as usize];
        let detector = detector(p, &keys);
        let profile = Profile::from_json(&p["profile"]).unwrap();
        let h = detector.context_len();
        let all = ids(&detections[case["detection_index"].as_u64().unwrap() as usize]["token_ids"]);
        let lab = &all[..case["tokens"].as_u64().unwrap() as usize];
        let read: Vec<(usize, usize)> = shared_starts(
            &ranges(&case["lab_offsets"]),
            &ranges(&case["suspect_offsets"]),
        )
        .into_iter()
        .filter(|&(j, k)| j >= h && k >= 1)
        .collect();
        assert_eq!(
            read,
            ranges(&case["shared_starts"]),
            "cross reading {i} shared starts"
        );
        let weights = case["weights"].as_array().unwrap();
        let mut reading = WeightedTuples::new(h).unwrap();
        reading.begin_text();
        let mut note_from = h;
        for &(j, k) in &read {
            reading.note_windows(lab, note_from..j);
            note_from = j + 1;
            reading.add_position(&lab[j - h..j], &token_weights(&weights[k]));
        }
        let what = |m: &str| format!("cross reading {i} {m}");
        assert_eq!(
            reading.positions(),
            case["positions"].as_u64().unwrap(),
            "{}",
            what("positions")
        );
        assert_eq!(
            reading.repeats(),
            case["repeats"].as_u64().unwrap(),
            "{}",
            what("repeats")
        );
        assert_eq!(
            reading.pairs() as u64,
            case["pairs"].as_u64().unwrap(),
            "{}",
            what("pairs")
        );
        let t = expected::test(&profile, detector.schedule(), &reading, 0, 0, &|_| {});
        let scale = t.variance.sqrt().max(1.0);
        let want = case["statistic"].as_f64().unwrap();
        assert!(
            (t.statistic - want).abs() <= 1e-11 * scale,
            "{}",
            what("statistic")
        );
        close(
            t.p.log10(),
            case["log10_p"].as_f64().unwrap(),
            &what("log10_p"),
        );
    }
}

/// One position's `[[token, weight], …]` of the expected-score vectors.
fn token_weights(position: &serde_json::Value) -> Vec<(u32, f64)> {
    position
        .as_array()
        .unwrap()
        .iter()
        .map(|tw| (tw[0].as_u64().unwrap() as u32, tw[1].as_f64().unwrap()))
        .collect()
}

/// The `normalizations` vectors (spec §5.1): the reference's normalised
/// text and edit count, code point for code point.
#[test]
fn normalizations_match_the_reference() {
    let v = vectors();
    let cases = v["normalizations"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for (i, case) in cases.iter().enumerate() {
        let n: provmark_verify::Normalization =
            case["normalize"].as_str().unwrap().parse().unwrap();
        let got = n.apply(case["text"].as_str().unwrap());
        assert_eq!(
            got.text,
            case["normalized"].as_str().unwrap(),
            "normalizations[{i}]"
        );
        assert_eq!(
            got.edits as u64,
            case["invisible_edits"].as_u64().unwrap(),
            "normalizations[{i}]"
        );
    }
}
