//! Verify path: scored tokens per second on one core, with and without
//! tokenization, and text to token ids alone.
//!
//!     cargo bench -p provmark-bench --bench verify

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use provmark_bench::corpus::{docs_corpus, train_bpe_json};
use provmark_verify::{Detector, TextTokenizer};
use provmark_watermark::{Key, KgwParams, Profile, Scheme, SynthIdParams, TokenizerDigest};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn detector(scheme: Scheme) -> Detector {
    let key = Key::from_bytes([1; 32]);
    let profile = Profile::new(scheme, 2, TokenizerDigest::of_bytes(b"b"), &key).unwrap();
    Detector::new(&profile, &key).unwrap()
}

fn schemes() -> [Scheme; 3] {
    [
        Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap()),
        Scheme::Gumbel,
        Scheme::SynthId(SynthIdParams::new(30).unwrap()),
    ]
}

fn score_ids(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    // 100 texts of 1,000 tokens: answer-sized texts, as an audit sees them.
    let texts: Vec<Vec<u32>> = (0..100)
        .map(|_| (0..1000).map(|_| rng.next_u32() % 49_152).collect())
        .collect();
    let mut group = c.benchmark_group("verify/score_ids");
    group.throughput(Throughput::Elements(100 * 1000));
    group.sample_size(20);
    for scheme in schemes() {
        let det = detector(scheme);
        group.bench_with_input(
            BenchmarkId::from_parameter(scheme.name()),
            &texts,
            |b, texts| {
                b.iter(|| {
                    texts
                        .iter()
                        .map(|ids| det.detect(ids).statistic)
                        .sum::<f64>()
                })
            },
        );
    }
    // One 100,000-token text: its de-duplication set outgrows the caches.
    let long: Vec<u32> = texts.concat();
    let det = detector(schemes()[0]);
    group.bench_function("kgw_one_100k_text", |b| {
        b.iter(|| det.detect(&long).statistic)
    });
    group.finish();
}

fn detect_text(c: &mut Criterion) {
    let corpus = docs_corpus();
    let tok = TextTokenizer::from_bytes(train_bpe_json(&corpus, 8192).as_bytes(), "t").unwrap();
    let text = &corpus[..200_000];
    let tokens = tok.encode(text).unwrap().len();
    let det = detector(schemes()[0]);
    let mut group = c.benchmark_group("verify/tokenize_and_score");
    group.throughput(Throughput::Elements(tokens as u64));
    group.sample_size(10);
    group.bench_function("kgw", |b| b.iter(|| det.detect(&tok.encode(text).unwrap())));
    group.bench_function("tokenize_only", |b| b.iter(|| tok.encode(text).unwrap()));
    group.finish();
}

/// Text to token ids alone (issue #14): provmark's own byte-level BPE
/// (`TextTokenizer::encode`) against the reference it reproduces
/// (`tokenizers`' `encode_fast`), on the corpus cut into answer-sized
/// texts of about 3,000 characters, for the demo's trained tokenizer (gpt2
/// shape, 8,192 tokens) and the default model's (smollm, 49,152 tokens;
/// skipped unless `provmark model fetch` has cached it).
fn text_to_ids(c: &mut Criterion) {
    let corpus = docs_corpus();
    let mut texts = Vec::new();
    let mut at = 0;
    while at + 3000 < corpus.len() {
        let mut end = at + 3000;
        while !corpus.is_char_boundary(end) {
            end += 1;
        }
        texts.push(&corpus[at..end]);
        at = end;
    }
    let mut tokenizers = vec![(
        "trained_8192",
        TextTokenizer::from_bytes(train_bpe_json(&corpus, 8192).as_bytes(), "t").unwrap(),
    )];
    let model = provmark_llm::default_model::cached_path();
    if model.is_file() {
        let gguf = provmark_llm::gguf_tokenizer::GgufTokenizer::from_file(&model).unwrap();
        tokenizers.push(("default_model", gguf.text_tokenizer("default").unwrap()));
    }
    let mut group = c.benchmark_group("verify/text_to_ids");
    group.sample_size(10);
    for (name, tok) in &tokenizers {
        let tokens: usize = texts.iter().map(|t| tok.encode(t).unwrap().len()).sum();
        group.throughput(Throughput::Elements(tokens as u64));
        group.bench_function(BenchmarkId::new("provmark", name), |b| {
            b.iter(|| {
                texts
                    .iter()
                    .map(|t| tok.encode(t).unwrap().len())
                    .sum::<usize>()
            })
        });
        group.bench_function(BenchmarkId::new("tokenizers", name), |b| {
            b.iter(|| {
                texts
                    .iter()
                    .map(|t| tok.inner().encode_fast(*t, false).unwrap().len())
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

/// The two halves of one scored token: the keyed seed and the keystream read.
fn components(c: &mut Criterion) {
    let key = Key::from_bytes([1; 32]);
    let profile = Profile::new(schemes()[0], 2, TokenizerDigest::of_bytes(b"b"), &key).unwrap();
    let schedule = provmark_watermark::Schedule::new(&profile, &key).unwrap();
    let mut group = c.benchmark_group("verify/components");
    let mut t = 0u32;
    group.bench_function("hmac_seed", |b| {
        b.iter(|| {
            t = t.wrapping_add(1);
            schedule.seed(&[t, 5])
        })
    });
    let seed = schedule.seed(&[1, 2]);
    group.bench_function("keystream_word", |b| {
        b.iter(|| {
            t = t.wrapping_add(1);
            provmark_watermark::TokenValues::new(&seed).kgw_value(t % 49_152)
        })
    });
    // Eight whole scored tuples through the batched path: eight seeds, then
    // eight keystream blocks together (the blocks alone are no longer
    // public; subtract eight hmac_seed for them).
    let mut scores = Vec::with_capacity(8);
    group.bench_function("score_tuples_x8", |b| {
        b.iter(|| {
            t = t.wrapping_add(1);
            let tuples: [[u32; 3]; 8] =
                std::array::from_fn(|i| [t, 5, t.wrapping_add(977 * i as u32) % 49_152]);
            scores.clear();
            schedule.score_tuples(tuples.iter().map(|x| x.as_slice()), &mut scores);
            scores[7]
        })
    });
    group.finish();
}

criterion_group!(benches, components, score_ids, detect_text, text_to_ids);
criterion_main!(benches);
