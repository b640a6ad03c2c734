//! The grey-box API audit (`top_logprobs`, spec §8.5 over the suspect's own
//! answers) against scripted servers that sample from a simulated model and
//! report its top-20 log-probabilities: a student whose distribution leans
//! slightly toward the lab's high-value tokens is attributed, the same
//! model without the lean is not, a server that returns no logprobs stops
//! the run with a clear error, and malformed logprobs are not kept.

use std::net::{TcpListener, TcpStream};
use std::path::Path;

use provmark_audit::api::{self, ApiAuditConfig, ApiPrompt};
use provmark_audit::{Error, Lab, NullKeys, Silent};
use provmark_llm::chat::Message;
use provmark_testkit::corpus::{docs_corpus, train_bpe_json};
use provmark_testkit::http::{self, read_chat_request};
use provmark_verify::expected::ValueLaw;
use provmark_verify::{Detector, TextTokenizer};
use provmark_watermark::{Key, Profile, Scheme, SynthIdParams};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

const VOCAB: usize = 2048;

fn tokenizer() -> TextTokenizer {
    TextTokenizer::from_bytes(train_bpe_json(&docs_corpus(), VOCAB).as_bytes(), "test").unwrap()
}

fn lab() -> Lab {
    let key = Key::from_bytes([5; 32]);
    let scheme = Scheme::SynthId(SynthIdParams::new(30).unwrap());
    let profile = Profile::new(scheme, 2, tokenizer().digest().clone(), &key).unwrap();
    let detector = Detector::new(&profile, &key).unwrap();
    Lab { profile, detector }
}

/// How a scripted server answers.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Samples from a random model leaning by `lean` sd toward high values.
    Model { lean: f64 },
    /// Answers without logprobs.
    NoLogprobs,
    /// Logprobs whose entries lack top_logprobs.
    Malformed,
}

fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// One answer of the simulated model to `prompt`, as a chat completion.
fn answer(prompt: &str, behaviour: Behaviour, lab: &Lab, bytes: &[Vec<u8>]) -> Value {
    let mut rng =
        ChaCha8Rng::seed_from_u64(prompt.len() as u64 * 7919 + prompt.as_bytes()[0] as u64);
    let law = ValueLaw::of(lab.profile.scheme());
    let (mu, sd) = (law.mean(), law.variance().sqrt());
    let lean = match behaviour {
        Behaviour::Model { lean } => lean,
        _ => 0.0,
    };
    let mut ids: Vec<u32> = Vec::new();
    let mut content = Vec::new();
    for _ in 0..80 {
        let mut logits: Vec<f64> = (0..VOCAB)
            .map(|_| 2.5 * (uniform(&mut rng) * 4.0 - 2.0))
            .collect();
        if ids.len() >= 2 && lean != 0.0 {
            let w = &ids[ids.len() - 2..];
            let tuples: Vec<u32> = (0..VOCAB as u32).flat_map(|v| [w[0], w[1], v]).collect();
            let mut g = Vec::new();
            lab.detector
                .schedule()
                .value_tuples(tuples.chunks_exact(3), &mut g);
            for (l, g) in logits.iter_mut().zip(&g) {
                *l += lean * (g - mu) / sd;
            }
        }
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = logits.iter().map(|l| (l - max).exp()).sum();
        let lp: Vec<f64> = logits.iter().map(|l| l - max - z.ln()).collect();
        let mut u = uniform(&mut rng);
        let mut chosen = VOCAB - 1;
        for (v, l) in lp.iter().enumerate() {
            u -= l.exp();
            if u <= 0.0 {
                chosen = v;
                break;
            }
        }
        let mut order: Vec<usize> = (0..VOCAB).collect();
        order.sort_by(|a, b| lp[*b].total_cmp(&lp[*a]));
        let top: Vec<Value> = order[..20]
            .iter()
            .map(|&v| json!({"token": "?", "logprob": lp[v], "bytes": bytes[v]}))
            .collect();
        content.push(match behaviour {
            Behaviour::Malformed => json!({"token": "?", "logprob": lp[chosen], "bytes": bytes[chosen]}),
            _ => json!({"token": "?", "logprob": lp[chosen], "bytes": bytes[chosen], "top_logprobs": top}),
        });
        ids.push(chosen as u32);
    }
    let text: String = ids
        .iter()
        .map(|&i| String::from_utf8_lossy(&bytes[i as usize]).into_owned())
        .collect();
    let mut choice =
        json!({"message": {"role": "assistant", "content": text}, "finish_reason": "length"});
    if !matches!(behaviour, Behaviour::NoLogprobs) {
        choice["logprobs"] = json!({"content": content});
    }
    json!({"choices": [choice]})
}

