//! Digests of reports and files: JCS bytes, file SHA-256, and the Merkle
//! root of the inputs (spec/report.md §1, §3).

use std::path::Path;

pub use provmark_watermark::FileDigest;
use provmark_watermark::FileDigestError;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::Error;

/// The SHA-256 and length of a file, read in 1 MiB blocks: the
/// workspace's one file digest (`provmark_watermark::file_sha256`), with
/// its errors as [`Error::Open`] / [`Error::Read`].
pub fn file_sha256(path: &Path) -> Result<FileDigest, Error> {
    provmark_watermark::file_sha256(path).map_err(|e| match e {
        FileDigestError::Open { path, source } => Error::Open { path, source },
        FileDigestError::Read { path, source } => Error::Read { path, source },
    })
}

/// The Merkle root of the inputs' SHA-256 digests, in report order
/// (spec/report.md §3, RFC 6962 shape): leaf = H(0x00 ‖ digest),
/// node = H(0x01 ‖ left ‖ right), an odd node is carried up unchanged; no
/// inputs: H of nothing. Returned as 64 lowercase hex characters.
pub fn merkle_root(leaves: &[[u8; 32]]) -> String {
    if leaves.is_empty() {
        return provmark_watermark::hex(&Sha256::digest([]));
    }
    let mut level: Vec<[u8; 32]> = leaves
        .iter()
        .map(|d| {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(d);
            h.finalize().into()
        })
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => {
                    let mut h = Sha256::new();
                    h.update([1u8]);
                    h.update(l);
                    h.update(r);
                    h.finalize().into()
                }
                [one] => *one,
                _ => unreachable!("chunks of two"),
            })
            .collect();
    }
    provmark_watermark::hex(&level[0])
}

/// The RFC 8785 (JCS) text of a serialisable value: members sorted by UTF-16
/// code units, no whitespace, ECMAScript number form.
pub fn jcs<T: Serialize + ?Sized>(v: &T) -> String {
    // Reports hold only JSON values, strings and numbers that are finite
    // by construction: serialisation cannot fail.
    serde_jcs::to_string(v).expect("report values serialise")
}

/// `"sha256:"` and the hex SHA-256 of `text`'s bytes.
pub(crate) fn sha256_tagged(text: &str) -> String {
    format!(
        "sha256:{}",
        provmark_watermark::hex(&Sha256::digest(text.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(x: [u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(x);
        h.finalize().into()
    }

    fn node(l: [u8; 32], r: [u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(l);
        h.update(r);
        h.finalize().into()
    }

    #[test]
    fn merkle_root_follows_rfc6962_shape() {
        let d = |b: u8| [b; 32];
        let hex = |x: [u8; 32]| provmark_watermark::hex(&x);
        assert_eq!(
            merkle_root(&[]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(merkle_root(&[d(1)]), hex(leaf(d(1))));
        assert_eq!(
            merkle_root(&[d(1), d(2)]),
            hex(node(leaf(d(1)), leaf(d(2))))
        );
        let three = node(node(leaf(d(1)), leaf(d(2))), leaf(d(3)));
        assert_eq!(merkle_root(&[d(1), d(2), d(3)]), hex(three));
        let five = node(
            node(node(leaf(d(1)), leaf(d(2))), node(leaf(d(3)), leaf(d(4)))),
            leaf(d(5)),
        );
        assert_eq!(merkle_root(&[d(1), d(2), d(3), d(4), d(5)]), hex(five));
        assert_ne!(merkle_root(&[d(2), d(1)]), merkle_root(&[d(1), d(2)]));
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = file_sha256(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, Error::Open { .. }) && err.to_string().contains("missing"));
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(file_sha256(&p).unwrap().bytes, 3);
    }

    #[test]
    fn jcs_sorts_members_and_writes_numbers_in_ecmascript_form() {
        let v = serde_json::json!({"b": 1.0, "a": [1e21, 0.1, -0.0], "é": "\u{1}"});
        assert_eq!(jcs(&v), r#"{"a":[1e+21,0.1,0],"b":1,"é":"\u0001"}"#);
    }
}
