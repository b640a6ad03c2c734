//! Reports written by the binary before the report code moved into this
//! crate (`tests/data/*.json`, commit 5630b5a) keep their exact bytes
//! through the typed form; verification names each kind of difference.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use provmark_evidence::{
    parse, verify, AuditorKey, Difference, Error, KeyFile, Report, SignatureError,
};
use serde_json::{json, Value};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../llm/tests/data/tiny/tiny-llama.gguf")
}

fn load(name: &str) -> (String, Report) {
    let text = std::fs::read_to_string(data(name)).unwrap();
    let report = parse(&text, name).unwrap();
    (text, report)
}

const REPORTS: [&str; 5] = [
    "detect.json",
    "audit.json",
    "audit-signed.json",
    "merged.json",
    "legacy-merged.json",
];

#[test]
fn committed_reports_round_trip_to_identical_bytes() {
    for name in REPORTS {
        let (text, report) = load(name);
        assert_eq!(report.canonical_file(), text, "{name}");
        assert!(report.digest_matches(), "{name}");
        // The Merkle root is that of the recorded input digests.
        let leaves: Vec<[u8; 32]> = report
            .inputs
            .iter()
            .map(|i| {
                let mut d = [0u8; 32];
                for (k, b) in d.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&i.sha256[2 * k..2 * k + 2], 16).unwrap();
                }
                d
            })
            .collect();
        assert_eq!(
            provmark_evidence::merkle_root(&leaves),
            report.inputs_merkle_root
        );
    }
    let (_, signed) = load("audit-signed.json");
    let (_, unsigned) = load("audit.json");
    assert_eq!(signed.digest, unsigned.digest);
    provmark_evidence::sign::check(signed.signature.as_ref().unwrap(), &signed.digest, None)
        .unwrap();
    // ed25519 is deterministic: signing again gives the committed bytes.
    let key = AuditorKey::load(&data("auditor.ed25519")).unwrap();
    let mut again = unsigned.clone();
    key.sign(&mut again).unwrap();
    assert_eq!(again, signed);
}

#[test]
fn committed_inputs_hash_to_the_recorded_digests() {
    let (_, detect) = load("detect.json");
    let files = [model(), data("texts.jsonl")];
    for (rec, f) in detect.inputs.iter().zip(&files) {
        let d = provmark_evidence::file_sha256(f).unwrap();
        assert_eq!((d.hex(), d.bytes), (rec.sha256.clone(), rec.bytes));
    }
}

/// The detect fixture's keys and files.
fn detect_given() -> (Vec<PathBuf>, Vec<PathBuf>) {
    (vec![data("lab.key")], vec![model(), data("texts.jsonl")])
}

/// A recomputation that gives back `new` and counts its calls.
fn giving(
    new: Report,
    calls: &Cell<usize>,
) -> impl Fn(&Report, &[KeyFile], &[PathBuf]) -> Result<Report, Error> + '_ {
    move |_, keys, inputs| {
        calls.set(calls.get() + 1);
        assert_eq!((keys.len(), inputs.len()), (1, 2));
        Ok(new.clone())
    }
}

fn redigest(r: &mut Report) {
    r.digest = r.computed_digest();
}

#[test]
fn verify_matches_an_unchanged_report() {
    let (_, report) = load("detect.json");
    let (keys, inputs) = detect_given();
    let calls = Cell::new(0);
    let out = verify(
        &report,
        &keys,
        &inputs,
        None,
        &giving(report.clone(), &calls),
    )
    .unwrap();
    assert!(out.matched(), "{:?}", out.differences);
    assert!(out.recomputed);
    assert_eq!(out.digest, report.digest);
    assert_eq!(calls.get(), 1);
    // run and tool are not compared with the recomputation.
    let mut new = report.clone();
    new.run.seconds += 1.0;
    new.tool.version = "9".into();
    let out = verify(&report, &keys, &inputs, None, &giving(new, &calls)).unwrap();
    assert!(out.matched(), "{:?}", out.differences);
    // collection is (an API audit's recomputation carries the recorded one over).
    let mut new = report.clone();
    new.collection = Some(json!({"x": 1}));
    let out = verify(&report, &keys, &inputs, None, &giving(new, &calls)).unwrap();
    assert!(!out.matched());
    // The command is: its replay line must be the one the parameters give.
    let mut new = report.clone();
    new.command.name = "other".into();
    let out = verify(&report, &keys, &inputs, None, &giving(new, &calls)).unwrap();
    assert!(!out.matched());
    assert!(out
        .differences
        .iter()
        .any(|d| d.to_string().starts_with("command.name")));
}

