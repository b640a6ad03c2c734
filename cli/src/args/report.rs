//! `report`: verify, sign, keygen and render.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::report::{self, render, sign};

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Recompute a report from the key and the inputs and compare: MATCH, or
    /// MISMATCH with what differs (digest, signature, key, inputs, fields).
    Verify(VerifyArgs),
    /// Sign a report with an auditor's ed25519 key (the signature covers the digest).
    Sign(SignArgs),
    /// Create an auditor's ed25519 signing key (mode 0600) and print its public key.
    Keygen(KeygenArgs),
    /// Render a report as one self-contained HTML page for people.
    Render(RenderArgs),
}

#[derive(Args)]
#[command(after_long_help = include_str!("../../help/report-verify.txt").trim_end())]
pub struct VerifyArgs {
    /// The report.
    report: PathBuf,
    /// The key file of each profile in the report, in the report's order.
    #[arg(long = "key", value_name = "FILE")]
    keys: Vec<PathBuf>,
    /// The input files, in the report's order.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    inputs: Vec<PathBuf>,
    /// Require the signature of this ed25519 public key (hex).
    #[arg(long, value_name = "HEX")]
    signer: Option<String>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
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

#[derive(Args)]
pub struct KeygenArgs {
    /// Where to write the signing key (64 hex characters). Never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Args)]
#[command(after_long_help = include_str!("../../help/report-render.txt").trim_end())]
pub struct RenderArgs {
    /// The report.
    report: PathBuf,
    /// Where to write the page.
    #[arg(long, value_name = "FILE")]
    html: PathBuf,
    /// The key (detect reports: enables the token view).
    #[arg(long, value_name = "FILE", requires = "inputs")]
    key: Option<PathBuf>,
    /// The report's input files, in its order (for the token view).
    #[arg(long, value_name = "FILE", num_args = 1.., requires = "key")]
    inputs: Vec<PathBuf>,
    /// Texts shown token by token at most.
    #[arg(long, default_value_t = 20, value_name = "N")]
    max_texts: usize,
    /// Also print the page to PDF with headless Chromium (must be installed).
    #[arg(long, value_name = "FILE")]
    pdf: Option<PathBuf>,
}

pub fn run(cmd: ReportCommand) -> Result<ExitCode> {
    match cmd {
        ReportCommand::Verify(a) => {
            report::verify(&a.report, &a.keys, &a.inputs, a.signer.as_deref(), a.json)
        }
        ReportCommand::Sign(a) => sign::sign(&a.report, &a.signing_key, a.out.as_deref()),
        ReportCommand::Keygen(a) => sign::keygen(&a.out),
        ReportCommand::Render(a) => {
            let (key, pdf) = (a.key.as_deref(), a.pdf.as_deref());
            render::render(&a.report, &a.html, key, &a.inputs, a.max_texts, pdf)
        }
    }
}
