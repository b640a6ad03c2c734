//! Evidence reports: canonical bytes that do not depend on the run, exact
//! recomputation by `report verify`, and every kind of change (input byte,
//! key, parameter, edited result, signature) caught and named.

mod common;

use std::path::Path;
use std::process::Output;

use common::provmark;
use provmark_testkit::corpus::docs_corpus;
use provmark_testkit::lab::Lab;
use serde_json::{json, Value};

/// A forger's file: the canonical bytes of the edited content (anything
/// else is refused before its numbers are looked at).
fn canonical(v: &Value) -> String {
    serde_jcs::to_string(v).unwrap() + "\n"
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A 2048-token tokenizer, lab.key and other.key, a default profile, and
/// three JSONL files of corpus paragraphs (texts 0..30, more 30..50, lab 10..40).
fn lab() -> Lab {
    let lab = common::lab_builder()
        .tokenizer(2048)
        .key("other.key")
        .build();
    let d = lab.path();
    let docs = docs_corpus();
    let paragraphs: Vec<&str> = docs.split("\n\n").filter(|p| p.len() > 200).collect();
    let jsonl = |range: std::ops::Range<usize>| -> String {
        paragraphs[range]
            .iter()
            .map(|p| format!("{}\n", json!({"text": p})))
            .collect()
    };
    std::fs::write(d.join("texts.jsonl"), jsonl(0..30)).unwrap();
    std::fs::write(d.join("more.jsonl"), jsonl(30..50)).unwrap();
    std::fs::write(d.join("lab.jsonl"), jsonl(10..40)).unwrap();
    lab
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The digested part of a report, in its canonical bytes.
fn body(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("run");
    serde_jcs::to_string(&v).unwrap()
}

fn verify(d: &Path, report: &str, key: &str, inputs: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["report", "verify", report, "--key", key, "--inputs"];
    args.extend_from_slice(inputs);
    let out = provmark(d, &args);
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn detect_reports_are_canonical_and_recomputed_exactly() {
    let lab = lab();
    let d = lab.path();
    let detect = |threads: &str, out: &str| {
        ok(provmark(
            d,
            &[
                "detect",
                "--profile",
                "lab.profile.json",
                "--key",
                "lab.key",
                "--tokenizer",
                "tokenizer.json",
                "--threads",
                threads,
                "--report",
                out,
                "texts.jsonl",
                "more.jsonl",
            ],
        ))
    };
    detect("1", "a.json");
    detect("2", "b.json");
    // Same inputs and key: the same canonical bytes whatever the threads.
    assert_eq!(body(&d.join("a.json")), body(&d.join("b.json")));
    let a = read(&d.join("a.json"));
    assert_eq!(a["format"], "provmark-report/1");
    assert_eq!(a["results"]["texts"].as_array().unwrap().len(), 50);
    assert_eq!(a["inputs"].as_array().unwrap().len(), 3);
    assert_eq!(a["inputs"][0]["role"], "tokenizer");
    assert!(a["profiles"][0]["key_commitment"].as_str().unwrap().len() > 10);
    // The key itself is nowhere in the report.
    let key_hex = std::fs::read_to_string(d.join("lab.key")).unwrap();
    assert!(!std::fs::read_to_string(d.join("a.json"))
        .unwrap()
        .contains(key_hex.trim()));

    let inputs = ["tokenizer.json", "texts.jsonl", "more.jsonl"];
    let (code, out) = verify(d, "a.json", "lab.key", &inputs);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("MATCH"), "{out}");

    // Another key: named, and nothing is recomputed.
    let (code, out) = verify(d, "a.json", "other.key", &inputs);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("key 0") && out.contains("commitment"), "{out}");

    // One changed byte of an input: named by its place and role.
    let original = std::fs::read_to_string(d.join("more.jsonl")).unwrap();
    std::fs::write(d.join("more.jsonl"), original.replacen('e', "E", 1)).unwrap();
    let (code, out) = verify(d, "a.json", "lab.key", &inputs);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("input 2 (input more.jsonl"), "{out}");
    std::fs::write(d.join("more.jsonl"), &original).unwrap();

    // An edited p-value: the digest no longer matches, and nothing is
    // recomputed from an edited report.
    let mut forged = a.clone();
    forged["results"]["texts"][3]["log10_p"] = json!(-42.0);
    std::fs::write(d.join("forged.json"), canonical(&forged)).unwrap();
    let (code, out) = verify(d, "forged.json", "lab.key", &inputs);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("digest:"), "{out}");
    assert!(out.contains("computation: not recomputed"), "{out}");
    // The same content in other bytes (serde_json's number forms): refused
    // as not canonical.
    std::fs::write(d.join("forged.json"), forged.to_string()).unwrap();
    let (code, out) = verify(d, "forged.json", "lab.key", &inputs);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("file: not the canonical bytes"), "{out}");

    // A forger who also fixes the digest is still caught by recomputation;
    // a changed parameter likewise.
    forged["parameters"]["alpha"] = json!(0.5);
    let mut no_digest = forged.clone();
    no_digest.as_object_mut().unwrap().remove("digest");
    forged["digest"] = json!(redigest(&no_digest));
    std::fs::write(d.join("forged.json"), canonical(&forged)).unwrap();
    let (code, out) = verify(d, "forged.json", "lab.key", &inputs);
    assert_eq!(code, Some(1), "{out}");
    assert!(!out.contains("digest:"), "{out}");
    assert!(
        // Recomputed from the typed parameters (the replay line is never run):
        // the forged level changes every verdict, and the recorded replay line
        // no longer matches the parameters.
        out.contains("command.replay") && out.contains("results.texts[3].log10_p"),
        "{out}"
    );

    // The key against the published commitment.
    let commitment = a["profiles"][0]["key_commitment"].as_str().unwrap();
    let out = provmark(
        d,
        &[
            "key",
            "verify-commitment",
            "--key",
            "lab.key",
            "--commitment",
            commitment,
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let out = provmark(
        d,
        &[
            "key",
            "verify-commitment",
            "--key",
            "other.key",
            "--commitment",
            commitment,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("MISMATCH"));

    // Wrong number of inputs: a clear error listing what the report needs.
    let (code, out) = verify(d, "a.json", "lab.key", &["texts.jsonl"]);
    assert_eq!(code, Some(2));
    assert!(
        out.contains("tokenizer tokenizer.json, input texts.jsonl, input more.jsonl"),
        "{out}"
    );
}

fn redigest(v: &Value) -> String {
    use sha2::{Digest, Sha256};
    let mut m = v.as_object().unwrap().clone();
    m.remove("run");
    m.remove("signature");
    let bytes = serde_jcs::to_string(&Value::Object(m)).unwrap();
    format!("sha256:{:x}", Sha256::digest(bytes.as_bytes()))
}

#[test]
fn audit_reports_verify_and_signatures_catch_tampering() {
    let lab = lab();
    let d = lab.path();
    let common = [
        "--profile",
        "lab.profile.json",
        "--key",
        "lab.key",
        "--tokenizer",
        "tokenizer.json",
        "--null-keys",
        "99",
        "--alpha",
        "0.01",
    ];
    let mut args = vec!["audit", "corpus"];
    args.extend_from_slice(&common);
    args.extend_from_slice(&[
        "--filter-from",
        "lab.jsonl",
        "--reference",
        "more.jsonl",
        "--report",
        "audit.json",
        "texts.jsonl",
    ]);
    ok(provmark(d, &args));
    let a = read(&d.join("audit.json"));
    assert_eq!(
        a["results"]["key_swap"]["statistics"]
            .as_array()
            .unwrap()
            .len(),
        99
    );
    assert!(a["results"]["reference"]["key_swap"]["statistics"].is_array());
    assert_eq!(a["decision"]["verdict"], a["results"]["verdict"]);
    let inputs = ["tokenizer.json", "lab.jsonl", "more.jsonl", "texts.jsonl"];
    let (code, out) = verify(d, "audit.json", "lab.key", &inputs);
    assert_eq!(code, Some(0), "{out}");

    // Sign, verify with the signer's public key, then tamper.
    let out = ok(provmark(
        d,
        &["report", "keygen", "--out", "auditor.ed25519"],
    ));
    let public = out
        .lines()
        .find_map(|l| l.strip_prefix("public key  "))
        .unwrap()
        .to_string();
    ok(provmark(
        d,
        &[
            "report",
            "sign",
            "audit.json",
            "--signing-key",
            "auditor.ed25519",
        ],
    ));
    let signed = read(&d.join("audit.json"));
    assert_eq!(
        signed["digest"], a["digest"],
        "signing does not change the digest"
    );
    let mut args = vec![
        "report",
        "verify",
        "audit.json",
        "--signer",
        &public,
        "--key",
        "lab.key",
        "--inputs",
    ];
    args.extend_from_slice(&inputs);
    let (code, out) = {
        let o = provmark(d, &args);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    assert_eq!(code, Some(0), "{out}");
    let signing_key = std::fs::read_to_string(d.join("auditor.ed25519")).unwrap();
    assert!(!out.contains(signing_key.trim()));
    // A swapped input digest, re-digested by the forger: the signature fails.
    let mut forged = signed.clone();
    forged["inputs"][3]["sha256"] = json!("00".repeat(32));
    let mut unsigned = forged.clone();
    unsigned.as_object_mut().unwrap().remove("digest");
    forged["digest"] = json!(redigest(&unsigned));
    std::fs::write(d.join("forged.json"), canonical(&forged)).unwrap();
    let (code, out) = verify(d, "forged.json", "lab.key", &inputs);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("signature: does not verify"), "{out}");
    assert!(out.contains("input 3"), "{out}");
    // Refusing to sign an edited report.
    std::fs::write(d.join("edited.json"), {
        let mut e = signed.clone();
        e["results"]["scored"] = json!(1);
        canonical(&e)
    })
    .unwrap();
    let out = provmark(
        d,
        &[
            "report",
            "sign",
            "edited.json",
            "--signing-key",
            "auditor.ed25519",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to sign"));

    // Sharded audits: the merged result has a report that verifies too.
    for i in 0..2 {
        let shard = format!("{i}/2");
        let part = format!("part{i}.json");
        let mut args = vec!["audit", "corpus"];
        args.extend_from_slice(&common);
        args.extend_from_slice(&["--shard", &shard, "--partial", &part, "texts.jsonl"]);
        ok(provmark(d, &args));
    }
    ok(provmark(
        d,
        &[
            "audit",
            "merge",
            "--profile",
            "lab.profile.json",
            "--alpha",
            "0.01",
            "--report",
            "merged.json",
            "part0.json",
            "part1.json",
        ],
    ));
    // The merged report binds the key and the corpus files: it is
    // recomputed from them, shard by shard.
    let verify_merged = |d: &Path| {
        provmark(
            d,
            &[
                "report",
                "verify",
                "merged.json",
                "--key",
                "lab.key",
                "--inputs",
                "tokenizer.json",
                "texts.jsonl",
                "part0.json",
                "part1.json",
            ],
        )
    };
    let out = verify_merged(d);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The handed case: 3,000 added to one shard's statistic (on plain
    // human text) made the merge say "attributed"; the report of that
    // merge is a MISMATCH naming the statistic and the verdict.
    let part = std::fs::read_to_string(d.join("part1.json")).unwrap();
    let mut forged: Value = serde_json::from_str(&part).unwrap();
    forged["statistic"] = json!(forged["statistic"].as_f64().unwrap() + 3000.0);
    std::fs::write(d.join("part1.json"), forged.to_string()).unwrap();
    std::fs::remove_file(d.join("merged.json")).unwrap();
    let merged = ok(provmark(
        d,
        &[
            "audit",
            "merge",
            "--profile",
            "lab.profile.json",
            "--alpha",
            "0.01",
            "--report",
            "merged.json",
            "part0.json",
            "part1.json",
        ],
    ));
    assert!(
        merged.contains("attributed") && !merged.contains("not_attributed"),
        "{merged}"
    );
    let out = verify_merged(d);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "partial part1.json: shard 1/2 recomputed from the corpus files differs: statistic:"
        ),
        "{text}"
    );
}

/// Headless Chromium, when installed (CI installs Debian's package and sets
/// PROVMARK_REQUIRE_CHROMIUM, so there the check cannot be skipped).
fn chromium() -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if found.is_none() {
        assert!(
            std::env::var_os("PROVMARK_REQUIRE_CHROMIUM").is_none(),
            "PROVMARK_REQUIRE_CHROMIUM is set but chromium is not installed"
        );
        eprintln!("chromium not installed: the browser part of this test is skipped");
    }
    found
}

#[test]
fn rendered_reports_are_self_contained_and_render_in_chromium() {
    let lab = lab();
    let d = lab.path();
    ok(provmark(
        d,
        &[
            "detect",
            "--profile",
            "lab.profile.json",
            "--key",
            "lab.key",
            "--tokenizer",
            "tokenizer.json",
            "--report",
            "detect.json",
            "texts.jsonl",
        ],
    ));
    ok(provmark(
        d,
        &[
            "report",
            "render",
            "detect.json",
            "--html",
            "detect.html",
            "--key",
            "lab.key",
            "--inputs",
            "tokenizer.json",
            "texts.jsonl",
            "--max-texts",
            "3",
        ],
    ));
    ok(provmark(
        d,
        &[
            "audit",
            "corpus",
            "--profile",
            "lab.profile.json",
            "--key",
            "lab.key",
            "--tokenizer",
            "tokenizer.json",
            "--null-keys",
            "99",
            "--alpha",
            "0.01",
            "--report",
            "audit.json",
            "texts.jsonl",
        ],
    ));
    ok(provmark(
        d,
        &["report", "render", "audit.json", "--html", "audit.html"],
    ));
    let detect_html = std::fs::read_to_string(d.join("detect.html")).unwrap();
    let audit_html = std::fs::read_to_string(d.join("audit.html")).unwrap();
    for html in [&detect_html, &audit_html] {
        assert!(html.starts_with("<!DOCTYPE html>"));
        // No scripts and nothing fetched from a network.
        assert!(
            !html.contains("<script")
                && !html.contains("src=\"http")
                && !html.contains("href=\"http")
        );
        assert!(html.contains("provmark report verify"));
    }
    assert!(
        detect_html.contains("0 of 30 text(s) carry the watermark"),
        "{detect_html}"
    );
    let report = read(&d.join("detect.json"));
    let scored: u64 = report["results"]["texts"].as_array().unwrap()[..3]
        .iter()
        .map(|t| t["scored"].as_u64().unwrap())
        .sum();
    let coloured = detect_html.matches("class=\"g\" title").count()
        + detect_html.matches("class=\"r\" title").count();
    assert_eq!(coloured as u64, scored, "every scored token is coloured");
    assert!(audit_html.contains("random keys") && audit_html.contains("<svg"));
    // A wrong key is refused before anything is shown.
    let out = provmark(
        d,
        &[
            "report",
            "render",
            "detect.json",
            "--html",
            "x.html",
            "--key",
            "other.key",
            "--inputs",
            "tokenizer.json",
            "texts.jsonl",
        ],
    );
    assert_eq!(out.status.code(), Some(2));

    let Some(browser) = chromium() else { return };
    for page in ["detect", "audit"] {
        let url = format!("file://{}", d.join(format!("{page}.html")).display());
        let shot = d.join(format!("{page}.png"));
        let run = |extra: &[&str]| {
            std::process::Command::new(browser)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--window-size=1100,1400",
                ])
                .args(extra)
                .arg(&url)
                .output()
                .unwrap()
        };
        let out = run(&[&format!("--screenshot={}", shot.display())]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let png = std::fs::read(&shot).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 20_000,
            "a real screenshot"
        );
        if page == "audit" {
            ok(provmark(
                d,
                &[
                    "report",
                    "render",
                    "audit.json",
                    "--html",
                    "audit.html",
                    "--pdf",
                    "audit.pdf",
                ],
            ));
            let pdf = std::fs::read(d.join("audit.pdf")).unwrap();
            assert!(pdf.starts_with(b"%PDF") && pdf.len() > 5_000);
        }
        let dom = String::from_utf8(run(&["--dump-dom"]).stdout).unwrap();
        assert!(dom.contains("id=\"verdict\""), "{dom}");
        // Human text under a fresh random key is usually not attributed,
        // but the page must say whatever the report says.
        let expected = if page == "detect" {
            "carry the watermark"
        } else {
            match read(&d.join("audit.json"))["results"]["verdict"]
                .as_str()
                .unwrap()
            {
                "attributed" => "Attributed:",
                "inconclusive" => "Inconclusive:",
                "too_short" => "Too short:",
                _ => "Not attributed:",
            }
        };
        assert!(dom.contains(expected), "{expected}: {dom}");
    }
}

