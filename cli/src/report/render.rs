//! `provmark report render`: the page of provmark_evidence::render, written
//! to a file, and `--pdf` through headless Chromium.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use provmark_evidence::render::{render_html, TokenView};
use provmark_evidence::{Error as EvidenceError, KeyFile};

#[derive(Args)]
#[command(after_long_help = include_str!("../../help/report-render.txt").trim_end())]
pub struct RenderArgs {
    /// The report.
    report: PathBuf,
    /// Where to write the page.
    #[arg(long, value_name = "FILE")]
    html: PathBuf,
    /// The key (detect reports: enables the token view).
    #[arg(long, value_name = "FILE", requires = "inputs")]
    key: Option<PathBuf>,
    /// The report's input files, in its order (for the token view).
    #[arg(long, value_name = "FILE", num_args = 1.., requires = "key")]
    inputs: Vec<PathBuf>,
    /// Texts shown token by token at most.
    #[arg(long, default_value_t = 20, value_name = "N")]
    max_texts: usize,
    /// Also print the page to PDF with headless Chromium (must be installed).
    #[arg(long, value_name = "FILE")]
    pdf: Option<PathBuf>,
}

/// Prints `html` to `pdf` with headless Chromium.
fn print_pdf(html: &std::path::Path, pdf: &std::path::Path) -> Result<()> {
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

pub fn render(args: RenderArgs) -> Result<ExitCode> {
    let report = provmark_evidence::read(&args.report)?;
    let name = args.report.display().to_string();
    let edited = |e: EvidenceError| match e {
        EvidenceError::Edited { .. } => anyhow!("{name}: {e}"),
        e => e.into(),
    };
    if !report.digest_matches() {
        return Err(edited(EvidenceError::Edited { action: "render" }));
    }
    let key = args.key.as_deref().map(KeyFile::load).transpose()?;
    let view = key.as_ref().map(|key| TokenView {
        key,
        inputs: &args.inputs,
        max_texts: args.max_texts,
    });
    let page = render_html(&report, &name, view.as_ref()).map_err(edited)?;
    std::fs::write(&args.html, page)
        .with_context(|| format!("cannot write {}", args.html.display()))?;
    eprintln!("provmark: wrote {}", args.html.display());
    if let Some(pdf) = &args.pdf {
        print_pdf(&args.html, pdf)?;
    }
    Ok(ExitCode::SUCCESS)
}
