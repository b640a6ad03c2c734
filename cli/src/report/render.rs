//! `provmark report render`: the page of provmark_evidence::render, written
//! to a file, and `--pdf` through headless Chromium.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use provmark_evidence::output::{check_replaceable, OutputKind};
use provmark_evidence::render::{render_page, Standing, TokenView};
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
    let absolute =
        std::fs::canonicalize(html).with_context(|| format!("cannot find {}", html.display()))?;
    let url = file_url(&absolute);
    // The page is validated and escaped and carries a Content-Security-Policy
    // that forbids scripts and fetches; Chromium runs without extensions or
    // background network services, on a throw-away profile. (Its
    // scriptEnabled=false setting also stops headless printing.) Its
    // sandbox is only left off where it cannot run (as root, e.g. in
    // containers).
    let profile = tempfile::tempdir().context("cannot create a temporary folder for Chromium")?;
    let mut command = std::process::Command::new(browser);
    command.args([
        "--headless",
        "--disable-gpu",
        "--no-pdf-header-footer",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-sync",
        "--no-first-run",
    ]);
    if running_as_root() {
        command.arg("--no-sandbox");
    }
    let out = command
        .arg(format!("--user-data-dir={}", profile.path().display()))
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
    errln!("provmark: wrote {}", pdf.display());
    Ok(())
}

/// The `file://` URL of an absolute path, every byte outside the URL's
/// unreserved set percent-encoded (`#`, `?`, `%` and spaces in a name
/// would otherwise make Chromium load another file).
fn file_url(path: &Path) -> String {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().into_owned().into_bytes();
    let mut url = String::from("file://");
    for b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// Whether this process runs as root (Chromium's sandbox refuses to start
/// then): the owner of `/proc/self` is the process's effective user.
#[cfg(unix)]
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(not(unix))]
fn running_as_root() -> bool {
    false
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
    // With the key and the files, the page is verified first (the same
    // checks and recomputation as report verify): a report that does not
    // verify is not drawn, and one that does says so beside its verdict.
    let outcome = match key {
        Some(k) if !inputs.is_empty() && report.keyed_profiles().count() == 1 => {
            let outcome = provmark_evidence::verify_file(
                path,
                &[k.to_path_buf()],
                inputs,
                None,
                &provmark_evidence::recompute,
            )?;
            if !outcome.matched() {
                let first = outcome
                    .differences
                    .first()
                    .map(|d| d.to_string())
                    .unwrap_or_default();
                bail!("{name}: refusing to render a report that does not verify ({first}; provmark report verify lists every difference)");
            }
            Some(outcome)
        }
        _ => None,
    };
    let standing = match &outcome {
        Some(o) => Standing::Verified(o),
        None => Standing::Unverified,
    };
    let key = key.map(KeyFile::load).transpose()?;
    let view = key.as_ref().map(|key| TokenView {
        key,
        inputs,
        max_texts,
    });
    let page = render_page(&report, &name, view.as_ref(), &standing).map_err(edited)?;
    check_replaceable(html, OutputKind::Page)?;
    if let Some(pdf) = pdf {
        if provmark_evidence::same_file(pdf, html) || pdf == html {
            bail!(
                "--pdf and --html name one file ({}): give two paths",
                pdf.display()
            );
        }
        check_replaceable(pdf, OutputKind::Pdf)?;
    }
    if provmark_evidence::same_file(html, path)
        || inputs.iter().any(|i| provmark_evidence::same_file(html, i))
    {
        bail!(
            "{}: the page would overwrite the report or one of its inputs",
            html.display()
        );
    }
    provmark_evidence::write_atomic(html, page.as_bytes())
        .with_context(|| format!("cannot write {}", html.display()))?;
    errln!("provmark: wrote {}", html.display());
    if let Some(pdf) = pdf {
        print_pdf(html, pdf)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_urls_encode_what_a_url_would_misread() {
        let url = super::file_url(std::path::Path::new("/tmp/r#x y%?.html"));
        assert_eq!(url, "file:///tmp/r%23x%20y%25%3F.html");
    }
}
