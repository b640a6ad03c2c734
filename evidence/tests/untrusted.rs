//! Reports written by someone else are hostile input (issue #13 §1, §3):
//! inputs are bound by their SHA-256, not their path; a file that is not
//! the canonical bytes of its content is never recomputed; what was not
//! recomputed and who signed are said; a forged report cannot put markup
//! where the format has numbers, and the page forbids scripts and fetches.

use std::path::{Path, PathBuf};

use provmark_evidence::render::{render_html, CONTENT_SECURITY_POLICY};
use provmark_evidence::{
    recompute, verify, verify_file, AuditorKey, DetectRecipe, Difference, Error, Keyed, Report,
};
use provmark_testkit::corpus::{docs_corpus, train_bpe_json};
use provmark_testkit::fixtures::key;
use provmark_verify::TextTokenizer;
use provmark_watermark::{Key, Profile, Scheme, SynthIdParams};
use serde_json::json;

struct Lab {
    dir: tempfile::TempDir,
    key: Key,
    profile: Profile,
}

impl Lab {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn key_file(&self) -> PathBuf {
        PathBuf::from(self.path("lab.key"))
    }
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let json = train_bpe_json(&docs_corpus(), 1024);
    std::fs::write(dir.path().join("tokenizer.json"), &json).unwrap();
    let tokenizer = TextTokenizer::from_bytes(json.as_bytes(), "t").unwrap();
    let key = key(11);
    provmark_watermark::write_secret_file(&dir.path().join("lab.key"), &key.to_hex_file()).unwrap();
    let scheme = Scheme::SynthId(SynthIdParams::new(30).unwrap());
    let profile = Profile::new(scheme, 2, tokenizer.digest().clone(), &key).unwrap();
    let docs = docs_corpus();
    let paragraphs: Vec<&str> = docs.split("\n\n").filter(|p| p.len() > 200).collect();
    // One JSON Lines file whose records have no id (their ids are the
    // file's name and line) and one plain text file (its id is its name).
    let jsonl: String = paragraphs[0..6]
        .iter()
        .map(|p| format!("{}\n", json!({ "text": p })))
        .collect();
    std::fs::write(dir.path().join("answers.jsonl"), jsonl).unwrap();
    std::fs::write(dir.path().join("essay.txt"), paragraphs[7]).unwrap();
    Lab { dir, key, profile }
}

fn detect_report(lab: &Lab) -> Report {
    DetectRecipe {
        alpha: 1e-6,
        field: "text".into(),
        max_record_bytes: 1 << 20,
        window_min: 16,
        jsonl: false,
        windows: false,
        force_tokenizer: false,
        normalization: Default::default(),
        profiles: vec![Keyed {
            profile: lab.profile.clone(),
            key: &lab.key,
            profile_name: "lab.profile.json".into(),
            key_name: "lab.key".into(),
        }],
        tokenizers: vec![lab.path("tokenizer.json")],
        model: None,
        inputs: vec![lab.path("answers.jsonl"), lab.path("essay.txt")],
        locations: Default::default(),
    }
    .compute()
    .unwrap()
}

