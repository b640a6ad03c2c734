//! The transport under raw TCP (issue #11 §5): silent, trickling and
//! half-body clients are cut off after their timeouts, a declared body over
//! the limit gets 413 from its headers, connections over the cap get 503,
//! shutdown has a deadline, and slow answers (whole or streamed) are never
//! cut off. Timeouts are 1 s here; each bound below allows for a loaded
//! machine.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use provmark_serve::transport::{parse_secs, refuse_declared_length};
use provmark_serve::{router, serve, ListenConfig, ServeConfig, ServeError};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SEC: Duration = Duration::from_secs(1);
/// How long a slow answer takes: longer than every timeout of `quick()`.
const SLOW: Duration = Duration::from_millis(2500);

/// 1 s header, body and idle timeouts; 64 connections; 1 s to stop.
fn quick() -> ListenConfig {
    ListenConfig {
        header_timeout: SEC,
        body_timeout: SEC,
        idle_timeout: SEC,
        max_connections: 64,
        shutdown_timeout: SEC,
    }
}

/// Routes with known timing: `/fast`, `/echo` (reads the body), `/slow`
/// (answers after [`SLOW`]), `/stream` (three chunks 1.5 s apart); 1 KiB
/// declared-length limit.
fn test_router() -> Router {
    async fn echo(body: Result<Bytes, BytesRejection>) -> (StatusCode, String) {
        match body {
            Ok(b) => (StatusCode::OK, b.len().to_string()),
            Err(e) => (e.status(), e.body_text()),
        }
    }
    async fn stream() -> Body {
        let chunks = tokio_stream::iter(0..3).then(|i| async move {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            Ok::<_, std::io::Error>(Bytes::from(format!("chunk{i};")))
        });
        Body::from_stream(chunks)
    }
    use tokio_stream::StreamExt;
    Router::new()
        .route("/fast", get(|| async { "ok" }))
        .route("/echo", post(echo))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(SLOW).await;
                "done"
            }),
        )
        .route("/stream", get(stream))
        .layer(axum::middleware::from_fn_with_state(
            1024usize,
            refuse_declared_length,
        ))
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl Server {
    async fn start(app: Router, config: ListenConfig) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, app, config, async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Signals shutdown and returns how long `serve` took to return.
    async fn stop(mut self) -> Duration {
        let t = Instant::now();
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("serve returns")
            .unwrap()
            .unwrap();
        t.elapsed()
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

/// Reads until the server closes (or resets) the connection; the bytes and
/// when it closed. Panics after 20 s.
async fn until_closed(s: &mut TcpStream) -> (String, Duration) {
    let t = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await {
            Err(_) => panic!("still open after 20 s; got {out:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), t.elapsed())
}

/// One response with a `content-length` on a kept-alive connection:
/// status and body.
async fn response(s: &mut TcpStream) -> (u16, String) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().unwrap())
                })
                .expect("a content-length");
            if body.len() >= length {
                return (text[9..12].parse().unwrap(), body[..length].to_string());
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .expect("an answer within 20 s")
            .unwrap();
        assert!(n > 0, "closed before a whole answer: {text:?}");
        out.extend_from_slice(&buf[..n]);
    }
}

async fn get_once(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = connect(addr).await;
    let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    response(&mut s).await
}

fn status_of(raw: &str) -> u16 {
    raw.get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {raw:?}"))
}

/// The JSON body of a raw answer, checked to be OpenAI's error shape.
fn openai_error(raw: &str) -> Value {
    let body = raw.split_once("\r\n\r\n").expect("a body").1;
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw}"));
    let e = &v["error"];
    assert!(e["message"].is_string(), "{v}");
    assert!(e["type"].is_string(), "{v}");
    assert!(e.get("param").is_some() && e.get("code").is_some(), "{v}");
    v
}

