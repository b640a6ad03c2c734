//! `provmark detect`: stream texts, score them against one or more profiles
//! on all cores, print one result per text in input order.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use provmark_evidence::DetectRecipe;
use provmark_verify::{print, scan, TextResult};
use serde_json::json;

use crate::audit::Output;

/// Runs the detection, `batch` texts at a time: each result printed as it
/// comes, then the summary line on stderr and the report.
pub fn run(recipe: &DetectRecipe, batch: usize, output: Output) -> Result<ExitCode> {
    let mut config = recipe.config(&mut |line| errln!("provmark: {line}"))?;
    config.batch = batch;
    let recorder = output.recorder(|| recipe.recorder(&config))?;
    let config = &config;
    let mut recorded = Vec::new();
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos} texts tested ({per_sec}) {msg}")
            .expect("valid template"),
    );
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let multi = config.targets.len() > 1;
    if !output.json {
        print::detection_header(&mut out, multi, config.windows)?;
    }
    let recording = recorder.is_some();
    let counts = scan::run(config, &recipe.inputs, |result: TextResult| -> Result<()> {
        if let Err(e) = &result.outcome {
            errln!("provmark: {e}");
        }
        let value = result.to_json(config);
        if output.json {
            writeln!(out, "{value}")?;
        } else {
            writeln!(out, "{}", print::detection_rows(&result, config))?;
        }
        if recording {
            recorded.push(value);
        }
        progress.inc(1);
        Ok(())
    })?;
    out.flush()?;
    progress.finish_and_clear();
    errln!(
        "provmark: {} texts: {} watermarked, {} not detected, {} too short, {} errors (alpha {})",
        counts.total(),
        counts.watermarked,
        counts.not_detected,
        counts.too_short,
        counts.errors,
        config.alpha
    );
    if !config.normalization.is_none() {
        errln!(
            "provmark: --normalize {}: invisible edits undone in {} of {} texts (invisible_edits in --json)",
            config.normalization,
            counts.edited,
            counts.total()
        );
    }
    if let (Some(path), Some(r)) = (&output.report, recorder) {
        let results = json!({ "texts": recorded });
        crate::report::write(path, &r.finish(results, counts.summary_json(config)))?;
    }
    Ok(crate::audit::partial_failure(counts.errors as usize))
}
