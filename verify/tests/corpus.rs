//! The corpus-level test: global de-duplication, agreement with per-text
//! scoring, exact sharding and merging, deterministic sums, and a valid
//! null (p-values uniform over random corpora and keys).

use provmark_testkit::fixtures::schemes;
use provmark_verify::corpus::{score_tuples, Shard, TupleSet};
use provmark_verify::Detector;
use provmark_watermark::{Key, KgwParams, Profile, Scheme, TokenizerDigest};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn detector(scheme: Scheme, h: usize, key: u64) -> Detector {
    let mut bytes = [0u8; 32];
    ChaCha8Rng::seed_from_u64(key).fill_bytes(&mut bytes);
    let key = Key::from_bytes(bytes);
    let profile = Profile::new(scheme, h as u32, TokenizerDigest::of_bytes(b"t"), &key).unwrap();
    Detector::new(&profile, &key).unwrap()
}

fn random_text(rng: &mut ChaCha8Rng, len: usize, vocab: u32) -> Vec<u32> {
    (0..len).map(|_| rng.next_u32() % vocab).collect()
}

fn collect(h: usize, shard: Shard, texts: &[Vec<u32>]) -> provmark_verify::corpus::DistinctTuples {
    let mut set = TupleSet::new(h, shard).unwrap();
    for t in texts {
        set.add_text(t);
    }
    set.finish()
}

#[test]
fn one_text_scores_as_per_text_detection_and_repeats_add_nothing() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for scheme in schemes() {
        for h in 1..=3 {
            let d = detector(scheme, h, 7);
            let text = random_text(&mut rng, 600, 50_000);
            let per_text = d.detect(&text);
            let tuples = collect(h, Shard::ALL, std::slice::from_ref(&text));
            let score = score_tuples(&d, &tuples).unwrap();
            assert_eq!(score.scored, per_text.scored as u64);
            assert!(
                (score.statistic - per_text.statistic).abs()
                    < 1e-9 * per_text.statistic.abs().max(1.0)
            );
            // The same text three times: the corpus test scores it once.
            let thrice = collect(h, Shard::ALL, &[text.clone(), text.clone(), text]);
            assert_eq!(score_tuples(&d, &thrice).unwrap().scored, score.scored);
            assert_eq!(thrice.texts, 3);
        }
    }
}

#[test]
fn shards_and_unions_reproduce_the_whole() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    // A small vocabulary so windows repeat across texts.
    let texts: Vec<Vec<u32>> = (0..60).map(|_| random_text(&mut rng, 300, 40)).collect();
    let d = detector(Scheme::Gumbel, 2, 3);
    let whole = score_tuples(&d, &collect(2, Shard::ALL, &texts)).unwrap();
    let mut combined = None;
    for i in 0..4 {
        let part = score_tuples(&d, &collect(2, Shard::new(i, 4).unwrap(), &texts)).unwrap();
        combined = Some(match combined {
            None => part,
            Some(c) => part.combine(c),
        });
    }
    let combined = combined.unwrap();
    assert_eq!(combined.scored, whole.scored);
    assert!((combined.statistic - whole.statistic).abs() < 1e-9 * whole.statistic);
    assert!(whole.scored < 60 * 298, "cross-text repeats were removed");
    // Two workers' halves, merged, equal one pass over everything.
    let mut a = TupleSet::new(2, Shard::ALL).unwrap();
    let mut b = TupleSet::new(2, Shard::ALL).unwrap();
    for (i, t) in texts.iter().enumerate() {
        if i % 2 == 0 {
            a.add_text(t)
        } else {
            b.add_text(t)
        }
    }
    a.union(b).unwrap();
    let merged = a.finish();
    assert_eq!(merged.texts, 60);
    assert_eq!(score_tuples(&d, &merged).unwrap(), whole);
    assert!(TupleSet::new(2, Shard::ALL)
        .unwrap()
        .union(TupleSet::new(1, Shard::ALL).unwrap())
        .is_err());
    assert!(TupleSet::new(4, Shard::ALL).is_err());
    assert!(Shard::new(4, 4).is_none());
}

#[test]
fn sums_do_not_depend_on_the_thread_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let texts: Vec<Vec<u32>> = (0..40)
        .map(|_| random_text(&mut rng, 1000, 49_152))
        .collect();
    let tuples = collect(2, Shard::ALL, &texts);
    let d = detector(Scheme::Gumbel, 2, 5);
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| score_tuples(&d, &tuples).unwrap())
    };
    let one = run(1);
    assert_eq!(one.statistic.to_bits(), run(2).statistic.to_bits());
    assert_eq!(one.statistic.to_bits(), run(3).statistic.to_bits());
}

#[test]
fn pooled_p_values_are_uniform_under_the_null() {
    // 400 random corpora (each 20 texts with repeats inside and across),
    // each under its own random key: the pooled p-values must look U(0,1).
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for scheme in schemes() {
        let mut ps = Vec::new();
        for k in 0..400u64 {
            let texts: Vec<Vec<u32>> = (0..20)
                .map(|_| {
                    let mut t = random_text(&mut rng, 60, 5_000);
                    let copy = t[..30].to_vec();
                    t.extend(copy); // repeated passage inside the text
                    t
                })
                .collect();
            let mut all = texts.clone();
            all.extend_from_slice(&texts[..5]); // repeated texts across the corpus
            let d = detector(scheme, 2, 1000 + k);
            let score = score_tuples(&d, &collect(2, Shard::ALL, &all)).unwrap();
            ps.push(score.test(&d).unwrap().p.value());
        }
        ps.sort_by(f64::total_cmp);
        let n = ps.len() as f64;
        let ks = ps
            .iter()
            .enumerate()
            .map(|(i, &p)| (p - i as f64 / n).abs().max(((i + 1) as f64 / n - p).abs()))
            .fold(0.0, f64::max);
        // KS critical value at α = 0.001 for n = 400: 1.95/√n ≈ 0.0976.
        assert!(ks < 0.0976, "{scheme:?}: KS D = {ks}");
        assert!(ps[0] > 1e-4, "{scheme:?}: smallest p {}", ps[0]);
    }
}

