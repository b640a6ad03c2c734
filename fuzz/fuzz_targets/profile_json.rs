//! Profile parsing never panics, and whatever it accepts round-trips
//! through its canonical form to the same digest.
#![no_main]
use libfuzzer_sys::fuzz_target;
use provmark_watermark::Profile;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = Profile::from_json_str(text, "fuzz") {
            let again = Profile::from_json_str(&p.canonical_json(), "fuzz").expect("canonical form parses");
            assert_eq!(again.digest(), p.digest());
        }
    }
});
