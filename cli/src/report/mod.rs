//! `provmark report`: verify a report by recomputing it, sign it, create
//! the auditor's signing key, render it. Arguments and printing only; the
//! reports themselves are `provmark_evidence`.

mod render;
mod sign;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use provmark_evidence::{Error as EvidenceError, KeyFile, Report};
use serde_json::{json, Value};

pub use provmark_evidence::Recorder;

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
#[command(after_long_help = "\
WHAT IT CHECKS
  1. The report's digest: SHA-256 of its canonical (RFC 8785) form without run and
     signature. An edited report no longer matches it.
  2. The signature, when there is one (and that it is --signer's, when given).
  3. Each --key against the key commitment recorded for its profile.
  4. Each --inputs file against the SHA-256 recorded for it, in the report's order
     (see the report's inputs list: roles input, tokenizer, filter, reference, ...).
  5. The computation: the recorded command is run again on these files (profiles from
     the report itself) and every recorded field is compared with the new result.

EXIT STATUS
  0 MATCH; 1 MISMATCH (each difference is listed); 2 the check could not run.

EXAMPLE
  provmark report verify evidence.json --key lab.key --inputs answers.jsonl")]
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

/// Runs the report's command again on the given files; returns the new report.
// MERGE: replaced by in-process recomputation
fn replay(report: &Report, keys: &[KeyFile], inputs: &[PathBuf]) -> Result<Report> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut profile_paths = Vec::new();
    for (i, p) in report.profiles.iter().enumerate() {
        let path = dir.path().join(format!("profile{i}.json"));
        std::fs::write(&path, p.profile.to_string())?;
        profile_paths.push(path);
    }
    let key_paths: Vec<PathBuf> = keys.iter().map(|k| k.path.clone()).collect();
    let lookup = |kind: &str, list: &[PathBuf], token: &str| -> Result<String> {
        let i: usize = token
            .parse()
            .with_context(|| format!("bad placeholder @{kind}:{token}"))?;
        list.get(i)
            .map(|p| p.display().to_string())
            .with_context(|| format!("the report refers to {kind} {i}, which was not given"))
    };
    let mut args = Vec::new();
    for a in &report.command.replay {
        let arg = if let Some(i) = a.strip_prefix("@input:") {
            lookup("input", inputs, i)?
        } else if let Some(i) = a.strip_prefix("@profile:") {
            lookup("profile", &profile_paths, i)?
        } else if let Some(i) = a.strip_prefix("@key:") {
            lookup("key", &key_paths, i)?
        } else {
            a.to_string()
        };
        args.push(arg);
    }
    let out_path = dir.path().join("recomputed.json");
    let exe = std::env::current_exe().context("cannot find the provmark executable")?;
    let output = Command::new(exe)
        .args(&args)
        .arg("--report")
        .arg(&out_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("cannot run the recorded command")?;
    if !out_path.exists() {
        bail!(
            "the recorded command failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(provmark_evidence::read(&out_path)?)
}

fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let report = provmark_evidence::read(&args.report)?;
    let name = args.report.display().to_string();
    let recompute = |r: &Report, keys: &[KeyFile], inputs: &[PathBuf]| {
        replay(r, keys, inputs).map_err(|e| EvidenceError::Recompute(e.into()))
    };
    let outcome = provmark_evidence::verify(
        &report,
        &args.keys,
        &args.inputs,
        args.signer.as_deref(),
        &recompute,
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

/// Writes the report of a finished command when `--report` was given.
pub fn finish(
    path: Option<&Path>,
    recorder: Option<Recorder>,
    results: Value,
    decision: Value,
) -> Result<()> {
    if let (Some(path), Some(rec)) = (path, recorder) {
        let report = rec.finish(results, decision);
        provmark_evidence::write(path, &report)?;
        eprintln!("provmark: report {} ({})", path.display(), report.digest);
    }
    Ok(())
}
