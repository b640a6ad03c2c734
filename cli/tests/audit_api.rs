//! `provmark audit api` against a misbehaving OpenAI-compatible server:
//! retries, backoff, Retry-After, timeouts, malformed and empty answers,
//! per-item failures, the on-disk cache and resume, the rate limit, an
//! unreachable endpoint, and the API key kept out of every output.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use provmark_testkit::http::{read_chat_request, respond, ChatRequest};
use provmark_testkit::lab::Lab;
use serde_json::{json, Value};

const SECRET: &str = "sk-test-0123456789abcdef";

/// What the mock server has seen.
#[derive(Default)]
struct Seen {
    /// Requests per prompt text.
    requests: HashMap<String, usize>,
    /// Authorization headers received.
    auth: Vec<String>,
}

/// A mock chat endpoint whose behaviour depends on the prompt text.
struct Mock {
    base: String,
    seen: Arc<Mutex<Seen>>,
}

fn answer_body(text: &str) -> String {
    json!({
        "id": "x", "object": "chat.completion", "model": "mock",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    })
    .to_string()
}

fn handle(mut stream: TcpStream, seen: &Mutex<Seen>) {
    let Some(ChatRequest {
        authorization: auth,
        prompt,
        ..
    }) = read_chat_request(&stream)
    else {
        return;
    };
    let n = {
        let mut s = seen.lock().unwrap();
        s.auth.push(auth.clone());
        let n = s.requests.entry(prompt.clone()).or_default();
        *n += 1;
        *n
    };
    let kind = prompt.split(' ').next().unwrap();
    let ok = answer_body(&format!(
        "An answer to {prompt}: the weather was mild and the river ran slowly past the mill."
    ));
    match (kind, n) {
        ("flaky", 1) => respond(&mut stream, "500 Internal Server Error", "", "oops"),
        ("ratelimited", 1) => respond(
            &mut stream,
            "429 Too Many Requests",
            "Retry-After: 0\r\n",
            r#"{"error": {"message": "slow down"}}"#,
        ),
        ("garbage", 1) => respond(&mut stream, "200 OK", "", "<html>not json</html>"),
        ("truncated", 1) => {
            let full = ok.clone();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                full.len(),
                &full[..full.len() / 2]
            );
        }
        ("slow", 1) => {
            std::thread::sleep(Duration::from_millis(2500));
            respond(&mut stream, "200 OK", "", &ok);
        }
        ("empty", _) => respond(&mut stream, "200 OK", "", &answer_body("")),
        ("forbidden", _) => respond(
            &mut stream,
            "400 Bad Request",
            "",
            r#"{"error": {"message": "this prompt is not allowed"}}"#,
        ),
        // A careless server that echoes the caller's credentials.
        ("echo", _) => respond(
            &mut stream,
            "401 Unauthorized",
            "",
            &json!({"error": {"message": format!("bad key {auth}")}}).to_string(),
        ),
        _ => respond(&mut stream, "200 OK", "", &ok),
    }
}

impl Mock {
    fn start() -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || handle(stream, &s));
            }
        });
        Mock { base, seen }
    }

    fn requests(&self, prompt: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .requests
            .get(prompt)
            .copied()
            .unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.seen.lock().unwrap().requests.values().sum()
    }
}

const PROMPTS: &[&str] = &[
    "plain one",
    "plain two",
    "flaky three",
    "ratelimited four",
    "garbage five",
    "truncated six",
    "slow seven",
    "empty eight",
    "forbidden nine",
    "echo ten",
];

/// A 2048-token tokenizer, lab.key, a default profile and prompts.jsonl.
fn lab() -> Lab {
    let lab = common::lab_builder().tokenizer(2048).build();
    let d = lab.path();
    let prompts: String = PROMPTS
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}\n", json!({"id": format!("p{i}"), "prompt": p})))
        .collect();
    std::fs::write(d.join("prompts.jsonl"), prompts).unwrap();
    lab
}

fn audit(dir: &Path, endpoint: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "audit",
        "api",
        "--endpoint",
        endpoint,
        "--model",
        "suspect",
        "--prompts",
        "prompts.jsonl",
        "--out",
        "audit",
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
        "--retries",
        "2",
        "--backoff-ms",
        "10",
        "--timeout",
        "1",
        "--concurrency",
        "3",
        "--api-key-env",
        "PROVMARK_TEST_API_KEY",
        "--json",
    ];
    args.extend_from_slice(extra);
    std::process::Command::new(env!("CARGO_BIN_EXE_provmark"))
        .current_dir(dir)
        .args(&args)
        .env("PROVMARK_TEST_API_KEY", SECRET)
        .output()
        .unwrap()
}

fn last_json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().expect("a line")).expect("JSON verdict")
}

fn assert_no_secret(dir: &Path, out: &Output) {
    assert!(!String::from_utf8_lossy(&out.stdout).contains(SECRET));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(SECRET));
    for entry in std::fs::read_dir(dir.join("audit")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(
            !text.contains(SECRET),
            "the key leaked into the audit output"
        );
    }
}