/// A report of `detect --normalize invisible` (spec §5.1): it records the
/// parameter and each text's `invisible_edits`, recomputes exactly, renders
/// the texts as the test read them (no zero-width or no-break character
/// left on the page), and a report whose recorded normalisation was changed
/// is a mismatch; `--normalize` takes only the names it documents.
#[test]
fn normalised_detect_reports_verify_and_render() {
    let lab = lab();
    let d = lab.path();
    let edited: String = std::fs::read_to_string(d.join("texts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let t = v["text"].as_str().unwrap().replace(' ', " \u{200b}");
            format!("{}\n", json!({ "text": t.replacen(' ', "\u{a0}", 3) }))
        })
        .collect();
    std::fs::write(d.join("edited.jsonl"), edited).unwrap();
    let detect = |extra: &[&str], out: &str| {
        let mut args = vec![
            "detect",
            "--profile",
            "lab.profile.json",
            "--key",
            "lab.key",
            "--tokenizer",
            "tokenizer.json",
            "--report",
            out,
        ];
        args.extend_from_slice(extra);
        args.push("edited.jsonl");
        provmark(d, &args)
    };
    ok(detect(&["--normalize", "invisible"], "n.json"));
    let r = read(&d.join("n.json"));
    assert_eq!(r["parameters"]["normalize"], "invisible");
    assert_eq!(r["decision"]["normalize"], "invisible");
    assert_eq!(r["decision"]["texts_with_invisible_edits"], 30);
    assert!(
        r["results"]["texts"][0]["invisible_edits"]
            .as_u64()
            .unwrap()
            > 10
    );
    let (code, out) = verify(d, "n.json", "lab.key", &["tokenizer.json", "edited.jsonl"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("MATCH"), "{out}");

    ok(provmark(
        d,
        &[
            "report",
            "render",
            "n.json",
            "--html",
            "n.html",
            "--key",
            "lab.key",
            "--inputs",
            "tokenizer.json",
            "edited.jsonl",
            "--max-texts",
            "2",
        ],
    ));
    let page = std::fs::read_to_string(d.join("n.html")).unwrap();
    assert!(page.contains("class=\"g\""), "the token view is there");
    assert!(!page.contains('\u{200b}') && !page.contains('\u{a0}'));

    // The same report claiming no normalisation: a mismatch, not a pass.
    let mut forged = r.clone();
    forged["parameters"]
        .as_object_mut()
        .unwrap()
        .remove("normalize");
    let mut no_digest = forged.clone();
    no_digest.as_object_mut().unwrap().remove("digest");
    forged["digest"] = json!(redigest(&no_digest));
    std::fs::write(d.join("forged.json"), canonical(&forged)).unwrap();
    let (code, out) = verify(
        d,
        "forged.json",
        "lab.key",
        &["tokenizer.json", "edited.jsonl"],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("MISMATCH"), "{out}");

    let out = detect(&["--normalize", "nfkc"], "x.json");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invisible") && err.contains("nfkc"), "{err}");
}
