//! The corpus audit as a library call: agreement with per-text detection,
//! shards that add up to the whole, the filter Φ, unreadable records
//! reported through the callback.

use std::path::Path;
use std::sync::Mutex;

use provmark_audit::corpus::{self, CorpusAuditConfig};
use provmark_audit::{Event, Lab, NullKeys, Silent};
use provmark_testkit::corpus::{docs_corpus, train_bpe_json};
use provmark_verify::attribution::{decide, merge, AttributionVerdict};
use provmark_verify::corpus::{RunningTest, Shard};
use provmark_verify::{Detector, TextTokenizer};
use provmark_watermark::{Key, Profile, Scheme};
use serde_json::json;

const NULL: NullKeys = NullKeys { keys: 19, seed: 5 };

fn tokenizer() -> TextTokenizer {
    TextTokenizer::from_bytes(train_bpe_json(&docs_corpus(), 2048).as_bytes(), "test").unwrap()
}

fn lab(tokenizer: &TextTokenizer) -> Lab {
    let key = Key::from_bytes([7; 32]);
    let profile = Profile::new(Scheme::Gumbel, 2, tokenizer.digest().clone(), &key).unwrap();
    let detector = Detector::new(&profile, &key).unwrap();
    Lab { profile, detector }
}

/// Paragraphs of the docs corpus, as texts.
fn texts() -> Vec<String> {
    docs_corpus()
        .split("\n\n")
        .map(str::trim)
        .filter(|t| t.len() > 40)
        .take(120)
        .map(str::to_string)
        .collect()
}

fn write_jsonl(path: &Path, texts: &[String]) -> String {
    let body: String = texts
        .iter()
        .map(|t| format!("{}\n", json!({ "text": t })))
        .collect();
    std::fs::write(path, body).unwrap();
    path.display().to_string()
}

