//! `provmark model fetch` and `provmark tokenizer export`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use provmark_llm::default_model;

fn log(line: &str) {
    errln!("provmark: {line}");
}

/// `model fetch`: prints the default model's path, fetching it if needed.
pub fn fetch() -> Result<ExitCode> {
    outln!("{}", default_model::ensure(&mut log)?.display());
    Ok(ExitCode::SUCCESS)
}

/// `tokenizer export`: writes a GGUF model's tokenizer as tokenizer.json
/// and prints its digest (spec §3) and the written file's (legacy) one.
pub fn export_tokenizer(model: Option<&Path>, out: &Path, force: bool) -> Result<ExitCode> {
    if out.exists() && !force {
        bail!(
            "{} already exists (use --force to replace it)",
            out.display()
        );
    }
    let gguf = provmark_audit::tokenizer::gguf_tokenizer(model, &mut log)?;
    std::fs::write(out, gguf.to_json())
        .with_context(|| format!("cannot write {}", out.display()))?;
    outln!("tokenizer  {}", out.display());
    // What new profiles record (the GGUF metadata digest, spec §3), and the
    // exported file's own digest (the legacy form; a profile that records
    // it matches this file given as --tokenizer).
    outln!("digest     {}", gguf.digest());
    outln!("file       {}", gguf.legacy_digest());
    Ok(ExitCode::SUCCESS)
}
