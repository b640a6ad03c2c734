//! Verification compares what must be exact exactly and the approximations
//! of real numbers within the spec's tolerance (spec/report.md §4 step 5,
//! SPEC §8, revision 7; issue #12): a report whose p-values come from
//! another correct implementation verifies, while a changed count, a
//! p-value outside the tolerance, a changed statistic or a flipped verdict
//! do not.

use std::path::PathBuf;

use provmark_evidence::{recompute, verify, DetectRecipe, Difference, Keyed, Report};
use provmark_testkit::corpus::{docs_corpus, train_bpe_json};
use provmark_testkit::fixtures::key;
use provmark_verify::TextTokenizer;
use provmark_watermark::{Key, KgwParams, Profile, Scheme};
use serde_json::{json, Value};

struct Lab {
    dir: tempfile::TempDir,
    key: Key,
}

impl Lab {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let json = train_bpe_json(&docs_corpus(), 1024);
    std::fs::write(dir.path().join("tokenizer.json"), &json).unwrap();
    let key = key(12);
    provmark_watermark::write_secret_file(&dir.path().join("lab.key"), &key.to_hex_file()).unwrap();
    let docs = docs_corpus();
    let jsonl: String = docs
        .split("\n\n")
        .filter(|p| p.len() > 200)
        .take(5)
        .map(|p| format!("{}\n", json!({ "text": p })))
        .collect();
    std::fs::write(dir.path().join("answers.jsonl"), jsonl).unwrap();
    Lab { dir, key }
}

fn report(lab: &Lab, scheme: Scheme, windows: bool) -> Report {
    let json = std::fs::read(lab.path("tokenizer.json")).unwrap();
    let tokenizer = TextTokenizer::from_bytes(&json, "t").unwrap();
    let profile = Profile::new(scheme, 1, tokenizer.digest().clone(), &lab.key).unwrap();
    DetectRecipe {
        // Near the texts' own p-values, so a flipped verdict is a small edit.
        alpha: 0.5,
        field: "text".into(),
        max_record_bytes: 1 << 20,
        window_min: 16,
        jsonl: true,
        windows,
        force_tokenizer: false,
        normalization: Default::default(),
        profiles: vec![Keyed {
            profile,
            key: &lab.key,
            profile_name: "lab.profile.json".into(),
            key_name: "lab.key".into(),
        }],
        tokenizers: vec![lab.path("tokenizer.json")],
        model: None,
        inputs: vec![lab.path("answers.jsonl")],
        locations: Default::default(),
    }
    .compute()
    .unwrap()
}

/// The report with `edit` applied to its first text and its digest made
/// good again, so only the recomputation can tell.
fn edited(report: &Report, edit: impl FnOnce(&mut Value)) -> Report {
    let mut r = report.clone();
    edit(&mut r.results["texts"][0]);
    r.digest = r.computed_digest();
    r
}

fn differences(lab: &Lab, report: &Report) -> Vec<String> {
    let given: Vec<PathBuf> = report
        .inputs
        .iter()
        .map(|e| PathBuf::from(&e.name))
        .collect();
    let out = verify(
        report,
        &[PathBuf::from(lab.path("lab.key"))],
        &given,
        None,
        &recompute,
    )
    .unwrap();
    assert!(out.recomputed);
    out.differences
        .iter()
        .map(|d| match d {
            Difference::Field { path, .. } => path.clone(),
            other => format!("{other}"),
        })
        .collect()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// One edit of a text's JSON.
type Edit = Box<dyn FnOnce(&mut Value)>;

fn kgw() -> Scheme {
    Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap())
}

#[test]
fn real_values_within_the_tolerance_verify() {
    let lab = lab();
    for scheme in [kgw(), Scheme::Gumbel] {
        let r = report(&lab, scheme, true);
        assert!(differences(&lab, &r).is_empty());
        // What another correct implementation may write: last digits of
        // the p-value, its logarithms and z moved, well inside the bounds.
        let other = edited(&r, |t| {
            let lp = f(&t["log10_p"]);
            t["log10_p"] = json!(lp * (1.0 + 3e-12) - 1e-13);
            t["p_value"] = json!(f(&t["p_value"]) * (1.0 + 5e-11));
            t["z"] = json!(f(&t["z"]) + 1e-12);
            let w = &mut t["window"];
            w["log10_p"] = json!(f(&w["log10_p"]) * (1.0 + 2e-12));
            w["log10_p_raw"] = json!(f(&w["log10_p_raw"]) * (1.0 - 2e-12));
            t["decision_log10_p"] = json!(f(&t["decision_log10_p"]) - 5e-12);
        });
        assert_ne!(other.digest, r.digest);
        assert!(
            differences(&lab, &other).is_empty(),
            "{:?}",
            differences(&lab, &other)
        );
    }
}

#[test]
fn exact_values_and_real_values_beyond_the_tolerance_do_not() {
    let lab = lab();
    for scheme in [kgw(), Scheme::Gumbel] {
        let r = report(&lab, scheme, true);
        let cases: Vec<(&str, Edit)> = vec![
            (
                "results.texts[0].scored",
                Box::new(|t| t["scored"] = json!(t["scored"].as_u64().unwrap() + 1)),
            ),
            (
                // One unit of the gumbel fixed point, one green token for kgw.
                "results.texts[0].statistic",
                Box::new(|t| t["statistic"] = json!(f(&t["statistic"]) + 1.0 / 65536.0)),
            ),
            (
                "results.texts[0].log10_p",
                Box::new(|t| t["log10_p"] = json!(f(&t["log10_p"]) * (1.0 + 3e-11) - 3e-11)),
            ),
            (
                "results.texts[0].p_value",
                Box::new(|t| t["p_value"] = json!(f(&t["p_value"]) * (1.0 + 1e-8))),
            ),
            (
                "results.texts[0].window.first_token",
                Box::new(|t| {
                    t["window"]["first_token"] =
                        json!(t["window"]["first_token"].as_u64().unwrap() + 1)
                }),
            ),
        ];
        for (path, edit) in cases {
            let got = differences(&lab, &edited(&r, edit));
            assert_eq!(got, [path], "{path}");
        }
    }
}

#[test]
fn a_flipped_verdict_is_a_difference() {
    let lab = lab();
    let r = report(&lab, kgw(), false);
    let other = edited(&r, |t| {
        let flipped = if t["verdict"] == "watermarked" {
            "not_detected"
        } else {
            "watermarked"
        };
        t["verdict"] = json!(flipped);
    });
    let got = differences(&lab, &other);
    assert!(
        got.contains(&"results.texts[0].verdict".to_string()),
        "{got:?}"
    );
}
