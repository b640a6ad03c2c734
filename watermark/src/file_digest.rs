//! The SHA-256 of a file, streamed: the one file digest of the workspace
//! (evidence reports' `inputs[].sha256`, model checksums, prompt files).

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The SHA-256 of a file's bytes and their number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
    /// Length in bytes.
    pub bytes: u64,
}

impl FileDigest {
    /// The SHA-256 as 64 lowercase hex characters.
    pub fn hex(&self) -> String {
        crate::hex(&self.sha256)
    }
}

/// Why a file could not be digested. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum FileDigestError {
    /// The file cannot be opened.
    #[error("cannot open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file cannot be read to its end.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The error for a path that is not a regular file.
pub fn not_regular() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "not a regular file (a device, pipe or directory has no fixed bytes to read)",
    )
}

/// Opens `path` for reading only if it is a regular file, checked before
/// opening: a FIFO would block the open itself, and a device such as
/// /dev/zero never ends.
///
/// Errors: the file's metadata or open error, or [`not_regular`].
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    std::fs::File::open(path)
}

/// The SHA-256 and length of a regular file, read in 1 MiB blocks (memory
/// stays bounded whatever the file's size); anything else is refused as a
/// [`FileDigestError::Read`] ([`not_regular`]).
pub fn file_sha256(path: &Path) -> Result<FileDigest, FileDigestError> {
    // A device, pipe or directory has no fixed bytes to bind (and /dev/zero
    // never ends): refused before reading.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(FileDigestError::Read {
            path: path.to_path_buf(),
            source: not_regular(),
        });
    }
    let mut f = std::fs::File::open(path).map_err(|source| FileDigestError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|source| FileDigestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok(FileDigest {
        sha256: h.finalize().into(),
        bytes: len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_counts_and_names_the_file() {
        let dir = std::env::temp_dir().join(format!("provmark-digest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        std::fs::write(&p, b"abc").unwrap();
        let d = file_sha256(&p).unwrap();
        assert_eq!(d.bytes, 3);
        assert_eq!(
            d.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let big = vec![7u8; (1 << 20) + 5];
        std::fs::write(&p, &big).unwrap();
        let d = file_sha256(&p).unwrap();
        assert_eq!(d.bytes, big.len() as u64);
        assert_eq!(d.sha256, <[u8; 32]>::from(Sha256::digest(&big)));
        let e = file_sha256(&dir.join("missing")).unwrap_err();
        assert!(matches!(e, FileDigestError::Open { .. }));
        assert!(e.to_string().starts_with("cannot open ") && e.to_string().ends_with("missing"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
