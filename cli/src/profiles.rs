//! `provmark profile new|show`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use provmark_watermark::{Key, KgwParams, Profile, Scheme, SynthIdParams};

#[derive(Clone, Copy, ValueEnum)]
pub enum SchemeName {
    /// Red/green lists: adds δ to the logits of a keyed γ-fraction of tokens.
    Kgw,
    /// Exponential-minimum sampling: distortion-free, deterministic per context.
    Gumbel,
    /// SynthID-Text tournament sampling with m layers of g-values.
    Synthid,
}

#[derive(Subcommand)]
pub enum ProfileCommand {
    /// Create a profile: scheme, parameters, context width, tokenizer and key id.
    New {
        /// Watermarking scheme. The default, synthid (m = 30, h = 2), is the one the
        /// distillation experiment found best for attributing distilled copies at
        /// little quality cost (bench/RESULTS.md); gumbel is stronger still but
        /// makes answers to the same prompt identical; kgw keeps full diversity.
        #[arg(long, value_enum, default_value = "synthid")]
        scheme: SchemeName,
        /// kgw: fraction of the vocabulary that is green at each position.
        #[arg(long, default_value_t = 0.25)]
        gamma: f64,
        /// kgw: logit bias added to green tokens.
        #[arg(long, default_value_t = 2.0)]
        delta: f64,
        /// synthid: number of tournament layers m (1..=32).
        #[arg(long, default_value_t = 30)]
        layers: u32,
        /// Context width h: how many preceding tokens seed each position (0..=16).
        #[arg(long, default_value_t = 2)]
        context: u32,
        /// The Hugging Face tokenizer.json of the model; its SHA-256 is recorded.
        /// Default: the tokenizer of --model, else of the default model.
        #[arg(long, value_name = "FILE", conflicts_with = "model")]
        tokenizer: Option<PathBuf>,
        /// A GGUF model whose own tokenizer the profile is for.
        #[arg(long, value_name = "GGUF")]
        model: Option<PathBuf>,
        /// The key file; only its public id is recorded.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Where to write the profile (JSON).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace an existing profile file.
        #[arg(long)]
        force: bool,
    },
    /// Validate a profile and print its canonical form and digest.
    Show {
        /// The profile file.
        profile: PathBuf,
    },
}

pub fn run(cmd: ProfileCommand) -> Result<ExitCode> {
    match cmd {
        ProfileCommand::New {
            scheme,
            gamma,
            delta,
            layers,
            context,
            tokenizer,
            model,
            key,
            out,
            force,
        } => {
            if out.exists() && !force {
                bail!(
                    "{} already exists (use --force to replace it)",
                    out.display()
                );
            }
            let key = Key::load(&key)?;
            let tokenizer =
                crate::models::tokenizer_digest(tokenizer.as_deref(), model.as_deref())?;
            let scheme = match scheme {
                SchemeName::Kgw => Scheme::Kgw(KgwParams::new(gamma, delta)?),
                SchemeName::Gumbel => Scheme::Gumbel,
                SchemeName::Synthid => Scheme::SynthId(SynthIdParams::new(layers)?),
            };
            let profile = Profile::new(scheme, context, tokenizer, &key)?;
            let mut text = serde_json::to_string_pretty(&profile.to_json())?;
            text.push('\n');
            std::fs::write(&out, text)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("profile  {}", out.display());
            println!("digest   {}", profile.digest());
        }
        ProfileCommand::Show { profile } => {
            let p = Profile::load(&profile)?;
            println!("{}", p.canonical_json());
            println!("digest {}", p.digest());
        }
    }
    Ok(ExitCode::SUCCESS)
}
