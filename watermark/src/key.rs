//! Watermark keys: 32 secret bytes, their public key id and commitment.
//!
//! The key never leaves this type in printable form: `Debug` shows only the
//! key id, and every error about a key file names the file and the problem,
//! never its contents.

use std::fmt;
use std::io::Read;
use std::path::Path;

use rand_core::{OsRng, TryRngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::{Error, SPEC_VERSION};

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;

/// Largest key file [`Key::load`] reads, in bytes: generous room around
/// the 64 hexadecimal characters and a line break.
pub const MAX_KEY_FILE_BYTES: usize = 4 * KEY_LEN;

/// The warning [`Key::load`] prints when the key file at `path` may be read
/// by group or others (Unix permission bits `0o077`), naming the file and
/// its mode; `None` when only the owner may read it, when its mode cannot
/// be read, or off Unix.
pub fn exposure_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            let shown = path.display();
            return Some(format!(
                "warning: UNPROTECTED KEY FILE {shown}: mode {mode:04o} lets group or others read \
                 a secret key (whoever reads a watermark key can forge or strip the mark). \
                 Run: chmod 600 {shown}"
            ));
        }
        None
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

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

    /// Reads a key file (see [`Key::from_hex`]), reading at most
    /// [`MAX_KEY_FILE_BYTES`] + 1 bytes (so `/dev/zero` or a huge file is
    /// refused at once).
    ///
    /// On Unix, a key file that group or others may read is still loaded,
    /// but a warning naming the file and its mode ([`exposure_warning`]) is
    /// written to standard error, as ssh does for private keys.
    ///
    /// Errors: [`Error::Key`] naming the file: it cannot be opened or read,
    /// is longer than [`MAX_KEY_FILE_BYTES`], is not ASCII, or is not 64
    /// hexadecimal characters. The message never holds the file's contents.
    pub fn load(path: &Path) -> Result<Key, Error> {
        let origin = path.display().to_string();
        let io_error = |e: std::io::Error| Error::Key(format!("{origin}: {e}"));
        // A FIFO would block the open itself; devices are read bounded below.
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
                return Err(io_error(crate::not_regular()));
            }
        }
        let file = std::fs::File::open(path).map_err(io_error)?;
        let mut raw = Vec::with_capacity(MAX_KEY_FILE_BYTES + 1);
        file.take(MAX_KEY_FILE_BYTES as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(io_error)?;
        if raw.len() > MAX_KEY_FILE_BYTES {
            raw.zeroize();
            return Err(Error::Key(format!(
                "{origin}: more than {MAX_KEY_FILE_BYTES} bytes is too long for a key file (64 hexadecimal characters expected)"
            )));
        }
        if let Some(warning) = exposure_warning(path) {
            eprintln!("{warning}");
        }
        let text = String::from_utf8(raw).map_err(|e| {
            e.into_bytes().zeroize();
            Error::Key(format!("{origin}: a key file must be ASCII hexadecimal"))
        })?;
        let key = Key::from_hex(&text, &origin);
        text.into_bytes().zeroize();
        key
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

    fn scratch(name: &str, contents: &[u8], mode: u32) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("provmark-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let _ = mode;
        path
    }

    #[test]
    fn load_reads_at_most_a_key_file_and_refuses_more() {
        let key = Key::from_bytes([9u8; 32]);
        let ok = scratch("ok.key", key.to_hex_file().as_bytes(), 0o600);
        assert_eq!(Key::load(&ok).unwrap().bytes, key.bytes);
        let long = scratch("long.key", &[b'0'; MAX_KEY_FILE_BYTES + 1], 0o600);
        let err = Key::load(&long).unwrap_err().to_string();
        assert!(
            err.contains("long.key") && err.contains("more than 128 bytes"),
            "{err}"
        );
        // Exactly the limit is read, and refused as not 64 characters.
        let edge = scratch("edge.key", &[b'0'; MAX_KEY_FILE_BYTES], 0o600);
        let err = Key::load(&edge).unwrap_err().to_string();
        assert!(err.contains("holds 128 characters"), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn load_of_an_endless_file_stops_at_the_limit() {
        let err = Key::load(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(
            err.contains("/dev/zero: more than 128 bytes is too long"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn key_files_others_may_read_are_named_with_their_mode() {
        let key = Key::from_bytes([3u8; 32]);
        let open = scratch("open.key", key.to_hex_file().as_bytes(), 0o644);
        let warning = exposure_warning(&open).expect("0644 is exposed");
        assert!(
            warning.contains("open.key") && warning.contains("mode 0644"),
            "{warning}"
        );
        assert!(!warning.contains(&key.to_hex_file().trim().to_string()));
        let group = scratch("group.key", key.to_hex_file().as_bytes(), 0o640);
        assert!(exposure_warning(&group).unwrap().contains("mode 0640"));
        let private = scratch("private.key", key.to_hex_file().as_bytes(), 0o600);
        assert_eq!(exposure_warning(&private), None);
        // Still loaded: a warning, not a refusal.
        assert_eq!(Key::load(&open).unwrap().bytes, key.bytes);
    }
}