#[test]
fn verify_names_an_edited_digest_and_the_recomputed_field() {
    let (_, original) = load("detect.json");
    let (keys, inputs) = detect_given();
    let mut forged = original.clone();
    forged.results["texts"][3]["log10_p"] = json!(-42.0);
    let calls = Cell::new(0);
    let out = verify(
        &forged,
        &keys,
        &inputs,
        None,
        &giving(original.clone(), &calls),
    )
    .unwrap();
    assert!(
        matches!(&out.differences[0], Difference::Digest { recorded, .. } if *recorded == original.digest)
    );
    // An edited report is never recomputed (spec/report.md §4).
    assert_eq!(out.differences[1], Difference::NotRecomputed);
    assert_eq!(out.differences.len(), 2);
    assert_eq!(calls.get(), 0);
    let recorded_p = original.results["texts"][3]["log10_p"].clone();
    // Once the digest is fixed, the recomputation names the member.
    let mut fixed = forged.clone();
    redigest(&mut fixed);
    let out = verify(
        &fixed,
        &keys,
        &inputs,
        None,
        &giving(original.clone(), &calls),
    )
    .unwrap();
    assert_eq!(
        out.differences,
        [Difference::Field {
            path: "results.texts[3].log10_p".into(),
            recorded: Some(json!(-42.0)),
            recomputed: Some(recorded_p.clone()),
        }]
    );
    assert!(out.differences[0].to_string().starts_with(&format!(
        "results.texts[3].log10_p: -42.0 ≠ recomputed {recorded_p}"
    )));

    // A forger who fixes the digest: only the recomputation catches it; a
    // member only one side has is named by its path.
    forged.parameters.insert("alpha".into(), json!(0.5));
    forged.parameters.insert("extra".into(), json!(1));
    redigest(&mut forged);
    let out = verify(&forged, &keys, &inputs, None, &giving(original, &calls)).unwrap();
    let paths: Vec<String> = out.differences.iter().map(|d| d.to_string()).collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert!(paths[0].starts_with("parameters.alpha: 0.5 ≠ recomputed"));
    assert_eq!(paths[1], "parameters.extra");
    assert!(matches!(
        &out.differences[1],
        Difference::Field {
            recorded: Some(_),
            recomputed: None,
            ..
        }
    ));
    assert!(paths[2].starts_with("results.texts[3].log10_p"));
}

