//! Auditor signatures on reports: ed25519 (RFC 8032) over the report's
//! digest string, so a signature vouches for everything the digest covers
//! (spec/report.md §2, `signature`).

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use provmark_watermark::hex;
use provmark_watermark::rand_core::{OsRng, TryRngCore};

use crate::report::{Report, Signature};
use crate::Error;

/// Why a report's signature does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not `{algorithm: "ed25519", signed: "digest"}`; holds the signature's JSON.
    #[error("unknown signature form {0}")]
    UnknownForm(String),
    /// A member that is not hex of the right length (`field` is
    /// `signature.public_key` or `signature.value`).
    #[error("{field} must be {chars} hex characters")]
    BadHex { field: &'static str, chars: usize },
    /// Signed by another key than the one required.
    #[error("signed by {signer}, not by --signer {required}")]
    WrongSigner { signer: String, required: String },
    /// The public key is not a valid ed25519 point.
    #[error("bad public key: {0}")]
    BadPublicKey(String),
    /// The signature does not verify over the recorded digest.
    #[error("does not verify: the report or its digest was changed after signing")]
    DoesNotVerify,
}

/// The largest signing-key file read: 64 hex digits with room for
/// surrounding whitespace.
pub const MAX_SIGNING_KEY_FILE_BYTES: u64 = 256;

/// An auditor's ed25519 signing key. Its bytes never reach a message.
pub struct AuditorKey {
    key: SigningKey,
}

