//! `provmark generate` and `provmark serve` on the default model: marked
//! answers are detected, controls are not, runs resume, the server speaks
//! OpenAI's protocol (plain and streaming, concurrent), refuses bad requests
//! with OpenAI-shaped errors, and shuts down gracefully.

mod common;

use common::{detect, provmark, Server};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A key and a kgw profile for the default model's tokenizer. The key is
/// fixed: what the model answers under the mark (how long it runs before
/// its end token, hence how many tokens there are to score) depends on it,
/// and with a new random key a short answer now and then sank the
/// served-answers check below the required count.
fn lab() -> provmark_testkit::lab::Lab {
    common::lab_builder().scheme("kgw").fixed_key(1).build()
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const PROMPTS: &str = r#"{"id": "a", "prompt": "Write a long story about a dragon who learns to bake bread."}
{"id": "b", "prompt": "Describe, in detail, how a city changes over four seasons."}
{"id": "c", "messages": [{"role": "system", "content": "You are a patient teacher."}, {"role": "user", "content": "Explain photosynthesis step by step."}]}
"#;

#[test]
fn generate_marks_answers_resumes_and_controls_stay_clean() {
    let lab = lab();
    let d = lab.path();
    std::fs::write(d.join("prompts.jsonl"), PROMPTS).unwrap();
    let gen = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--prompts",
            "prompts.jsonl",
            "--out",
            out,
            "--max-tokens",
            "120",
            "--seed",
            "7",
            "--threads",
            "2",
        ];
        args.extend_from_slice(extra);
        provmark(d, &args)
    };
    ok(gen(
        "marked.jsonl",
        &["--profile", "lab.profile.json", "--key", "lab.key"],
    ));
    let marked = read_jsonl(&d.join("marked.jsonl"));
    assert_eq!(marked.len(), 3);
    for r in &marked {
        assert_eq!(r["watermark"], json!(true));
        assert!(r["profile_digest"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(
            r["token_ids"].as_array().unwrap().len(),
            r["completion_tokens"].as_u64().unwrap() as usize
        );
        assert!(r["timing"]["decode_s"].as_f64().unwrap() >= 0.0);
    }

    // Interrupted run: keep one record and half of the next; the rerun
    // drops the partial line, redoes only the missing answers, and
    // reproduces them exactly (per-answer seeds).
    let full = std::fs::read_to_string(d.join("marked.jsonl")).unwrap();
    let mut lines = full.lines();
    let first = lines.next().unwrap();
    let second = lines.next().unwrap();
    std::fs::write(
        d.join("resumed.jsonl"),
        format!("{first}\n{}", &second[..second.len() / 2]),
    )
    .unwrap();
    let out = gen(
        "resumed.jsonl",
        &["--profile", "lab.profile.json", "--key", "lab.key"],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(err.contains("incomplete last line"), "{err}");
    assert!(err.contains("1 answers already there, 2 to go"), "{err}");
    let by_id = |rs: &[Value]| {
        let mut m: Vec<(String, Value)> = rs
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["token_ids"].clone(),
                )
            })
            .collect();
        m.sort_by(|a, b| a.0.cmp(&b.0));
        m
    };
    assert_eq!(by_id(&read_jsonl(&d.join("resumed.jsonl"))), by_id(&marked));

    // Another profile's file is refused rather than mixed.
    let out = gen("resumed.jsonl", &["--no-watermark"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another profile"));

    ok(gen("control.jsonl", &["--no-watermark"]));
    let control = read_jsonl(&d.join("control.jsonl"));
    assert!(control
        .iter()
        .all(|r| r["watermark"] == json!(false) && r["profile_digest"].is_null()));

    let detected = |rs: &[Value]| rs.iter().filter(|r| r["verdict"] == "watermarked").count();
    let m = detect(d, "marked.jsonl");
    let c = detect(d, "control.jsonl");
    assert_eq!((m.len(), c.len()), (3, 3));
    assert!(detected(&m) >= 2, "marked: {m:?}");
    assert_eq!(detected(&c), 0, "control: {c:?}");

    // Invisible edits (issue #14, spec §5.1): the marked answers with every
    // space a no-break space, or with a zero-width space after every space,
    // read the same but lose their mark; with --normalize invisible each
    // gives exactly the unedited answer's result, and says how many code
    // points it undid.
    for (name, edit) in [("nbsp", "\u{a0}"), ("zwsp", " \u{200b}")] {
        let file = format!("{name}.jsonl");
        let mut spaces = Vec::new();
        let edited: String = marked
            .iter()
            .map(|r| {
                let text = r["text"].as_str().unwrap();
                spaces.push(text.matches(' ').count() as u64);
                format!(
                    "{}\n",
                    json!({"id": r["id"], "text": text.replace(' ', edit)})
                )
            })
            .collect();
        std::fs::write(d.join(&file), edited).unwrap();
        let plain = detect(d, &file);
        let undone = common::detect_with(d, &file, &["--normalize", "invisible"]);
        assert_eq!((plain.len(), undone.len()), (3, 3));
        let strongest = |rs: &[Value]| {
            rs.iter()
                .filter_map(|r| r["log10_p"].as_f64())
                .fold(0f64, f64::min)
        };
        eprintln!(
            "{name}: strongest log10 p {:.1} edited, {:.1} normalized, {:.1} original",
            strongest(&plain),
            strongest(&undone),
            strongest(&m)
        );
        assert!(
            strongest(&plain) > 0.25 * strongest(&m),
            "{name}: the edit should unmark the answers: {plain:?}"
        );
        assert_eq!(detected(&plain), 0, "{name}: {plain:?}");
        for ((u, orig), n) in undone.iter().zip(&m).zip(&spaces) {
            assert_eq!(u["invisible_edits"], json!(n), "{name}: {u}");
            let mut u = u.clone();
            u.as_object_mut().unwrap().remove("invisible_edits");
            assert_eq!(&u, orig, "{name}");
        }
    }

    // The corpus audit pools the answers: the marked corpus is attributed
    // (exact test and key-swap null both at 1e-3), the control corpus not.
    let audit = |input: &str, extra: &[&str]| -> Value {
        let mut args = vec![
            "audit",
            "corpus",
            "--profile",
            "lab.profile.json",
            "--key",
            "lab.key",
            "--json",
            input,
        ];
        args.extend_from_slice(extra);
        serde_json::from_str(ok(provmark(d, &args)).trim()).unwrap()
    };
    let a = audit("marked.jsonl", &[]);
    assert_eq!(a["verdict"], "attributed", "{a}");
    assert_eq!(a["key_swap"]["at_least"], 0);
    assert!(a["log10_p"].as_f64().unwrap() < -10.0);
    let c = audit("control.jsonl", &["--filter-from", "marked.jsonl"]);
    assert_eq!(c["verdict"], "not_attributed", "{c}");
    assert!(c["filtered_out"].as_u64().unwrap() > 0);
    assert!(c["key_swap"]["p_value"].as_f64().unwrap() > 1e-3);

    // A sharded audit, merged, gives the unsharded result; a missing shard
    // is refused.
    for i in 0..2 {
        let shard = format!("{i}/2");
        let part = format!("part{i}.json");
        ok(provmark(
            d,
            &[
                "audit",
                "corpus",
                "--profile",
                "lab.profile.json",
                "--key",
                "lab.key",
                "--shard",
                &shard,
                "--partial",
                &part,
                "marked.jsonl",
            ],
        ));
    }
    let merged: Value = serde_json::from_str(
        ok(provmark(
            d,
            &[
                "audit",
                "merge",
                "--profile",
                "lab.profile.json",
                "--json",
                "part0.json",
                "part1.json",
            ],
        ))
        .trim(),
    )
    .unwrap();
    for field in [
        "scored",
        "statistic",
        "log10_p",
        "key_swap",
        "verdict",
        "distinct_tuples",
    ] {
        assert_eq!(merged[field], a[field], "{field}");
    }
    let out = provmark(
        d,
        &[
            "audit",
            "merge",
            "--profile",
            "lab.profile.json",
            "part0.json",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shard 1/2 is missing"));

    // Reading mode with the teacher itself as the suspect: its own top-1
    // predictions carry no mark (llm/tests/reading.rs has the positive case).
    let model = provmark_llm::default_model::cached_path();
    let model = model.to_str().unwrap();
    let w: Value = serde_json::from_str(
        ok(provmark(
            d,
            &[
                "audit",
                "weights",
                "--suspect",
                model,
                "--texts",
                "marked.jsonl",
                "--profile",
                "lab.profile.json",
                "--key",
                "lab.key",
                "--reference-model",
                model,
                "--json",
            ],
        ))
        .trim(),
    )
    .unwrap();
    assert_eq!(w["verdict"], "not_attributed", "{w}");
    assert!(w["scored"].as_u64().unwrap() > 100);
    // The reference model reads the same texts through the same pipeline
    // (here the same model, so the same numbers).
    assert_eq!(w["reference"]["scored"], w["scored"], "{w}");
    assert_eq!(w["reference"]["statistic"], w["statistic"]);
    // The expected-score test (spec §8.5) in the answers' chat context, the
    // model paired against itself: q − r is zero, nothing is weighed; alone,
    // the clean model is not attributed.
    let expected_args = [
        "audit",
        "weights",
        "--suspect",
        model,
        "--reference-model",
        model,
        "--texts",
        "marked.jsonl",
        "--prompts",
        "prompts.jsonl",
        "--statistic",
        "expected",
        "--null-keys",
        "99",
        "--alpha",
        "0.01",
        "--profile",
        "lab.profile.json",
        "--key",
        "lab.key",
    ];
    let e: Value =
        serde_json::from_str(ok(provmark(d, &[&expected_args[..], &["--json"]].concat())).trim())
            .unwrap();
    assert_eq!(e["verdict"], "not_attributed", "{e}");
    assert_eq!(e["suspect"]["pairs"], 0, "{e}");
    assert!(
        e["suspect_alone"]["positions"].as_u64().unwrap() > 100,
        "{e}"
    );
    assert_eq!(e["suspect_alone"], e["reference"]);
    assert_eq!(e["reference"]["attributed"], false, "{e}");
    let out = provmark(d, &[&expected_args[..], &["--report", "r.json"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--report is not available"));
    assert!(!d.join("r.json").exists());
    // --top-k belongs to the expected test.
    let top1_with_k = [
        &expected_args[..10],
        &expected_args[12..],
        &["--top-k", "5"],
    ]
    .concat();
    let out = provmark(d, &top1_with_k);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--top-k applies to --statistic expected")
    );
    let tiny = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../llm/tests/data/tiny/tiny-qwen2.gguf"
    );
    let out = provmark(
        d,
        &[
            "audit",
            "weights",
            "--suspect",
            tiny,
            "--texts",
            "marked.jsonl",
            "--profile",
            "lab.profile.json",
            "--key",
            "lab.key",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not the profile's"));
    // A GGUF of an unsupported architecture, and a cut-off file: clear errors.
    let bytes = std::fs::read(tiny).unwrap();
    let at = bytes.windows(5).position(|w| w == b"qwen2").unwrap();
    let mut other = bytes.clone();
    other[at..at + 5].copy_from_slice(b"bloom");
    std::fs::write(d.join("bloom.gguf"), &other).unwrap();
    std::fs::write(d.join("cut.gguf"), &bytes[..bytes.len() / 2]).unwrap();
    for (file, needle) in [
        ("bloom.gguf", "architecture \"bloom\" is not supported"),
        ("cut.gguf", "cut.gguf"),
    ] {
        let out = provmark(
            d,
            &[
                "audit",
                "weights",
                "--suspect",
                file,
                "--texts",
                "marked.jsonl",
                "--profile",
                "lab.profile.json",
                "--key",
                "lab.key",
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }

    // Bad prompt files name the line and field.
    std::fs::write(
        d.join("bad.jsonl"),
        "{\"prompt\": \"ok\"}\n{\"prompt\": 5}\n",
    )
    .unwrap();
    let out = provmark(
        d,
        &[
            "generate",
            "--no-watermark",
            "--prompts",
            "bad.jsonl",
            "--out",
            "x.jsonl",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:2: field prompt must be a string"),
        "{err}"
    );
    assert!(
        !d.join("x.jsonl").exists(),
        "nothing written for a refused run"
    );
}

#[test]
fn server_speaks_openai_and_its_answers_are_detected() {
    let lab = lab();
    let d = lab.path();
    let server = Server::start(
        d,
        &[
            "--profile",
            "lab.profile.json",
            "--key",
            "lab.key",
            "--max-tokens-limit",
            "160",
            "--max-concurrent",
            "6",
            "--max-body-bytes",
            "8192",
            "--disclose-key-id",
        ],
    );
    let health: Value = ureq::get(&format!("{}/health", server.base))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(health["watermark"], json!(true));
    let models: Value = ureq::get(&format!("{}/v1/models", server.base))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let model = models["data"][0]["id"].as_str().unwrap().to_string();

    // Four concurrent chat requests.
    let questions = [
        "Write a long story about a lighthouse keeper.",
        "Explain how bread is made, in many steps.",
        "Describe a walk through a forest in autumn.",
        "Tell me about the history of the bicycle.",
    ];
    let answers: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = questions
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let server = &server;
                let model = &model;
                s.spawn(move || {
                    server
                        .post(
                            "/v1/chat/completions",
                            &json!({
                                "model": model, "seed": i, "max_tokens": 150,
                                "messages": [{"role": "user", "content": q}],
                            }),
                        )
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut jsonl = String::new();
    for a in &answers {
        assert_eq!(a["object"], "chat.completion");
        assert!(a["provmark"]["key_id"]
            .as_str()
            .is_some_and(|k| k.len() == 16));
        let text = a["choices"][0]["message"]["content"].as_str().unwrap();
        jsonl.push_str(&json!({"text": text}).to_string());
        jsonl.push('\n');
    }

    // Streaming: chunks add up to the answer, then [DONE].
    let resp = ureq::post(&format!("{}/v1/chat/completions", server.base))
        .send_json(json!({"stream": true, "seed": 9, "max_tokens": 150, "stream_options": {"include_usage": true},
                          "messages": [{"role": "user", "content": "Write a poem about the moon and the tides."}]}))
        .unwrap();
    assert!(resp.content_type().contains("text/event-stream"));
    let mut body = String::new();
    resp.into_reader().read_to_string(&mut body).unwrap();
    let datas: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(*datas.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = datas[..datas.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    let last = chunks.last().unwrap();
    assert!(last["choices"][0]["finish_reason"].is_string());
    assert_eq!(
        last["usage"]["completion_tokens"].as_u64().unwrap() > 0,
        !streamed.is_empty()
    );
    jsonl.push_str(&json!({"text": streamed}).to_string());
    jsonl.push('\n');

    // Raw completions.
    let c = server
        .post(
            "/v1/completions",
            &json!({"prompt": "Once upon a time", "max_tokens": 5}),
        )
        .unwrap();
    assert_eq!(c["object"], "text_completion");
    assert!(c["choices"][0]["text"].is_string());

    // What was served is detected.
    std::fs::write(d.join("served.jsonl"), jsonl).unwrap();
    let results = detect(d, "served.jsonl");
    let hits = results
        .iter()
        .filter(|r| r["verdict"] == "watermarked")
        .count();
    assert!(hits >= 4, "served answers detected: {results:?}");

    // Bad requests get OpenAI-shaped errors.
    let msgs = json!([{"role": "user", "content": "hi"}]);
    for (body, code, needle) in [
        (
            json!({"model": "gpt-9", "messages": msgs}),
            404,
            "does not exist",
        ),
        (
            json!({"messages": msgs, "max_tokens": 161}),
            400,
            "limit of 160",
        ),
        (json!({"messages": []}), 400, "messages"),
        (
            json!({"messages": msgs, "temperature": "hot"}),
            400,
            "temperature",
        ),
        (
            json!({"messages": msgs, "n": 99}),
            400,
            "n must lie between 1",
        ),
        (json!({"messages": msgs, "top_p": 0}), 400, "top_p"),
    ] {
        let (status, err) = server.post("/v1/chat/completions", &body).unwrap_err();
        assert_eq!(status, code, "{body}");
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg}");
        assert!(err["error"]["type"].is_string());
    }
    match ureq::post(&format!("{}/v1/chat/completions", server.base)).send_string("{not json") {
        Err(ureq::Error::Status(400, r)) => {
            assert!(r.into_string().unwrap().contains("not valid JSON"))
        }
        other => panic!("{other:?}"),
    }
    match ureq::post(&format!("{}/v1/chat/completions", server.base))
        .send_string(&"x".repeat(16 << 10))
    {
        Err(ureq::Error::Status(413, _)) => {}
        other => panic!("oversized body: {other:?}"),
    }
    assert!(server.stop().success());
}

#[test]
fn server_limits_concurrency_and_finishes_answers_on_shutdown() {
    let lab = lab();
    // A generous deadline: the debug build on a busy runner can take more
    // than the default 10 s for 120 tokens.
    let server = Server::start(
        lab.path(),
        &[
            "--no-watermark",
            "--max-concurrent",
            "1",
            "--shutdown-timeout",
            "120",
        ],
    );
    // Hold the only slot with a streaming answer...
    let resp = ureq::post(&format!("{}/v1/chat/completions", server.base))
        .send_json(json!({"stream": true, "max_tokens": 120, "seed": 1, "temperature": 1.0,
                          "messages": [{"role": "user", "content": "Write a long essay about the ocean."}]}))
        .unwrap();
    let mut reader = BufReader::new(resp.into_reader());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.starts_with("data: "));
    // ...so the next request is turned away with 429.
    let (status, err) = server
        .post(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap_err();
    assert_eq!(status, 429);
    assert_eq!(err["error"]["type"], "rate_limit_error");
    // SIGTERM while streaming: the answer still completes with [DONE].
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.trim_end().ends_with("data: [DONE]"), "{rest}");
    assert!(server.stop().success());
}

#[test]
fn audit_api_attributes_a_watermarked_server_beside_a_clean_reference() {
    let lab = lab();
    let d = lab.path();
    let suspect = Server::start(d, &["--profile", "lab.profile.json", "--key", "lab.key"]);
    let clean = Server::start(d, &["--no-watermark"]);
    let prompts: String = [
        "Describe a walk along a beach.",
        "Explain how bread is made.",
        "Write a short note about trains.",
        "Tell me about your favourite season.",
    ]
    .iter()
    .enumerate()
    .map(|(i, p)| format!("{}\n", json!({"id": i, "prompt": p})))
    .collect();
    std::fs::write(d.join("prompts.jsonl"), prompts).unwrap();
    let args = [
        "audit",
        "api",
        "--endpoint",
        &format!("{}/v1", suspect.base),
        "--model",
        "SmolLM2-135M-Instruct.Q4_1",
        "--reference-endpoint",
        &format!("{}/v1", clean.base),
        "--prompts",
        "prompts.jsonl",
        "--samples-per-prompt",
        "2",
        "--max-tokens",
        "48",
        "--out",
        "audit",
        "--profile",
        "lab.profile.json",
        "--key",
        "lab.key",
        "--null-keys",
        "199",
        "--alpha",
        "0.01",
        "--json",
        "--report",
        "api.json",
    ];
    let out = provmark(d, &args);
    let stdout = ok(out);
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["verdict"], "attributed", "{v}");
    assert_eq!(v["answered"], 8);
    assert_eq!(v["reference_answered"], 8);
    assert!(v["log10_p"].as_f64().unwrap() < -6.0, "{v}");
    assert_eq!(v["key_swap"]["at_least"], 0);
    assert_eq!(v["reference"]["attributed"], false, "{v}");
    // Its report is recomputed from the kept answers (collection facts are
    // recorded, not replayed).
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("api.json")).unwrap()).unwrap();
    assert_eq!(report["command"]["name"], "audit api");
    assert_eq!(report["collection"]["answered"], 8);
    assert_eq!(report["results"]["log10_p"], v["log10_p"]);
    let verified = ok(provmark(
        d,
        &[
            "report",
            "verify",
            "api.json",
            "--key",
            "lab.key",
            "--inputs",
            "audit/reference.jsonl",
            "audit/suspect.jsonl",
        ],
    ));
    assert!(verified.starts_with("MATCH"), "{verified}");
    assert!(v["reference"]["log10_p"].as_f64().unwrap() > -3.0, "{v}");
    // The answers are a corpus audit corpus reads the same way.
    let out = provmark(
        d,
        &[
            "audit",
            "corpus",
            "audit/suspect.jsonl",
            "--reference",
            "audit/reference.jsonl",
            "--profile",
            "lab.profile.json",
            "--key",
            "lab.key",
            "--null-keys",
            "199",
            "--alpha",
            "0.01",
            "--json",
        ],
    );
    let c: Value = serde_json::from_str(ok(out).lines().last().unwrap()).unwrap();
    assert_eq!(c["log10_p"], v["log10_p"], "{c}");
    assert_eq!(c["reference"]["log10_p"], v["reference"]["log10_p"]);
    // A "clean" reference that is flagged too leaves nothing to conclude.
    let out = provmark(
        d,
        &[
            "audit",
            "corpus",
            "audit/suspect.jsonl",
            "--reference",
            "audit/suspect.jsonl",
            "--profile",
            "lab.profile.json",
            "--key",
            "lab.key",
            "--null-keys",
            "199",
            "--alpha",
            "0.01",
        ],
    );
    let summary = ok(out);
    assert!(summary.contains("clean reference"), "{summary}");
    assert!(
        summary.contains("verdict         inconclusive"),
        "{summary}"
    );

    // Grey-box (spec §8.5 over the answers' top-20 logprobs): the server
    // reports the model's own unbiased distribution (spec §6.3), so a
    // teacher's logprobs carry no mark although its sampled tokens do.
    let endpoint = format!("{}/v1", suspect.base);
    let grey = |server: &str, out: &str| {
        provmark(
            d,
            &[
                "audit",
                "api",
                "--endpoint",
                server,
                "--model",
                "SmolLM2-135M-Instruct.Q4_1",
                "--prompts",
                "prompts.jsonl",
                "--samples-per-prompt",
                "2",
                "--max-tokens",
                "48",
                "--logprobs",
                "20",
                "--out",
                out,
                "--profile",
                "lab.profile.json",
                "--key",
                "lab.key",
                "--null-keys",
                "99",
                "--alpha",
                "0.01",
                "--json",
            ],
        )
    };
    let g: Value =
        serde_json::from_str(ok(grey(&endpoint, "audit-lp")).lines().last().unwrap()).unwrap();
    assert_eq!(g["verdict"], "attributed", "{g}");
    let lp = &g["logprob_test"];
    assert_eq!(lp["verdict"], "not_attributed", "{g}");
    assert!(lp["suspect"]["positions"].as_u64().unwrap() > 200, "{g}");
    assert_eq!(lp["unmapped_tokens"], 0, "{g}");
    let cached = std::fs::read_to_string(d.join("audit-lp/suspect.jsonl")).unwrap();
    assert!(cached.lines().all(|l| l.contains("\"logprobs\"")));
    // A server that does not expose logprobs: every item fails with its
    // refusal, nothing is scored, and the exit status says so.
    let closed = Server::start(d, &["--no-watermark", "--no-logprobs"]);
    // The refusal (HTTP 400 naming logprobs) meets every request, so the
    // circuit breaker stops the run.
    let out = grey(&format!("{}/v1", closed.base), "audit-closed");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("logprobs"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // A report would hold the corpus test only: refused before asking.
    let out = provmark(
        d,
        &[
            "audit",
            "api",
            "--endpoint",
            &endpoint,
            "--model",
            "m",
            "--prompts",
            "prompts.jsonl",
            "--logprobs",
            "5",
            "--out",
            "audit-rep",
            "--profile",
            "lab.profile.json",
            "--key",
            "lab.key",
            "--report",
            "rep.json",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--report is not available with --logprobs")
    );
    assert!(!d.join("rep.json").exists() && !d.join("audit-rep").exists());
}

#[test]
fn verification_never_downloads_the_default_model() {
    // A detect report made with the default model's tokenizer: verifying
    // it where the model is not cached refuses (exit 2) instead of
    // fetching it (spec/report.md §4: verification contacts no network).
    let lab = lab();
    let d = lab.path();
    std::fs::write(
        d.join("t.jsonl"),
        "{\"text\": \"A few words written by hand for the test.\"}\n",
    )
    .unwrap();
    ok(provmark(
        d,
        &[
            "detect",
            "--profile",
            "lab.profile.json",
            "--key",
            "lab.key",
            "--report",
            "r.json",
            "t.jsonl",
        ],
    ));
    let verify = |home: Option<&Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_provmark"));
        c.current_dir(d).args([
            "report", "verify", "r.json", "--key", "lab.key", "--inputs", "t.jsonl",
        ]);
        if let Some(h) = home {
            c.env("PROVMARK_HOME", h).env("PATH", "/nonexistent");
        }
        c.output().unwrap()
    };
    assert!(String::from_utf8_lossy(&verify(None).stdout).starts_with("MATCH"));
    let empty = tempfile::tempdir().unwrap();
    let out = verify(Some(empty.path()));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("provmark model fetch") && err.contains("never contacts the network"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(empty.path()).unwrap().next().is_none(),
        "wrote into the cache"
    );
}
