//! Shim for `audit api` until it calls [`provmark_llm::jsonl`] itself.

use std::fs::File;
use std::path::Path;

use anyhow::Result;

/// Opens a JSONL file for appending after cutting off an incomplete last
/// line, telling stderr so; returns the file and its complete lines.
pub fn open_for_append(path: &Path) -> Result<(File, Vec<String>)> {
    let r = provmark_llm::jsonl::open_for_append(path)?;
    if r.dropped_bytes > 0 {
        eprintln!("{}", dropped_message(path, r.dropped_bytes));
    }
    Ok((r.file, r.lines))
}

/// The stderr line for a cut-off incomplete last line.
pub fn dropped_message(path: &Path, bytes: u64) -> String {
    format!(
        "provmark: {}: dropping an incomplete last line ({bytes} bytes) from an interrupted run",
        path.display()
    )
}