fn within(d: Duration, lo: f64, hi: f64, what: &str) {
    let s = d.as_secs_f64();
    assert!(lo <= s && s <= hi, "{what}: {s:.2} s, expected {lo}..{hi}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connection_is_closed_after_the_header_timeout() {
    let server = Server::start(test_router(), quick()).await;
    let mut s = connect(server.addr).await;
    let (got, after) = until_closed(&mut s).await;
    assert_eq!(got, "", "nothing is answered to a silent client");
    within(after, 0.9, 3.0, "silent connection closed");
    // The server is still fine.
    assert_eq!(get_once(server.addr, "/fast").await, (200, "ok".into()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_are_closed_after_the_header_timeout() {
    let server = Server::start(test_router(), quick()).await;
    let mut s = connect(server.addr).await;
    let t = Instant::now();
    s.write_all(b"GET /fast HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let (mut rd, mut wr) = s.into_split();
    let trickle = tokio::spawn(async move {
        // One header line every 200 ms, for up to 10 s.
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if wr.write_all(b"x-a: b\r\n").await.is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(20), rd.read(&mut buf))
        .await
        .expect("closed within 20 s")
        .unwrap_or(0);
    assert_eq!(n, 0, "no answer to unfinished headers");
    within(t.elapsed(), 0.9, 3.0, "trickling connection closed");
    trickle.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_body_gets_408_and_the_connection_closes() {
    let server = Server::start(test_router(), quick()).await;
    let mut s = connect(server.addr).await;
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"mess")
        .await
        .unwrap();
    let (raw, after) = until_closed(&mut s).await;
    assert_eq!(status_of(&raw), 408, "{raw}");
    let e = openai_error(&raw);
    assert_eq!(e["error"]["code"], "request_timeout", "{e}");
    assert_eq!(e["error"]["type"], "invalid_request_error", "{e}");
    within(after, 0.9, 3.0, "half body answered");
    // A whole body in time is read as usual.
    let mut s = connect(server.addr).await;
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello")
        .await
        .unwrap();
    assert_eq!(response(&mut s).await, (200, "5".into()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_length_over_the_limit_gets_413_before_any_body_byte() {
    // The real router, whose limit comes from ServeConfig::max_body_bytes.
    let config = ServeConfig {
        max_body_bytes: 1 << 20,
        ..ServeConfig::default()
    };
    let app = router(common::tiny_engine(2), config).unwrap();
    let listen = ListenConfig {
        body_timeout: Duration::from_secs(10),
        ..quick()
    };
    let server = Server::start(app, listen).await;
    let mut s = connect(server.addr).await;
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          content-length: 100000000000\r\n\r\n",
    )
    .await
    .unwrap();
    let (raw, after) = until_closed(&mut s).await;
    assert_eq!(status_of(&raw), 413, "{raw}");
    assert!(
        raw.to_ascii_lowercase().contains("connection: close"),
        "{raw}"
    );
    let e = openai_error(&raw);
    assert_eq!(e["error"]["code"], "request_too_large", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100000000000"),
        "{e}"
    );
    within(after, 0.0, 0.8, "413 from the headers");
    // With `Expect: 100-continue` the client is told before it sends.
    let mut s = connect(server.addr).await;
    s.write_all(
        b"POST /v1/completions HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n\
          content-length: 2000000\r\n\r\n",
    )
    .await
    .unwrap();
    let (raw, _) = until_closed(&mut s).await;
    assert_eq!(status_of(&raw), 413, "no 100 Continue first: {raw}");
    // A body within the limit still reaches the handlers.
    let body = r#"{"prompt": "Hi", "max_tokens": 2, "seed": 1}"#;
    let mut s = connect(server.addr).await;
    let req = format!(
        "POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let (status, text) = response(&mut s).await;
    assert_eq!(status, 200, "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_get_503_and_holders_cannot_keep_others_out() {
    let config = ListenConfig {
        max_connections: 2,
        ..quick()
    };
    let server = Server::start(test_router(), config).await;
    // Two silent holders take every slot...
    let mut holders = vec![connect(server.addr).await, connect(server.addr).await];
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...so a third connection is answered 503 at once and closed.
    let t = Instant::now();
    let mut s = connect(server.addr).await;
    s.write_all(b"GET /fast HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (raw, _) = until_closed(&mut s).await;
    assert_eq!(status_of(&raw), 503, "{raw}");
    let e = openai_error(&raw);
    assert_eq!(e["error"]["code"], "too_many_connections", "{e}");
    assert_eq!(e["error"]["type"], "server_error", "{e}");
    within(t.elapsed(), 0.0, 0.8, "503 at once");
    // The holders never let go, but the header timeout closes them: within
    // about a second a normal request gets through again.
    let t = Instant::now();
    let ok = loop {
        let (status, body) = get_once(server.addr, "/fast").await;
        if status == 200 {
            break body;
        }
        assert_eq!(status, 503);
        assert!(t.elapsed() < Duration::from_secs(4), "still locked out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ok, "ok");
    within(t.elapsed(), 0.0, 2.5, "room again after the header timeout");
    for h in &mut holders {
        assert_eq!(until_closed(h).await.0, "", "holders were closed");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_an_unfinished_request_returns_within_the_deadline() {
    // Long read timeouts: only the shutdown deadline can end these clients.
    let config = ListenConfig {
        header_timeout: Duration::from_secs(60),
        body_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        max_connections: 8,
        shutdown_timeout: SEC,
    };
    let server = Server::start(test_router(), config).await;
    let mut half_body = connect(server.addr).await;
    half_body
        .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{\"mess")
        .await
        .unwrap();
    let mut trickle = connect(server.addr).await;
    trickle
        .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut silent = connect(server.addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let took = server.stop().await;
    within(took, 0.9, 2.5, "serve returned after the grace period");
    for s in [&mut half_body, &mut trickle, &mut silent] {
        let (_, after) = until_closed(s).await;
        assert!(after < Duration::from_millis(500), "closed by then");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_running_answer_finish() {
    let config = ListenConfig {
        shutdown_timeout: Duration::from_secs(10),
        ..quick()
    };
    let server = Server::start(test_router(), config).await;
    let addr = server.addr;
    let slow = tokio::spawn(async move { get_once(addr, "/slow").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let took = server.stop().await;
    assert_eq!(slow.await.unwrap(), (200, "done".into()));
    // Returned once the answer was done, not at the 10 s deadline.
    within(took, 1.5, 6.0, "serve returned after the answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_are_not_cut_off_and_idle_connections_are() {
    // Idle timeout 1 s, header timeout 10 s: the idle one applies between
    // requests.
    let config = ListenConfig {
        header_timeout: Duration::from_secs(10),
        ..quick()
    };
    let server = Server::start(test_router(), config).await;
    let mut s = connect(server.addr).await;
    // A whole answer that takes longer than every timeout...
    let t = Instant::now();
    s.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(response(&mut s).await, (200, "done".into()));
    assert!(t.elapsed() >= SLOW);
    // ...then, on the same connection within the idle timeout, a streamed
    // answer with pauses longer than every timeout.
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.write_all(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\r\n0\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the stream goes on")
            .unwrap();
        assert!(n > 0, "cut off: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert_eq!(status_of(&text), 200);
    for i in 0..3 {
        assert!(text.contains(&format!("chunk{i};")), "{text}");
    }
    // Then idle: closed after the idle timeout, well before the header one.
    let (rest, after) = until_closed(&mut s).await;
    assert_eq!(rest, "");
    within(after, 0.9, 3.0, "idle keep-alive connection closed");
    server.stop().await;
}

#[tokio::test]
async fn zero_settings_and_bad_seconds_are_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ListenConfig {
        max_connections: 0,
        ..ListenConfig::default()
    };
    let err = serve(listener, Router::new(), config, async {})
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "the connection cap must be above 0");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ListenConfig {
        body_timeout: Duration::ZERO,
        ..ListenConfig::default()
    };
    let err = serve(listener, Router::new(), config, async {}).await;
    assert!(matches!(err, Err(ServeError::ZeroSetting("body timeout"))));
    assert_eq!(parse_secs("1.5"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_secs("10"), Ok(Duration::from_secs(10)));
    for bad in ["0", "-1", "x", "", "inf", "NaN"] {
        assert!(parse_secs(bad).is_err(), "{bad}");
    }
}