fn write_report(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn inputs_are_bound_by_their_digest_not_their_path() {
    let lab = lab();
    let report = detect_report(&lab);
    let ids: Vec<&str> = report.results["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(ids[0].ends_with("answers.jsonl:1"), "{ids:?}");
    assert!(ids.last().unwrap().ends_with("essay.txt"), "{ids:?}");

    // The court's bundle: the same bytes in another folder, under other
    // names (even another extension).
    let bundle = tempfile::tempdir().unwrap();
    let mut given = Vec::new();
    for (i, entry) in report.inputs.iter().enumerate() {
        let to = bundle.path().join(format!("exhibit-{i}.bin"));
        std::fs::copy(&entry.name, &to).unwrap();
        given.push(to);
    }
    let out = verify(&report, &[lab.key_file()], &given, None, &recompute).unwrap();
    assert!(out.matched(), "{:?}", out.differences);
    assert!(out.recomputed);

    // Other bytes under the recorded name are still caught by digest.
    std::fs::write(&given[2], "other words entirely").unwrap();
    let out = verify(&report, &[lab.key_file()], &given, None, &recompute).unwrap();
    assert!(matches!(
        out.differences.as_slice(),
        [
            Difference::InputDigest { index: 2, .. },
            Difference::NotRecomputed
        ]
    ));
}

#[test]
fn a_file_that_is_not_its_canonical_bytes_is_never_recomputed() {
    let lab = lab();
    let report = detect_report(&lab);
    let given: Vec<PathBuf> = report
        .inputs
        .iter()
        .map(|i| i.name.clone().into())
        .collect();
    let text = report.canonical_file();
    let dir = tempfile::tempdir().unwrap();

    // The canonical file verifies.
    let path = write_report(dir.path(), "r.json", &text);
    let out = verify_file(&path, &[lab.key_file()], &given, None, &recompute).unwrap();
    assert!(out.matched(), "{:?}", out.differences);

    // A second `decision` member before the real one: a reader sees the
    // forged first, a parser keeps the last; the digest still holds.
    let at = text.find("\"decision\":").unwrap();
    let forged = format!(
        "{}\"decision\":{{\"watermarked\":6}},{}",
        &text[..at],
        &text[at..]
    );
    let path = write_report(dir.path(), "dup.json", &forged);
    let never =
        |_: &Report, _: &[provmark_evidence::KeyFile], _: &[PathBuf]| -> Result<Report, Error> {
            panic!("recomputed a file that is not its canonical bytes")
        };
    let out = verify_file(&path, &[lab.key_file()], &given, None, &never).unwrap();
    // The first byte that differs lies in the inserted member.
    let first = at + "\"decision\":{\"".len();
    assert_eq!(
        out.differences[0],
        Difference::NotCanonical { offset: first }
    );
    assert!(!out.recomputed);
    assert!(out.differences.contains(&Difference::NotRecomputed));
    // Rendering and signing read reports strictly.
    assert!(matches!(
        provmark_evidence::read(&path),
        Err(Error::NotCanonical { offset, .. }) if offset == first
    ));
    // Re-spacing is refused too.
    let spaced = text.replacen(",", ", ", 1);
    let path = write_report(dir.path(), "spaced.json", &spaced);
    let out = verify_file(&path, &[lab.key_file()], &given, None, &never).unwrap();
    assert!(matches!(
        out.differences[0],
        Difference::NotCanonical { .. }
    ));
}

#[test]
fn the_outcome_says_who_signed_and_what_was_not_recomputed() {
    let lab = lab();
    let mut report = detect_report(&lab);
    let given: Vec<PathBuf> = report
        .inputs
        .iter()
        .map(|i| i.name.clone().into())
        .collect();
    let out = verify(&report, &[lab.key_file()], &given, None, &recompute).unwrap();
    assert!(out.matched());
    assert_eq!(out.signer, None);
    assert_eq!(out.not_recomputed, ["tool", "run"]);

    // Re-signed by someone else: without --signer it still matches, and
    // the outcome names the key that signed, so the reader can tell.
    let auditor = AuditorKey::generate().unwrap();
    let other = AuditorKey::generate().unwrap();
    other.sign(&mut report).unwrap();
    let out = verify(&report, &[lab.key_file()], &given, None, &recompute).unwrap();
    assert!(out.matched());
    assert_eq!(out.signer.as_deref(), Some(other.public_hex().as_str()));
    let out = verify(
        &report,
        &[lab.key_file()],
        &given,
        Some(&auditor.public_hex()),
        &recompute,
    )
    .unwrap();
    assert!(matches!(out.differences[0], Difference::Signature(_)));
    assert!(!out.recomputed);
}

#[test]
fn an_api_audit_lists_its_collection_as_not_recomputed() {
    // Which company was audited (endpoint, model) cannot be recomputed: a
    // MATCH must say so rather than "every field agrees".
    let lab = lab();
    let mut report = detect_report(&lab);
    report.command.name = "audit api".into();
    report.collection = Some(json!({"endpoint": "https://api.example/v1", "model": "m"}));
    let out = provmark_evidence::verify(
        &report,
        &[lab.key_file()],
        &report
            .inputs
            .iter()
            .map(|i| PathBuf::from(&i.name))
            .collect::<Vec<_>>(),
        None,
        &|r, _, _| Ok(r.clone()),
    )
    .unwrap();
    assert_eq!(
        out.not_recomputed,
        ["tool", "run", "collection.endpoint", "collection.model"]
    );
}

#[test]
fn rendering_refuses_markup_where_the_format_has_numbers() {
    let lab = lab();
    let report = detect_report(&lab);
    // The handed case (html_injection.py): numeric members holding HTML,
    // the digest recomputed so that only the content check can refuse it.
    let cases = [
        (
            "results.texts[0].tokens",
            json!("<img src=http://203.0.113.1/beacon.png>"),
        ),
        ("decision.errors", json!("<script>alert(1)</script>")),
        ("results.texts[0].verdict", json!("<b>watermarked</b>")),
        ("results.texts[0].key_id", json!("<script>")),
    ];
    for (path, value) in cases {
        let mut forged = report.clone();
        let parts: Vec<&str> = path.split('.').collect();
        let target = match parts.as_slice() {
            ["results", "texts[0]", m] => &mut forged.results["texts"][0][*m],
            ["decision", m] => &mut forged.decision[*m],
            _ => unreachable!(),
        };
        *target = value;
        forged.digest = forged.computed_digest();
        match render_html(&forged, "forged.json", None) {
            Err(Error::Content { path: p, .. }) => assert_eq!(p, path),
            other => panic!("{path}: rendered or other error: {:?}", other.map(|_| ())),
        }
    }
    // A profile member of the wrong type: the profile is invalid.
    let mut forged = report.clone();
    forged.profiles[0].profile["context"] = json!("<script>alert(2)</script>");
    forged.digest = forged.computed_digest();
    assert!(matches!(
        render_html(&forged, "forged.json", None),
        Err(Error::InvalidProfile { index: 0, .. })
    ));
}

#[test]
fn free_text_is_escaped_and_the_page_runs_nothing() {
    let lab = lab();
    let mut report = detect_report(&lab);
    // Record ids are free text (the suspect's corpus chose them).
    report.results["texts"][0]["id"] = json!("<script>alert('id')</script>");
    report.digest = report.computed_digest();
    let page = render_html(&report, "<img src=x>.json", None).unwrap();
    assert!(!page.contains("<script"), "a script element in the page");
    assert!(!page.contains("<img"), "an img element in the page");
    assert!(page.contains("&lt;script&gt;alert(&#39;id&#39;)&lt;/script&gt;"));
    assert!(page.contains(&format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\">"
    )));
    assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none'"));
}

#[test]
fn a_forged_replay_line_is_never_run() {
    // The handed case (replay_injection.sh): a re-digested report whose
    // replay line is an API audit sending the verifier's environment
    // secret to the forger's address and writing into the forger's folder.
    let lab = lab();
    let mut report = detect_report(&lab);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}/v1", listener.local_addr().unwrap());
    let pwned = lab.dir.path().join("replay_pwned");
    std::env::set_var("VERIFIER_SECRET_FOR_TEST", "s3cr3t-env-value");
    report.command.replay = [
        "audit",
        "api",
        "--endpoint",
        &endpoint,
        "--model",
        "m",
        "--prompts",
        "@input:0",
        "--out",
        &pwned.display().to_string(),
        "--api-key-env",
        "VERIFIER_SECRET_FOR_TEST",
        "--retries",
        "0",
        "--null-keys",
        "19",
        "--alpha",
        "0.05",
        "--profile",
        "@profile:0",
        "--key",
        "@key:0",
    ]
    .map(String::from)
    .to_vec();
    report.digest = report.computed_digest();
    let given: Vec<PathBuf> = report
        .inputs
        .iter()
        .map(|i| i.name.clone().into())
        .collect();
    let out = verify(&report, &[lab.key_file()], &given, None, &recompute).unwrap();
    // Recomputed from the typed content: the replay line is merely a
    // member that no longer matches the parameters.
    assert!(out.recomputed);
    let lines: Vec<String> = out.differences.iter().map(|d| d.to_string()).collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("command.replay:"),
        "{lines:?}"
    );
    assert!(!lines[0].contains("s3cr3t"));
    // Nobody called the forger's address, nothing was written there.
    assert!(matches!(
        listener.accept(),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    ));
    assert!(!pwned.exists());
}

