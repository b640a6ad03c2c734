//! `provmark keygen` and `provmark key`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};
use provmark_watermark::{write_secret_file, Key};
use serde_json::json;

/// Writes a new key to `out` and prints its id and commitment.
pub fn keygen(out: &Path, json: bool) -> Result<ExitCode> {
    let key = Key::generate()?;
    write_secret_file(out, &key.to_hex_file())?;
    print_info(&key, out, json)?;
    Ok(ExitCode::SUCCESS)
}

/// `key info`: prints a key file's id and commitment.
pub fn info(path: &Path, json: bool) -> Result<ExitCode> {
    print_info(&Key::load(path)?, path, json)?;
    Ok(ExitCode::SUCCESS)
}

/// `key verify-commitment`: exit 0 when `path` has `commitment`, 1 if not.
pub fn verify_commitment(path: &Path, commitment: &str) -> Result<ExitCode> {
    let k = Key::load(path)?;
    let given = commitment.trim().to_ascii_lowercase();
    if given.len() != 64 || !given.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("--commitment must be 64 hex characters");
    }
    if k.commitment() == given {
        outln!("MATCH  {} is the key of commitment {given}", path.display());
        Ok(ExitCode::SUCCESS)
    } else {
        outln!(
            "MISMATCH  {} has commitment {}, not {given}",
            path.display(),
            k.commitment()
        );
        Ok(ExitCode::from(1))
    }
}

fn print_info(key: &Key, path: &Path, as_json: bool) -> Result<()> {
    if as_json {
        outln!(
            "{}",
            json!({"file": path.display().to_string(), "key_id": key.id(), "commitment": key.commitment()})
        );
    } else {
        outln!("key file    {}", path.display());
        outln!("key id      {}", key.id());
        outln!("commitment  {}", key.commitment());
        outln!("Publish the commitment; keep the key file secret.");
    }
    Ok(())
}
