//! From distinct tuples to a verdict: the exact test and the key-swap null
//! of one corpus ([`Totals`], also the sharded audits' partial format), the
//! decision beside an optional clean reference, and its rendering as a
//! summary or one JSON object.

use std::io::Write;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use provmark_verify::corpus::{key_swap_null, score_tuples, DistinctTuples, Shard};
use provmark_verify::{null_test, Detector, TestResult};
use provmark_watermark::Profile;
use serde_json::{json, Map, Value};

pub const PARTIAL_FORMAT: &str = "provmark-audit-partial/1";

/// An audit's sufficient statistics: what a shard writes and what merging
/// adds up (shards are disjoint sets of distinct tuples).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Totals {
    pub format: String,
    pub profile_digest: String,
    pub key_id: String,
    pub shard_index: u32,
    pub shard_count: u32,
    pub texts: usize,
    pub unreadable: usize,
    pub positions: u64,
    pub distinct_tuples: u64,
    pub filter_windows: Option<usize>,
    pub filtered_out: u64,
    pub scored: u64,
    pub statistic: f64,
    pub null_seed: u64,
    pub null_statistics: Vec<f64>,
}

/// How one corpus was read, before scoring.
pub struct Counts {
    pub texts: usize,
    pub errors: usize,
    pub distinct: usize,
    pub filter_windows: Option<usize>,
    pub dropped: usize,
}

/// The key-swap null's settings.
#[derive(Clone, Copy)]
pub struct NullKeys {
    pub keys: usize,
    pub seed: u64,
}

/// Scores `tuples` under the key and under the key-swap null (with a
/// progress bar labelled `what`).
pub fn totals(
    profile: &Profile,
    detector: &Detector,
    null: NullKeys,
    shard: Shard,
    counts: &Counts,
    tuples: &DistinctTuples,
    what: &str,
) -> Result<Totals> {
    let observed = score_tuples(detector, tuples).map_err(anyhow::Error::msg)?;
    let progress = ProgressBar::new(null.keys as u64);
    progress.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:30}} {{pos}}/{{len}} null keys ({what})  eta {{eta}}"
        ))
        .expect("valid template"),
    );
    let swap = key_swap_null(profile, tuples, &observed, null.keys, null.seed, &|_| {
        progress.inc(1)
    })
    .map_err(anyhow::Error::msg)?;
    progress.finish_and_clear();
    Ok(Totals {
        format: PARTIAL_FORMAT.into(),
        profile_digest: profile.digest(),
        key_id: profile.key_id().to_string(),
        shard_index: shard.index(),
        shard_count: shard.count(),
        texts: counts.texts,
        unreadable: counts.errors,
        positions: tuples.positions,
        distinct_tuples: counts.distinct as u64,
        filter_windows: counts.filter_windows,
        filtered_out: counts.dropped as u64,
        scored: observed.scored,
        statistic: observed.statistic,
        null_seed: null.seed,
        null_statistics: swap.statistics,
    })
}

/// Both tests of one corpus at level alpha.
struct Judgement {
    test: Option<TestResult>,
    keys: usize,
    at_least: usize,
    swap_p: f64,
    attributed: bool,
}

fn judge(profile: &Profile, t: &Totals, alpha: f64) -> Judgement {
    let test = null_test(profile.scheme(), t.scored, t.statistic);
    let keys = t.null_statistics.len();
    let at_least = t
        .null_statistics
        .iter()
        .filter(|&&s| s >= t.statistic)
        .count();
    let swap_p = (1 + at_least) as f64 / (keys + 1) as f64;
    Judgement {
        attributed: test.is_some_and(|x| x.p.value() <= alpha) && swap_p <= alpha,
        test,
        keys,
        at_least,
        swap_p,
    }
}

fn corpus_json(t: &Totals, j: &Judgement) -> Map<String, Value> {
    let v = json!({
        "texts": t.texts,
        "unreadable": t.unreadable,
        "positions": t.positions,
        "distinct_tuples": t.distinct_tuples,
        "filter_windows": t.filter_windows,
        "filtered_out": t.filtered_out,
        "scored": t.scored,
        "statistic": t.statistic,
        "log10_p": j.test.map(|x| x.p.log10()),
        "p_value": j.test.map(|x| x.p.value()),
        "z": j.test.map(|x| x.z),
        "key_swap": {"keys": j.keys, "seed": t.null_seed, "at_least": j.at_least, "p_value": j.swap_p},
        "attributed": j.attributed,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object"),
    }
}

/// What to render: the suspect's totals, an optional clean reference run
/// through the same pipeline, and fields particular to the audit mode.
pub struct Report<'a> {
    pub suspect: &'a Totals,
    pub reference: Option<&'a Totals>,
    pub alpha: f64,
    pub extra: Map<String, Value>,
}

/// The verdict: `attributed` needs both of the suspect's p-values ≤ alpha
/// and, when a clean reference is given, the reference not flagged (a
/// flagged reference means the pipeline itself finds the watermark where it
/// cannot be, so nothing can be concluded).
pub fn render(
    profile: &Profile,
    r: &Report<'_>,
    json_out: bool,
    out: &mut dyn Write,
) -> Result<&'static str> {
    let s = judge(profile, r.suspect, r.alpha);
    let reference = r.reference.map(|t| (t, judge(profile, t, r.alpha)));
    let verdict = match (&s.test, s.attributed, &reference) {
        (None, _, _) => "too_short",
        (_, true, Some((_, rj))) if rj.attributed => "inconclusive",
        (_, true, _) => "attributed",
        _ => "not_attributed",
    };
    if json_out {
        let mut m = corpus_json(r.suspect, &s);
        m.remove("attributed");
        if let Some((t, j)) = &reference {
            m.insert("reference".into(), Value::Object(corpus_json(t, j)));
        }
        m.insert("alpha".into(), json!(r.alpha));
        m.insert("verdict".into(), json!(verdict));
        m.insert("profile_digest".into(), json!(r.suspect.profile_digest));
        m.insert("key_id".into(), json!(r.suspect.key_id));
        m.extend(r.extra.clone());
        writeln!(out, "{}", Value::Object(m))?;
        return Ok(verdict);
    }
    let mut columns = vec![("suspect", r.suspect, &s)];
    if let Some((t, j)) = &reference {
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
    if r.suspect.filter_windows.is_some() {
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
        format!("{}/{} keys ≥: p = {:.3e}", j.at_least, j.keys, j.swap_p)
    })?;
    for (k, v) in &r.extra {
        let shown = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        writeln!(out, "{:<16}{shown}", k.replace('_', " "))?;
    }
    let why = match verdict {
        "inconclusive" => {
            " — the clean reference is flagged too, so the pipeline cannot separate them"
        }
        _ => "",
    };
    writeln!(out, "verdict         {verdict} (alpha {}){why}", r.alpha)?;
    Ok(verdict)
}