#[test]
fn verify_checks_keys_and_files_before_recomputing() {
    let (_, report) = load("detect.json");
    let (_, inputs) = detect_given();
    let never = |_: &Report, _: &[KeyFile], _: &[PathBuf]| -> Result<Report, Error> {
        panic!("recomputed although a key or a file differs")
    };
    // Another key.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.key");
    std::fs::write(&other, "ab".repeat(32)).unwrap();
    let out = verify(&report, std::slice::from_ref(&other), &inputs, None, &never).unwrap();
    assert!(!out.recomputed);
    assert!(
        matches!(&out.differences[0], Difference::KeyCommitment { index: 0, path, .. } if *path == other)
    );
    assert!(out.differences[0]
        .to_string()
        .starts_with(&format!("key 0 ({}): its commitment ", other.display())));
    assert_eq!(out.differences[1], Difference::NotRecomputed);
    // Another file: named by its place, role and recorded name.
    let changed = dir.path().join("texts.jsonl");
    let text = std::fs::read_to_string(data("texts.jsonl")).unwrap();
    std::fs::write(&changed, text.replacen('e', "E", 1)).unwrap();
    let out = verify(
        &report,
        &[data("lab.key")],
        &[model(), changed.clone()],
        None,
        &never,
    )
    .unwrap();
    assert!(
        matches!(&out.differences[0], Difference::InputDigest { index: 1, role, .. } if role == "input")
    );
    assert!(out.differences[0].to_string().starts_with(&format!(
        "input 1 (input texts.jsonl, given {}): SHA-256 ",
        changed.display()
    )));
    assert_eq!(out.differences.last(), Some(&Difference::NotRecomputed));
    // An embedded profile that lost its digest (does not stop the recomputation).
    let mut edited = report.clone();
    edited.profiles[0].digest = format!("sha256:{}", "0".repeat(64));
    redigest(&mut edited);
    let calls = Cell::new(0);
    let out = verify(
        &edited,
        &[data("lab.key")],
        &inputs,
        None,
        &giving(edited.clone(), &calls),
    )
    .unwrap();
    // A profile that lost its digest is the report's own integrity: nothing
    // is recomputed from it.
    assert_eq!(
        out.differences,
        [
            Difference::ProfileDigest { index: 0 },
            Difference::NotRecomputed
        ]
    );
    assert_eq!(calls.get(), 0);
    // Counts that do not fit: the check cannot run.
    let e = verify(&report, &[], &inputs, None, &never).unwrap_err();
    assert!(matches!(
        e,
        Error::KeyCount {
            expected: 1,
            given: 0
        }
    ));
    let e = verify(&report, &[data("lab.key")], &inputs[..1], None, &never).unwrap_err();
    match e {
        Error::InputCount { expected, given: 1 } => assert_eq!(
            expected,
            [
                ("model".to_string(), "model.gguf".to_string()),
                ("input".to_string(), "texts.jsonl".to_string())
            ]
        ),
        e => panic!("{e}"),
    }
    // The recomputation's own failure is the caller's error.
    let failing = |_: &Report, _: &[KeyFile], _: &[PathBuf]| -> Result<Report, Error> {
        Err(Error::Recompute("the recorded command failed: x".into()))
    };
    let e = verify(&report, &[data("lab.key")], &inputs, None, &failing).unwrap_err();
    assert_eq!(e.to_string(), "the recorded command failed: x");
}

#[test]
fn verify_checks_the_signature_and_the_signer() {
    let (_, signed) = load("audit-signed.json");
    let keys = [data("lab.key")];
    let inputs = [model(), data("reference.jsonl"), data("texts.jsonl")];
    let same =
        |r: &Report, _: &[KeyFile], _: &[PathBuf]| -> Result<Report, Error> { Ok(r.clone()) };
    let public = signed.signature.as_ref().unwrap().public_key.clone();
    let out = verify(&signed, &keys, &inputs, Some(&public), &same).unwrap();
    assert!(out.matched(), "{:?}", out.differences);
    assert_eq!(out.signer.as_deref(), Some(public.as_str()));
    // Another signer required.
    let other = AuditorKey::generate().unwrap().public_hex();
    let out = verify(&signed, &keys, &inputs, Some(&other), &same).unwrap();
    assert!(matches!(
        &out.differences[..],
        [
            Difference::Signature(SignatureError::WrongSigner { .. }),
            Difference::NotRecomputed
        ]
    ));
    // A forged input digest with a fixed digest: the signature fails, and
    // the file no longer matches.
    let mut forged = signed.clone();
    forged.inputs[2].sha256 = "00".repeat(32);
    redigest(&mut forged);
    let out = verify(&forged, &keys, &inputs, None, &same).unwrap();
    assert_eq!(
        out.differences[0],
        Difference::Signature(SignatureError::DoesNotVerify)
    );
    assert_eq!(
        out.differences[0].to_string(),
        "signature: does not verify: the report or its digest was changed after signing"
    );
    assert!(matches!(
        out.differences[1],
        Difference::InputDigest { index: 2, .. }
    ));
    // Unsigned, but a signer required.
    let (_, unsigned) = load("audit.json");
    let out = verify(&unsigned, &keys, &inputs, Some(&public), &same).unwrap();
    assert_eq!(
        out.differences,
        [Difference::Unsigned, Difference::NotRecomputed]
    );
    assert_eq!(out.signer, None);
    assert_eq!(
        out.differences[0].to_string(),
        "signature: none, but --signer was given"
    );
}

