//! Serving a distiller cannot switch off (issue #11), on the default model
//! behind `provmark serve`: settings that would leave the default synthid
//! profile no choice are served at its floor and stay detected (or are
//! refused), streams are exactly the whole answers, a client gone during
//! prefill frees the server, and the official `openai` Python client gets
//! what it expects.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{detect, provmark, Server};
use serde_json::{json, Value};

/// The default profile (synthid, h = 2) under a fixed key.
fn lab() -> provmark_testkit::lab::Lab {
    common::lab_builder().fixed_key(2).build()
}

fn case(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/serve")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn log10_p(dir: &Path, text: &str) -> f64 {
    std::fs::write(
        dir.join("one.jsonl"),
        json!({"text": text}).to_string() + "\n",
    )
    .unwrap();
    let v = &detect(dir, "one.jsonl")[0];
    v["log10_p"].as_f64().unwrap_or_else(|| panic!("{v}"))
}

fn streamed(server: &Server, path: &str, body: &Value) -> (String, Vec<Value>, String) {
    let mut body = body.clone();
    body["stream"] = json!(true);
    let resp = ureq::post(&format!("{}{path}", server.base))
        .send_json(body)
        .unwrap();
    let content_type = resp.header("content-type").unwrap_or("").to_string();
    let mut raw = String::new();
    resp.into_reader().read_to_string(&mut raw).unwrap();
    let chunks: Vec<Value> = raw
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text = chunks
        .iter()
        .filter_map(|c| {
            let ch = &c["choices"][0];
            ch["delta"]["content"].as_str().or(ch["text"].as_str())
        })
        .collect();
    (text, chunks, content_type)
}

#[test]
fn temperature_zero_is_served_marked_at_the_floor_or_refused() {
    let lab = lab();
    let d = lab.path();
    let server = Server::start(d, &["--profile", "lab.profile.json", "--key", "lab.key"]);
    let health: Value = ureq::get(&format!("{}/health", server.base))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(health["sampling_policy"], "floor");
    // The case handed over: temperature 0, 200 tokens, default profile.
    let a = server
        .post("/v1/chat/completions", &case("temperature0.json"))
        .unwrap();
    let p = &a["provmark"];
    assert_eq!(p["raised"], json!(["temperature"]), "{p}");
    assert!((p["sampling"]["temperature"].as_f64().unwrap() - 0.8).abs() < 1e-6);
    let n = a["usage"]["completion_tokens"].as_u64().unwrap();
    let marked = p["marked_tokens"].as_u64().unwrap();
    assert!(
        n >= 100 && marked * 10 >= n * 6,
        "{marked} of {n} tokens marked"
    );
    let text = a["choices"][0]["message"]["content"].as_str().unwrap();
    let lp = log10_p(d, text);
    assert!(
        lp < -6.0,
        "served at the floor, detected: log10 p {lp} (was −0.3 unmarked)"
    );
    // top_p 0.05 likewise.
    let mut tiny_p = case("temperature0.json");
    tiny_p["temperature"] = json!(1.0);
    tiny_p["top_p"] = json!(0.05);
    let a = server.post("/v1/chat/completions", &tiny_p).unwrap();
    assert_eq!(a["provmark"]["raised"], json!(["top_p"]));
    let lp = log10_p(d, a["choices"][0]["message"]["content"].as_str().unwrap());
    assert!(lp < -6.0, "top_p 0.05 at the floor: log10 p {lp}");
    assert!(server.stop().success());

    // Under --sampling-policy refuse: 400 naming the parameter.
    let server = Server::start(
        d,
        &[
            "--profile",
            "lab.profile.json",
            "--key",
            "lab.key",
            "--sampling-policy",
            "refuse",
        ],
    );
    let (status, err) = server
        .post("/v1/chat/completions", &case("temperature0.json"))
        .unwrap_err();
    assert_eq!(status, 400);
    assert_eq!(err["error"]["param"], "temperature");
    assert_eq!(err["error"]["code"], "sampling_below_watermark_floor");
    assert!(server.stop().success());
}