fn server(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let lab = lab();
        let tok = tokenizer();
        let bytes: Vec<Vec<u8>> = (0..VOCAB as u32)
            .map(|id| provmark_llm::token_bytes::token_bytes(tok.inner(), id))
            .collect();
        for mut stream in listener.incoming().flatten() {
            handle(&mut stream, behaviour, &lab, &bytes);
        }
    });
    base
}

fn handle(stream: &mut TcpStream, behaviour: Behaviour, lab: &Lab, bytes: &[Vec<u8>]) {
    let Some(request) = read_chat_request(stream) else {
        return;
    };
    assert_eq!(request.body["logprobs"], true);
    assert_eq!(request.body["top_logprobs"], 20);
    let body = answer(&request.prompt, behaviour, lab, bytes).to_string();
    http::respond(stream, "200 OK", "", &body);
}

fn config(endpoint: &str, out: &Path, prompts: usize) -> ApiAuditConfig {
    ApiAuditConfig {
        endpoint: endpoint.into(),
        model: "suspect".into(),
        reference_endpoint: None,
        reference_model: None,
        prompts: (0..prompts)
            .map(|i| ApiPrompt {
                id: format!("p{i}"),
                messages: vec![Message {
                    role: "user".into(),
                    content: format!("question number {i} about rivers"),
                }],
            })
            .collect(),
        prompts_sha256: "00".into(),
        out: out.to_path_buf(),
        samples_per_prompt: 1,
        max_tokens: 80,
        temperature: 1.0,
        api_key_env: "PROVMARK_LOGPROBS_TEST_UNSET".into(),
        concurrency: 2,
        rate_limit: 0.0,
        retries: 0,
        backoff_ms: 5,
        timeout_s: 10.0,
        tokenizer: tokenizer(),
        normalization: Default::default(),
        filter_from: vec![],
        field: "text".into(),
        null: NullKeys { keys: 99, seed: 3 },
        alpha: 0.01,
        top_logprobs: Some(20),
    }
}

#[test]
fn a_leaning_student_is_attributed_through_its_logprobs_and_a_clean_model_is_not() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let url = server(Behaviour::Model { lean: 0.08 });
    let student = api::run(&lab, &config(&url, &dir.path().join("s"), 40), &Silent).unwrap();
    let t = student.logprob_test.as_ref().expect("asked for logprobs");
    assert_eq!(t.verdict.as_str(), "attributed", "{:?}", t.suspect);
    assert!(t.suspect.positions > 2000 && t.suspect.inheritance > 0.0);
    // The sampled tokens of the same answers barely show the lean.
    assert!(student.suspect.statistic.is_finite());
    let verdict: Value =
        serde_json::from_str(&std::fs::read_to_string(&student.verdict_path).unwrap()).unwrap();
    assert_eq!(verdict["logprob_test"]["verdict"], "attributed");
    // The cache keeps the logprobs: a rerun asks nothing and agrees.
    let again = api::run(&lab, &config(&url, &dir.path().join("s"), 40), &Silent).unwrap();
    assert_eq!(again.suspect_answers.queries, 0);
    assert_eq!(again.logprob_test.unwrap().suspect, t.suspect);
    // The same cache asked without logprobs is refused, naming what differs.
    let mut plain = config(&url, &dir.path().join("s"), 40);
    plain.top_logprobs = None;
    let e = api::run(&lab, &plain, &Silent).unwrap_err().to_string();
    assert!(
        e.contains("{\"top_logprobs\":20}") && e.contains("{\"top_logprobs\":null}"),
        "{e}"
    );
    assert!(
        !e.contains("prompts_sha256"),
        "only the differing field: {e}"
    );

    let clean = api::run(
        &lab,
        &config(
            &server(Behaviour::Model { lean: 0.0 }),
            &dir.path().join("c"),
            40,
        ),
        &Silent,
    )
    .unwrap();
    let c = clean.logprob_test.unwrap();
    assert_eq!(c.verdict.as_str(), "not_attributed", "{:?}", c.suspect);
    assert!(c.suspect.positions > 2000);
}

#[test]
fn a_server_without_logprobs_stops_the_run_with_a_clear_error() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    for (behaviour, needle) in [
        (Behaviour::NoLogprobs, "did not return log-probabilities"),
        (Behaviour::Malformed, "no top_logprobs"),
    ] {
        let out = dir.path().join(needle.replace(' ', "-"));
        let e = api::run(&lab, &config(&server(behaviour), &out, 12), &Silent).unwrap_err();
        assert!(matches!(e, Error::Unreachable { .. }), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
        // Nothing half-formed was kept as an answer.
        let kept = std::fs::read_to_string(out.join("suspect.jsonl")).unwrap();
        assert!(kept.is_empty(), "{kept}");
    }
    let mut bad = config("http://127.0.0.1:9/v1", &dir.path().join("k"), 1);
    bad.top_logprobs = Some(21);
    let e = api::run(&lab, &bad, &Silent).unwrap_err();
    assert!(matches!(e, Error::TopLogprobs { k: 21 }), "{e}");
}
