//! `keygen`, `key` and `profile`: the lab's key and its watermark profiles.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use provmark_watermark::{KgwParams, Scheme, SynthIdParams};

use crate::{keys, profiles};

#[derive(Args)]
pub struct KeygenArgs {
    /// Where to write the key (64 hex characters), mode 0600. Never
    /// overwritten. Commands that read a key file warn when group or others
    /// may read it.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Print the key id and commitment as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Check a key file against a published commitment (exit 0 if it matches, 1 if not).
    VerifyCommitment {
        /// The key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The commitment (64 hex characters) as published, e.g. in a report.
        #[arg(long, value_name = "HEX")]
        commitment: String,
    },
    /// Print a key file's public id and commitment (never the key).
    Info {
        /// The key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Print as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

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

pub fn key(cmd: KeyCommand) -> Result<ExitCode> {
    match cmd {
        KeyCommand::Info { key, json } => keys::info(&key, json),
        KeyCommand::VerifyCommitment { key, commitment: c } => keys::verify_commitment(&key, &c),
    }
}

pub fn profile(cmd: ProfileCommand) -> Result<ExitCode> {
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
            let scheme = match scheme {
                SchemeName::Kgw => KgwParams::new(gamma, delta).map(Scheme::Kgw),
                SchemeName::Gumbel => Ok(Scheme::Gumbel),
                SchemeName::Synthid => SynthIdParams::new(layers).map(Scheme::SynthId),
            };
            let (tokenizer, model) = (tokenizer.as_deref(), model.as_deref());
            profiles::new(scheme, context, tokenizer, model, &key, &out, force)
        }
        ProfileCommand::Show { profile } => profiles::show(&profile),
    }
}
