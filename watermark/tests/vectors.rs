//! The spec's test vectors (spec/vectors/provmark-wm-1.json, produced by the
//! independent Python reference) reproduced by this crate.

use provmark_testkit::vectors::{ids, keys, profiles, vectors};
use provmark_watermark::{hex, Schedule, TokenValues};

#[test]
fn key_ids_and_commitments() {
    let v = vectors();
    for (key, want) in keys(&v).iter().zip(v["keys"].as_array().unwrap()) {
        assert_eq!(key.id(), want["key_id"].as_str().unwrap());
        assert_eq!(key.commitment(), want["commitment"].as_str().unwrap());
    }
}

#[test]
fn profile_canonical_forms_and_digests() {
    let v = vectors();
    for (p, want) in profiles(&v).iter().zip(v["profiles"].as_array().unwrap()) {
        assert_eq!(p.0.canonical_json(), want["canonical"].as_str().unwrap());
        assert_eq!(p.0.digest(), want["digest"].as_str().unwrap());
    }
}

#[test]
fn seeds_and_keystream_words() {
    let v = vectors();
    let profiles = profiles(&v);
    let cases = v["seeds"].as_array().unwrap();
    assert!(cases.len() >= 15);
    for case in cases {
        let (profile, key) = &profiles[case["profile_index"].as_u64().unwrap() as usize];
        let schedule = Schedule::new(profile, key).unwrap();
        let seed = schedule.seed(&ids(&case["window"]));
        assert_eq!(hex(&seed), case["seed_hex"].as_str().unwrap());
        let mut values = TokenValues::new(&seed);
        for pair in case["words"].as_array().unwrap() {
            let pos = pair[0].as_u64().unwrap();
            assert_eq!(
                values.word(pos) as u64,
                pair[1].as_u64().unwrap(),
                "word {pos}"
            );
        }
    }
}

#[test]
fn per_token_scores() {
    let v = vectors();
    let profiles = profiles(&v);
    for case in v["token_values"].as_array().unwrap() {
        let (profile, key) = &profiles[case["profile_index"].as_u64().unwrap() as usize];
        let schedule = Schedule::new(profile, key).unwrap();
        let window = ids(&case["window"]);
        let mut values = schedule.values(&window);
        let token = case["token"].as_u64().unwrap() as u32;
        let got = schedule.token_score(&mut values, token);
        // Scores are exact (gumbel in fixed point, spec §7 revision 7).
        let want = case["score"].as_f64().unwrap();
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "token {token}: {got} vs {want}"
        );
        // The batched path gives the same score.
        let tuple: Vec<u32> = window.iter().copied().chain([token]).collect();
        let mut batched = Vec::new();
        schedule.score_tuples([tuple.as_slice()], &mut batched);
        assert_eq!(batched, [got], "token {token}, batched");
    }
}

#[test]
fn gumbel_fixed_point_scores() {
    // Random values, the extremes and values within ~2^-36 of a unit boundary
    // (the reference's 60-digit floor), through the public uniform type.
    let v = vectors();
    let cases = v["gumbel_scores"].as_array().unwrap();
    assert!(cases.len() > 40);
    for case in cases {
        let j = case["j"].as_u64().unwrap();
        let u = provmark_watermark::GumbelUniform::from_u64(j << 12);
        assert_eq!(u.score_units(), case["units"].as_u64().unwrap(), "j = {j}");
        assert_eq!(u.score(), case["score"].as_f64().unwrap(), "j = {j}");
    }
}
