//! The batching engine on the default model: reproducible answers whatever
//! the batch, stop and length handling, cancellation, and the watermark
//! actually steering the tokens.

use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use provmark_llm::chat::Message;
use provmark_llm::default_model;
use provmark_llm::engine::{Answer, Engine, EngineConfig, Event, Finish, Request};
use provmark_llm::runtime::Runtime;
use provmark_watermark::{
    Embedder, Key, KgwParams, Profile, SamplingConfig, Scheme, TokenizerDigest,
};

fn runtime() -> Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        let path = default_model::ensure(&mut |l| eprintln!("{l}")).expect("default model");
        Arc::new(Runtime::load(&path, "smollm2").expect("load"))
    })
    .clone()
}

fn embedder(scheme: Scheme) -> Embedder {
    let key = Key::from_bytes([5; 32]);
    let profile = Profile::new(scheme, 2, TokenizerDigest::of_bytes(b"t"), &key).unwrap();
    Embedder::new(&profile, &key).unwrap()
}

fn request(rt: &Runtime, question: &str, max_tokens: usize, seed: u64) -> Request {
    let prompt = rt
        .encode_chat(&[Message {
            role: "user".into(),
            content: question.into(),
        }])
        .unwrap();
    Request {
        prompt,
        max_tokens,
        sampling: SamplingConfig::new(1.0, 0, 1.0).unwrap(),
        seed,
    }
}

/// Submits all requests at once and collects the answers in order.
fn run_all(engine: &Engine, requests: Vec<Request>) -> Vec<Answer> {
    engine.run_batch(requests).expect("answers")
}

const QUESTIONS: [&str; 4] = [
    "Write a short poem about the sea.",
    "Explain what a hash function is.",
    "Give three tips for learning a language.",
    "What is the boiling point of water?",
];

#[test]
fn answers_do_not_depend_on_batching() {
    let rt = runtime();
    let reqs: Vec<Request> = QUESTIONS
        .iter()
        .enumerate()
        .map(|(i, q)| request(&rt, q, 24, i as u64))
        .collect();
    let cfg = |max_batch, prefill_chunk| EngineConfig {
        threads: 2,
        max_batch,
        prefill_chunk,
    };
    let batched = Engine::start(rt.clone(), Some(embedder(Scheme::Gumbel)), cfg(8, 256)).unwrap();
    let a = run_all(&batched, reqs.clone());
    let single = Engine::start(rt.clone(), Some(embedder(Scheme::Gumbel)), cfg(1, 7)).unwrap();
    let b = run_all(&single, reqs);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            x.tokens, y.tokens,
            "batch of 4 vs one at a time with 7-token prefill chunks"
        );
        assert_eq!(x.text, rt.decode(&x.tokens).unwrap());
        assert!(matches!(x.finish, Finish::Stop | Finish::Length));
        assert!(x.tokens.len() <= 24);
    }
    assert!(a.iter().any(|x| x.finish == Finish::Length));
}

#[test]
fn seeds_and_watermarks_change_answers() {
    let rt = runtime();
    let cfg = EngineConfig {
        threads: 2,
        max_batch: 4,
        prefill_chunk: 256,
    };
    let kgw = Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap());
    let marked = Engine::start(rt.clone(), Some(embedder(kgw)), cfg.clone()).unwrap();
    let plain = Engine::start(rt.clone(), None, cfg).unwrap();
    let q = QUESTIONS[1];
    let r = |seed| request(&rt, q, 32, seed);
    let out = run_all(&marked, vec![r(1), r(1), r(2)]);
    assert_eq!(out[0].tokens, out[1].tokens, "same seed, same answer");
    assert_ne!(out[0].tokens, out[2].tokens, "another seed, another answer");
    let control = run_all(&plain, vec![r(1)]);
    assert_ne!(
        out[0].tokens, control[0].tokens,
        "the watermark changes the choices"
    );
    assert!(!marked.runtime().stop_tokens().is_empty());
}

#[test]
fn streaming_text_adds_up_and_cancellation_stops() {
    let rt = runtime();
    let engine = Engine::start(
        rt.clone(),
        None,
        EngineConfig {
            threads: 2,
            max_batch: 2,
            prefill_chunk: 64,
        },
    )
    .unwrap();
    // Streaming: the deltas concatenate to the final text.
    let (tx, rx) = mpsc::channel();
    engine
        .submit(
            request(&rt, "Count from one to ten in words.", 40, 3),
            Box::new(move |e| tx.send(e).is_ok()),
        )
        .unwrap();
    let mut streamed = String::new();
    let answer = loop {
        match rx.recv().unwrap() {
            Event::Token { text, .. } => streamed.push_str(&text),
            Event::Done(a) => break a,
        }
    };
    assert_eq!(streamed, answer.text);
    // Cancellation: a sink that refuses the first token gets nothing more.
    let (tx, rx) = mpsc::channel::<u32>();
    engine
        .submit(
            request(&rt, "Tell me a long story.", 200, 4),
            Box::new(move |e| {
                if let Event::Token { id, .. } = e {
                    let _ = tx.send(id);
                }
                false
            }),
        )
        .unwrap();
    // The engine keeps serving others after the cancellation.
    let after = run_all(&engine, vec![request(&rt, "Hi", 4, 5)]);
    assert!(after[0].tokens.len() <= 4);
    drop(engine);
    assert_eq!(rx.iter().count(), 1);
}

#[test]
fn oversized_prompts_are_refused() {
    let rt = runtime();
    let engine = Engine::start(rt.clone(), None, EngineConfig::default()).unwrap();
    let mut r = request(&rt, "x", 4, 0);
    r.prompt = vec![1; rt.model.config().context];
    assert!(engine.submit(r.clone(), Box::new(|_| true)).is_err());
    r.prompt = vec![];
    assert!(engine.submit(r.clone(), Box::new(|_| true)).is_err());
    r.prompt = vec![u32::MAX];
    assert!(engine.submit(r, Box::new(|_| true)).is_err());
}
