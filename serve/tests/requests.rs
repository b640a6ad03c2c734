//! Request bodies → typed requests → settings or OpenAI-shaped errors, with
//! the statuses, types, params and messages clients see (no model needed).

use axum::http::StatusCode;
use provmark_serve::request::{
    ChatCompletionRequest, CompletionRequest, Endpoint, Limits, ModelNames, Settings,
};
use provmark_serve::ApiError;
use provmark_watermark::{PolicyMode, SamplingFloor, SamplingPolicy};
use serde_json::{json, Value};

const NAMES: ModelNames = ModelNames {
    id: "tiny",
    file: "tiny.gguf",
};

fn limits(max_tokens: usize, mode: PolicyMode) -> Limits {
    Limits {
        max_tokens,
        max_n: 4,
        one_answer_per_prompt: false,
        logprobs: true,
        policy: SamplingPolicy::new(mode, SamplingFloor::new(0.7, 0.9, 20).unwrap()),
    }
}

fn chat_with(
    body: &Value,
    limits: &Limits,
) -> Result<(Settings, Vec<provmark_llm::chat::Message>), ApiError> {
    let r = ChatCompletionRequest::from_body(body.to_string().as_bytes())?;
    let settings = r.params.settings(&NAMES, limits, Endpoint::Chat)?;
    Ok((settings, r.chat()?))
}

fn chat(body: &Value) -> Result<(Settings, Vec<provmark_llm::chat::Message>), ApiError> {
    chat_with(body, &limits(160, PolicyMode::AsRequested))
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
            json!({"n": 5, "messages": m}),
            400,
            "n must lie between 1 and this server's limit of 4, got 5",
            Some("n"),
        ),
        (json!({"n": 0, "messages": m}), 400, "got 0", Some("n")),
        (
            json!({"n": "two", "messages": m}),
            400,
            "n must be a non-negative integer",
            Some("n"),
        ),
        (
            json!({"stop": ["a", "b", "c", "d", "e"], "messages": m}),
            400,
            "stop takes at most 4 sequences, got 5",
            Some("stop"),
        ),
        (
            json!({"stop": ["a", ""], "messages": m}),
            400,
            "stop sequence 1 must hold 1 to 256 bytes",
            Some("stop"),
        ),
        (
            json!({"stop": ["a", 3], "messages": m}),
            400,
            "stop must be a string or a list of strings",
            Some("stop"),
        ),
        (
            json!({"logprobs": 3, "messages": m}),
            400,
            "logprobs must be true or false",
            Some("logprobs"),
        ),
        (
            json!({"logprobs": true, "top_logprobs": 21, "messages": m}),
            400,
            "top_logprobs must be an integer from 0 to 20",
            Some("top_logprobs"),
        ),
        (
            json!({"top_logprobs": 2, "messages": m}),
            400,
            "top_logprobs needs logprobs: true",
            Some("top_logprobs"),
        ),
        (
            json!({"tools": [], "messages": m}),
            400,
            "tools is not supported",
            Some("tools"),
        ),
        (
            json!({"best_of": 3, "messages": m}),
            400,
            "best_of is not supported",
            Some("best_of"),
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
    let l = limits(10, PolicyMode::AsRequested);
    assert_eq!(
        r.params
            .settings(&NAMES, &l, Endpoint::Completion)
            .unwrap()
            .max_tokens,
        3
    );
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

#[test]
fn stop_n_and_logprobs_are_read() {
    let (s, _) = chat(&json!({"messages": msgs(), "n": 3, "stop": "\n\n",
                              "logprobs": true, "top_logprobs": 5, "n": 3}))
    .unwrap();
    assert_eq!(
        (s.n, s.stop.clone(), s.logprobs),
        (3, vec!["\n\n".to_string()], Some(5))
    );
    let (s, _) = chat(&json!({"messages": msgs(), "stop": ["a", "b"], "logprobs": false})).unwrap();
    assert_eq!((s.n, s.stop.len(), s.logprobs), (1, 2, None));
    let (s, _) = chat(&json!({"messages": msgs(), "logprobs": true, "n": null})).unwrap();
    assert_eq!((s.n, s.logprobs), (1, Some(0)));
    // Completions take logprobs as a count.
    let l = limits(10, PolicyMode::AsRequested);
    let r = CompletionRequest::from_body(br#"{"prompt": "x", "logprobs": 2}"#).unwrap();
    assert_eq!(
        r.params
            .settings(&NAMES, &l, Endpoint::Completion)
            .unwrap()
            .logprobs,
        Some(2)
    );
    let r = CompletionRequest::from_body(br#"{"prompt": "x", "logprobs": true}"#).unwrap();
    let e = r
        .params
        .settings(&NAMES, &l, Endpoint::Completion)
        .unwrap_err();
    assert_eq!(e.param(), Some("logprobs"));
    // Under gumbel or synthid a prompt has one answer: n > 1 is refused.
    let one = Limits {
        one_answer_per_prompt: true,
        ..limits(10, PolicyMode::Floor)
    };
    let e = chat_with(&json!({"messages": msgs(), "n": 2}), &one).unwrap_err();
    assert_eq!(e.param(), Some("n"));
    assert!(e.to_string().contains("copies"), "{e}");
    assert_eq!(
        chat_with(&json!({"messages": msgs(), "n": 1}), &one)
            .unwrap()
            .0
            .n,
        1
    );
    // An operator who turned them off.
    let off = Limits {
        logprobs: false,
        ..limits(10, PolicyMode::Floor)
    };
    let e = chat_with(&json!({"messages": msgs(), "logprobs": true}), &off).unwrap_err();
    assert_eq!((e.param(), e.status().as_u16()), (Some("logprobs"), 400));
}

#[test]
fn the_policy_raises_or_refuses_settings_that_leave_no_choice() {
    // The case handed over: temperature 0 under the default policy.
    let case: Value =
        serde_json::from_str(include_str!("data/temperature0.json")).expect("the case parses");
    let floor = limits(200, PolicyMode::Floor);
    let (s, _) = chat_with(&case, &floor).unwrap();
    assert_eq!(s.requested.temperature(), 0.0);
    assert_eq!(s.sampling.temperature(), 0.7);
    assert_eq!(
        s.raised,
        vec![provmark_watermark::SamplingParam::Temperature]
    );
    let (s, _) = chat_with(
        &json!({"messages": msgs(), "top_p": 0.05, "top_k": 3}),
        &floor,
    )
    .unwrap();
    assert_eq!((s.sampling.top_p(), s.sampling.top_k()), (0.9, 20));
    // Refused, naming the parameter, in OpenAI's shape.
    let refuse = limits(200, PolicyMode::Refuse);
    for (body, param) in [
        (case.clone(), "temperature"),
        (
            json!({"messages": msgs(), "temperature": 0.2}),
            "temperature",
        ),
        (json!({"messages": msgs(), "top_p": 0.05}), "top_p"),
        (json!({"messages": msgs(), "top_k": 1}), "top_k"),
    ] {
        let e = chat_with(&body, &refuse).unwrap_err();
        assert_eq!(
            (e.status().as_u16(), e.param()),
            (400, Some(param)),
            "{body}"
        );
        assert_eq!(e.code(), Some("sampling_below_watermark_floor"));
        assert!(e.to_string().contains("no choice"), "{e}");
    }
    // At the floor or above: served as asked under every mode.
    let fine = json!({"messages": msgs(), "temperature": 0.8, "top_p": 0.95});
    for l in [&floor, &refuse] {
        let (s, _) = chat_with(&fine, l).unwrap();
        assert!(s.raised.is_empty());
        assert_eq!(s.sampling, s.requested);
    }
}