#[test]
fn merged_reports_of_unbound_partials_are_not_recomputable() {
    // Before partials bound their key and files (format 1), a merged report
    // recorded only the partials: anyone could edit one and sum again. Such
    // a report is said plainly not to be recomputable, never a MATCH.
    let (_, merged) = load("legacy-merged.json");
    assert_eq!(merged.keyed_profiles().count(), 0);
    let out = verify(
        &merged,
        &[],
        &[data("legacy-part0.json"), data("legacy-part1.json")],
        None,
        &provmark_evidence::recompute,
    )
    .unwrap();
    assert!(!out.matched());
    assert!(
        matches!(&out.differences[..], [Difference::NotRecomputable { reason }] if reason.contains("parameters")),
        "{:?}",
        out.differences
    );
}

#[cfg(feature = "html")]
mod render {
    use super::*;
    use provmark_evidence::render::render_html;

    #[test]
    fn pages_have_no_scripts_and_escape_every_value() {
        for name in REPORTS {
            let (_, report) = load(name);
            let html = render_html(&report, name, None).unwrap();
            assert!(html.starts_with("<!DOCTYPE html>"), "{name}");
            assert!(
                !html.contains("<script") && !html.contains("src=\"http"),
                "{name}"
            );
            assert!(html.contains("provmark report verify"), "{name}");
        }
        let (_, audit) = load("audit.json");
        let html = render_html(&audit, "audit.json", None).unwrap();
        assert!(html.contains("random keys") && html.contains("<svg"));
        // The fixture's reference text holds <b> and & in its name only if
        // given so; every value from the report is escaped whatever it holds.
        let hostile = "<script>alert(1)</script><img src=http://x/>";
        // Free text (names, ids, the field parameter) is escaped.
        let mut crafted = audit.clone();
        crafted.inputs[0].name = hostile.into();
        crafted.parameters.insert("field".into(), json!(hostile));
        redigest(&mut crafted);
        let html = render_html(&crafted, hostile, None).unwrap();
        assert!(
            !html.contains("<script") && !html.contains("<img"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;"));
        let (_, mut detect) = load("detect.json");
        detect.results["texts"][0]["id"] = json!(hostile);
        redigest(&mut detect);
        let html = render_html(&detect, "d", None).unwrap();
        assert!(
            !html.contains("<script") && !html.contains("<img"),
            "{html}"
        );
        // Text where the format has numbers, words or fixed forms is not a
        // report provmark makes: refused, whatever the escaping would do.
        type Edit = fn(&mut Report, Value);
        let numeric: [(&str, Edit); 8] = [
            ("results.texts", |r, v| r.results["texts"] = v),
            ("results.scored", |r, v| r.results["scored"] = v),
            ("results.key_swap.keys", |r, v| {
                r.results["key_swap"]["keys"] = v
            }),
            ("results.reference.filtered_out", |r, v| {
                r.results["reference"]["filtered_out"] = v
            }),
            ("profiles[0]", |r, v| {
                r.profiles[0].key_id = v.as_str().unwrap().into()
            }),
            ("inputs[0].role", |r, v| {
                r.inputs[0].role = v.as_str().unwrap().into()
            }),
            ("command.name", |r, v| {
                r.command.name = v.as_str().unwrap().into()
            }),
            ("decision.verdict", |r, v| r.decision["verdict"] = v),
        ];
        for (path, set) in numeric {
            let mut crafted = audit.clone();
            set(&mut crafted, json!(hostile));
            redigest(&mut crafted);
            match render_html(&crafted, "a", None) {
                Err(Error::Content { path: p, .. }) => assert_eq!(p, path),
                other => panic!("{path}: {:?}", other.map(|_| ())),
            }
        }
        let mut crafted = audit.clone();
        crafted.profiles[0].profile["context"] = json!(hostile);
        redigest(&mut crafted);
        assert!(matches!(
            render_html(&crafted, "a", None),
            Err(Error::InvalidProfile { .. })
        ));
    }

    #[test]
    fn edited_reports_are_not_rendered() {
        let (_, mut report) = load("detect.json");
        report.results["texts"][0]["log10_p"] = json!(-99.0);
        assert!(matches!(
            render_html(&report, "d", None),
            Err(Error::Edited { action: "render" })
        ));
    }
}
