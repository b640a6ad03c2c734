//! The same inputs give byte-identical canonical reports before and after
//! the report code moved into provmark-evidence: the commands that wrote
//! `evidence/tests/data/*.json` (commit 5630b5a, see its README) are run
//! again and every member except `run` (times, argv, host) must have the
//! same canonical bytes.

mod common;

use std::path::{Path, PathBuf};

use common::provmark;
use serde_json::Value;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../evidence/tests/data")
}

/// The canonical bytes of two reports without `run` (times, argv, host).
/// `tool.commit` is the build's (`PROVMARK_COMMIT`, set by some builds):
/// where the two builds differ in it, it is set aside together with what
/// covers it (`digest`, `signature`); each digest is checked on its own.
fn bodies(now: &str, committed: &str) -> (String, String) {
    let mut a: Value = serde_json::from_str(now).unwrap();
    let mut b: Value = serde_json::from_str(committed).unwrap();
    let same_commit = a["tool"]["commit"] == b["tool"]["commit"];
    for v in [&mut a, &mut b] {
        let m = v.as_object_mut().unwrap();
        m.remove("run");
        if !same_commit {
            m["tool"]["commit"] = "unknown".into();
            m.remove("digest");
            m.remove("signature");
        }
    }
    (
        serde_jcs::to_string(&a).unwrap(),
        serde_jcs::to_string(&b).unwrap(),
    )
}

fn ok(d: &Path, args: &[&str]) {
    let out = provmark(d, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn same(d: &Path, name: &str) {
    let committed = std::fs::read_to_string(data().join(name)).unwrap();
    let now = std::fs::read_to_string(d.join(name)).unwrap();
    let (a, b) = bodies(&now, &committed);
    assert_eq!(a, b, "{name}");
    let report = provmark_evidence::parse(&now, name).unwrap();
    assert!(report.digest_matches(), "{name}");
    assert_eq!(report.canonical_file(), now, "{name}");
}

#[test]
fn reports_keep_their_bytes_for_the_same_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for f in [
        "lab.key",
        "lab.profile.json",
        "texts.jsonl",
        "reference.jsonl",
        "auditor.ed25519",
    ] {
        std::fs::copy(data().join(f), d.join(f)).unwrap();
    }
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../llm/tests/data/tiny/tiny-llama.gguf"),
        d.join("model.gguf"),
    )
    .unwrap();
    let keyed = [
        "--profile",
        "lab.profile.json",
        "--key",
        "lab.key",
        "--model",
        "model.gguf",
    ];
    let mut detect = vec!["detect"];
    detect.extend_from_slice(&keyed);
    // The limit the committed report was made with (the default is now 4 MiB).
    detect.extend_from_slice(&["--max-record-bytes", "67108864"]);
    detect.extend_from_slice(&["--jsonl", "--report", "detect.json", "texts.jsonl"]);
    ok(d, &detect);
    same(d, "detect.json");

    let audit = |extra: &[&str]| {
        let mut a = vec!["audit", "corpus"];
        a.extend_from_slice(&keyed);
        a.extend_from_slice(&["--null-keys", "99", "--alpha", "0.01"]);
        a.extend_from_slice(extra);
        ok(d, &a);
    };
    audit(&[
        "--reference",
        "reference.jsonl",
        "--report",
        "audit.json",
        "texts.jsonl",
    ]);
    same(d, "audit.json");

    // ed25519 signatures are deterministic: the signed report too.
    std::fs::copy(d.join("audit.json"), d.join("audit-signed.json")).unwrap();
    ok(
        d,
        &[
            "report",
            "sign",
            "audit-signed.json",
            "--signing-key",
            "auditor.ed25519",
        ],
    );
    same(d, "audit-signed.json");

    for i in 0..2 {
        let shard = format!("{i}/2");
        let part = format!("part{i}.json");
        audit(&["--shard", &shard, "--partial", &part, "texts.jsonl"]);
        assert_eq!(
            std::fs::read(d.join(&part)).unwrap(),
            std::fs::read(data().join(&part)).unwrap(),
            "{part}"
        );
    }
    ok(
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
    );
    same(d, "merged.json");
}
