//! Untrusted inputs through the binary (issue #13 §5–6): endless inputs
//! end, a directory among the inputs is one reported error (exit 1, the
//! other inputs tested), a BOM on JSONL line 1 is ignored, key files are
//! read bounded and exposed ones warned about, the record limit defaults to
//! 4 MiB, and `generate` refuses to resume with other settings.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs provmark in `dir`, failing (not hanging) after `limit`.
fn run_within(dir: &Path, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_provmark"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("provmark runs");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("provmark {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn run(dir: &Path, args: &[&str]) -> Output {
    run_within(dir, args, Duration::from_secs(120))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const DETECT: [&str; 7] = [
    "detect",
    "--profile",
    "lab.profile.json",
    "--key",
    "lab.key",
    "--tokenizer",
    "tokenizer.json",
];

fn detect(dir: &Path, extra: &[&str]) -> Output {
    let mut args = DETECT.to_vec();
    args.push("--json");
    args.extend_from_slice(extra);
    run(dir, &args)
}

#[cfg(target_os = "linux")]
#[test]
fn endless_inputs_end() {
    let lab = common::lab_builder().tokenizer(1000).build();
    let d = lab.path();
    std::fs::write(
        d.join("ok.txt"),
        "a plain text to test after the endless one",
    )
    .unwrap();
    // JSONL from /dev/zero: before, the over-long line was skipped for ever.
    let mut args = DETECT.to_vec();
    args.extend(["--json", "--jsonl", "/dev/zero", "ok.txt"]);
    let out = run_within(d, &args, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["verdict"], "error");
    assert_eq!(
        lines[0]["error"],
        "/dev/zero:1: binary file: NUL byte at byte offset 0; not read further"
    );
    assert_eq!(
        lines[1]["verdict"], "error",
        "ok.txt read as JSONL: {lines:?}"
    );
    // As a text file, /dev/zero is refused after the limit + 1 bytes.
    let out = run_within(
        d,
        &[&DETECT[..], &["--json", "/dev/zero"]].concat(),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        json_lines(&out)[0]["error"],
        "/dev/zero: larger than the 4194304 byte limit (--max-record-bytes)"
    );
    // --key /dev/zero: before, read until memory ran out.
    let mut args = DETECT.to_vec();
    args[4] = "/dev/zero";
    args.push("ok.txt");
    let out = run_within(d, &args, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/dev/zero: more than 128 bytes is too long for a key file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_directory_among_the_inputs_is_reported_and_the_others_tested() {
    let lab = common::lab_builder().tokenizer(1000).build();
    let d = lab.path();
    std::fs::create_dir(d.join("texts")).unwrap();
    std::fs::write(d.join("a.txt"), "the first text, with several words in it").unwrap();
    std::fs::write(
        d.join("b.jsonl"),
        "{\"id\": \"b\", \"text\": \"another text to test here\"}\n",
    )
    .unwrap();
    let out = detect(d, &["a.txt", "texts", "b.jsonl"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit 1, not 2: {}",
        stderr(&out)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_ne!(lines[0]["verdict"], "error");
    assert_eq!(lines[1]["id"], "texts");
    let e = lines[1]["error"].as_str().unwrap();
    assert!(
        e.starts_with("texts: cannot read: ") && e.contains("directory"),
        "{e}"
    );
    assert_eq!(lines[2]["id"], "b");
    assert_ne!(lines[2]["verdict"], "error");
    assert!(
        stderr(&out).contains("texts: cannot read"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("3 texts:") && stderr(&out).contains("1 errors"));

    // audit corpus counts it among the unreadable texts and goes on.
    let out = run(
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
            "--json",
            "a.txt",
            "texts",
            "b.jsonl",
        ],
    );
    assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("texts: cannot read"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bom_on_jsonl_line_one_is_ignored() {
    let lab = common::lab_builder().tokenizer(1000).build();
    let d = lab.path();
    std::fs::write(
        d.join("bom.jsonl"),
        "\u{feff}{\"id\": \"one\", \"text\": \"a text saved by an editor that writes a BOM\"}\n",
    )
    .unwrap();
    let out = detect(d, &["bom.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines[0]["id"], "one");
    assert_ne!(lines[0]["verdict"], "error");
}

#[test]
fn the_record_limit_defaults_to_4_mib_and_help_states_memory_per_thread() {
    let lab = common::lab_builder().tokenizer(1000).build();
    let d = lab.path();
    let mut text = "word ".repeat((4 << 20) / 5);
    text.push_str(&"x".repeat((4 << 20) - text.len()));
    std::fs::write(d.join("at.txt"), &text).unwrap();
    text.push('y');
    std::fs::write(d.join("over.txt"), &text).unwrap();
    let out = detect(d, &["over.txt", "at.txt"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(
        lines[0]["error"],
        "over.txt: larger than the 4194304 byte limit (--max-record-bytes)"
    );
    assert_ne!(lines[1]["verdict"], "error", "exactly 4 MiB is read");
    let help = run(d, &["detect", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: 4194304]"), "{help}");
    assert!(
        help.contains("Each thread holds at most one record"),
        "{help}"
    );
}

#[cfg(unix)]
#[test]
fn key_files_group_or_others_may_read_draw_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let lab = common::lab_builder().tokenizer(1000).build();
    let d = lab.path();
    std::fs::write(d.join("t.txt"), "a short text to test").unwrap();
    let out = detect(d, &["t.txt"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("UNPROTECTED"), "keygen writes 0600");
    std::fs::set_permissions(d.join("lab.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = detect(d, &["t.txt"]);
    assert_eq!(out.status.code(), Some(0), "a warning, not a refusal");
    let e = stderr(&out);
    assert!(
        e.contains("UNPROTECTED KEY FILE lab.key: mode 0644") && e.contains("chmod 600 lab.key"),
        "{e}"
    );
    assert!(!e.contains(lab.key_hex()), "never the key");
    let out = run(d, &["key", "info", "--key", "lab.key"]);
    assert!(stderr(&out).contains("mode 0644"), "{}", stderr(&out));

    // The auditor's signing key (report keygen) too.
    let out = detect(d, &["--report", "r.json", "t.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(d, &["report", "keygen", "--out", "auditor.ed25519"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sign = [
        "report",
        "sign",
        "r.json",
        "--signing-key",
        "auditor.ed25519",
    ];
    let out = run(d, &sign);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("UNPROTECTED"),
        "report keygen writes 0600"
    );
    std::fs::set_permissions(
        d.join("auditor.ed25519"),
        std::fs::Permissions::from_mode(0o604),
    )
    .unwrap();
    let out = run(d, &sign);
    assert!(
        stderr(&out).contains("UNPROTECTED KEY FILE auditor.ed25519: mode 0604"),
        "{}",
        stderr(&out)
    );
}

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../llm/tests/data/tiny/tiny-llama.gguf")
}

#[test]
fn generate_refuses_to_resume_with_other_settings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("prompts.jsonl"),
        "{\"id\": \"a\", \"prompt\": \"Hello\"}\n{\"id\": \"b\", \"prompt\": \"abc\"}\n",
    )
    .unwrap();
    let tiny = tiny().display().to_string();
    let generate = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--no-watermark",
            "--model",
            &tiny,
            "--prompts",
            "prompts.jsonl",
            "--out",
            "out.jsonl",
        ];
        if !extra.contains(&"--max-tokens") {
            args.extend(["--max-tokens", "4"]);
        }
        args.extend_from_slice(extra);
        run(d, &args)
    };
    // Without --seed: a random seed, which a rerun takes from the file.
    let out = generate(&["--samples", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = generate(&["--samples", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 answers already there, 2 to go"),
        "{}",
        stderr(&out)
    );
    let before = std::fs::read(d.join("out.jsonl")).unwrap();
    for (extra, named) in [
        (&["--temperature", "0.5"][..], "sampling.temperature"),
        (&["--max-tokens", "5"][..], "sampling.max_tokens"),
        (&["--precision", "as-stored"][..], "precision"),
        (&["--raw"][..], "raw"),
        (&["--seed", "12345"][..], "run_seed"),
    ] {
        let out = generate(extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        let e = stderr(&out);
        assert!(
            e.contains("out.jsonl:1: this file was written with other settings")
                && e.contains(&format!("\"{named}\"")),
            "{extra:?}: {e}"
        );
        assert_eq!(
            std::fs::read(d.join("out.jsonl")).unwrap(),
            before,
            "nothing mixed in"
        );
    }
    // The output stays readable by detect (its text field).
    let lines: Vec<Value> = String::from_utf8(before)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert!(lines
        .iter()
        .all(|l| l["text"].is_string() && l["precision"] == "q8_0"));
}

#[cfg(target_os = "linux")]
#[test]
fn an_endless_prompt_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = tiny().display().to_string();
    let out = run_within(
        dir.path(),
        &[
            "generate",
            "--no-watermark",
            "--model",
            &tiny,
            "--prompts",
            "/dev/zero",
            "--out",
            "out.jsonl",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/dev/zero:1: binary file: NUL byte at byte offset 0"),
        "{}",
        stderr(&out)
    );
    // An endless --out is not resumed (it would be read for ever).
    std::fs::write(dir.path().join("p.jsonl"), "{\"prompt\": \"Hi\"}\n").unwrap();
    let out = run_within(
        dir.path(),
        &[
            "generate",
            "--no-watermark",
            "--model",
            &tiny,
            "--prompts",
            "p.jsonl",
            "--out",
            "/dev/zero",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/dev/zero is not a regular file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_closed_standard_output_is_an_error_not_a_crash() {
    // `provmark … | head -c0`: the reader is gone before anything is
    // written. Every command that prints says so and exits 2, no panic.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: [&[&str]; 3] = [
        &["keygen", "--out", "k.key"],
        &["report", "keygen", "--out", "a.ed25519"],
        &["key", "info", "--key", "k.key"],
    ];
    for args in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_provmark"))
            .current_dir(d)
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("cannot write to standard output"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn outputs_never_overwrite_inputs_or_keys() {
    let lab = common::lab_builder().tokenizer(1000).build();
    let d = lab.path();
    std::fs::write(
        d.join("victim.jsonl"),
        "{\"text\": \"words to keep, not overwrite\"}\n",
    )
    .unwrap();
    let key_before = std::fs::read(d.join("lab.key")).unwrap();
    let input_before = std::fs::read(d.join("victim.jsonl")).unwrap();
    for target in ["victim.jsonl", "lab.key"] {
        let out = detect(d, &["--report", target, "victim.jsonl"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("refusing to overwrite"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(std::fs::read(d.join("lab.key")).unwrap(), key_before);
    assert_eq!(std::fs::read(d.join("victim.jsonl")).unwrap(), input_before);
    // A rerun replaces its own report.
    for _ in 0..2 {
        let out = detect(d, &["--report", "r.json", "victim.jsonl"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    // The page is not written over the report (nor a PDF over anything else).
    let out = run(d, &["report", "render", "r.json", "--html", "r.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not a page provmark rendered"));
    let out = run(d, &["report", "render", "r.json", "--html", "r.html"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(d, &["report", "render", "r.json", "--html", "r.html"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A partial is not written over an input either.
    let out = run(
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
            "9",
            "--alpha",
            "0.1",
            "--shard",
            "0/2",
            "--partial",
            "victim.jsonl",
            "victim.jsonl",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(std::fs::read(d.join("victim.jsonl")).unwrap(), input_before);
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_not_waited_on() {
    let lab = common::lab_builder().tokenizer(1000).build();
    let d = lab.path();
    std::fs::write(d.join("t.jsonl"), "{\"text\": \"a few words to test\"}\n").unwrap();
    assert!(Command::new("mkfifo")
        .arg(d.join("ff"))
        .status()
        .unwrap()
        .success());
    let limit = Duration::from_secs(20);
    let mut with_key = DETECT.to_vec();
    with_key[4] = "ff";
    with_key.push("t.jsonl");
    let mut with_report = DETECT.to_vec();
    with_report.extend_from_slice(&["--report", "ff", "t.jsonl"]);
    let cases: [Vec<&str>; 5] = [
        vec!["report", "verify", "ff"],
        vec!["profile", "show", "ff"],
        vec!["report", "sign", "ff", "--signing-key", "ff"],
        with_key,
        with_report,
    ];
    for args in cases {
        let out = run_within(d, &args, limit);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    // An output may not be one of the run's own inputs, even a report.
    let out = detect(d, &["--report", "r.json", "t.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = detect(d, &["--report", "r.json", "r.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is one of the report's own inputs"),
        "{}",
        stderr(&out)
    );
    let out = run(
        d,
        &[
            "report", "render", "r.json", "--html", "p.html", "--pdf", "p.html",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Integers a report records exactly, and the shard count it can verify.
    let mut big = DETECT.to_vec();
    big.extend_from_slice(&["--windows", "--window-min", "9007199254740993", "t.jsonl"]);
    assert_eq!(run(d, &big).status.code(), Some(2));
    let out = run(
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
            "--shard",
            "0/1025",
            "--partial",
            "p.json",
            "t.jsonl",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("at most 1024 shards"),
        "{}",
        stderr(&out)
    );
}
