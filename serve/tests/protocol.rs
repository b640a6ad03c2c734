//! What OpenAI clients rely on, over HTTP on a tiny model (no download):
//! n choices, stop sequences, logprobs in both shapes, streams equal to
//! whole answers, the SSE charset, 405 for a wrong method, and the
//! `provmark` object on every answer.

mod common;

use provmark_serve::{router, serve, ListenConfig, ServeConfig};
use serde_json::{json, Value};

/// The JSON events of an SSE body (chunked transfer framing removed).
fn events(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choices_stops_logprobs_and_streams_behave_as_clients_expect() {
    let config = ServeConfig {
        max_tokens_limit: 24,
        max_concurrent: 4,
        max_n: 3,
        ..ServeConfig::default()
    };
    let app = router(common::tiny_engine(4), config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app, ListenConfig::default(), async {
        let _ = stopped.await;
    }));
    let msgs = json!([{"role": "user", "content": "abc"}]);

    // n = 3: three choices, seeds seed, seed + 1, seed + 2; usage sums them.
    let body = json!({"messages": msgs, "n": 3, "seed": 5, "max_tokens": 12}).to_string();
    let (status, _, text) = common::exchange(addr, "POST", "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{text}");
    let c: Value = serde_json::from_str(&text).unwrap();
    let choices = c["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    for (i, ch) in choices.iter().enumerate() {
        assert_eq!(ch["index"], i);
    }
    let one = json!({"messages": msgs, "seed": 6, "max_tokens": 12}).to_string();
    let (_, _, single) = common::exchange(addr, "POST", "/v1/chat/completions", &one).await;
    let single: Value = serde_json::from_str(&single).unwrap();
    assert_eq!(
        single["choices"][0]["message"], choices[1]["message"],
        "choice 1 is seed + 1"
    );
    let total = c["usage"]["completion_tokens"].as_u64().unwrap();
    assert_eq!(c["provmark"]["completion_tokens"].as_u64().unwrap(), total);
    assert!(
        total > 12 && total <= 36,
        "three answers of at most 12 tokens: {total}"
    );
    assert_eq!(c["provmark"]["watermark"], false);
    assert_eq!(c["provmark"]["marked_tokens"], 0);
    // n over the limit: 400 naming n.
    let body = json!({"messages": msgs, "n": 4}).to_string();
    let (status, _, text) = common::exchange(addr, "POST", "/v1/chat/completions", &body).await;
    assert_eq!(status, 400);
    assert!(text.contains("\"param\":\"n\""), "{text}");

    // Stop: the answer ends before the first occurrence, streamed or not.
    let free = json!({"prompt": "Hello", "seed": 2, "max_tokens": 24}).to_string();
    let (_, _, text) = common::exchange(addr, "POST", "/v1/completions", &free).await;
    let free_text = serde_json::from_str::<Value>(&text).unwrap()["choices"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    let chars: Vec<char> = free_text.chars().collect();
    assert!(chars.len() > 6, "{free_text:?}");
    let stop_at: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let cut = &free_text[..free_text.find(&stop_at).unwrap()];
    for stream in [false, true] {
        let body = json!({"prompt": "Hello", "seed": 2, "max_tokens": 24, "stop": [stop_at], "stream": stream}).to_string();
        let (status, head, text) = common::exchange(addr, "POST", "/v1/completions", &body).await;
        assert_eq!(status, 200, "{text}");
        let (got, finish) = if stream {
            assert!(
                head.contains("content-type: text/event-stream; charset=utf-8"),
                "{head}"
            );
            let ev = events(&text);
            let got: String = ev
                .iter()
                .map(|e| e["choices"][0]["text"].as_str().unwrap())
                .collect();
            (
                got,
                ev.last().unwrap()["choices"][0]["finish_reason"].clone(),
            )
        } else {
            let v: Value = serde_json::from_str(&text).unwrap();
            (
                v["choices"][0]["text"].as_str().unwrap().to_string(),
                v["choices"][0]["finish_reason"].clone(),
            )
        };
        assert_eq!(got, cut, "stream {stream}, stop {stop_at:?}");
        assert_eq!(finish, "stop");
    }

    // Logprobs, chat shape: one entry per token, top alternatives sorted.
    let body =
        json!({"messages": msgs, "seed": 1, "max_tokens": 6, "logprobs": true, "top_logprobs": 2})
            .to_string();
    let (_, _, text) = common::exchange(addr, "POST", "/v1/chat/completions", &body).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    let content = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(
        content.len() as u64,
        v["usage"]["completion_tokens"].as_u64().unwrap()
    );
    for t in content {
        assert!(t["logprob"].as_f64().unwrap() <= 0.0);
        assert!(t["token"].is_string() && t["bytes"].is_array());
        let top = t["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 2);
        assert!(top[0]["logprob"].as_f64() >= top[1]["logprob"].as_f64());
    }
    // Completions shape, streamed: the tokens add up to the text.
    let body =
        json!({"prompt": "Hello", "seed": 1, "max_tokens": 6, "logprobs": 1, "stream": true})
            .to_string();
    let (_, _, text) = common::exchange(addr, "POST", "/v1/completions", &body).await;
    let ev = events(&text);
    let offsets: Vec<u64> = ev
        .iter()
        .filter_map(|e| {
            e["choices"][0]["logprobs"]["text_offset"]
                .as_array()
                .cloned()
        })
        .flatten()
        .map(|o| o.as_u64().unwrap())
        .collect();
    assert!(!offsets.is_empty() && offsets[0] == 0);
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
    let last = ev.last().unwrap();
    assert_eq!(last["provmark"]["watermark"], false, "{last}");

    // A wrong method: 405 in OpenAI's shape, not an empty body.
    let (status, _, text) = common::exchange(addr, "GET", "/v1/chat/completions", "").await;
    assert_eq!(status, 405);
    let e: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(e["error"]["code"], "method_not_allowed");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
