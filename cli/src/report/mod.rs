//! `provmark report`: verify a report by recomputing it, sign it, create
//! the auditor's signing key, render it. Printing only; the reports
//! themselves are `provmark_evidence`.

pub mod render;
pub mod sign;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use provmark_evidence::Error as EvidenceError;
use provmark_evidence::Report;
use serde_json::json;

/// `report verify`: recomputes the report and compares; exit 1 on a mismatch.
pub fn verify(
    path: &Path,
    keys: &[PathBuf],
    inputs: &[PathBuf],
    signer: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let name = path.display().to_string();
    let outcome = provmark_evidence::verify_file(
        path,
        keys,
        inputs,
        signer,
        &provmark_evidence::recompute,
    )
    .map_err(|e| match e {
        EvidenceError::KeyCount { expected, .. } => anyhow!(
            "{name} was made with {expected} key(s); give exactly that many --key, in the report's order"
        ),
        EvidenceError::InputCount { expected, .. } => anyhow!(
            "{name} lists {} input file(s) ({}); give exactly those with --inputs, in that order",
            expected.len(),
            {
                // A forged report may list any number: name the first few.
                let mut listed: Vec<String> = expected
                    .iter()
                    .take(20)
                    .map(|(role, file)| format!("{role} {}", short_name(file)))
                    .collect();
                if expected.len() > 20 {
                    listed.push(format!("… and {} more", expected.len() - 20));
                }
                listed.join(", ")
            }
        ),
        EvidenceError::InvalidProfile { index, source } => anyhow::Error::new(source)
            .context(format!("{name}: profile {index} is not a valid profile")),
        e => e.into(),
    })?;
    let matched = outcome.matched();
    let problems: Vec<String> = outcome.differences.iter().map(|d| d.to_string()).collect();
    let recorded = &outcome.digest;
    if json {
        outln!(
            "{}",
            json!({
                "report": name,
                "digest": recorded,
                "result": if matched {"MATCH"} else {"MISMATCH"},
                "differences": problems,
                "recomputed": outcome.recomputed,
                "signer": outcome.signer,
                "not_recomputed": outcome.not_recomputed,
            })
        );
    } else if matched {
        outln!("MATCH  {name}");
        outln!("digest          {recorded}");
        match &outcome.signer {
            Some(key) => outln!("signed by       ed25519 {key}"),
            None => outln!(
                "signed by       nobody (unsigned: anyone can write such a report; give --signer \
                 to require the auditor's key)"
            ),
        }
        outln!(
            "recomputed      from {} input(s) and {} key(s): every recomputed member agrees",
            inputs.len(),
            keys.len()
        );
        outln!(
            "not recomputed  {} (taken as recorded{})",
            outcome.not_recomputed.join(", "),
            if outcome.signer.is_some() {
                "; the signer vouches for them"
            } else {
                "; nothing vouches for them"
            }
        );
    } else {
        outln!("MISMATCH  {name}");
        for p in &problems {
            outln!("  {p}");
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
    errln!("provmark: report {} ({})", path.display(), report.digest);
    Ok(())
}

/// A recorded name as shown in a message: at most 80 characters.
fn short_name(name: &str) -> String {
    if name.chars().count() > 80 {
        format!("{}…", name.chars().take(80).collect::<String>())
    } else {
        name.to_string()
    }
}
