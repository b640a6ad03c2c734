//! A quick, deterministic cousin of the cargo-fuzz targets in `fuzz/`:
//! random and mutated inputs never panic the profile, key or JSONL parsers.

use provmark_verify::input::{parse_jsonl_line, InputFormat, ReadOptions, RecordReader};
use provmark_watermark::{Key, Profile};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VALID_PROFILE: &str = r#"{"context":2,"key_id":"bbf3a0713b6b9fbf","params":{"delta":2,"gamma":0.25},"scheme":"kgw","spec":"provmark-wm/1","tokenizer":"sha256:7cb351ea1d5cb827618642caee57d645afe9e643013efddf8afb0a9d920bf25a"}"#;

fn mutate(rng: &mut ChaCha8Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.next_u32() % 4 {
        let pos = rng.next_u32() as usize % (v.len() + 1);
        match rng.next_u32() % 4 {
            0 if pos < v.len() => v[pos] = rng.next_u32() as u8,
            1 if pos < v.len() => {
                v.remove(pos);
            }
            2 => v.insert(pos, b"{}[]\":,0123456789.e-"[rng.next_u32() as usize % 20]),
            _ => v.truncate(pos),
        }
    }
    v
}

#[test]
fn parsers_survive_random_and_mutated_input() {
    assert!(Profile::from_json_str(VALID_PROFILE, "t").is_ok());
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let jsonl = br#"{"id": 3, "text": "caf\u00e9 \ud83d\ude00", "other": [1, 2, {"a": null}]}"#;
    let mut accepted = 0;
    for i in 0..30_000 {
        let data = match i % 3 {
            0 => mutate(&mut rng, VALID_PROFILE.as_bytes()),
            1 => mutate(&mut rng, jsonl),
            _ => (0..rng.next_u32() % 64)
                .map(|_| rng.next_u32() as u8)
                .collect(),
        };
        if let Ok(text) = std::str::from_utf8(&data) {
            if let Ok(p) = Profile::from_json_str(text, "t") {
                accepted += 1;
                let again = Profile::from_json_str(&p.canonical_json(), "t").unwrap();
                assert_eq!(again.digest(), p.digest());
            }
            let _ = Key::from_hex(text, "t");
        }
        let _ = parse_jsonl_line(&data, "t:1", "text");
        let options = ReadOptions {
            max_record_bytes: 40,
            ..ReadOptions::default()
        };
        let reader = Box::new(std::io::Cursor::new(data.clone()));
        for record in RecordReader::from_reader("t", InputFormat::Jsonl, reader, options) {
            record.unwrap();
        }
    }
    assert!(accepted > 0, "some mutations stay valid profiles");
}
