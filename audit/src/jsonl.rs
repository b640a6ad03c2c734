//! Append-only JSON Lines files that survive being killed mid-write: the
//! writers flush one whole line at a time, and a reader cuts off an
//! incomplete last line before appending again.
//!
// MERGE: use provmark_llm::jsonl::open_for_append (H-serve moves cli/src/jsonl.rs there;
// this private copy goes away at the merge).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::Error;

/// Opens a JSONL file for appending after cutting off an incomplete last
/// line (an interrupted write); returns the file, its complete lines and
/// the number of bytes cut off (0 when the file ended cleanly).
pub(crate) fn open_for_append(path: &Path) -> Result<(File, Vec<String>, u64), Error> {
    let name = || path.display().to_string();
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|source| Error::Open {
            name: name(),
            source,
        })?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|source| Error::Read {
        name: name(),
        source,
    })?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let dropped = (bytes.len() - complete) as u64;
    if dropped > 0 {
        file.set_len(complete as u64)
            .map_err(|source| Error::Truncate {
                name: name(),
                source,
            })?;
    }
    let lines = BufReader::new(&bytes[..complete])
        .lines()
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|source| Error::Read {
            name: name(),
            source,
        })?;
    Ok((file, lines, dropped))
}
