//! Append-only JSON Lines files that survive being killed mid-write: writers
//! append one whole line per `write`, and [`open_for_append`] cuts off an
//! incomplete last line (an interrupted write) before appending again.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Errors of [`open_for_append`]; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// The file cannot be opened (or created).
    #[error("cannot open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file cannot be read, or a line is not UTF-8.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The path is not a regular file (a directory, a device such as
    /// `/dev/zero`, a pipe): it cannot be resumed or cut.
    #[error("{} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The incomplete last line cannot be cut off.
    #[error("cannot truncate {}", path.display())]
    Truncate {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A JSONL file opened for appending after an earlier run.
#[derive(Debug)]
pub struct Resumed {
    /// The file, opened for reading and appending (created when missing).
    pub file: File,
    /// Its complete lines, without their newlines, in order (empty lines
    /// included, so `lines[i]` is line `i + 1` of the file).
    pub lines: Vec<String>,
    /// Bytes of an incomplete last line that were cut off (0 when the file
    /// ended with a newline or was empty).
    pub dropped_bytes: u64,
}

/// How a caller tells a person that an interrupted run's incomplete last
/// line (`bytes` long) was cut from `path` (see [`Resumed::dropped_bytes`]).
pub fn dropped_line(path: &Path, bytes: u64) -> String {
    format!(
        "{}: dropping an incomplete last line ({bytes} bytes) from an interrupted run",
        path.display()
    )
}

/// Opens (creating it when missing) the JSONL file at `path` for
/// appending, after cutting off an incomplete last line — the bytes after
/// the last `\n`, left by an interrupted write. Returns the file, its
/// complete lines and how many bytes were dropped; the caller decides
/// whether to tell anyone.
///
/// Errors: the file cannot be opened, is not a regular file (e.g.
/// `/dev/zero`, which would be read for ever), cannot be read or cut; each
/// names the file.
pub fn open_for_append(path: &Path) -> Result<Resumed, JsonlError> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|source| JsonlError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    let read = |source| JsonlError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Only a regular file has an end to read to (and a length to cut).
    if !file.metadata().map_err(read)?.is_file() {
        return Err(JsonlError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(read)?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let dropped_bytes = (bytes.len() - complete) as u64;
    if dropped_bytes > 0 {
        file.set_len(complete as u64)
            .map_err(|source| JsonlError::Truncate {
                path: path.to_path_buf(),
                source,
            })?;
    }
    let lines = BufReader::new(&bytes[..complete])
        .lines()
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(read)?;
    Ok(Resumed {
        file,
        lines,
        dropped_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("provmark-jsonl-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("f.jsonl")
    }

    #[test]
    fn cuts_an_incomplete_last_line_and_appends_after_it() {
        let path = scratch("cut");
        std::fs::write(&path, "{\"a\": 1}\n\n{\"b\": 2}\n{\"c\": ").unwrap();
        let mut r = open_for_append(&path).unwrap();
        assert_eq!(r.lines, ["{\"a\": 1}", "", "{\"b\": 2}"]);
        assert_eq!(r.dropped_bytes, 6);
        r.file.write_all(b"{\"c\": 3}\n").unwrap();
        drop(r);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\": 1}\n\n{\"b\": 2}\n{\"c\": 3}\n"
        );
        let again = open_for_append(&path).unwrap();
        assert_eq!(again.lines.len(), 4);
        assert_eq!(again.dropped_bytes, 0);
    }

    #[test]
    fn creates_a_missing_file_and_a_lone_partial_line_is_all_dropped() {
        let path = scratch("new");
        let _ = std::fs::remove_file(&path);
        let r = open_for_append(&path).unwrap();
        assert!(r.lines.is_empty());
        assert_eq!(r.dropped_bytes, 0);
        assert!(path.exists());
        std::fs::write(&path, "{\"half").unwrap();
        let r = open_for_append(&path).unwrap();
        assert!(r.lines.is_empty());
        assert_eq!(r.dropped_bytes, 6);
        assert_eq!(std::fs::read(&path).unwrap().len(), 0);
    }

    #[test]
    fn errors_name_the_file() {
        let path = scratch("dir");
        let dir = path.parent().unwrap().join("a-directory");
        std::fs::create_dir_all(&dir).unwrap();
        let e = open_for_append(&dir).unwrap_err();
        assert!(e.to_string().contains("a-directory"), "{e}");
        #[cfg(target_os = "linux")]
        {
            let e = open_for_append(Path::new("/dev/zero")).unwrap_err();
            assert!(matches!(e, JsonlError::NotAFile { .. }), "{e}");
            assert_eq!(e.to_string(), "/dev/zero is not a regular file");
        }
    }
}
