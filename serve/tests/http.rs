//! The router over a control engine on a tiny GGUF model (no download):
//! endpoints, OpenAI shapes, SSE ending in [DONE], body limit, unknown
//! routes and models, and a graceful stop.

mod common;

use provmark_serve::{router, serve, ListenConfig, ServeConfig, ServeError};
use serde_json::{json, Value};

/// One HTTP/1.1 exchange; the status and the body text.
async fn call(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let (status, _, body) = common::exchange(addr, method, path, body).await;
    (status, body)
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_openai_shapes_and_stops_gracefully() {
    let serving = common::tiny_engine(4);
    let config = ServeConfig {
        max_tokens_limit: 8,
        max_body_bytes: 512,
        ..ServeConfig::default()
    };
    assert_eq!(config.model_id_for(&serving.model_name), "tiny-llama");
    let app = router(serving, config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app, ListenConfig::default(), async {
        let _ = stopped.await;
    }));

    let (status, body) = call(addr, "GET", "/health", "").await;
    assert_eq!(status, 200);
    let health = json_of(&body);
    assert_eq!(
        (health["status"].clone(), health["watermark"].clone()),
        (json!("ok"), json!(false))
    );
    let (_, body) = call(addr, "GET", "/v1/models", "").await;
    assert_eq!(json_of(&body)["data"][0]["id"], "tiny-llama");

    let (status, body) = call(
        addr,
        "POST",
        "/v1/completions",
        r#"{"prompt": "Hello", "max_tokens": 4, "seed": 1, "model": "tiny-llama.gguf"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let c = json_of(&body);
    assert_eq!(c["object"], "text_completion");
    assert!(c["id"].as_str().unwrap().starts_with("cmpl-"));
    assert!(c["choices"][0]["text"].is_string());
    assert!(c["choices"][0]["logprobs"].is_null());
    assert!(c["usage"]["completion_tokens"].as_u64().unwrap() <= 4);
    assert!(
        c["provmark"].get("key_id").is_none(),
        "nothing disclosed by default"
    );

    let chat = r#"{"messages": [{"role": "user", "content": "abc"}], "seed": 3}"#;
    let (status, body) = call(addr, "POST", "/v1/chat/completions", chat).await;
    assert_eq!(status, 200, "{body}");
    let c = json_of(&body);
    assert_eq!(c["object"], "chat.completion");
    assert_eq!(c["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        c["usage"]["completion_tokens"].as_u64().unwrap(),
        8,
        "the limit is the default"
    );
    // The same seed gives the same answer.
    let (_, again) = call(addr, "POST", "/v1/chat/completions", chat).await;
    assert_eq!(json_of(&again)["choices"], c["choices"]);

    let (status, body) = call(
        addr,
        "POST",
        "/v1/chat/completions",
        r#"{"stream": true, "stream_options": {"include_usage": true}, "max_tokens": 3, "messages": [{"role": "user", "content": "x"}]}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("data: [DONE]"), "{body}");
    assert!(body.contains("chat.completion.chunk"), "{body}");
    assert!(body.contains("\"usage\""), "{body}");
    assert!(body.contains("\"role\":\"assistant\""), "{body}");

    for (path, body, status, needle) in [
        (
            "/v1/chat/completions",
            r#"{"model": "gpt-9"}"#.to_string(),
            404,
            "model_not_found",
        ),
        (
            "/v1/chat/completions",
            "{not json".to_string(),
            400,
            "not valid JSON",
        ),
        (
            "/v1/completions",
            r#"{"prompt": "x", "max_tokens": 9}"#.to_string(),
            400,
            "limit of 8",
        ),
        (
            "/v1/completions",
            "x".repeat(600),
            413,
            "cannot read the body",
        ),
        ("/v1/nothing", "{}".to_string(), 404, "not_found"),
    ] {
        let (got, text) = call(addr, "POST", path, &body).await;
        assert_eq!(got, status, "{path} {text}");
        let e = json_of(&text);
        assert!(text.contains(needle), "{needle}: {text}");
        assert!(e["error"]["type"].is_string(), "{text}");
    }

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[test]
fn zero_limits_are_refused() {
    let serving = common::tiny_engine(4);
    let config = ServeConfig {
        max_concurrent: 0,
        ..ServeConfig::default()
    };
    assert!(matches!(
        router(serving, config),
        Err(ServeError::ZeroLimit)
    ));
}