impl AuditorKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<AuditorKey, Error> {
        let mut seed = [0u8; 32];
        OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| Error::Random(e.to_string()))?;
        Ok(AuditorKey {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The key file's contents: the 32-byte seed as 64 lowercase hex
    /// characters and a line feed.
    pub fn to_hex_file(&self) -> String {
        format!("{}\n", hex(self.key.as_bytes()))
    }

    /// Writes the key file at `path`: a new file, mode 0600 on Unix, never
    /// replacing an existing one ([`Error::SecretFile`] otherwise).
    pub fn write_new(&self, path: &Path) -> Result<(), Error> {
        Ok(provmark_watermark::write_secret_file(
            path,
            &self.to_hex_file(),
        )?)
    }

    /// Reads a key file (64 hex characters, surrounding whitespace ignored;
    /// at most [`MAX_SIGNING_KEY_FILE_BYTES`] bytes are read).
    ///
    /// Errors: [`Error::ReadSigningKey`]; [`Error::SigningKey`] for a malformed file.
    pub fn load(path: &Path) -> Result<AuditorKey, Error> {
        if let Some(warning) = provmark_watermark::exposure_warning(path) {
            eprintln!("{warning}");
        }
        // Read at most what a key file holds (64 hex digits and a little
        // whitespace): a hostile path such as /dev/zero cannot grow memory.
        use std::io::Read as _;
        let read = |source| Error::ReadSigningKey {
            path: path.to_path_buf(),
            source,
        };
        let mut raw = Vec::new();
        provmark_watermark::open_regular(path)
            .map_err(read)?
            .take(MAX_SIGNING_KEY_FILE_BYTES + 1)
            .read_to_end(&mut raw)
            .map_err(read)?;
        let bad = || Error::SigningKey {
            path: path.to_path_buf(),
        };
        if raw.len() as u64 > MAX_SIGNING_KEY_FILE_BYTES {
            return Err(bad());
        }
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let bytes = from_hex::<32>(&text).ok_or_else(bad)?;
        Ok(AuditorKey {
            key: SigningKey::from_bytes(&bytes),
        })
    }

    /// The public key as 64 lowercase hex characters (what an auditor publishes).
    pub fn public_hex(&self) -> String {
        hex(self.key.verifying_key().as_bytes())
    }

    /// Signs `report`: sets its `signature` over the recorded digest.
    ///
    /// Errors: [`Error::Edited`] when the content does not hash to the
    /// recorded digest (an edited report is never signed).
    pub fn sign(&self, report: &mut Report) -> Result<(), Error> {
        if !report.digest_matches() {
            return Err(Error::Edited { action: "sign" });
        }
        let signature = self.key.sign(report.digest.as_bytes());
        report.signature = Some(Signature {
            algorithm: "ed25519".into(),
            public_key: self.public_hex(),
            signed: "digest".into(),
            value: hex(&signature.to_bytes()),
        });
        Ok(())
    }
}

/// `N` bytes from exactly `2N` hex characters (surrounding whitespace ignored).
fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let t = text.trim();
    if t.len() != 2 * N || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Checks a signature over `digest` (the digest as recorded); with
/// `signer` (hex public key, any case), also that it is that key's.
pub fn check(
    signature: &Signature,
    digest: &str,
    signer: Option<&str>,
) -> Result<(), SignatureError> {
    if signature.algorithm != "ed25519" || signature.signed != "digest" {
        let json = serde_json::to_value(signature).expect("a signature is JSON");
        return Err(SignatureError::UnknownForm(json.to_string()));
    }
    let public = from_hex::<32>(&signature.public_key).ok_or(SignatureError::BadHex {
        field: "signature.public_key",
        chars: 64,
    })?;
    if let Some(s) = signer {
        if !s.trim().eq_ignore_ascii_case(&hex(&public)) {
            return Err(SignatureError::WrongSigner {
                signer: hex(&public),
                required: s.to_string(),
            });
        }
    }
    let value = from_hex::<64>(&signature.value).ok_or(SignatureError::BadHex {
        field: "signature.value",
        chars: 128,
    })?;
    let key = VerifyingKey::from_bytes(&public)
        .map_err(|e| SignatureError::BadPublicKey(e.to_string()))?;
    key.verify(
        digest.as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&value),
    )
    .map_err(|_| SignatureError::DoesNotVerify)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut r = crate::Recorder::new("detect").finish(
            serde_json::json!({"texts": []}),
            serde_json::json!({"alpha": 0.01}),
        );
        r.digest = r.computed_digest();
        r
    }

    #[test]
    fn sign_then_check_and_every_failure_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditorKey::generate().unwrap();
        let path = dir.path().join("auditor.ed25519");
        key.write_new(&path).unwrap();
        assert!(matches!(key.write_new(&path), Err(Error::SecretFile(_))));
        let key = AuditorKey::load(&path).unwrap();
        let mut r = report();
        key.sign(&mut r).unwrap();
        let sig = r.signature.clone().unwrap();
        assert_eq!(sig.public_key, key.public_hex());
        assert_eq!(sig.value.len(), 128);
        check(&sig, &r.digest, None).unwrap();
        check(&sig, &r.digest, Some(&key.public_hex().to_uppercase())).unwrap();
        // Another digest: does not verify.
        assert_eq!(
            check(&sig, "sha256:00", None),
            Err(SignatureError::DoesNotVerify)
        );
        // Another signer required.
        let other = AuditorKey::generate().unwrap();
        assert!(matches!(
            check(&sig, &r.digest, Some(&other.public_hex())),
            Err(SignatureError::WrongSigner { .. })
        ));
        // Malformed members.
        let mut bad = sig.clone();
        bad.value = "zz".into();
        assert_eq!(
            check(&bad, &r.digest, None).unwrap_err().to_string(),
            "signature.value must be 128 hex characters"
        );
        let mut bad = sig.clone();
        bad.algorithm = "rsa".into();
        assert!(check(&bad, &r.digest, None)
            .unwrap_err()
            .to_string()
            .starts_with("unknown signature form {\"algorithm\":\"rsa\""));
        // An edited report is never signed.
        r.results["texts"] = serde_json::json!([1]);
        assert!(matches!(key.sign(&mut r), Err(Error::Edited { .. })));
        // A malformed key file names the file, not its content.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "secretsecret").unwrap();
        let e = AuditorKey::load(&path).err().unwrap().to_string();
        assert!(e.contains("must be 64 hex") && !e.contains("secretsecret"));
    }
}