#[test]
fn the_filter_keeps_only_windows_the_lab_marked() {
    use provmark_verify::corpus::WindowSet;
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let teacher: Vec<Vec<u32>> = (0..10).map(|_| random_text(&mut rng, 200, 30)).collect();
    let suspect: Vec<Vec<u32>> = (0..10).map(|_| random_text(&mut rng, 200, 60)).collect();
    let filter = WindowSet::from_texts(2, teacher.iter().map(|t| &t[..])).unwrap();
    let mut tuples = collect(2, Shard::ALL, &suspect);
    let before = tuples.len();
    let dropped = tuples.retain_windows(&filter).unwrap();
    assert_eq!(before - dropped, tuples.len());
    assert!(dropped > 0 && !tuples.is_empty());
    // The same as collecting only positions whose window the teacher has.
    let windows: std::collections::HashSet<&[u32]> =
        teacher.iter().flat_map(|t| t.windows(2)).collect();
    let mut expected = std::collections::HashSet::new();
    for t in &suspect {
        for tuple in t.windows(3) {
            if windows.contains(&tuple[..2]) {
                expected.insert(tuple.to_vec());
            }
        }
    }
    assert_eq!(tuples.len(), expected.len());
    assert!(WindowSet::from_texts(1, teacher.iter().map(|t| &t[..]))
        .map(|f| tuples.retain_windows(&f).is_err())
        .unwrap());
}

#[test]
fn key_swap_null_is_uniform_and_ranks_a_marked_corpus_first() {
    use provmark_verify::corpus::key_swap_null;
    let scheme = Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap());
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let profile_of = |k: u64| {
        let mut bytes = [0u8; 32];
        ChaCha8Rng::seed_from_u64(k).fill_bytes(&mut bytes);
        let key = Key::from_bytes(bytes);
        (
            Profile::new(scheme, 2, TokenizerDigest::of_bytes(b"t"), &key).unwrap(),
            key,
        )
    };
    // Null: unmarked corpora; the empirical p-values spread over (0, 1].
    let mut below_half = 0;
    let runs = 40;
    for r in 0..runs {
        let (profile, key) = profile_of(500 + r);
        let d = Detector::new(&profile, &key).unwrap();
        let texts: Vec<Vec<u32>> = (0..5).map(|_| random_text(&mut rng, 100, 10_000)).collect();
        let tuples = collect(2, Shard::ALL, &texts);
        let observed = score_tuples(&d, &tuples).unwrap();
        let null = key_swap_null(&profile, &tuples, &observed, 49, r, &|_| {}).unwrap();
        assert_eq!(null.statistics.len(), 49);
        assert!(null.p_value >= 1.0 / 50.0);
        below_half += usize::from(null.p_value <= 0.5);
    }
    assert!(
        (10..=30).contains(&below_half),
        "{below_half} of {runs} below 0.5"
    );
    // A corpus of only green tokens under the real key ranks above every
    // random key: p = 1/(M+1).
    let (profile, key) = profile_of(77);
    let d = Detector::new(&profile, &key).unwrap();
    let schedule = d.schedule();
    let mut text = vec![1u32, 2];
    while text.len() < 300 {
        let window = [text[text.len() - 2], text[text.len() - 1]];
        let mut values = schedule.values(&window);
        let green = (0..10_000u32)
            .find(|&t| {
                (values.kgw_value(t) as u32) < KgwParams::new(0.25, 2.0).unwrap().threshold()
                    && !text.contains(&t)
            })
            .unwrap();
        text.push(green);
    }
    let tuples = collect(2, Shard::ALL, &[text]);
    let observed = score_tuples(&d, &tuples).unwrap();
    assert_eq!(observed.statistic as u64, observed.scored);
    let null = key_swap_null(&profile, &tuples, &observed, 99, 1, &|_| {}).unwrap();
    assert_eq!(null.at_least, 0);
    assert!((null.p_value - 0.01).abs() < 1e-12);
    assert!(observed.test(&d).unwrap().p.log10() < -30.0);
}

#[test]
fn running_test_follows_the_corpus_test() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // Small vocabulary: many tuples repeat across texts.
    let texts: Vec<Vec<u32>> = (0..40).map(|_| random_text(&mut rng, 200, 30)).collect();
    for scheme in schemes() {
        let d = detector(scheme, 2, 5);
        let mut running = provmark_verify::corpus::RunningTest::new(&d);
        for (i, t) in texts.iter().enumerate() {
            running.add_text(t);
            if i % 13 == 0 || i + 1 == texts.len() {
                let whole = score_tuples(&d, &collect(2, Shard::ALL, &texts[..=i])).unwrap();
                let now = running.score();
                assert_eq!(now.scored, whole.scored);
                assert!(
                    (now.statistic - whole.statistic).abs() < 1e-9 * whole.statistic.abs().max(1.0)
                );
                assert_eq!(running.test().is_some(), whole.scored > 0);
            }
        }
    }
}
