//! Append-only JSON Lines files that survive being killed mid-write: the
//! writers flush one whole line at a time, and a reader cuts off an
//! incomplete last line before appending again.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};

/// Opens a JSONL file for appending after cutting off an incomplete last
/// line (an interrupted write); returns the file and its complete lines.
pub fn open_for_append(path: &Path) -> Result<(File, Vec<String>)> {
    let name = path.display().to_string();
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("cannot open {name}"))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {name}"))?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if complete < bytes.len() {
        eprintln!(
            "provmark: {name}: dropping an incomplete last line ({} bytes) from an interrupted run",
            bytes.len() - complete
        );
        file.set_len(complete as u64)
            .with_context(|| format!("cannot truncate {name}"))?;
    }
    let lines = BufReader::new(&bytes[..complete])
        .lines()
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("cannot read {name}"))?;
    Ok((file, lines))
}
