//! Prompt files, starting an engine, and resumable generation on the tiny
//! GGUF models (no download): records, resume after an interrupted line,
//! reproducible per-answer seeds, and typed errors naming file, line, field.

use std::path::{Path, PathBuf};

use provmark_llm::generate::{self, GenerateConfig, GenerateError, Progress, Record};
use provmark_llm::gguf_tokenizer::GgufTokenizer;
use provmark_llm::prompts::{self, PromptBody, PromptError};
use provmark_llm::serving::{Serving, ServingConfig, ServingError, WatermarkFiles};
use provmark_watermark::{Key, KgwParams, Profile, SamplingConfig, Scheme, TokenizerDigest};

fn tiny() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny/tiny-llama.gguf")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("provmark-llm-gen-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_prompts(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("prompts.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn prompt_files_parse_and_errors_name_file_line_and_field() {
    let dir = scratch("prompts");
    let path = write_prompts(
        &dir,
        "{\"id\": \"a\", \"prompt\": \"hi\"}\n\n{\"messages\": [{\"role\": \"user\", \"content\": \"yo\"}]}\n{\"id\": 7, \"prompt\": \"x\"}\n",
    );
    let p = prompts::read(&path).unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(
        (p[0].id.as_str(), &p[0].body),
        ("a", &PromptBody::Text("hi".into()))
    );
    assert_eq!(p[1].id, "3", "default id: the line number");
    assert!(matches!(&p[1].body, PromptBody::Messages(m) if m[0].content == "yo"));
    assert_eq!(
        (p[2].id.as_str(), p[2].id_value.clone()),
        ("7", serde_json::json!(7))
    );

    let cases: &[(&str, &str)] = &[
        (
            "{\"prompt\": \"ok\"}\n{\"prompt\": 5}\n",
            ":2: field prompt must be a string",
        ),
        ("[1]\n", ":1: expected a JSON object"),
        ("{nope\n", ":1: not a JSON object"),
        (
            "{\"id\": [1], \"prompt\": \"x\"}\n",
            ":1: field id must be a string or a number",
        ),
        (
            "{\"id\": 1, \"prompt\": \"x\"}\n{\"id\": 1, \"prompt\": \"y\"}\n",
            ":2: id 1 appears twice",
        ),
        (
            "{\"prompt\": \"x\", \"messages\": []}\n",
            ":1: give prompt or messages, not both",
        ),
        (
            "{\"id\": \"x\"}\n",
            ":1: field prompt (or messages) is missing",
        ),
        ("{\"messages\": []}\n", ":1: field messages is empty"),
        (
            "{\"messages\": [{\"role\": 1}]}\n",
            ":1: field messages must be a list",
        ),
    ];
    for (text, needle) in cases {
        let path = write_prompts(&dir, text);
        let e = prompts::read(&path).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
    let path = write_prompts(&dir, "{\"prompt\": \"ok\"}\n{\"prompt\": 5}\n");
    match prompts::read(&path).unwrap_err() {
        PromptError::Field { line, field, .. } => assert_eq!((line, field), (2, "prompt")),
        other => panic!("{other:?}"),
    }
    let e = prompts::read(&dir.join("missing.jsonl")).unwrap_err();
    assert!(matches!(e, PromptError::Open { .. }));
    assert!(e.to_string().contains("missing.jsonl"));
}

fn control(threads: usize, batch: usize) -> ServingConfig {
    ServingConfig {
        model: Some(tiny()),
        watermark: None,
        force_tokenizer: false,
        threads: Some(threads),
        batch,
        precision: Default::default(),
    }
}

fn config(out: PathBuf) -> GenerateConfig {
    GenerateConfig {
        out,
        prompts_name: "prompts.jsonl".into(),
        max_tokens: 12,
        sampling: SamplingConfig::new(1.0, 0, 1.0).unwrap(),
        policy: provmark_watermark::PolicyMode::Floor,
        seed: 7,
        samples: 2,
        raw: false,
    }
}

fn by_key(records: &[Record]) -> Vec<(String, usize, Vec<u32>)> {
    let mut v: Vec<_> = records
        .iter()
        .map(|r| (r.id.clone(), r.sample, r.token_ids.clone()))
        .collect();
    v.sort();
    v
}

#[test]
fn generation_writes_records_resumes_and_reproduces_answers() {
    let dir = scratch("resume");
    let prompts = prompts::parse(
        "{\"id\": \"a\", \"prompt\": \"Hello world\"}\n{\"id\": \"b\", \"prompt\": \"abc\"}\n{\"id\": \"c\", \"messages\": [{\"role\": \"user\", \"content\": \"123\"}]}\n".as_bytes(),
        Path::new("prompts.jsonl"),
    )
    .unwrap();
    let serving = Serving::start(&control(1, 4), &mut |_| {}).unwrap();
    assert_eq!(serving.model_name, "tiny-llama.gguf");
    let full = dir.join("full.jsonl");
    let mut events = Vec::new();
    let summary = generate::run(&serving, &prompts, &config(full.clone()), &mut |p| {
        events.push(
            format!("{p:?}")
                .split_whitespace()
                .next()
                .unwrap()
                .to_string(),
        )
    })
    .unwrap();
    assert_eq!((summary.answers, summary.failed), (6, 0));
    assert!(events.contains(&"Planned".to_string()));
    let records = generate::read_records(&full).unwrap();
    assert_eq!(records.len(), 6);
    for r in &records {
        assert_eq!(r.completion_tokens, r.token_ids.len());
        assert!(!r.watermark && r.profile_digest.is_none() && r.key_id.is_none());
        assert_eq!(r.seed, generate::answer_seed(7, &r.id, r.sample));
        assert_eq!(r.model_sha256, serving.runtime().sha256());
        assert_eq!(r.sampling.max_tokens, 12);
    }

    // Interrupted: two records and half of a third. The rerun (another
    // batch size) cuts the partial line and redoes exactly the rest.
    let text = std::fs::read_to_string(&full).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = dir.join("cut.jsonl");
    std::fs::write(
        &cut,
        format!(
            "{}\n{}\n{}",
            lines[0],
            lines[1],
            &lines[2][..lines[2].len() / 2]
        ),
    )
    .unwrap();
    drop(serving);
    let serving = Serving::start(&control(2, 1), &mut |_| {}).unwrap();
    let mut dropped = None;
    let mut planned = None;
    generate::run(&serving, &prompts, &config(cut.clone()), &mut |p| match p {
        Progress::DroppedPartialLine { bytes } => dropped = Some(bytes),
        Progress::Planned { done, to_go } => planned = Some((done, to_go)),
        _ => {}
    })
    .unwrap();
    assert_eq!(dropped, Some((lines[2].len() / 2) as u64));
    assert_eq!(planned, Some((2, 4)));
    assert_eq!(
        by_key(&generate::read_records(&cut).unwrap()),
        by_key(&records)
    );

    // Nothing left to do: a third run plans no work and writes nothing.
    let before = std::fs::read(&cut).unwrap();
    let s = generate::run(&serving, &prompts, &config(cut.clone()), &mut |_| {}).unwrap();
    assert_eq!(s.answers, 0);
    assert_eq!(std::fs::read(&cut).unwrap(), before);

    // A file that is not generation output is refused, naming the line.
    let other = dir.join("other.jsonl");
    std::fs::write(&other, "{\"text\": \"x\"}\n").unwrap();
    let e = generate::run(&serving, &prompts, &config(other.clone()), &mut |_| {}).unwrap_err();
    assert!(
        matches!(e, GenerateError::NotAnAnswer { line: 1, .. }),
        "{e}"
    );
    assert!(e
        .to_string()
        .contains("other.jsonl:1: fields id and sample are missing"));
}

#[test]
fn watermarked_engines_check_the_tokenizer_and_never_mix_profiles() {
    let dir = scratch("marked");
    let key = Key::generate().unwrap();
    std::fs::write(dir.join("lab.key"), key.to_hex_file()).unwrap();
    let digest = GgufTokenizer::from_file(&tiny()).unwrap().digest();
    // The digest is the GGUF metadata digest (spec §3, revision 7); the
    // hash of the exported tokenizer.json is the legacy form.
    let json = GgufTokenizer::from_file(&tiny()).unwrap().to_json();
    let legacy = TokenizerDigest::of_bytes(json.as_bytes());
    assert_ne!(digest, legacy);
    assert_eq!(
        GgufTokenizer::from_file(&tiny()).unwrap().legacy_digest(),
        legacy
    );
    let kgw = || Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap());
    let write_profile = |name: &str, digest: TokenizerDigest| {
        let p = Profile::new(kgw(), 2, digest, &key).unwrap();
        std::fs::write(dir.join(name), serde_json::to_string(&p.to_json()).unwrap()).unwrap();
    };
    write_profile("lab.profile.json", digest);
    write_profile("other.profile.json", TokenizerDigest::of_bytes(b"t"));
    let marked = |profile: &str, force| ServingConfig {
        watermark: Some(WatermarkFiles {
            profile: dir.join(profile),
            key: dir.join("lab.key"),
        }),
        force_tokenizer: force,
        ..control(1, 4)
    };
    match Serving::start(&marked("other.profile.json", false), &mut |_| {}) {
        Err(e @ ServingError::TokenizerMismatch { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("other.profile.json was made for another tokenizer than"),
                "{msg}"
            );
            assert!(msg.contains("tokenizer mismatch"), "{msg}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a profile for another tokenizer was accepted"),
    }
    assert!(Serving::start(&marked("other.profile.json", true), &mut |_| {}).is_ok());
    let zero = ServingConfig {
        batch: 0,
        precision: Default::default(),
        ..control(1, 1)
    };
    assert!(matches!(
        Serving::start(&zero, &mut |_| {}),
        Err(ServingError::ZeroBatch)
    ));

    let serving = Serving::start(&marked("lab.profile.json", false), &mut |_| {}).unwrap();
    let (key_id, profile_digest) = serving.disclosure().unwrap();
    let prompts = prompts::parse("{\"prompt\": \"Hello\"}\n".as_bytes(), Path::new("p")).unwrap();
    let out = dir.join("marked.jsonl");
    generate::run(&serving, &prompts, &config(out.clone()), &mut |_| {}).unwrap();
    let r = &generate::read_records(&out).unwrap()[0];
    assert!(r.watermark);
    assert_eq!(r.key_id.as_deref(), Some(key_id.as_str()));
    assert_eq!(r.profile_digest.as_deref(), Some(profile_digest.as_str()));

    // A control engine refuses to append to the watermarked file.
    drop(serving);
    let serving = Serving::start(&control(1, 4), &mut |_| {}).unwrap();
    let e = generate::run(&serving, &prompts, &config(out), &mut |_| {}).unwrap_err();
    assert!(
        matches!(e, GenerateError::OtherProfile { line: 1, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("another profile"), "{e}");
}

#[test]
fn a_rerun_with_other_settings_is_refused_naming_the_fields() {
    let dir = scratch("settings");
    let prompts = prompts::parse(
        "{\"id\": \"a\", \"prompt\": \"Hello\"}\n".as_bytes(),
        Path::new("p"),
    )
    .unwrap();
    let serving = Serving::start(&control(1, 4), &mut |_| {}).unwrap();
    let out = dir.join("out.jsonl");
    let base = || GenerateConfig {
        samples: 1,
        ..config(out.clone())
    };
    generate::run(&serving, &prompts, &base(), &mut |_| {}).unwrap();
    let r = &generate::read_records(&out).unwrap()[0];
    assert_eq!(r.precision.as_deref(), Some("q8_0"));
    assert_eq!(r.raw, Some(false));
    let before = std::fs::read(&out).unwrap();

    let refused = |serving: &Serving, c: GenerateConfig| -> String {
        let e = generate::run(serving, &prompts, &c, &mut |_| {}).unwrap_err();
        assert!(
            matches!(e, GenerateError::OtherSettings { line: 1, .. }),
            "{e}"
        );
        assert_eq!(std::fs::read(&out).unwrap(), before, "nothing appended");
        e.to_string()
    };
    let e = refused(
        &serving,
        GenerateConfig {
            sampling: SamplingConfig::new(0.7, 0, 1.0).unwrap(),
            max_tokens: 5,
            ..base()
        },
    );
    assert!(
        e.contains("out.jsonl:1: this file was written with other settings"),
        "{e}"
    );
    assert!(
        e.contains("\"sampling.max_tokens\":12") && e.contains("\"sampling.temperature\":1.0"),
        "{e}"
    );
    assert!(e.contains("\"sampling.max_tokens\":5"), "{e}");
    assert!(
        !e.contains("top_p") && !e.contains("seed"),
        "only what differs: {e}"
    );
    let e = refused(&serving, GenerateConfig { seed: 8, ..base() });
    assert!(
        e.contains("({\"run_seed\":7})") && e.contains("({\"run_seed\":8})"),
        "{e}"
    );
    assert_eq!(generate::recorded_seed(&out).unwrap(), Some(7));
    assert_eq!(
        generate::recorded_seed(&dir.join("none.jsonl")).unwrap(),
        None
    );
    let e = refused(
        &serving,
        GenerateConfig {
            raw: true,
            ..base()
        },
    );
    assert!(
        e.contains("{\"raw\":false}") && e.contains("{\"raw\":true}"),
        "{e}"
    );
    drop(serving);
    let as_stored = ServingConfig {
        precision: provmark_llm::model::Precision::AsStored,
        ..control(1, 4)
    };
    let serving = Serving::start(&as_stored, &mut |_| {}).unwrap();
    let e = refused(&serving, base());
    assert!(
        e.contains("{\"precision\":\"q8_0\"}") && e.contains("{\"precision\":\"as-stored\"}"),
        "{e}"
    );
    drop(serving);

    // The same settings resume; more samples are allowed.
    let serving = Serving::start(&control(2, 1), &mut |_| {}).unwrap();
    let s = generate::run(
        &serving,
        &prompts,
        &GenerateConfig {
            samples: 2,
            ..base()
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(s.answers, 1);
    // Records written before precision and raw were recorded still resume.
    let old = dir.join("old.jsonl");
    let text = std::fs::read_to_string(&out).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("precision");
    v.as_object_mut().unwrap().remove("raw");
    v.as_object_mut().unwrap().remove("run_seed");
    std::fs::write(&old, format!("{v}\n")).unwrap();
    let s = generate::run(
        &serving,
        &prompts,
        &GenerateConfig {
            out: old.clone(),
            ..base()
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(s.answers, 0);
    assert_eq!(generate::recorded_seed(&old).unwrap(), None);
    // ... and their seed is still checked, through the answer's own seed.
    let other_seed = GenerateConfig {
        out: old,
        seed: 9,
        ..base()
    };
    let e = generate::run(&serving, &prompts, &other_seed, &mut |_| {}).unwrap_err();
    assert!(
        matches!(e, GenerateError::OtherSettings { line: 1, .. })
            && e.to_string().contains("answer_seed(--seed 9, id, sample)"),
        "{e}"
    );
}

#[test]
fn prompt_files_are_read_with_bounded_lines() {
    let p = Path::new("p.jsonl");
    // A byte order mark at the start is ignored.
    let got = prompts::parse(
        "\u{feff}{\"id\": \"a\", \"prompt\": \"x\"}\r\n".as_bytes(),
        p,
    )
    .unwrap();
    assert_eq!(got[0].id, "a");
    assert_eq!(got[0].body, PromptBody::Text("x".into()));
    // A NUL byte: binary, refused at once (an endless one too).
    let e = prompts::parse(std::io::BufReader::new(std::io::repeat(0)), p).unwrap_err();
    assert!(
        matches!(
            e,
            PromptError::Binary {
                line: 1,
                offset: 0,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "p.jsonl:1: binary file: NUL byte at byte offset 0"
    );
    // A line over the limit is refused without being held.
    let long = format!(
        "{{\"prompt\": \"x\"}}\n{{\"prompt\": \"{}\"}}\n",
        "y".repeat(100)
    );
    let e = prompts::parse_bounded(long.as_bytes(), p, 50).unwrap_err();
    assert_eq!(
        e.to_string(),
        "p.jsonl:2: line longer than the 50 byte limit"
    );
    assert_eq!(prompts::MAX_PROMPT_LINE_BYTES, 4 << 20);
    // Not UTF-8: the line is named.
    let e = prompts::parse(&b"{\"prompt\": \"\xff\"}\n"[..], p).unwrap_err();
    assert!(matches!(e, PromptError::Read { line: 1, .. }), "{e}");
}
