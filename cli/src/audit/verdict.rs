//! An audit's verdict on stdout (a summary table or one JSON object) and in
//! its evidence report; the numbers and the decision come from
//! `provmark_verify::attribution`.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use provmark_verify::attribution::{
    report_decision, report_results, verdict_json, Attribution, AttributionVerdict, Judgement,
    Totals,
};
use serde_json::{Map, Value};

use crate::report::Recorder;

/// What to show: the suspect's totals, an optional clean reference run
/// through the same pipeline, the decision, and fields particular to the
/// audit mode.
pub struct Shown<'a> {
    pub suspect: &'a Totals,
    pub reference: Option<&'a Totals>,
    pub decision: &'a Attribution,
    pub extra: &'a Map<String, Value>,
}

/// Writes the verdict as one JSON object or as a summary table.
pub fn render(s: &Shown<'_>, json_out: bool, out: &mut dyn Write) -> Result<()> {
    let d = s.decision;
    if json_out {
        let v = verdict_json(s.suspect, s.reference, d, s.extra);
        writeln!(out, "{v}")?;
        return Ok(());
    }
    let mut columns = vec![("suspect", s.suspect, &d.suspect)];
    if let (Some(t), Some(j)) = (s.reference, &d.reference) {
        columns.push(("clean reference", t, j));
    }
    let row = |out: &mut dyn Write, label: &str, cell: &dyn Fn(&Totals, &Judgement) -> String| {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, t, j)| format!("{:<26}", cell(t, j)))
            .collect();
        writeln!(out, "{label:<16}{}", cells.join(" ").trim_end())
    };
    if columns.len() > 1 {
        let names: Vec<String> = columns.iter().map(|(n, _, _)| format!("{n:<26}")).collect();
        writeln!(out, "{:<16}{}", "", names.join(" ").trim_end())?;
    }
    row(out, "texts", &|t, _| {
        format!("{} ({} unreadable)", t.texts, t.unreadable)
    })?;
    row(out, "positions", &|t, _| t.positions.to_string())?;
    row(out, "distinct tuples", &|t, _| {
        t.distinct_tuples.to_string()
    })?;
    if s.suspect.filter_windows.is_some() {
        row(out, "filtered out", &|t, _| {
            format!(
                "{} ({} lab windows)",
                t.filtered_out,
                t.filter_windows.unwrap_or(0)
            )
        })?;
    }
    row(out, "scored", &|t, _| t.scored.to_string())?;
    row(out, "statistic", &|t, _| format!("{:.2}", t.statistic))?;
    row(out, "exact log10_p", &|_, j| match j.test {
        Some(x) => format!("{:.2} (p = {:.3e})", x.p.log10(), x.p.value()),
        None => "nothing to score".into(),
    })?;
    row(out, "key-swap null", &|_, j| {
        format!(
            "{}/{} keys ≥: p = {:.3e}",
            j.swap.at_least, j.swap.keys, j.swap.p_value
        )
    })?;
    for (k, v) in s.extra {
        let shown = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        writeln!(out, "{:<16}{shown}", k.replace('_', " "))?;
    }
    let why = match d.verdict {
        AttributionVerdict::Inconclusive => {
            " — the clean reference is flagged too, so the pipeline cannot separate them"
        }
        _ => "",
    };
    writeln!(
        out,
        "verdict         {} (alpha {}){why}",
        d.verdict, d.alpha
    )?;
    Ok(())
}

/// Writes the evidence report (results: the verdict object plus every
/// key-swap statistic; decision) when --report was given.
pub fn write_report(
    suspect: &Totals,
    reference: Option<&Totals>,
    decision: &Attribution,
    path: Option<&Path>,
    recorder: Option<Recorder>,
) -> Result<()> {
    let (Some(path), Some(recorder)) = (path, recorder) else {
        return Ok(());
    };
    let results = report_results(suspect, reference, decision);
    crate::report::finish(
        Some(path),
        Some(recorder),
        results,
        report_decision(decision),
    )
}
