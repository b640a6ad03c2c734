//! `provmark report render`: the page of provmark_evidence::render, written
//! to a file, and `--pdf` through headless Chromium.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use provmark_evidence::render::{render_html, TokenView};
use provmark_evidence::{Error as EvidenceError, KeyFile};

/// Prints `html` to `pdf` with headless Chromium.
fn print_pdf(html: &Path, pdf: &Path) -> Result<()> {
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .context("--pdf needs Chromium (e.g. apt-get install chromium)")?;
    let url = format!(
        "file://{}",
        std::fs::canonicalize(html)
            .with_context(|| format!("cannot find {}", html.display()))?
            .display()
    );
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(&url)
        .output()
        .context("cannot run Chromium")?;
    if !out.status.success() || !pdf.exists() {
        bail!(
            "Chromium could not print {}: {}",
            pdf.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    eprintln!("provmark: wrote {}", pdf.display());
    Ok(())
}

/// `report render`: the page to `html` (and `pdf`), the token view with `key`.
pub fn render(
    path: &Path,
    html: &Path,
    key: Option<&Path>,
    inputs: &[PathBuf],
    max_texts: usize,
    pdf: Option<&Path>,
) -> Result<ExitCode> {
    let report = provmark_evidence::read(path)?;
    let name = path.display().to_string();
    let edited = |e: EvidenceError| match e {
        EvidenceError::Edited { .. } => anyhow!("{name}: {e}"),
        e => e.into(),
    };
    if !report.digest_matches() {
        return Err(edited(EvidenceError::Edited { action: "render" }));
    }
    let key = key.map(KeyFile::load).transpose()?;
    let view = key.as_ref().map(|key| TokenView {
        key,
        inputs,
        max_texts,
    });
    let page = render_html(&report, &name, view.as_ref()).map_err(edited)?;
    std::fs::write(html, page).with_context(|| format!("cannot write {}", html.display()))?;
    eprintln!("provmark: wrote {}", html.display());
    if let Some(pdf) = pdf {
        print_pdf(html, pdf)?;
    }
    Ok(ExitCode::SUCCESS)
}
