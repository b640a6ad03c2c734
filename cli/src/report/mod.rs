//! `provmark report`: verify a report by recomputing it, sign it, and
//! create the auditor's signing key.

pub mod canonical;
mod render;
mod sign;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use provmark_watermark::{Key, Profile};
use serde_json::{json, Value};

pub use canonical::Recorder;

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

/// Paths where two JSON values differ (`a.b[3].c`), at most `limit`.
fn differences(old: &Value, new: &Value, path: &str, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => differences(x, y, &p, out, limit),
                    _ => out.push(p),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(x, y, &format!("{path}[{i}]"), out, limit);
            }
        }
        _ if old == new => {}
        _ => out.push(format!(
            "{path}: {} ≠ recomputed {}",
            short(old),
            short(new)
        )),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// Runs the report's command again on the given files; returns the new report.
fn replay(report: &Value, keys: &[PathBuf], inputs: &[PathBuf]) -> Result<Value> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut profile_paths = Vec::new();
    for (i, p) in report["profiles"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = dir.path().join(format!("profile{i}.json"));
        std::fs::write(&path, p["profile"].to_string())?;
        profile_paths.push(path);
    }
    let Some(replay) = report["command"]["replay"].as_array() else {
        bail!("the report has no command.replay");
    };
    let lookup = |kind: &str, list: &[PathBuf], token: &str| -> Result<String> {
        let i: usize = token
            .parse()
            .with_context(|| format!("bad placeholder @{kind}:{token}"))?;
        list.get(i)
            .map(|p| p.display().to_string())
            .with_context(|| format!("the report refers to {kind} {i}, which was not given"))
    };
    let mut args = Vec::new();
    for a in replay {
        let a = a.as_str().context("command.replay holds strings")?;
        let arg = if let Some(i) = a.strip_prefix("@input:") {
            lookup("input", inputs, i)?
        } else if let Some(i) = a.strip_prefix("@profile:") {
            lookup("profile", &profile_paths, i)?
        } else if let Some(i) = a.strip_prefix("@key:") {
            lookup("key", keys, i)?
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
    canonical::read(&out_path)
}

fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let report = canonical::read(&args.report)?;
    let name = args.report.display().to_string();
    let mut problems: Vec<String> = Vec::new();
    let recorded = report["digest"].as_str().unwrap_or("");
    let digest = canonical::digest_of(&report)?;
    if digest != recorded {
        problems.push(format!(
            "digest: the report's content hashes to {digest}, not its recorded {recorded} \
             (it was edited after it was made)"
        ));
    }
    match (&report["signature"], &args.signer) {
        (Value::Null, Some(_)) => problems.push("signature: none, but --signer was given".into()),
        (Value::Null, None) => {}
        (sig, signer) => {
            if let Err(e) = sign::check(sig, recorded, signer.as_deref()) {
                problems.push(format!("signature: {e}"));
            }
        }
    }
    let profiles = report["profiles"].as_array().cloned().unwrap_or_default();
    let keyed: Vec<&Value> = profiles
        .iter()
        .filter(|p| !p["key_commitment"].is_null())
        .collect();
    if args.keys.len() != keyed.len() {
        bail!(
            "{name} was made with {} key(s); give exactly that many --key, in the report's order",
            keyed.len()
        );
    }
    for (i, (p, path)) in keyed.iter().zip(&args.keys).enumerate() {
        let key = Key::load(path)?;
        if p["key_commitment"] != json!(key.commitment()) {
            problems.push(format!(
                "key {i} ({}): its commitment {} is not the recorded {}",
                path.display(),
                key.commitment(),
                p["key_commitment"]
            ));
        }
        // The embedded profile must still be valid and keep its digest.
        let profile = Profile::from_json(&p["profile"])
            .with_context(|| format!("{name}: profile {i} is not a valid profile"))?;
        if json!(profile.digest()) != p["digest"] {
            problems.push(format!("profiles[{i}].digest: does not match its profile"));
        }
    }
    let recorded_inputs = report["inputs"].as_array().cloned().unwrap_or_default();
    if args.inputs.len() != recorded_inputs.len() {
        bail!(
            "{name} lists {} input file(s) ({}); give exactly those with --inputs, in that order",
            recorded_inputs.len(),
            recorded_inputs
                .iter()
                .map(|i| format!(
                    "{} {}",
                    i["role"].as_str().unwrap_or("?"),
                    i["name"].as_str().unwrap_or("?")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for (i, (rec, path)) in recorded_inputs.iter().zip(&args.inputs).enumerate() {
        let (d, _) = canonical::file_digest(path)?;
        if json!(canonical::hex(&d)) != rec["sha256"] {
            problems.push(format!(
                "input {i} ({} {}, given {}): SHA-256 {} is not the recorded {}",
                rec["role"].as_str().unwrap_or("?"),
                rec["name"].as_str().unwrap_or("?"),
                path.display(),
                canonical::hex(&d),
                rec["sha256"]
            ));
        }
    }
    let inputs_ok = !problems
        .iter()
        .any(|p| p.starts_with("input") || p.starts_with("key"));
    let mut fields = Vec::new();
    if inputs_ok {
        let new = replay(&report, &args.keys, &args.inputs)?;
        let strip = |v: &Value| -> Value {
            let mut v = v.clone();
            if let Value::Object(m) = &mut v {
                // The tool build, how the inputs were collected and the
                // command's own name are not recomputed (the digest covers them).
                for k in canonical::UNDIGESTED
                    .iter()
                    .chain(&["tool", "collection", "command"])
                {
                    m.remove(*k);
                }
            }
            v
        };
        differences(&strip(&report), &strip(&new), "", &mut fields, 50);
        problems.extend(fields.iter().cloned());
    } else {
        problems.push("computation: not recomputed (the key or the inputs differ)".into());
    }
    let matched = problems.is_empty();
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
        let report = rec.finish(results, decision)?;
        canonical::write(path, &report)?;
    }
    Ok(())
}
