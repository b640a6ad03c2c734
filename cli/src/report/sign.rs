//! `provmark report keygen` and `provmark report sign`: the auditor's
//! ed25519 key (provmark_evidence::AuditorKey) at the command line.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use provmark_evidence::{AuditorKey, Error as EvidenceError};

/// `report keygen`: writes a new signing key to `out`.
pub fn keygen(out: &Path) -> Result<ExitCode> {
    let key = AuditorKey::generate()?;
    key.write_new(out)?;
    outln!("signing key {}", out.display());
    outln!("public key  {}", key.public_hex());
    outln!("Publish the public key; keep the signing key file secret.");
    Ok(ExitCode::SUCCESS)
}

/// `report sign`: signs `report` with `signing_key`, in place or into `out`.
pub fn sign(report_path: &Path, signing_key: &Path, out: Option<&Path>) -> Result<ExitCode> {
    let mut report = provmark_evidence::read(report_path)?;
    if !report.digest_matches() {
        return Err(anyhow!(
            "{}: {}",
            report_path.display(),
            EvidenceError::Edited { action: "sign" }
        ));
    }
    let key = AuditorKey::load(signing_key)?;
    key.sign(&mut report)?;
    let out = out.unwrap_or(report_path);
    provmark_evidence::write(out, &report)?;
    outln!("signed {} ({})", out.display(), report.digest);
    outln!("public key {}", key.public_hex());
    Ok(ExitCode::SUCCESS)
}
