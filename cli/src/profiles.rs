//! `provmark profile new|show`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use provmark_watermark::{Error, Key, Profile, Scheme};

/// `profile new` (the `scheme`'s parameters are checked after the key and
/// the tokenizer).
pub fn new(
    scheme: Result<Scheme, Error>,
    context: u32,
    tokenizer: Option<&Path>,
    model: Option<&Path>,
    key: &Path,
    out: &Path,
    force: bool,
) -> Result<ExitCode> {
    if out.exists() && !force {
        bail!(
            "{} already exists (use --force to replace it)",
            out.display()
        );
    }
    let key = Key::load(key)?;
    let log = &mut |l: &str| errln!("provmark: {l}");
    let tokenizer = provmark_audit::tokenizer::tokenizer_digest(tokenizer, model, log)?;
    let profile = Profile::new(scheme?, context, tokenizer, &key)?;
    profile.check_embeddable()?;
    let mut text = serde_json::to_string_pretty(&profile.to_json())?;
    text.push('\n');
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    outln!("profile  {}", out.display());
    outln!("digest   {}", profile.digest());
    Ok(ExitCode::SUCCESS)
}

/// `profile show`: prints a profile's canonical form and digest.
pub fn show(path: &Path) -> Result<ExitCode> {
    let p = Profile::load(path)?;
    outln!("{}", p.canonical_json());
    outln!("digest {}", p.digest());
    Ok(ExitCode::SUCCESS)
}
