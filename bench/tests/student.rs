//! The demo's n-gram student (`student` binary, `KneserNey::generate`): a
//! student of watermarked text is attributed by the corpus test and a
//! student of unwatermarked text is not (synthetic teacher), and the binary
//! writes one valid, seeded JSONL record per answer.

use std::path::Path;
use std::process::Command;

use provmark_bench::ngram::KneserNey;
use provmark_testkit::corpus::{docs_corpus, train_bpe_json};
use provmark_testkit::fixtures::{detector, embedder, key};
use provmark_testkit::generate;
use provmark_testkit::synthetic::ZipfLm;
use provmark_verify::corpus::{score_tuples, Shard, TupleSet};
use provmark_verify::Detector;
use provmark_watermark::{SamplingConfig, Scheme, SynthIdParams};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const VOCAB: usize = 64;

/// log10 p of the corpus test (spec §8.1) over the distinct tuples of `texts`.
fn corpus_log10_p(det: &Detector, texts: &[Vec<u32>]) -> f64 {
    let mut set = TupleSet::new(2, Shard::new(0, 1).unwrap()).unwrap();
    for t in texts {
        set.add_text(t);
    }
    let score = score_tuples(det, &set.finish()).unwrap();
    score.test(det).unwrap().p.log10()
}

/// A 4-gram student trained on `teacher`, sampled free-running.
fn student_answers(teacher: &[Vec<u32>], answers: usize, seed: u64) -> Vec<Vec<u32>> {
    let end = VOCAB as u32;
    // As the binary trains: each answer followed by the end id.
    let sequences: Vec<Vec<u32>> = teacher
        .iter()
        .map(|t| t.iter().copied().chain([end]).collect())
        .collect();
    let student = KneserNey::train(4, VOCAB + 1, end, sequences.iter().map(Vec::as_slice));
    (0..answers)
        .map(|i| {
            let mut rng = ChaCha20Rng::seed_from_u64(seed << 20 | i as u64);
            let ids = student.generate(end, end, 100, &mut rng);
            assert!(ids.len() <= 100 && !ids.contains(&end));
            ids
        })
        .collect()
}

#[test]
fn a_student_of_marked_answers_is_attributed_and_a_clean_one_is_not() {
    // The default profile's scheme and context (synthid, m = 30, h = 2), a
    // teacher of 2.5 bits per token over 64 tokens (so that, as in real
    // text, its 2-token contexts recur), 100 answers of 100 tokens each.
    let scheme = Scheme::SynthId(SynthIdParams::new(30).unwrap());
    let lm = ZipfLm::with_entropy(VOCAB, 2.5);
    let cfg = SamplingConfig::default();
    let lab = key(17);
    let emb = embedder(scheme, 2, &lab);
    let det = detector(scheme, 2, &lab);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut marked = Vec::new();
    let mut clean = Vec::new();
    for i in 0..100u32 {
        let prompt = [i % 64, i / 64];
        marked.push(generate(&lm, Some(&emb), &cfg, &mut rng, &prompt, 100));
        clean.push(generate(&lm, None, &cfg, &mut rng, &prompt, 100));
    }
    let marked_student = student_answers(&marked, 100, 1);
    let clean_student = student_answers(&clean, 100, 1);
    // Scored on the students' own text: answers that copy a teacher's
    // answer verbatim are left out (a few do at this size).
    let own = |student: Vec<Vec<u32>>, teacher: &[Vec<u32>]| -> Vec<Vec<u32>> {
        student
            .into_iter()
            .filter(|a| !teacher.contains(a))
            .collect()
    };
    let marked_student = own(marked_student, &marked);
    let clean_student = own(clean_student, &clean);
    assert!(marked_student.len() >= 80 && clean_student.len() >= 80);

    let attributed = corpus_log10_p(&det, &marked_student);
    let control = corpus_log10_p(&det, &clean_student);
    let wrong_key = corpus_log10_p(&detector(scheme, 2, &key(18)), &marked_student);
    eprintln!(
        "marked student {attributed:.1}, clean student {control:.1}, wrong key {wrong_key:.1}"
    );
    assert!(attributed < -6.0, "marked student: log10 p {attributed}");
    assert!(control > -3.0, "clean student flagged: log10 p {control}");
    assert!(wrong_key > -3.0, "wrong key flagged: log10 p {wrong_key}");
}

fn run_student(dir: &Path, out: &str, seed: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_student"))
        .current_dir(dir)
        .args([
            "--train",
            "train.jsonl",
            "--out",
            out,
            "--tokenizer",
            "tokenizer.json",
            "--answers",
            "25",
            "--max-tokens",
            "40",
            "--seed",
            seed,
        ])
        .output()
        .unwrap()
}

#[test]
fn the_student_binary_writes_one_seeded_jsonl_record_per_answer() {
    let dir = std::env::temp_dir().join(format!("provmark-student-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let docs = docs_corpus();
    std::fs::write(dir.join("tokenizer.json"), train_bpe_json(&docs, 1000)).unwrap();
    let train: String = docs
        .split("\n\n")
        .filter(|p| p.len() > 200)
        .take(40)
        .enumerate()
        .map(|(i, p)| format!("{}\n", serde_json::json!({"id": i, "text": p})))
        .collect();
    std::fs::write(dir.join("train.jsonl"), train).unwrap();

    let out = run_student(&dir, "a.jsonl", "3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = std::fs::read_to_string(dir.join("a.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = a
        .lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON"))
        .collect();
    assert_eq!(records.len(), 25);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["id"], format!("student-{i:04}"));
        assert!(r["text"].is_string());
        assert!(r["student_tokens"].as_u64().unwrap() <= 40);
    }
    assert!(records
        .iter()
        .any(|r| !r["text"].as_str().unwrap().is_empty()));

    // Seeded: the same seed gives the same file, another seed another.
    assert!(run_student(&dir, "b.jsonl", "3").status.success());
    assert_eq!(a, std::fs::read_to_string(dir.join("b.jsonl")).unwrap());
    assert!(run_student(&dir, "c.jsonl", "4").status.success());
    assert_ne!(a, std::fs::read_to_string(dir.join("c.jsonl")).unwrap());

    // A record without the text field is an error naming its line.
    std::fs::write(
        dir.join("train.jsonl"),
        "{\"id\": 1, \"text\": \"x\"}\n{\"id\": 2}\n",
    )
    .unwrap();
    let bad = run_student(&dir, "d.jsonl", "3");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("train.jsonl:2"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
