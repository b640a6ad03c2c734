//! Request bodies → typed requests → settings or OpenAI-shaped errors, with
//! the statuses, types, params and messages clients see (no model needed).

use axum::http::StatusCode;
use provmark_serve::request::{ChatCompletionRequest, CompletionRequest, ModelNames, Settings};
use provmark_serve::ApiError;
use serde_json::{json, Value};

const NAMES: ModelNames = ModelNames {
    id: "tiny",
    file: "tiny.gguf",
};

fn chat(body: &Value) -> Result<(Settings, Vec<provmark_llm::chat::Message>), ApiError> {
    let r = ChatCompletionRequest::from_body(body.to_string().as_bytes())?;
    let settings = r.params.settings(&NAMES, 160)?;
    Ok((settings, r.chat()?))
}

fn err(body: Value) -> ApiError {
    chat(&body).unwrap_err()
}

fn msgs() -> Value {
    json!([{"role": "user", "content": "hi"}])
}

#[test]
fn defaults_and_accepted_fields() {
    let (s, m) = chat(&json!({"messages": msgs()})).unwrap();
    assert_eq!(s.max_tokens, 160, "the limit is the default");
    assert_eq!(
        (
            s.sampling.temperature(),
            s.sampling.top_p(),
            s.sampling.top_k()
        ),
        (1.0, 1.0, 0)
    );
    assert_eq!((s.seed, s.stream, s.include_usage), (None, false, false));
    assert_eq!((m[0].role.as_str(), m[0].content.as_str()), ("user", "hi"));

    let (s, m) = chat(&json!({
        "model": "tiny.gguf", "max_tokens": 5, "max_completion_tokens": 7,
        "temperature": 0, "top_p": 0.5, "top_k": 3, "seed": 42, "stream": true,
        "stream_options": {"include_usage": true}, "n": 1, "best_of": 1,
        "stop": null, "logprobs": false, "tools": null, "user": "ignored",
        "messages": [
            {"role": "system", "content": null},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        ],
    }))
    .unwrap();
    assert_eq!(s.max_tokens, 7, "max_completion_tokens wins");
    assert_eq!((s.sampling.temperature(), s.sampling.top_k()), (0.0, 3));
    assert_eq!((s.seed, s.stream, s.include_usage), (Some(42), true, true));
    assert_eq!(m[0].content, "");
    assert_eq!(m[1].content, "ab");
    // The served id is accepted too; a non-object stream_options means no usage.
    let (s, _) =
        chat(&json!({"model": "tiny", "stream_options": [true], "messages": msgs()})).unwrap();
    assert!(!s.include_usage);
}

#[test]
fn bad_bodies_get_400_with_openai_fields() {
    let e = ChatCompletionRequest::from_body(b"{not json").unwrap_err();
    assert!(matches!(e, ApiError::NotJson(_)));
    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    assert!(e.to_string().starts_with("the body is not valid JSON: "));
    let body = serde_json::to_value(e.body()).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], Value::Null);
    assert_eq!(body["error"]["code"], Value::Null);

    let e = CompletionRequest::from_body(b"[1, 2]").unwrap_err();
    assert_eq!(e.to_string(), "the body must be a JSON object");
}

