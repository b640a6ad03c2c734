//! `provmark report keygen` and `provmark report sign`: the auditor's
//! ed25519 key (provmark_evidence::AuditorKey) at the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Args;
use provmark_evidence::{AuditorKey, Error as EvidenceError};

#[derive(Args)]
pub struct KeygenArgs {
    /// Where to write the signing key (64 hex characters). Never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Args)]
pub struct SignArgs {
    /// The report to sign (rewritten in place unless --out is given).
    report: PathBuf,
    /// The auditor's signing key (from provmark report keygen).
    #[arg(long, value_name = "FILE")]
    signing_key: PathBuf,
    /// Write the signed report here instead.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn keygen(args: KeygenArgs) -> Result<ExitCode> {
    let key = AuditorKey::generate()?;
    key.write_new(&args.out)?;
    println!("signing key {}", args.out.display());
    println!("public key  {}", key.public_hex());
    println!("Publish the public key; keep the signing key file secret.");
    Ok(ExitCode::SUCCESS)
}

pub fn sign(args: SignArgs) -> Result<ExitCode> {
    let mut report = provmark_evidence::read(&args.report)?;
    if !report.digest_matches() {
        return Err(anyhow!(
            "{}: {}",
            args.report.display(),
            EvidenceError::Edited { action: "sign" }
        ));
    }
    let key = AuditorKey::load(&args.signing_key)?;
    key.sign(&mut report)?;
    let out = args.out.as_ref().unwrap_or(&args.report);
    std::fs::write(out, report.canonical_file()).map_err(|source| EvidenceError::Write {
        path: out.clone(),
        source,
    })?;
    println!("signed {} ({})", out.display(), report.digest);
    println!("public key {}", key.public_hex());
    Ok(ExitCode::SUCCESS)
}
