//! Printers for people (machines get JSON), as grep-printer is to ripgrep:
//! the fixed-width detection table and an audit's summary, so the CLI, the
//! Python package and other callers print the same thing.

use std::io::{self, Write};

use serde_json::{Map, Value};

use crate::attribution::{verdict_json, Attribution, AttributionVerdict, Judgement, Totals};
use crate::scan::{DetectConfig, TextResult};

/// What an audit summary shows: the suspect's totals, an optional clean
/// reference run through the same pipeline, the decision, and fields
/// particular to the audit mode (shown as `key value` lines).
pub struct Shown<'a> {
    /// The suspect's totals.
    pub suspect: &'a Totals,
    /// The clean reference's, when one was run.
    pub reference: Option<&'a Totals>,
    /// The decision on both.
    pub decision: &'a Attribution,
    /// Mode-specific fields (e.g. an API audit's query counts).
    pub extra: &'a Map<String, Value>,
}

/// Formats one row of cells to the given widths; the first column is left
/// aligned and cut with an ellipsis when too long, the rest right aligned.
pub fn row(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, (cell, &w)) in cells.iter().zip(widths).enumerate() {
        if i == 0 {
            let shown = if cell.chars().count() > w {
                let cut: String = cell.chars().take(w.saturating_sub(1)).collect();
                format!("{cut}…")
            } else {
                cell.clone()
            };
            line.push_str(&format!("{shown:<w$}"));
        } else {
            line.push_str(&format!("  {cell:>w$}"));
        }
    }
    line.trim_end().to_string()
}

/// A log10 p-value for people: two decimals, or "-" when absent.
pub fn log10(v: Option<f64>) -> String {
    v.map_or_else(
        || "-".into(),
        |x| format!("{:.2}", if x > -0.005 { 0.0 } else { x }),
    )
}

/// One text's rows of the detection table (one per profile; a text that
/// could not be read: its id and "error: see stderr").
pub fn detection_rows(result: &TextResult, config: &DetectConfig) -> String {
    let outcome = match &result.outcome {
        Err(_) => return row(&[result.id.clone(), "error: see stderr".into()], &[32, 20]),
        Ok(o) => o,
    };
    let multi = config.targets.len() > 1;
    let mut lines = Vec::new();
    for (i, o) in outcome.profiles.iter().enumerate() {
        let d = &o.detection;
        let mut cells = vec![
            if i == 0 {
                result.id.clone()
            } else {
                String::new()
            },
            d.tokens.to_string(),
            d.scored.to_string(),
            format!("{:.2}", d.statistic),
            log10(d.test.map(|t| t.p.log10())),
            d.test.map_or("-".into(), |t| format!("{:.2}", t.z)),
        ];
        if multi {
            cells.push(config.targets[i].profile.key_id().to_string());
        }
        if config.windows {
            cells.push(log10(o.window.map(|w| w.p.log10())));
        }
        cells.push(if i == 0 {
            outcome.verdict.to_string()
        } else {
            String::new()
        });
        lines.push(row(&cells, &widths(multi, config.windows)));
    }
    lines.join("\n")
}

fn widths(multi: bool, windows: bool) -> Vec<usize> {
    let mut w = vec![32, 7, 7, 10, 10, 8];
    if multi {
        w.push(16);
    }
    if windows {
        w.push(10);
    }
    w.push(12);
    w
}

pub fn detection_header(out: &mut dyn Write, multi: bool, windows: bool) -> io::Result<()> {
    let mut cells: Vec<String> = ["text", "tokens", "scored", "statistic", "log10_p", "z"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if multi {
        cells.push("key_id".into());
    }
    if windows {
        cells.push("window_lp".into());
    }
    cells.push("verdict".into());
    writeln!(out, "{}", row(&cells, &widths(multi, windows)))
}

/// Writes an audit's verdict as one JSON object (the `--json` form of
/// [`verdict_json`]) or as a summary table, suspect and clean reference side
/// by side.
pub fn attribution(s: &Shown<'_>, json_out: bool, out: &mut dyn Write) -> io::Result<()> {
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
        writeln!(out, "{:<15} {shown}", k.replace('_', " "))?;
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

/// The summary of an expected-score reading audit (spec §8.5): one column
/// per test (`(name, test)`), then the verdict at the tests' level.
pub fn expected(
    tests: &[(&str, &crate::expected::ExpectedTest)],
    unreadable: usize,
    verdict: AttributionVerdict,
    out: &mut dyn Write,
) -> io::Result<()> {
    type Cell<'a> = dyn Fn(&crate::expected::ExpectedTest) -> String + 'a;
    let row = |out: &mut dyn Write, label: &str, cell: &Cell<'_>| {
        let cells: Vec<String> = tests
            .iter()
            .map(|(_, t)| format!("{:<30}", cell(t)))
            .collect();
        writeln!(out, "{label:<18}{}", cells.join(" ").trim_end())
    };
    let names: Vec<String> = tests.iter().map(|(n, _)| format!("{n:<30}")).collect();
    writeln!(out, "{:<18}{}", "", names.join(" ").trim_end())?;
    row(out, "texts", &|t| {
        format!("{} ({unreadable} unreadable)", t.texts)
    })?;
    row(out, "positions", &|t| {
        format!("{} ({} repeated windows)", t.positions, t.repeats)
    })?;
    row(out, "weighted pairs", &|t| t.pairs.to_string())?;
    row(out, "inheritance", &|t| {
        format!("{:+.3e} per position", t.inheritance)
    })?;
    row(out, "z", &|t| format!("{:.2}", t.z))?;
    row(out, "log10_p (bound)", &|t| {
        format!("{:.2} (p ≤ {:.3e})", t.p.log10(), t.p.value())
    })?;
    row(out, "key-swap null", &|t| {
        format!(
            "{}/{} keys ≥: p = {:.3e}",
            t.swap.at_least, t.swap.keys, t.swap.p_value
        )
    })?;
    let why = match verdict {
        AttributionVerdict::Inconclusive => {
            " — the clean reference alone is flagged too, so the pipeline cannot separate them"
        }
        _ => "",
    };
    writeln!(out, "verdict           {verdict}{why}")
}
