//! Reading mode on the default model: the teacher's own top-1 predictions
//! over its watermarked answers carry no mark (the null control), while a
//! suspect that learned the lab's bias (simulated: the teacher with the KGW
//! bias added to its logits) is attributed from a few hundred tokens.

use std::sync::Arc;

use provmark_llm::chat::Message;
use provmark_llm::default_model;
use provmark_llm::engine::{Engine, EngineConfig, Request};
use provmark_llm::reading::predict_top1;
use provmark_llm::runtime::Runtime;
use provmark_verify::corpus::{score_tuples, Shard, TupleSet};
use provmark_verify::Detector;
use provmark_watermark::{
    Embedder, Key, KgwParams, Profile, SamplingConfig, Scheme, TokenizerDigest,
};

#[test]
fn reading_mode_separates_a_learned_bias_from_the_null() {
    let path = default_model::ensure(&mut |l| eprintln!("{l}")).expect("default model");
    let rt = Arc::new(Runtime::load(&path, "smollm2").unwrap());
    let key = Key::from_bytes([11; 32]);
    let scheme = Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap());
    let profile = Profile::new(scheme, 2, TokenizerDigest::of_bytes(b"t"), &key).unwrap();
    let engine = Engine::start(
        rt.clone(),
        Some(Embedder::new(&profile, &key).unwrap()),
        EngineConfig {
            threads: 2,
            max_batch: 4,
            prefill_chunk: 256,
        },
    )
    .unwrap();
    let questions = [
        "Describe a busy harbour at dawn.",
        "Explain how rain forms.",
        "Write about a long walk in the hills.",
    ];
    let requests = questions
        .iter()
        .enumerate()
        .map(|(i, q)| Request {
            prompt: rt
                .encode_chat(&[Message {
                    role: "user".into(),
                    content: q.to_string(),
                }])
                .unwrap(),
            max_tokens: 120,
            sampling: SamplingConfig::default(),
            seed: i as u64,
            ..Request::default()
        })
        .collect();
    let texts: Vec<Vec<u32>> = engine
        .run_batch(requests)
        .unwrap()
        .into_iter()
        .map(|a| a.tokens)
        .collect();
    let detector = Detector::new(&profile, &key).unwrap();
    let mut bias = Embedder::new(&profile, &key).unwrap().response();
    let mut teacher = TupleSet::new(2, Shard::ALL).unwrap();
    let mut student = TupleSet::new(2, Shard::ALL).unwrap();
    for ids in &texts {
        let plain = predict_top1(&rt.model, ids, &mut |_, _| {}).unwrap();
        assert_eq!(plain.len(), ids.len());
        teacher.add_predictions(ids, &plain).unwrap();
        let learned = predict_top1(&rt.model, ids, &mut |prefix, row| {
            bias.bias_logits(prefix, row)
        })
        .unwrap();
        student.add_predictions(ids, &learned).unwrap();
    }
    let log10 = |set: TupleSet| {
        let tuples = set.finish();
        let score = score_tuples(&detector, &tuples).unwrap();
        score.test(&detector).unwrap().p.log10()
    };
    let (null, marked) = (log10(teacher), log10(student));
    assert!(
        null > -4.0,
        "the teacher's own predictions: log10 p = {null}"
    );
    assert!(
        marked < -10.0,
        "a suspect with the learned bias: log10 p = {marked}"
    );
}
