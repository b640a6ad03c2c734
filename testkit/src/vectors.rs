//! The spec's test vectors (`spec/vectors/provmark-wm-1.json`, produced by
//! the independent Python reference).

use provmark_verify::Detector;
use provmark_watermark::{Key, Profile};
use serde_json::Value;

/// Path of the vectors file.
pub const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../spec/vectors/provmark-wm-1.json"
);

/// The parsed vectors file.
pub fn vectors() -> Value {
    serde_json::from_str(&std::fs::read_to_string(PATH).expect("spec vectors are present"))
        .expect("spec vectors are JSON")
}

fn key(k: &Value) -> Key {
    Key::from_hex(k["key_hex"].as_str().unwrap(), "vector").unwrap()
}

/// The vectors' keys, in order (`keys[].key_hex`).
pub fn keys(v: &Value) -> Vec<Key> {
    v["keys"].as_array().unwrap().iter().map(key).collect()
}

/// Each vector profile with its own key (`profiles[].profile` and
/// `profiles[].key_index`); the key is read afresh for each profile.
pub fn profiles(v: &Value) -> Vec<(Profile, Key)> {
    v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let k = &v["keys"][p["key_index"].as_u64().unwrap() as usize];
            (Profile::from_json(&p["profile"]).unwrap(), key(k))
        })
        .collect()
}

/// The detector of vector profile `p` (a `profiles` entry) under its key
/// among `keys`.
pub fn detector(p: &Value, keys: &[Key]) -> Detector {
    let profile = Profile::from_json(&p["profile"]).unwrap();
    Detector::new(&profile, &keys[p["key_index"].as_u64().unwrap() as usize]).unwrap()
}

/// A JSON array of token ids.
pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}
