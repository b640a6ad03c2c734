//! The detect runner over input files: results come in input order, texts
//! that cannot be read are per-record errors, batch boundaries change
//! nothing, and the JSON form follows the decision.

use provmark_testkit::corpus::{docs_corpus, train_bpe_json};
use provmark_testkit::fixtures::{detector, embedder, key, profile, schemes};
use provmark_testkit::generate;
use provmark_testkit::synthetic::ZipfLm;
use provmark_verify::scan::{self, Counts, ScanError, Target};
use provmark_verify::{DetectConfig, TextResult, TextTokenizer, Verdict};
use provmark_watermark::SamplingConfig;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

struct Fixture {
    _dir: tempfile::TempDir,
    input: String,
    json: String,
}

fn tokenizer(json: &str) -> TextTokenizer {
    TextTokenizer::from_bytes(json.as_bytes(), "t").unwrap()
}

/// texts.jsonl: a marked text, human paragraphs, a broken line, a record
/// without the text field, an empty text, more human text.
fn fixture() -> Fixture {
    static JSON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let json = JSON
        .get_or_init(|| train_bpe_json(&docs_corpus(), 4096))
        .clone();
    let tok = tokenizer(&json);
    let scheme = schemes()[0];
    let emb = embedder(scheme, 2, &key(1));
    let lm = ZipfLm::with_entropy(4096, 4.0);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let ids = generate(
        &lm,
        Some(&emb),
        &SamplingConfig::default(),
        &mut rng,
        &[1, 2],
        400,
    );
    let marked = tok.inner().decode(&ids, false).unwrap();
    let docs = docs_corpus();
    let paragraphs: Vec<&str> = docs.split("\n\n").filter(|p| p.len() > 200).collect();
    let mut lines = vec![json!({"id": "marked", "text": marked}).to_string()];
    for p in &paragraphs[..4] {
        lines.push(json!({ "text": p }).to_string());
    }
    lines.push("{not json".into());
    lines.push(json!({"id": "no-field", "body": "x"}).to_string());
    lines.push(json!({"id": "empty", "text": ""}).to_string());
    for p in &paragraphs[4..7] {
        lines.push(json!({ "text": p }).to_string());
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("texts.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    Fixture {
        input: input.display().to_string(),
        _dir: dir,
        json,
    }
}

/// One target under key 1 (the marking key), or also one under key 2.
fn config(f: &Fixture, keys: &[u64], windows: bool, batch: usize) -> DetectConfig {
    let scheme = schemes()[0];
    let targets = keys
        .iter()
        .map(|&k| Target {
            profile: profile(scheme, 2, &key(k)),
            detector: detector(scheme, 2, &key(k)),
            tokenizer: 0,
        })
        .collect();
    let mut c = DetectConfig::new(targets, vec![tokenizer(&f.json)], 1e-4);
    c.windows = windows;
    c.window_min = 16;
    c.batch = batch;
    c
}

fn run(c: &DetectConfig, inputs: &[String]) -> (Vec<TextResult>, Counts) {
    let mut results = Vec::new();
    let counts = scan::run(c, inputs, |r| -> Result<(), ScanError> {
        results.push(r);
        Ok(())
    })
    .unwrap();
    (results, counts)
}

#[test]
fn results_keep_input_order_and_errors_are_per_record() {
    let f = fixture();
    let c = config(&f, &[1], false, 3);
    let inputs = vec![f.input.clone()];
    let (results, counts) = run(&c, &inputs);
    assert_eq!(results.len(), 11);
    assert_eq!(results[0].id, "marked");
    assert_eq!(results[0].verdict(), Verdict::Watermarked);
    for (i, r) in results.iter().enumerate().skip(1).take(4) {
        assert_eq!(r.id, format!("{}:{}", f.input, i + 1));
        assert_eq!(r.verdict(), Verdict::NotDetected, "{}", r.to_json(&c));
    }
    let broken = &results[5];
    assert_eq!(broken.verdict(), Verdict::Error);
    assert!(broken.outcome.as_ref().unwrap_err().contains(":6"));
    assert_eq!(results[6].id, "no-field");
    assert_eq!(results[6].verdict(), Verdict::Error);
    assert!(results[6].outcome.as_ref().unwrap_err().contains("text"));
    assert_eq!(results[7].id, "empty");
    assert_eq!(results[7].verdict(), Verdict::TooShort);
    assert_eq!(
        counts,
        Counts {
            watermarked: 1,
            not_detected: 7,
            too_short: 1,
            errors: 2,
            edited: 0,
        }
    );
    // The JSON form.
    let v = results[0].to_json(&c);
    assert_eq!(v["verdict"], "watermarked");
    assert_eq!(v["key_id"], c.targets[0].profile.key_id());
    assert_eq!(v["scheme"], "kgw");
    assert_eq!(v["alpha"], 1e-4);
    assert!(v["log10_p"].as_f64().unwrap() < -4.0);
    assert_eq!(
        results[6].to_json(&c),
        json!({"id": "no-field", "verdict": "error", "error": results[6].outcome.as_ref().unwrap_err()})
    );
    assert_eq!(results[7].to_json(&c)["p_value"], serde_json::Value::Null);
    let s = counts.summary_json(&c);
    assert_eq!(s["correction"], "none");
    assert_eq!(s["errors"], 2);
    // The same file twice: twice the results, in order.
    let (twice, _) = run(&c, &[f.input.clone(), f.input.clone()]);
    assert_eq!(&twice[..11], &results[..]);
    assert_eq!(&twice[11..], &results[..]);
}

#[test]
fn batch_boundaries_change_nothing() {
    let f = fixture();
    let inputs = vec![f.input.clone()];
    for (keys, windows) in [(&[1u64][..], false), (&[2, 1][..], true)] {
        let (want, want_counts) = run(&config(&f, keys, windows, 1000), &inputs);
        for batch in [0, 1, 2, 5] {
            let c = config(&f, keys, windows, batch);
            let (got, counts) = run(&c, &inputs);
            assert_eq!(got, want, "batch {batch}");
            assert_eq!(counts, want_counts);
        }
    }
}

#[test]
fn several_profiles_get_a_holm_family_decision() {
    let f = fixture();
    let c = config(&f, &[2, 1], true, 4);
    let (results, counts) = run(&c, std::slice::from_ref(&f.input));
    assert_eq!(counts.watermarked, 1);
    let marked = results[0].outcome.as_ref().unwrap();
    assert_eq!(marked.profiles.len(), 2);
    assert_eq!(marked.verdict, Verdict::Watermarked);
    // The decision p-values are the text/window combinations; Holm over them.
    let decisions: Vec<_> = marked.profiles.iter().map(|o| o.decision).collect();
    assert_eq!(
        marked.family,
        provmark_verify::FamilyDecision::holm(&decisions)
    );
    let v = results[0].to_json(&c);
    assert_eq!(v["correction"], "holm");
    let rs = v["results"].as_array().unwrap();
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0]["verdict"], "not_detected");
    assert_eq!(rs[1]["verdict"], "watermarked");
    assert!(rs[1]["window"]["windows_tested"].as_u64().unwrap() > 1);
    assert!(rs[1]["decision_log10_p"].is_number());
    assert_eq!(counts.summary_json(&c)["correction"], "holm");
}

#[test]
fn an_input_that_cannot_be_opened_stops_the_run() {
    let f = fixture();
    let c = config(&f, &[1], false, 4);
    let mut seen = 0;
    let err = scan::run(&c, &["/nonexistent/x.jsonl".to_string()], |_| {
        seen += 1;
        Ok::<(), ScanError>(())
    })
    .unwrap_err();
    assert_eq!(seen, 0);
    assert!(matches!(err, ScanError::Open { .. }));
    assert_eq!(err.to_string(), "cannot open /nonexistent/x.jsonl");
}
