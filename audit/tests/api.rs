//! The API audit's client as a library call, against a local scripted
//! server: retries, per-item failures, the cache and resume, the settings
//! refusal, the circuit breaker, and the API key kept out of every output.
//! (cli/tests/audit_api.rs covers the command's argv, output and exit codes.)

use std::collections::HashMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use provmark_audit::api::{self, ApiAuditConfig, ApiPrompt};
use provmark_audit::{Error, Event, Lab, NullKeys, Side, Silent};
use provmark_llm::chat::Message;
use provmark_testkit::corpus::{docs_corpus, train_bpe_json};
use provmark_testkit::http::{self, read_chat_request, ChatRequest};
use provmark_verify::Detector;
use provmark_verify::TextTokenizer;
use provmark_watermark::{Key, Profile, Scheme};
use serde_json::{json, Value};

const SECRET: &str = "sk-lib-test-fedcba9876543210";
const KEY_ENV: &str = "PROVMARK_AUDIT_LIB_TEST_KEY";

/// A scripted chat endpoint: the first word of the prompt picks the
/// behaviour; returns its base URL and the requests seen per prompt.
fn server() -> (String, Arc<Mutex<HashMap<String, usize>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let s = s.clone();
            std::thread::spawn(move || handle(stream, &s));
        }
    });
    (base, seen)
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    http::respond(stream, status, "", body)
}

fn handle(mut stream: TcpStream, seen: &Mutex<HashMap<String, usize>>) {
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
        let n = s.entry(prompt.clone()).or_default();
        *n += 1;
        *n
    };
    let answer = json!({"choices": [{"message": {"role": "assistant", "content":
        format!("An answer to {prompt}: the river ran slowly past the old mill.")},
        "finish_reason": "stop"}]})
    .to_string();
    match (prompt.split(' ').next().unwrap(), n) {
        ("flaky", 1) => respond(&mut stream, "500 Internal Server Error", "oops"),
        ("forbidden", _) => respond(
            &mut stream,
            "400 Bad Request",
            r#"{"error": {"message": "not allowed"}}"#,
        ),
        ("echo", _) => respond(
            &mut stream,
            "401 Unauthorized",
            &json!({"error": {"message": format!("bad key {auth}")}}).to_string(),
        ),
        _ => respond(&mut stream, "200 OK", &answer),
    }
}

fn tokenizer() -> TextTokenizer {
    TextTokenizer::from_bytes(train_bpe_json(&docs_corpus(), 2048).as_bytes(), "test").unwrap()
}

fn lab() -> Lab {
    let key = Key::from_bytes([3; 32]);
    let profile = Profile::new(Scheme::Gumbel, 2, tokenizer().digest().clone(), &key).unwrap();
    let detector = Detector::new(&profile, &key).unwrap();
    Lab { profile, detector }
}

fn config(endpoint: &str, out: &Path, prompts: &[&str]) -> ApiAuditConfig {
    ApiAuditConfig {
        endpoint: endpoint.into(),
        model: "suspect".into(),
        reference_endpoint: None,
        reference_model: None,
        prompts: prompts
            .iter()
            .enumerate()
            .map(|(i, p)| ApiPrompt {
                id: format!("p{i}"),
                messages: vec![Message {
                    role: "user".into(),
                    content: p.to_string(),
                }],
            })
            .collect(),
        prompts_sha256: "00".into(),
        out: out.to_path_buf(),
        samples_per_prompt: 1,
        max_tokens: 64,
        temperature: 1.0,
        api_key_env: KEY_ENV.into(),
        concurrency: 2,
        rate_limit: 0.0,
        retries: 2,
        backoff_ms: 5,
        timeout_s: 5.0,
        tokenizer: tokenizer(),
        normalization: Default::default(),
        filter_from: vec![],
        field: "text".into(),
        null: NullKeys { keys: 19, seed: 0 },
        alpha: 0.05,
        top_logprobs: None,
    }
}

fn no_secret_in(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains(SECRET), "the key leaked into {text}");
    }
}

#[test]
fn failures_are_recorded_and_a_rerun_asks_only_for_them() {
    std::env::set_var(KEY_ENV, SECRET);
    let (base, seen) = server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("audit");
    let prompts = ["plain one", "flaky two", "forbidden three", "echo four"];
    let c = config(&base, &out, &prompts);
    let events = Mutex::new(Vec::new());
    let progress = |e: Event<'_>| {
        if let Event::ItemFailed {
            side, id, error, ..
        } = e
        {
            assert_eq!(side, Side::Suspect);
            events.lock().unwrap().push(format!("{id}: {error}"));
        }
    };
    let a = api::run(&lab(), &c, &progress).unwrap();
    let s = a.suspect_answers;
    assert_eq!((s.answered, s.queries, s.cached, s.failed), (2, 4, 0, 2));
    assert_eq!(s.retries, 1, "the 500 was retried once");
    assert_eq!(a.failed(), 2);
    assert_eq!(a.suspect.texts, 2);
    assert_eq!(a.extra["requested"], 4);
    let events = events.into_inner().unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().any(|e| e.contains("HTTP 400: not allowed")));
    assert!(events.iter().all(|e| !e.contains(SECRET)), "{events:?}");
    assert!(events.iter().any(|e| e.contains("[redacted]")));
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&a.verdict_path).unwrap()).unwrap();
    assert_eq!(written["answered"], 2);
    assert_eq!(written["verdict"], a.decision.verdict.as_str());
    no_secret_in(&out);

    // A cut last line is dropped and reported; a rerun asks only for the
    // failed items.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(out.join("suspect.jsonl"))
        .unwrap();
    f.write_all(b"{\"id\": \"p9\", \"sam").unwrap();
    drop(f);
    let dropped = Mutex::new(0u64);
    let progress = |e: Event<'_>| {
        if let Event::IncompleteLineDropped { bytes, .. } = e {
            *dropped.lock().unwrap() = bytes;
        }
    };
    let before: usize = seen.lock().unwrap().values().sum();
    let again = api::run(&lab(), &c, &progress).unwrap();
    assert_eq!(*dropped.lock().unwrap(), 17);
    assert_eq!(again.suspect_answers.queries, 2);
    assert_eq!(again.suspect_answers.cached, 2);
    assert_eq!(seen.lock().unwrap().values().sum::<usize>() - before, 2);
    assert_eq!(again.suspect.statistic, a.suspect.statistic);

    // Other settings are refused rather than mixed.
    let mut other = config(&base, &out, &prompts);
    other.max_tokens = 17;
    let e = api::run(&lab(), &other, &Silent).unwrap_err();
    assert!(matches!(e, Error::OtherSettings { .. }), "{e}");
    assert!(e.to_string().contains("suspect.settings.json"));
}