fn config(tokenizer: TextTokenizer, inputs: Vec<String>) -> CorpusAuditConfig {
    CorpusAuditConfig {
        inputs,
        reference: vec![],
        filter_from: vec![],
        field: "text".into(),
        tokenizer,
        normalization: Default::default(),
        shard: Shard::ALL,
        null: NULL,
        locations: Default::default(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn agrees_with_per_text_detection() {
    let tok = tokenizer();
    let lab = lab(&tok);
    let dir = tempfile::tempdir().unwrap();
    let texts = texts();
    let one = write_jsonl(&dir.path().join("one.jsonl"), &texts[..1]);
    let all = write_jsonl(&dir.path().join("all.jsonl"), &texts);

    // One text: the corpus test is the text's own detection.
    let t = corpus::run(&lab, &config(tokenizer(), vec![one]), &Silent).unwrap();
    let ids = tok.encode(&texts[0]).unwrap();
    let d = lab.detector.detect(&ids);
    assert_eq!(t.suspect.scored, d.scored as u64);
    assert!(close(t.suspect.statistic, d.statistic));
    assert_eq!(t.suspect.texts, 1);

    // Many texts: the distinct tuples across the corpus, as a running test.
    let done = Mutex::new(0usize);
    let progress = |e: Event<'_>| {
        if let Event::NullKeyDone { done: n, .. } = e {
            *done.lock().unwrap() = n;
        }
    };
    let t = corpus::run(&lab, &config(tokenizer(), vec![all]), &progress).unwrap();
    let mut running = RunningTest::new(&lab.detector);
    for text in &texts {
        running.add_text(&tok.encode(text).unwrap());
    }
    assert_eq!(t.suspect.scored, running.score().scored);
    assert!(close(t.suspect.statistic, running.score().statistic));
    assert_eq!(t.suspect.texts, texts.len());
    assert_eq!(t.suspect.null_statistics.len(), NULL.keys);
    assert_eq!(*done.lock().unwrap(), NULL.keys);
    assert!(t.reference.is_none());
    // Human text under a fixed key: never too short, and (at this level)
    // the key-swap null is no stronger than 1/20.
    let d = decide(lab.profile.scheme(), &t.suspect, None, 0.05);
    assert_ne!(d.verdict, AttributionVerdict::TooShort);
    assert!(d.suspect.swap.p_value >= 1.0 / 20.0);
}

#[test]
fn shards_add_up_to_the_whole() {
    let tok = tokenizer();
    let lab = lab(&tok);
    let dir = tempfile::tempdir().unwrap();
    let input = write_jsonl(&dir.path().join("c.jsonl"), &texts());
    let whole = corpus::run(&lab, &config(tokenizer(), vec![input.clone()]), &Silent)
        .unwrap()
        .suspect;
    for n in 1..=4u32 {
        let parts: Vec<_> = (0..n)
            .map(|i| {
                let mut c = config(tokenizer(), vec![input.clone()]);
                c.shard = Shard::new(i, n).unwrap();
                let mut t = corpus::run(&lab, &c, &Silent).unwrap().suspect;
                // What binds the shards to one audit (the CLI records the
                // key commitment, settings and files; any equal binding here).
                t.binding = Some(provmark_verify::attribution::Binding {
                    key_commitment: "c".into(),
                    parameters: Default::default(),
                    inputs: Vec::new(),
                });
                (format!("part{i}"), t)
            })
            .collect();
        let m = merge(&parts, &lab.profile.digest(), "profile").unwrap();
        assert_eq!(m.scored, whole.scored, "{n} shards");
        assert_eq!(m.distinct_tuples, whole.distinct_tuples);
        assert_eq!(m.positions, whole.positions);
        assert!(close(m.statistic, whole.statistic));
        for (a, b) in m.null_statistics.iter().zip(&whole.null_statistics) {
            assert!(close(*a, *b));
        }
    }
}

#[test]
fn the_filter_keeps_only_the_labs_windows() {
    let tok = tokenizer();
    let lab = lab(&tok);
    let dir = tempfile::tempdir().unwrap();
    let texts = texts();
    let suspect = write_jsonl(&dir.path().join("s.jsonl"), &texts);
    let same = write_jsonl(&dir.path().join("same.jsonl"), &texts);
    let half = write_jsonl(&dir.path().join("half.jsonl"), &texts[..20]);
    let mut c = config(tokenizer(), vec![suspect.clone()]);
    c.filter_from = vec![same];
    let t = corpus::run(&lab, &c, &Silent).unwrap().suspect;
    assert_eq!(t.filtered_out, 0);
    assert!(t.filter_windows.unwrap() > 0);
    let mut c = config(tokenizer(), vec![suspect]);
    c.filter_from = vec![half];
    let t = corpus::run(&lab, &c, &Silent).unwrap().suspect;
    assert!(t.filtered_out > 0);
    assert_eq!(t.scored + t.filtered_out, t.distinct_tuples);
}

#[test]
fn unreadable_records_are_reported_and_counted() {
    let tok = tokenizer();
    let lab = lab(&tok);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    std::fs::write(
        &path,
        format!(
            "{}\nnot json\n{}\n",
            json!({"text": texts()[0]}),
            json!({"text": texts()[1]})
        ),
    )
    .unwrap();
    let messages = Mutex::new(Vec::new());
    let progress = |e: Event<'_>| {
        if let Event::RecordError { message } = e {
            messages.lock().unwrap().push(message.to_string());
        }
    };
    let mut c = config(tokenizer(), vec![path.display().to_string()]);
    c.reference = vec![path.display().to_string()];
    let t = corpus::run(&lab, &c, &progress).unwrap();
    assert_eq!((t.suspect.texts, t.suspect.unreadable), (2, 1));
    assert_eq!(t.unreadable(), 2, "suspect and reference");
    let messages = messages.into_inner().unwrap();
    assert_eq!(messages.len(), 2);
    assert!(messages[0].contains("mixed.jsonl:2"), "{messages:?}");

    // A filter with unreadable texts is refused; a missing file names itself.
    let mut c = config(tokenizer(), vec![path.display().to_string()]);
    c.filter_from = vec![path.display().to_string()];
    let e = corpus::run(&lab, &c, &Silent).unwrap_err();
    assert!(matches!(
        e,
        provmark_audit::Error::FilterIncomplete { errors: 1 }
    ));
    let c = config(tokenizer(), vec!["no-such-file.jsonl".into()]);
    let e = corpus::run(&lab, &c, &Silent).unwrap_err();
    assert_eq!(e.to_string(), "cannot open no-such-file.jsonl");
}

/// `--normalize invisible` (spec §5.1) reads a corpus whose spaces became
/// no-break spaces, with zero-width spaces between words, as the corpus
/// itself, through the suspect, the reference and the filter Φ alike;
/// without it the edited corpus is another corpus.
#[test]
fn normalisation_reads_an_invisibly_edited_corpus_as_the_original() {
    use provmark_verify::Normalization;
    let tok = tokenizer();
    let lab = lab(&tok);
    let dir = tempfile::tempdir().unwrap();
    let texts = texts();
    let edited: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| t.replace(' ', if i % 2 == 0 { "\u{a0}" } else { " \u{200b}" }))
        .collect();
    let original = write_jsonl(&dir.path().join("original.jsonl"), &texts);
    let edited = write_jsonl(&dir.path().join("edited.jsonl"), &edited);
    let filter = write_jsonl(&dir.path().join("filter.jsonl"), &texts[..60]);
    let run = |inputs: &str, normalization| {
        let mut c = config(tokenizer(), vec![inputs.to_string()]);
        c.reference = vec![inputs.to_string()];
        c.filter_from = vec![filter.clone()];
        c.normalization = normalization;
        corpus::run(&lab, &c, &Silent).unwrap()
    };
    let want = run(&original, Normalization::None);
    let got = run(&edited, Normalization::Invisible);
    let plain = run(&edited, Normalization::None);
    for (w, g) in [
        (&want.suspect, &got.suspect),
        (
            want.reference.as_ref().unwrap(),
            got.reference.as_ref().unwrap(),
        ),
    ] {
        assert_eq!(
            (
                g.texts,
                g.positions,
                g.distinct_tuples,
                g.filtered_out,
                g.scored
            ),
            (
                w.texts,
                w.positions,
                w.distinct_tuples,
                w.filtered_out,
                w.scored
            )
        );
        assert_eq!(g.statistic, w.statistic);
        assert_eq!(g.null_statistics, w.null_statistics);
    }
    assert_ne!(plain.suspect.statistic, want.suspect.statistic);
    assert!(
        plain.suspect.scored < want.suspect.scored / 2,
        "the filter drops the edited tuples"
    );
}