#[test]
fn retries_record_failures_and_resume_without_requerying() {
    let lab = lab();
    let d = lab.path();
    let mock = Mock::start();
    let out = audit(d, &mock.base, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    // Three items cannot be answered: exit 1, each failure named.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let v = last_json(&out);
    assert_eq!(v["requested"], 10, "{v}");
    assert_eq!(v["answered"], 7, "{v}");
    assert_eq!(v["failed"], 3, "{v}");
    assert_eq!(v["queries"], 10);
    assert_eq!(v["cached"], 0);
    assert_eq!(v["texts"], 7);
    assert!(
        v["log10_p"].is_number() && v["key_swap"]["keys"] == 99,
        "{v}"
    );
    assert!(["attributed", "not_attributed"].contains(&v["verdict"].as_str().unwrap()));
    for needle in [
        "empty answer",
        "HTTP 400: this prompt is not allowed",
        "HTTP 401",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from {stderr}");
    }
    // Transient failures were retried once each, permanent ones never.
    for p in [
        "flaky three",
        "ratelimited four",
        "garbage five",
        "truncated six",
        "slow seven",
    ] {
        assert_eq!(mock.requests(p), 2, "{p}");
    }
    for p in ["plain one", "empty eight", "forbidden nine", "echo ten"] {
        assert_eq!(mock.requests(p), 1, "{p}");
    }
    assert_eq!(v["retries"], 5);
    // The key went to the server as a bearer token, and nowhere else.
    assert!(mock
        .seen
        .lock()
        .unwrap()
        .auth
        .iter()
        .all(|a| a == &format!("Bearer {SECRET}")));
    assert_no_secret(d, &out);
    let verdict: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("audit/verdict.json")).unwrap())
            .unwrap();
    assert_eq!(verdict, v);
    // Every item is on disk: answers with text, failures with the error.
    let read = |name: &str| -> Vec<Value> {
        std::fs::read_to_string(d.join("audit").join(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(read("suspect.jsonl").len(), 7);
    let failures = read("suspect.failures.jsonl");
    assert_eq!(failures.len(), 3);
    assert!(failures
        .iter()
        .any(|f| f["http_status"] == 400 && f["attempts"] == 1));

    // An interrupted write leaves a cut line: it is dropped, and a rerun
    // asks only for the failed items.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("audit/suspect.jsonl"))
        .unwrap();
    f.write_all(b"{\"id\": \"p1\", \"sam").unwrap();
    drop(f);
    let before = mock.total();
    let out = audit(d, &mock.base, &[]);
    assert_eq!(out.status.code(), Some(1));
    let again = last_json(&out);
    assert_eq!(again["queries"], 3, "{again}");
    assert_eq!(again["cached"], 7);
    assert_eq!(mock.total() - before, 3);
    assert_eq!(
        again["log10_p"], v["log10_p"],
        "same answers, same statistic"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("incomplete last line"));
    assert_no_secret(d, &out);

    // Other settings are refused rather than mixed into the cache.
    let out = audit(d, &mock.base, &["--max-tokens", "17"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("suspect.settings.json") && stderr.contains("other settings"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_endpoint_stops_the_run_and_keeps_the_answers() {
    let lab = lab();
    let d = lab.path();
    // A port with nothing listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let out = audit(d, &format!("http://127.0.0.1:{port}/v1"), &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unreachable"), "{stderr}");
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "stopped early, not after every retry"
    );
    assert!(out.stdout.is_empty(), "no verdict from an incomplete audit");
    assert_no_secret(d, &out);

    // Bad arguments: a clear error before any request.
    let out = audit(d, "ftp://example.com", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http:// or https://"));
}

#[test]
fn the_rate_limit_spaces_requests() {
    let lab = lab();
    let d = lab.path();
    let mock = Mock::start();
    let prompts: String = (0..11)
        .map(|i| format!("{}\n", json!({"prompt": format!("plain {i}")})))
        .collect();
    std::fs::write(d.join("prompts.jsonl"), prompts).unwrap();
    let t = Instant::now();
    let out = audit(d, &mock.base, &["--rate-limit", "20"]);
    let elapsed = t.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mock.total(), 11);
    // 11 requests at 20 per second: the last starts ≥ 0.5 s after the first.
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
}

/// The handed-over case (`fake_retry_after.py` with `one_prompt.jsonl`): the
/// first request gets 429 with `Retry-After` as an HTTP date one to two
/// seconds ahead, the next an answer.
#[test]
fn retry_after_as_an_http_date_is_waited_for() {
    let lab = lab();
    let d = lab.path();
    std::fs::write(
        d.join("prompts.jsonl"),
        "{\"id\": \"p1\", \"prompt\": \"Describe the sea.\"}\n",
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    // Each request's arrival, and the date the 429 sent.
    type Arrivals = Vec<(SystemTime, Option<SystemTime>)>;
    let log: Arc<Mutex<Arrivals>> = Arc::default();
    let l = log.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            if read_chat_request(&stream).is_none() {
                continue;
            }
            let now = SystemTime::now();
            let mut log = l.lock().unwrap();
            if log.is_empty() {
                // HTTP dates have whole seconds: the next one, plus one.
                let s = now
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let when = SystemTime::UNIX_EPOCH + Duration::from_secs(s + 2);
                log.push((now, Some(when)));
                let header = format!("Retry-After: {}\r\n", httpdate::fmt_http_date(when));
                respond(
                    &mut stream,
                    "429 Too Many Requests",
                    &header,
                    r#"{"error": {"message": "slow down", "type": "rate_limit_error"}}"#,
                );
            } else {
                log.push((now, None));
                let body =
                    answer_body("The sea is wide and the waves are tall, and the tide comes in.");
                respond(&mut stream, "200 OK", "", &body);
            }
        }
    });
    // The helper's backoff is 10 ms: only the date explains a longer wait.
    let out = audit(d, &base, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = last_json(&out);
    assert_eq!(
        (v["answered"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2, "one 429, one retry");
    let ((first, Some(date)), (second, _)) = (log[0], log[1]) else {
        panic!("no date sent")
    };
    assert!(second >= date, "retried before the date");
    assert!(second.duration_since(first).unwrap() >= Duration::from_secs(1));
    assert!(second.duration_since(date).unwrap() < Duration::from_millis(900));
    assert_no_secret(d, &out);
}
