//! The stderr line for a resumable JSONL file ([`provmark_llm::jsonl`]) cut
//! back to its last complete line.

use std::path::Path;

/// The stderr line for a cut-off incomplete last line.
pub fn dropped_message(path: &Path, bytes: u64) -> String {
    format!(
        "provmark: {}: dropping an incomplete last line ({bytes} bytes) from an interrupted run",
        path.display()
    )
}
