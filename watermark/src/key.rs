//! Watermark keys: 32 secret bytes, their public key id and commitment.
//!
//! The key never leaves this type in printable form: `Debug` shows only the
//! key id, and every error about a key file names the file and the problem,
//! never its contents.

use std::fmt;
use std::path::Path;

use rand_core::{OsRng, TryRngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::{Error, SPEC_VERSION};

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;

/// A secret watermark key. Wiped from memory when dropped. Not `Clone`, so
/// the secret exists once: share it with `Arc<Key>` where several owners
/// need it.
pub struct Key {
    bytes: [u8; KEY_LEN],
}

impl Key {
    /// A fresh key from the operating system's cryptographic RNG.
    pub fn generate() -> Result<Key, Error> {
        let mut bytes = [0u8; KEY_LEN];
        OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| Error::Key(format!("the operating system RNG failed: {e}")))?;
        Ok(Key { bytes })
    }

    /// A key from raw bytes (tests, vectors, key derivation by the caller).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key { bytes }
    }

    /// Parses the key file format: exactly 64 hexadecimal characters, with an
    /// optional final line break. `origin` names the source in errors.
    pub fn from_hex(text: &str, origin: &str) -> Result<Key, Error> {
        let trimmed = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        let chars = trimmed.chars().count();
        if chars != 2 * KEY_LEN {
            return Err(Error::Key(format!(
                "{origin}: a key file holds exactly 64 hexadecimal characters, this one holds {chars} characters"
            )));
        }
        if let Some(pos) = trimmed.bytes().position(|b| !b.is_ascii_hexdigit()) {
            return Err(Error::Key(format!(
                "{origin}: character {} is not a hexadecimal digit",
                pos + 1
            )));
        }
        let mut bytes = [0u8; KEY_LEN];
        for (i, pair) in trimmed.as_bytes().chunks(2).enumerate() {
            bytes[i] = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
        }
        Ok(Key { bytes })
    }

    /// Reads a key file (see [`Key::from_hex`]).
    pub fn load(path: &Path) -> Result<Key, Error> {
        let origin = path.display().to_string();
        let raw = std::fs::read(path).map_err(|e| Error::Key(format!("{origin}: {e}")))?;
        if raw.len() > 4 * KEY_LEN {
            return Err(Error::Key(format!(
                "{origin}: {} bytes is too long for a key file (64 hexadecimal characters expected)",
                raw.len()
            )));
        }
        let text = String::from_utf8(raw)
            .map_err(|_| Error::Key(format!("{origin}: a key file must be ASCII hexadecimal")))?;
        Key::from_hex(&text, &origin)
    }

    /// The key file contents: 64 lowercase hex characters and a line break.
    pub fn to_hex_file(&self) -> String {
        let mut s = hex(&self.bytes);
        s.push('\n');
        s
    }

    /// Raw key bytes, for the keyed PRF only.
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// Public identifier: the first 8 bytes of
    /// SHA-256("provmark-wm/1/key-id" ‖ 0x00 ‖ key), as 16 lowercase hex characters.
    pub fn id(&self) -> String {
        hex(&self.tagged_digest("key-id")[..8])
    }

    /// Public commitment a lab publishes in advance:
    /// SHA-256("provmark-wm/1/key-commitment" ‖ 0x00 ‖ key), 64 lowercase hex characters.
    pub fn commitment(&self) -> String {
        hex(&self.tagged_digest("key-commitment"))
    }

    fn tagged_digest(&self, purpose: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(SPEC_VERSION.as_bytes());
        h.update(b"/");
        h.update(purpose.as_bytes());
        h.update([0u8]);
        h.update(self.bytes);
        h.finalize().into()
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(id={})", self.id())
    }
}

fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// Lowercase hexadecimal encoding.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let key = Key::from_bytes([7u8; 32]);
        let back = Key::from_hex(&key.to_hex_file(), "t").unwrap();
        assert_eq!(back.bytes, key.bytes);
        let upper = key.to_hex_file().to_uppercase();
        assert_eq!(Key::from_hex(&upper, "t").unwrap().bytes, key.bytes);
        let err = Key::from_hex("abcd", "lab.key").unwrap_err().to_string();
        assert!(
            err.contains("lab.key") && err.contains("4 characters"),
            "{err}"
        );
        let mut bad = "0".repeat(63);
        bad.push('g');
        let err = Key::from_hex(&bad, "lab.key").unwrap_err().to_string();
        assert!(err.contains("character 64"), "{err}");
        assert!(!err.contains(&bad));
    }

    #[test]
    fn debug_never_shows_key() {
        let key = Key::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("abab"), "{shown}");
        assert!(shown.contains(&key.id()));
    }

    #[test]
    fn generated_keys_differ() {
        let a = Key::generate().unwrap();
        let b = Key::generate().unwrap();
        assert_ne!(a.bytes, b.bytes);
        assert_ne!(a.id(), b.id());
    }
}
