//! Writing secret files (watermark keys, auditors' signing keys): created
//! new with mode 0600 on Unix, never replacing an existing file.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a secret file was not written. Messages name the file, never its contents.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// The path exists already (nothing was written).
    #[error("{} already exists; provmark never overwrites a key (move it away first)", path.display())]
    Exists { path: PathBuf },
    /// The file could not be created.
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The contents could not be written and synced.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `contents` to a new file at `path` (mode 0600 on Unix) and syncs
/// it; an existing file is never replaced.
pub fn write_secret_file(path: &Path, contents: &str) -> Result<(), SecretFileError> {
    if path.exists() {
        return Err(SecretFileError::Exists {
            path: path.to_path_buf(),
        });
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|source| SecretFileError::Create {
            path: path.to_path_buf(),
            source,
        })?;
    file.write_all(contents.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|source| SecretFileError::Write {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_private_and_never_replaced() {
        let dir = std::env::temp_dir().join(format!("provmark-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("k");
        let _ = std::fs::remove_file(&p);
        write_secret_file(&p, "abc\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "abc\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let e = write_secret_file(&p, "other").unwrap_err();
        assert!(matches!(e, SecretFileError::Exists { .. }));
        assert!(e
            .to_string()
            .ends_with("already exists; provmark never overwrites a key (move it away first)"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "abc\n");
        let e = write_secret_file(&dir.join("no/such/dir/k"), "x").unwrap_err();
        assert!(matches!(e, SecretFileError::Create { .. }));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