#[test]
fn an_unreachable_endpoint_trips_the_breaker() {
    std::env::set_var(KEY_ENV, SECRET);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("audit");
    let prompts: Vec<String> = (0..12).map(|i| format!("plain {i}")).collect();
    let prompts: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let c = config(&format!("http://127.0.0.1:{port}/v1"), &out, &prompts);
    let e = api::run(&lab(), &c, &Silent).unwrap_err();
    match &e {
        Error::Unreachable { queries, total, .. } => {
            assert!(queries < total, "stopped early");
        }
        other => panic!("{other}"),
    }
    assert!(!e.to_string().contains(SECRET));
    assert!(!out.join("verdict.json").exists());

    let mut bad = config("ftp://example.com", &out, &prompts);
    bad.concurrency = 1;
    let e = api::run(&lab(), &bad, &Silent).unwrap_err();
    assert!(matches!(e, Error::Endpoint { .. }), "{e}");
    assert!(e.to_string().contains("http:// or https://"), "{e}");
    let mut zero = config("http://127.0.0.1:1", &out, &prompts);
    zero.samples_per_prompt = 0;
    assert!(matches!(
        api::run(&lab(), &zero, &Silent),
        Err(Error::Counts)
    ));
}

/// Each request's arrival time, and the date the 429 sent.
type Arrivals = Vec<(SystemTime, Option<SystemTime>)>;

/// A chat endpoint that answers its first request with 429 and
/// `Retry-After: <HTTP date>` (`date` given the arrival time), later ones
/// normally; returns its base URL and each request's arrival time and the
/// date it sent. From the handed-over case `fake_retry_after.py`.
fn date_server(date: fn(SystemTime) -> SystemTime) -> (String, Arc<Mutex<Arrivals>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            if read_chat_request(&stream).is_none() {
                continue;
            }
            let now = SystemTime::now();
            let mut log = l.lock().unwrap();
            if log.is_empty() {
                let when = date(now);
                log.push((now, Some(when)));
                http::respond(
                    &mut stream,
                    "429 Too Many Requests",
                    &format!("Retry-After: {}\r\n", httpdate::fmt_http_date(when)),
                    r#"{"error": {"message": "slow down", "type": "rate_limit_error"}}"#,
                );
            } else {
                log.push((now, None));
                let body = json!({"id": "x", "object": "chat.completion", "created": 0,
                    "model": "m", "choices": [{"index": 0, "message": {"role": "assistant",
                    "content": "The sea is wide and the waves are tall, and the tide comes in."},
                    "finish_reason": "stop"}]});
                http::respond(&mut stream, "200 OK", "", &body.to_string());
            }
        }
    });
    (base, log)
}

/// The next whole second after `t` (HTTP dates have whole seconds).
fn next_second(t: SystemTime) -> SystemTime {
    let s = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    SystemTime::UNIX_EPOCH + Duration::from_secs(s + 1)
}

#[test]
fn retry_after_as_a_date_is_waited_for() {
    // One to two seconds ahead, against the client's own 500 ms backoff.
    let (base, log) = date_server(|now| next_second(now) + Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&base, &dir.path().join("audit"), &["Describe the sea."]);
    c.backoff_ms = 500;
    let a = api::run(&lab(), &c, &Silent).unwrap();
    let s = &a.suspect_answers;
    assert_eq!((s.answered, s.failed, s.retries), (1, 0, 1));
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2);
    let (first, Some(date)) = log[0] else {
        panic!("no date sent")
    };
    let (second, _) = log[1];
    assert!(
        second >= date,
        "retried {:?} before the date",
        date.duration_since(second).unwrap()
    );
    let waited = second.duration_since(first).unwrap();
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    assert!(
        second.duration_since(date).unwrap() < Duration::from_millis(900),
        "waited {waited:?}, well past the date"
    );
    let cached = std::fs::read_to_string(dir.path().join("audit/suspect.jsonl")).unwrap();
    assert!(cached.contains("The sea is wide"), "{cached}");
}

#[test]
fn retry_after_a_past_date_retries_at_once() {
    let (base, log) = date_server(|now| now - Duration::from_secs(3600));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&base, &dir.path().join("audit"), &["Describe the sea."]);
    // A backoff far longer than the test allows: the date decides.
    c.backoff_ms = 5000;
    let a = api::run(&lab(), &c, &Silent).unwrap();
    assert_eq!(a.suspect_answers.answered, 1);
    let log = log.lock().unwrap();
    let waited = log[1].0.duration_since(log[0].0).unwrap();
    assert!(waited < Duration::from_millis(1500), "waited {waited:?}");
}
