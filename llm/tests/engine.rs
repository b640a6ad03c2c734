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
        ..Request::default()
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

fn engine(rt: &Arc<Runtime>, embedder: Option<Embedder>, prefill_chunk: usize) -> Engine {
    let config = EngineConfig {
        threads: 2,
        max_batch: 8,
        prefill_chunk,
    };
    Engine::start(rt.clone(), embedder, config).unwrap()
}

/// Submits `r` and returns the streamed texts (one per token event) and
/// the answer.
fn stream(engine: &Engine, r: Request) -> (Vec<String>, Answer) {
    let (tx, rx) = mpsc::channel();
    engine
        .submit(r, Box::new(move |e| tx.send(e).is_ok()))
        .unwrap();
    let mut pieces = Vec::new();
    loop {
        match rx.recv().unwrap() {
            Event::Token { text, .. } => pieces.push(text),
            Event::Done(a) => return (pieces, a),
        }
    }
}

#[test]
fn a_stream_is_exactly_the_whole_answer_even_cut_inside_a_character() {
    let rt = runtime();
    let e = engine(&rt, Some(embedder(Scheme::Gumbel)), 256);
    let prompts = [
        "Reply with ten emoji about the planet Earth.",
        "Write a sentence in Japanese about tea.",
        "Напиши короткое стихотворение о море.",
    ];
    let mut cut = 0;
    for (p, prompt) in prompts.iter().enumerate() {
        for seed in 1..=5u64 {
            let max_tokens = 6 + 7 * seed as usize + p;
            let (pieces, a) = stream(&e, request(&rt, prompt, max_tokens, seed));
            let streamed = pieces.concat() + &a.tail;
            assert_eq!(streamed, a.text, "{prompt} seed {seed}");
            // The rule: the whole answer is the lossy decoding of its tokens
            // (U+FFFD for an incomplete last character), streamed or not.
            assert_eq!(
                a.text,
                rt.decode(&a.tokens).unwrap(),
                "{prompt} seed {seed}"
            );
            cut += a.text.ends_with('\u{fffd}') as usize;
        }
    }
    assert!(
        cut > 0,
        "no answer was cut inside a character: the case is untested"
    );
}

#[test]
fn stop_strings_end_the_answer_before_their_first_occurrence() {
    let rt = runtime();
    let e = engine(&rt, Some(embedder(Scheme::Gumbel)), 256);
    for seed in 1..=4u64 {
        let free = stream(&e, request(&rt, QUESTIONS[1], 60, seed)).1;
        // A stop string taken from the middle of the free answer: the same
        // seed gives the same tokens up to it.
        let chars: Vec<(usize, char)> = free.text.char_indices().collect();
        let (at, _) = chars[chars.len() / 2];
        let stop: String = free.text[at..].chars().take(3).collect();
        let first = free.text.find(&stop).unwrap();
        let mut r = request(&rt, QUESTIONS[1], 60, seed);
        r.stop = vec!["no such text ∅".into(), stop.clone()];
        let (pieces, a) = stream(&e, r);
        assert_eq!(a.finish, Finish::Stop, "seed {seed}");
        assert_eq!(a.text, free.text[..first], "seed {seed}, stop {stop:?}");
        assert_eq!(pieces.concat() + &a.tail, a.text);
        assert!(pieces.iter().all(|p| !p.contains(&stop)));
        assert_eq!(a.tokens, free.tokens[..a.tokens.len()]);
        assert!(a.tokens.len() < free.tokens.len());
    }
}

/// A sink that reports itself cancelled after `alive` polls.
struct LeavesAfter {
    polls: Arc<std::sync::atomic::AtomicUsize>,
    alive: usize,
    events: mpsc::Sender<()>,
}

impl provmark_llm::engine::Sink for LeavesAfter {
    fn event(&mut self, _: Event) -> bool {
        let _ = self.events.send(());
        true
    }
    fn cancelled(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.polls.fetch_add(1, Ordering::SeqCst) >= self.alive
    }
}

#[test]
fn a_client_gone_during_prefill_is_dropped_at_the_next_step() {
    let rt = runtime();
    // 64-token prefill chunks: a 2,000-word prompt takes dozens of steps.
    let e = engine(&rt, None, 64);
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(200);
    let r = request(&rt, &long, 50, 1);
    assert!(r.prompt.len() > 1500, "{}", r.prompt.len());
    let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let sink = LeavesAfter {
        polls: polls.clone(),
        alive: 3,
        events: tx,
    };
    e.submit(r, Box::new(sink)).unwrap();
    // Another request is served after it, and the gone one sent nothing.
    let after = run_all(&e, vec![request(&rt, "Hi", 4, 5)]);
    assert!(!after[0].tokens.is_empty());
    drop(e);
    assert_eq!(rx.iter().count(), 0, "no token or answer for a gone client");
    // Polled before each step: three steps of prefill, dropped at the fourth.
    assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 4);
}

#[test]
fn logprobs_are_the_models_own_and_marks_are_counted() {
    let rt = runtime();
    let kgw = Scheme::Kgw(KgwParams::new(0.25, 4.0).unwrap());
    let e = engine(&rt, Some(embedder(kgw)), 256);
    let mut r = request(&rt, QUESTIONS[0], 30, 7);
    r.logprobs = Some(3);
    let a = stream(&e, r.clone()).1;
    assert_eq!(a.logprobs.len(), a.tokens.len());
    // The reported log-probabilities are the unbiased model's (a forward
    // pass over prompt + answer), not the kgw-biased distribution.
    let mut all = r.prompt.clone();
    all.extend_from_slice(&a.tokens);
    let mut cache = rt.model.new_cache();
    let mut logits = Vec::new();
    rt.model
        .forward_all(
            provmark_llm::model::Step {
                cache: &mut cache,
                tokens: &all[..all.len() - 1],
            },
            &mut logits,
        )
        .unwrap();
    let v = rt.model.config().vocab;
    for (i, (lp, &t)) in a.logprobs.iter().zip(&a.tokens).enumerate() {
        let row = &logits[(r.prompt.len() - 1 + i) * v..(r.prompt.len() + i) * v];
        let own = provmark_llm::logprobs::logprobs(row, t, 3);
        assert_eq!(lp.chosen.id, t);
        assert!(
            (lp.chosen.logprob - own.chosen.logprob).abs() < 0.05,
            "{i}: {lp:?} vs {own:?}"
        );
        assert_eq!(lp.top.len(), 3);
        assert!(lp.top.windows(2).all(|w| w[0].logprob >= w[1].logprob));
    }
    // kgw at T = 1: nearly every token marked (repeated windows are not).
    assert!(
        a.marked_tokens * 10 >= a.tokens.len() * 8,
        "{} of {}",
        a.marked_tokens,
        a.tokens.len()
    );
    // synthid greedy: one candidate everywhere, nothing marked; a control
    // engine marks nothing.
    let synthid = Scheme::SynthId(provmark_watermark::SynthIdParams::new(30).unwrap());
    let greedy = Request {
        sampling: SamplingConfig::greedy(),
        ..request(&rt, QUESTIONS[0], 30, 7)
    };
    let g = stream(&engine(&rt, Some(embedder(synthid)), 256), greedy.clone()).1;
    assert_eq!(g.marked_tokens, 0);
    assert_eq!(stream(&engine(&rt, None, 256), greedy).1.marked_tokens, 0);
}