#[test]
fn each_field_is_refused_with_its_own_message_and_param() {
    let m = msgs();
    let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (
            json!({"model": "gpt-9", "messages": m}),
            404,
            "the model \"gpt-9\" does not exist; this server has \"tiny\"",
            Some("model"),
        ),
        (
            json!({"model": null, "messages": m}),
            404,
            "the model null does not exist",
            Some("model"),
        ),
        (
            json!({"n": 2, "messages": m}),
            400,
            "n is not supported by this server",
            None,
        ),
        (
            json!({"n": null, "messages": m}),
            400,
            "n is not supported",
            None,
        ),
        (
            json!({"stop": "\n", "messages": m}),
            400,
            "stop is not supported",
            None,
        ),
        (
            json!({"logprobs": true, "messages": m}),
            400,
            "logprobs is not supported",
            None,
        ),
        (
            json!({"tools": [], "messages": m}),
            400,
            "tools is not supported",
            None,
        ),
        (
            json!({"best_of": 3, "messages": m}),
            400,
            "best_of is not supported",
            None,
        ),
        (
            json!({"max_tokens": 161, "messages": m}),
            400,
            "max_tokens must lie between 1 and this server's limit of 160, got 161",
            Some("max_tokens"),
        ),
        (
            json!({"max_completion_tokens": 0, "messages": m}),
            400,
            "got 0",
            Some("max_tokens"),
        ),
        (
            json!({"max_tokens": 1.0, "messages": m}),
            400,
            "max_tokens must be a non-negative integer",
            Some("max_tokens"),
        ),
        (
            json!({"max_completion_tokens": 5, "max_tokens": -1, "messages": m}),
            400,
            "max_tokens must be a non-negative integer",
            Some("max_tokens"),
        ),
        (
            json!({"temperature": "hot", "messages": m}),
            400,
            "temperature must be a number",
            Some("temperature"),
        ),
        (
            json!({"temperature": 2.5, "messages": m}),
            400,
            "temperature must lie between 0 and 2, got 2.5",
            Some("temperature"),
        ),
        (
            json!({"top_p": 0, "messages": m}),
            400,
            "top_p",
            Some("top_p"),
        ),
        (
            json!({"top_k": -1, "messages": m}),
            400,
            "top_k must be a non-negative integer",
            Some("top_k"),
        ),
        (
            json!({"seed": "x", "messages": m}),
            400,
            "seed must be a non-negative integer",
            Some("seed"),
        ),
        (
            json!({"stream": "yes", "messages": m}),
            400,
            "stream must be true or false",
            Some("stream"),
        ),
        (
            json!({"messages": []}),
            400,
            "messages must be a non-empty list",
            Some("messages"),
        ),
        (
            json!({}),
            400,
            "messages must be a non-empty list",
            Some("messages"),
        ),
        (
            json!({"messages": [{"content": "hi"}]}),
            400,
            "messages[0]: role must be a string",
            Some("messages"),
        ),
        (
            json!({"messages": [m[0], ["user", "hi"]]}),
            400,
            "messages[1]: role must be a string",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "user", "content": 5}]}),
            400,
            "messages[0]: content must be a string or a list of text parts",
            Some("messages"),
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
            400,
            "messages[0]: only text content parts are supported",
            Some("messages"),
        ),
    ];
    for (body, status, needle, param) in cases {
        let e = err(body.clone());
        assert_eq!(e.status().as_u16(), status, "{body}");
        assert!(e.to_string().contains(needle), "{body}: {e}");
        assert_eq!(e.param(), param, "{body}");
        let shaped = serde_json::to_value(e.body()).unwrap();
        assert_eq!(shaped["error"]["message"], e.to_string());
        assert_eq!(shaped["error"]["type"], "invalid_request_error");
    }
    assert_eq!(err(json!({"model": "x"})).code(), Some("model_not_found"));
}

#[test]
fn completions_take_one_prompt_string() {
    let r = CompletionRequest::from_body(br#"{"prompt": "Once", "max_tokens": 3}"#).unwrap();
    assert_eq!(r.prompt_text().unwrap(), "Once");
    assert_eq!(r.params.settings(&NAMES, 10).unwrap().max_tokens, 3);
    for body in [r#"{"prompt": ["a", "b"]}"#, r#"{}"#, r#"{"prompt": null}"#] {
        let e = CompletionRequest::from_body(body.as_bytes())
            .unwrap()
            .prompt_text()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "prompt must be a string (lists of prompts are not supported)"
        );
        assert_eq!(e.param(), Some("prompt"));
    }
}

#[test]
fn server_side_errors_have_their_statuses_and_types() {
    assert_eq!(
        ApiError::TooManyRequests.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(ApiError::TooManyRequests.kind(), "rate_limit_error");
    assert_eq!(ApiError::TooManyRequests.code(), Some("too_many_requests"));
    assert_eq!(ApiError::NotFound.status(), StatusCode::NOT_FOUND);
    assert_eq!(ApiError::NotFound.code(), Some("not_found"));
    assert_eq!(
        ApiError::EngineStopped.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(ApiError::Engine("x".into()).kind(), "server_error");
    let big = ApiError::Body {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        text: "length limit exceeded".into(),
    };
    assert_eq!(big.status().as_u16(), 413);
    assert_eq!(
        big.to_string(),
        "cannot read the body: length limit exceeded"
    );
}