#[test]
fn mutated_reports_never_panic_the_reader_the_checks_or_the_page() {
    // The deterministic companion of the report_parse fuzz target: seeded
    // byte flips, cuts and insertions of a real report.
    let lab = lab();
    let text = detect_report(&lab).canonical_file().into_bytes();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let inserts: [&[u8]; 6] = [b"\"", b"{", b"]", b"<script>", b"1e999", b",\"x\":null"];
    let (mut parsed, mut rendered) = (0, 0);
    for _ in 0..3000 {
        let mut bytes = text.clone();
        for _ in 0..1 + next() % 3 {
            let at = (next() as usize) % bytes.len().max(1);
            if bytes.is_empty() {
                break;
            }
            match next() % 3 {
                0 => bytes[at] = (next() % 256) as u8,
                1 => bytes.truncate(at),
                _ => {
                    let piece = inserts[(next() as usize) % inserts.len()];
                    bytes.splice(at..at, piece.iter().copied());
                }
            }
        }
        let Ok(s) = std::str::from_utf8(&bytes) else {
            continue;
        };
        if let Ok(r) = provmark_evidence::parse(s, "mutant") {
            parsed += 1;
            let _ = provmark_evidence::canonical_offset(s, &r);
            let _ = provmark_evidence::validate::validate(&r);
            if render_html(&r, "mutant", None).is_ok() {
                rendered += 1;
            }
        }
    }
    // Some mutants still parse (e.g. a changed digit); few render, since a
    // changed byte breaks the digest.
    assert!(parsed > 0, "no mutant parsed: the test exercises nothing");
    assert!(rendered < parsed);
}

