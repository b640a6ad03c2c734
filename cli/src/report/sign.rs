//! Auditor signatures on reports: ed25519 over the report's digest string,
//! so a signature vouches for everything the digest covers.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use provmark_watermark::rand_core::{OsRng, TryRngCore};
use serde_json::{json, Value};

use super::canonical;

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

fn from_hex<const N: usize>(text: &str, what: &str) -> Result<[u8; N]> {
    let t = text.trim();
    if t.len() != 2 * N || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{what} must be {} hex characters", 2 * N);
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    Ok(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn load_signing_key(path: &PathBuf) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the signing key {}", path.display()))?;
    // The key's bytes never reach an error message.
    let bytes = from_hex::<32>(&text, &format!("the signing key {}", path.display()))?;
    Ok(SigningKey::from_bytes(&bytes))
}

pub fn keygen(args: KeygenArgs) -> Result<ExitCode> {
    let mut seed = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut seed)
        .map_err(|e| anyhow!("the operating system's random source failed: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    crate::keys::write_secret_file(&args.out, &format!("{}\n", to_hex(&seed)))?;
    println!("signing key {}", args.out.display());
    println!("public key  {}", to_hex(key.verifying_key().as_bytes()));
    println!("Publish the public key; keep the signing key file secret.");
    Ok(ExitCode::SUCCESS)
}

pub fn sign(args: SignArgs) -> Result<ExitCode> {
    let mut report = canonical::read(&args.report)?;
    let digest = canonical::digest_of(&report)?;
    if report["digest"] != json!(digest) {
        bail!(
            "{}: its content does not match its digest; refusing to sign an edited report",
            args.report.display()
        );
    }
    let key = load_signing_key(&args.signing_key)?;
    let signature = key.sign(digest.as_bytes());
    report["signature"] = json!({
        "algorithm": "ed25519",
        "public_key": to_hex(key.verifying_key().as_bytes()),
        "signed": "digest",
        "value": to_hex(&signature.to_bytes()),
    });
    let out = args.out.as_ref().unwrap_or(&args.report);
    std::fs::write(out, canonical::jcs(&report) + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("signed {} ({digest})", out.display());
    println!("public key {}", to_hex(key.verifying_key().as_bytes()));
    Ok(ExitCode::SUCCESS)
}

/// Checks a report's signature over `digest` (the digest as recorded);
/// with `signer`, also that it is that public key's.
pub fn check(signature: &Value, digest: &str, signer: Option<&str>) -> Result<()> {
    if signature["algorithm"] != "ed25519" || signature["signed"] != "digest" {
        bail!("unknown signature form {signature}");
    }
    let public = from_hex::<32>(
        signature["public_key"].as_str().unwrap_or(""),
        "signature.public_key",
    )?;
    if let Some(s) = signer {
        if !s.trim().eq_ignore_ascii_case(&to_hex(&public)) {
            bail!("signed by {}, not by --signer {s}", to_hex(&public));
        }
    }
    let value = from_hex::<64>(signature["value"].as_str().unwrap_or(""), "signature.value")?;
    let key = VerifyingKey::from_bytes(&public).map_err(|e| anyhow!("bad public key: {e}"))?;
    key.verify(digest.as_bytes(), &Signature::from_bytes(&value))
        .map_err(|_| anyhow!("does not verify: the report or its digest was changed after signing"))
}
