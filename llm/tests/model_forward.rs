//! The model forward pass on the default model, against llama.cpp's logits
//! and greedy continuations (`tests/data/reference_logits.json`, made by
//! `make_reference_logits.py`), and the batching invariants the server
//! relies on.

use std::sync::OnceLock;

use provmark_llm::default_model;
use provmark_llm::model::{Model, Step};
use serde_json::Value;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = default_model::ensure(&mut |line| eprintln!("{line}")).expect("default model");
        Model::load(&path).expect("load")
    })
}

struct Case {
    ids: Vec<u32>,
    top_ids: Vec<usize>,
    top_logits: Vec<f32>,
    greedy: Vec<u32>,
}

fn cases() -> Vec<Case> {
    let v: Value = serde_json::from_str(include_str!("data/reference_logits.json")).expect("json");
    let ids = |v: &Value| -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect()
    };
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            ids: ids(&c["ids"]).into_iter().map(|x| x as u32).collect(),
            top_ids: ids(&c["top_ids"]).into_iter().map(|x| x as usize).collect(),
            top_logits: c["top_logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect(),
            greedy: ids(&c["greedy"]).into_iter().map(|x| x as u32).collect(),
        })
        .collect()
}

fn prefill(m: &Model, ids: &[u32]) -> Vec<f32> {
    let mut cache = m.new_cache();
    let mut logits = Vec::new();
    m.forward(
        &mut [Step {
            cache: &mut cache,
            tokens: ids,
        }],
        &mut logits,
    )
    .unwrap();
    logits
}

fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best as u32
}

#[test]
fn prompt_logits_match_llama_cpp() {
    let m = model();
    assert_eq!(m.config().vocab, 49_152);
    for case in cases() {
        let logits = prefill(m, &case.ids);
        // Both runtimes quantize activations to 8 bits per block; the rest
        // is rounding (llama.cpp's own logits move by up to 0.52 between its
        // f16 and f32 KV caches on these prompts).
        let mut max_diff = 0f32;
        for (&id, &want) in case.top_ids.iter().zip(&case.top_logits) {
            max_diff = max_diff.max((logits[id] - want).abs());
        }
        assert!(max_diff < 0.75, "top-64 logits differ by up to {max_diff}");
        assert_eq!(argmax(&logits) as usize, case.top_ids[0]);
        let mut ours: Vec<usize> = (0..logits.len()).collect();
        ours.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let overlap = ours[..10]
            .iter()
            .filter(|i| case.top_ids[..10].contains(i))
            .count();
        assert!(overlap >= 8, "top-10 overlap {overlap}");
    }
}

#[test]
fn greedy_choices_match_llama_cpp() {
    let m = model();
    let mut agree = 0;
    let mut total = 0;
    for case in cases() {
        // Teacher-forced along llama.cpp's greedy path, so one near tie does
        // not derail the rest of the comparison.
        let mut cache = m.new_cache();
        let mut logits = Vec::new();
        let mut next = case.ids.clone();
        for &want in &case.greedy {
            m.forward(
                &mut [Step {
                    cache: &mut cache,
                    tokens: &next,
                }],
                &mut logits,
            )
            .unwrap();
            agree += usize::from(argmax(&logits) == want);
            total += 1;
            next = vec![want];
        }
    }
    assert!(
        agree * 100 >= total * 95,
        "greedy agreement {agree}/{total}"
    );
}

#[test]
fn batched_and_incremental_forward_agree_with_prefill() {
    let m = model();
    let cs = cases();
    let (a, b) = (&cs[0].ids, &cs[2].ids);
    let full_a = prefill(m, a);
    let full_b = prefill(m, b);
    // Incremental: all but the last token, then the last one.
    let mut cache = m.new_cache();
    let mut logits = Vec::new();
    m.forward(
        &mut [Step {
            cache: &mut cache,
            tokens: &a[..a.len() - 1],
        }],
        &mut logits,
    )
    .unwrap();
    m.forward(
        &mut [Step {
            cache: &mut cache,
            tokens: &a[a.len() - 1..],
        }],
        &mut logits,
    )
    .unwrap();
    assert_eq!(cache.len(), a.len());
    let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-3);
    assert!(close(&logits, &full_a));
    // Batched: two sequences in one pass, one prefill and one decode.
    let (mut ca, mut cb) = (m.new_cache(), m.new_cache());
    m.forward(
        &mut [Step {
            cache: &mut ca,
            tokens: &a[..a.len() - 1],
        }],
        &mut logits,
    )
    .unwrap();
    m.forward(
        &mut [
            Step {
                cache: &mut ca,
                tokens: &a[a.len() - 1..],
            },
            Step {
                cache: &mut cb,
                tokens: b,
            },
        ],
        &mut logits,
    )
    .unwrap();
    let v = m.config().vocab;
    assert!(close(&logits[..v], &full_a));
    assert!(close(&logits[v..], &full_b));
    // Every row's logits at once: row i equals the prefill of a[..=i].
    let mut cache = m.new_cache();
    m.forward_all(
        Step {
            cache: &mut cache,
            tokens: a,
        },
        &mut logits,
    )
    .unwrap();
    assert_eq!(logits.len(), a.len() * v);
    assert!(close(&logits[(a.len() - 1) * v..], &full_a));
    let third = prefill(m, &a[..3]);
    assert!(close(&logits[2 * v..3 * v], &third));
}

#[test]
fn bad_requests_are_errors() {
    let m = model();
    let mut cache = m.new_cache();
    let mut logits = Vec::new();
    let err = m
        .forward(
            &mut [Step {
                cache: &mut cache,
                tokens: &[49_152],
            }],
            &mut logits,
        )
        .unwrap_err();
    assert!(err.to_string().contains("outside the vocabulary"), "{err}");
    let err = m
        .forward(
            &mut [Step {
                cache: &mut cache,
                tokens: &[],
            }],
            &mut logits,
        )
        .unwrap_err();
    assert!(err.to_string().contains("at least one token"), "{err}");
    let long = vec![1u32; m.config().context + 1];
    assert!(m
        .forward(
            &mut [Step {
                cache: &mut cache,
                tokens: &long
            }],
            &mut logits
        )
        .is_err());
    assert!(cache.is_empty(), "a failed step leaves the cache untouched");
}

#[test]
fn default_model_runs_identically_as_stored() {
    // Q4_1 matrices and a Q8_0 embedding are kept as stored under both
    // precisions, so the audits' AsStored load changes nothing here.
    let m = model();
    let exact = Model::load_with(
        &default_model::cached_path(),
        provmark_llm::model::Precision::AsStored,
    )
    .expect("load");
    assert_eq!(exact.weight_formats(), m.weight_formats());
    for case in cases().iter().take(2) {
        assert_eq!(prefill(&exact, &case.ids), prefill(m, &case.ids));
    }
}