#[cfg(unix)]
#[test]
fn an_endless_or_special_signing_key_file_is_refused() {
    // A device is not a key file: refused before a byte is read.
    let e = AuditorKey::load(Path::new("/dev/zero")).err().unwrap();
    assert!(matches!(e, Error::ReadSigningKey { .. }), "{e}");
    assert_eq!(e.to_string(), "cannot read the signing key /dev/zero");
    // A regular file that goes on and on: refused after a few bytes.
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("long.ed25519");
    std::fs::write(&long, "0".repeat(1 << 20)).unwrap();
    let e = AuditorKey::load(&long).err().unwrap();
    assert!(matches!(e, Error::SigningKey { .. }), "{e}");
}

#[test]
fn a_page_says_whether_it_was_verified_and_who_signed() {
    use provmark_evidence::render::{render_page, Standing};
    let lab = lab();
    let report = detect_report(&lab);
    // The breaker's case: a forged, unsigned report drawn without checks
    // must not read as proven.
    let page = render_html(&report, "r.json", None).unwrap();
    assert!(page.contains("<strong>Not verified</strong>"), "{page}");
    assert!(page.contains("<strong>Unsigned</strong>"));
    let given: Vec<PathBuf> = report
        .inputs
        .iter()
        .map(|i| i.name.clone().into())
        .collect();
    let out = verify(&report, &[lab.key_file()], &given, None, &recompute).unwrap();
    let page = render_page(&report, "r.json", None, &Standing::Verified(&out)).unwrap();
    assert!(page.contains("Verified for this page"));
    // A MISMATCH is never drawn as verified; a broken signature not at all.
    let mut forged = report.clone();
    forged.results["texts"][0]["log10_p"] = json!(-50.0);
    forged.digest = forged.computed_digest();
    let out = verify(&forged, &[lab.key_file()], &given, None, &recompute).unwrap();
    assert!(!out.matched());
    assert!(matches!(
        render_page(&forged, "f.json", None, &Standing::Verified(&out)),
        Err(Error::Unverified)
    ));
    let mut signed = report.clone();
    AuditorKey::generate().unwrap().sign(&mut signed).unwrap();
    let page = render_html(&signed, "s.json", None).unwrap();
    assert!(page.contains(&signed.signature.as_ref().unwrap().public_key));
    let mut broken = signed.clone();
    broken.signature.as_mut().unwrap().value = "00".repeat(64);
    assert!(matches!(
        render_html(&broken, "b.json", None),
        Err(Error::BadSignature { .. })
    ));
}