#[test]
fn streams_are_exactly_the_whole_answers() {
    let lab = lab();
    let d = lab.path();
    let server = Server::start(d, &["--profile", "lab.profile.json", "--key", "lab.key"]);
    let mut cut = 0;
    // The case's seeds 1–5 at 40 tokens, and seed 1 cut at 30–39 tokens:
    // under synthid the seed only moves repeated windows, so the cut
    // points come from max_tokens.
    let runs = (1..=5)
        .map(|seed| (seed, 40))
        .chain((30..40).map(|n| (1, n)));
    for (seed, max_tokens) in runs {
        let mut body = case("utf8_tail.json");
        body["seed"] = json!(seed);
        body["max_tokens"] = json!(max_tokens);
        let whole = server.post("/v1/chat/completions", &body).unwrap();
        let content = whole["choices"][0]["message"]["content"].as_str().unwrap();
        let (text, chunks, content_type) = streamed(&server, "/v1/chat/completions", &body);
        assert_eq!(text, content, "seed {seed}");
        assert_eq!(content_type, "text/event-stream; charset=utf-8");
        let last = chunks.last().unwrap();
        assert_eq!(
            last["choices"][0]["finish_reason"],
            whole["choices"][0]["finish_reason"]
        );
        assert_eq!(
            last["provmark"]["marked_tokens"],
            whole["provmark"]["marked_tokens"]
        );
        cut += content.ends_with('\u{fffd}') as usize;
        if max_tokens != 40 {
            continue;
        }
        // Stop sequences too: the same characters either way.
        let words: Vec<&str> = content.split_whitespace().collect();
        if let Some(stop) = words.get(words.len() / 2).filter(|w| w.len() >= 2) {
            body["stop"] = json!([stop]);
            let whole = server.post("/v1/chat/completions", &body).unwrap();
            let content = whole["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(!content.contains(stop));
            assert_eq!(streamed(&server, "/v1/chat/completions", &body).0, content);
        }
    }
    assert!(
        cut > 0,
        "no seed cut a character: the case is not exercised"
    );
    assert!(server.stop().success());
}

#[test]
fn a_client_gone_during_a_long_prefill_frees_its_slot_and_the_engine() {
    let lab = lab();
    let d = lab.path();
    let server = Server::start(
        d,
        &["--no-watermark", "--max-concurrent", "1", "--batch", "1"],
    );
    let long = "The quick brown fox jumps over the lazy dog again and again. ".repeat(160);
    let body =
        json!({"messages": [{"role": "user", "content": long}], "max_tokens": 50}).to_string();
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    drop(s); // gone while its ~2,000-token prompt is still being prefilled
    let gone = Instant::now();
    // The slot comes back, and the next request is answered at once.
    let answer = loop {
        match server.post(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "seed": 1}),
        ) {
            Ok(a) => break a,
            Err((429, _)) if gone.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("{e:?} after {:?}", gone.elapsed()),
        }
    };
    assert!(answer["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    let waited = gone.elapsed();
    assert!(
        waited < Duration::from_secs(8),
        "the next answer waited {waited:?}"
    );
    assert!(server.stop().success());
}

/// Fails, saying how to install it, unless Python can import `module`.
fn require_python(module: &str, pin: &str) {
    let have = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status();
    assert!(
        have.is_ok_and(|s| s.success()),
        "this test needs Python's {module}: python3 -m pip install {pin}"
    );
}

#[test]
fn the_official_openai_client_works_against_the_server() {
    require_python("openai", "openai==3.57.0");
    require_python("requests", "requests==2.32.3");
    let lab = lab();
    let d = lab.path();
    let server = Server::start(d, &["--profile", "lab.profile.json", "--key", "lab.key"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(format!("{}/v1", server.base))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));
    // The case handed over: Python requests' iter_lines decodes the stream
    // with the declared charset (ISO-8859-1 without one) and split emoji.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sse_requests_charset.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(format!("{}/v1", server.base))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("RESULT PASS"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.stop().success());
}

#[test]
fn generate_applies_the_policy_and_context_zero_profiles_are_refused() {
    let lab = lab();
    let d = lab.path();
    std::fs::write(
        d.join("p.jsonl"),
        "{\"id\": \"a\", \"prompt\": \"Explain how a refrigerator works.\"}\n",
    )
    .unwrap();
    let args = |out: &str, policy: &str| -> Vec<String> {
        [
            "generate",
            "--profile",
            "lab.profile.json",
            "--key",
            "lab.key",
            "--prompts",
            "p.jsonl",
            "--out",
            out,
            "--max-tokens",
            "60",
            "--temperature",
            "0",
            "--seed",
            "1",
            "--sampling-policy",
            policy,
        ]
        .map(String::from)
        .to_vec()
    };
    let a: Vec<String> = args("floor.jsonl", "floor");
    let out = provmark(d, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("the watermark's floor"));
    let rec: Value = serde_json::from_str(
        std::fs::read_to_string(d.join("floor.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert!(
        (rec["sampling"]["temperature"].as_f64().unwrap() - 0.8).abs() < 1e-6,
        "{rec}"
    );
    assert!(rec["marked_tokens"].as_u64().unwrap() > 20, "{rec}");
    let a = args("refused.jsonl", "refuse");
    let out = provmark(d, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("temperature 0") && err.contains("floor"),
        "{err}"
    );
    assert!(
        !d.join("refused.jsonl").exists(),
        "nothing written for a refused run"
    );

    for scheme in ["synthid", "gumbel"] {
        let out = provmark(
            d,
            &[
                "profile",
                "new",
                "--scheme",
                scheme,
                "--context",
                "0",
                "--key",
                "lab.key",
                "--out",
                "zero.json",
            ],
        );
        assert!(!out.status.success(), "{scheme} with context 0 accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains("context 0"));
        assert!(!d.join("zero.json").exists());
    }
    let out = provmark(
        d,
        &[
            "profile",
            "new",
            "--scheme",
            "kgw",
            "--context",
            "0",
            "--key",
            "lab.key",
            "--out",
            "zero.json",
        ],
    );
    assert!(
        out.status.success(),
        "kgw unigram: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
