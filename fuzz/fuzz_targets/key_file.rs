//! Key file parsing never panics and never echoes its input in errors.
#![no_main]
use libfuzzer_sys::fuzz_target;
use provmark_watermark::Key;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = Key::from_hex(text, "fuzz") {
            let msg = e.to_string();
            if text.len() >= 8 && text.chars().all(|c| c.is_ascii_hexdigit()) {
                assert!(!msg.contains(text), "error echoes the key material");
            }
        }
    }
});
