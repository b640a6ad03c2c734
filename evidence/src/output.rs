//! What a command may write over: an output path that already exists is
//! replaced only when it holds the same kind of output (a rerun replacing
//! its own result), never an input, a key or anything else given there by
//! mistake. One policy for reports, partials, pages and PDFs.

use std::io::Read as _;
use std::path::Path;

use provmark_verify::attribution::Totals;

use crate::report::{parse, read_text_at_most, MAX_PARTIAL_BYTES};
use crate::Error;

/// The kinds of file provmark writes and may therefore replace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// An evidence report (parses as one).
    Report,
    /// A shard's partial result (parses as one).
    Partial,
    /// A page `report render` wrote.
    Page,
    /// A PDF.
    Pdf,
}

impl OutputKind {
    /// How the kind is named in messages.
    pub fn name(self) -> &'static str {
        match self {
            OutputKind::Report => "a provmark report",
            OutputKind::Partial => "a partial result",
            OutputKind::Page => "a page provmark rendered",
            OutputKind::Pdf => "a PDF",
        }
    }

    /// Whether the regular file at `path` holds this kind of output.
    fn holds(self, path: &Path) -> bool {
        let head = || {
            let mut bytes = Vec::new();
            provmark_watermark::open_regular(path)
                .and_then(|f| f.take(4096).read_to_end(&mut bytes))
                .map(|_| bytes)
        };
        match self {
            OutputKind::Report => {
                crate::read_text(path).is_ok_and(|t| parse(&t, "existing").is_ok())
            }
            OutputKind::Partial => read_text_at_most(path, MAX_PARTIAL_BYTES)
                .is_ok_and(|t| Totals::parse_partial("existing", &t).is_ok()),
            OutputKind::Page => head().is_ok_and(|b| {
                b.starts_with(b"<!DOCTYPE html>")
                    && b.windows(17).any(|w| w == b"provmark evidence")
            }),
            OutputKind::Pdf => head().is_ok_and(|b| b.starts_with(b"%PDF")),
        }
    }
}

/// Refuses to write `kind` at `path` when a file there holds something
/// else (a FIFO or device included: checked without opening it).
///
/// Errors: [`Error::WouldOverwrite`].
pub fn check_replaceable(path: &Path, kind: OutputKind) -> Result<(), Error> {
    if path.exists() && !kind.holds(path) {
        return Err(Error::WouldOverwrite {
            path: path.to_path_buf(),
            what: kind.name(),
        });
    }
    Ok(())
}
