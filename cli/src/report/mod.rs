//! `provmark report`: verify a report by recomputing it, sign it, create
//! the auditor's signing key, render it. Arguments and printing only; the
//! reports themselves are `provmark_evidence`.

mod render;
mod sign;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use provmark_evidence::Error as EvidenceError;
use provmark_evidence::Report;
use serde_json::json;

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Recompute a report from the key and the inputs and compare: MATCH, or
    /// MISMATCH with what differs (digest, signature, key, inputs, fields).
    Verify(VerifyArgs),
    /// Sign a report with an auditor's ed25519 key (the signature covers the digest).
    Sign(sign::SignArgs),
    /// Create an auditor's ed25519 signing key (mode 0600) and print its public key.
    Keygen(sign::KeygenArgs),
    /// Render a report as one self-contained HTML page for people.
    Render(render::RenderArgs),
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

pub fn run(cmd: ReportCommand) -> Result<ExitCode> {
    match cmd {
        ReportCommand::Verify(args) => verify(args),
        ReportCommand::Sign(args) => sign::sign(args),
        ReportCommand::Keygen(args) => sign::keygen(args),
        ReportCommand::Render(args) => render::render(args),
    }
}

fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let report = provmark_evidence::read(&args.report)?;
    let name = args.report.display().to_string();
    let outcome = provmark_evidence::verify(
        &report,
        &args.keys,
        &args.inputs,
        args.signer.as_deref(),
        &provmark_evidence::recompute,
    )
    .map_err(|e| match e {
        EvidenceError::KeyCount { expected, .. } => anyhow!(
            "{name} was made with {expected} key(s); give exactly that many --key, in the report's order"
        ),
        EvidenceError::InputCount { expected, .. } => anyhow!(
            "{name} lists {} input file(s) ({}); give exactly those with --inputs, in that order",
            expected.len(),
            expected
                .iter()
                .map(|(role, file)| format!("{role} {file}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        EvidenceError::InvalidProfile { index, source } => anyhow::Error::new(source)
            .context(format!("{name}: profile {index} is not a valid profile")),
        e => e.into(),
    })?;
    let matched = outcome.matched();
    let problems: Vec<String> = outcome.differences.iter().map(|d| d.to_string()).collect();
    let recorded = &outcome.digest;
    if args.json {
        println!(
            "{}",
            json!({"report": name, "digest": recorded, "result": if matched {"MATCH"} else {"MISMATCH"}, "differences": problems})
        );
    } else if matched {
        println!("MATCH  {name}");
        println!("digest {recorded}");
        println!(
            "recomputed from {} input(s) and {} key(s): every recorded field agrees",
            args.inputs.len(),
            args.keys.len()
        );
    } else {
        println!("MISMATCH  {name}");
        for p in &problems {
            println!("  {p}");
        }
    }
    Ok(if matched {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Writes a finished command's report and names it on stderr.
pub fn write(path: &Path, report: &Report) -> Result<()> {
    provmark_evidence::write(path, report)?;
    eprintln!("provmark: report {} ({})", path.display(), report.digest);
    Ok(())
}
