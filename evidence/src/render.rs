//! One self-contained HTML page (no scripts, no network) that explains a
//! report to people: the verdict in plain words, then the evidence (token
//! view, running p-value, null distribution, digests) and how to re-verify
//! it. Every value taken from the report is HTML-escaped.

use std::fmt::Write as _;
use std::path::PathBuf;

use provmark_verify::attribution::AttributionVerdict;
use provmark_verify::input::{InputFormat, ReadOptions, RecordReader};
use provmark_verify::{Detector, NullDistribution, TextTokenizer};
use provmark_watermark::{Profile, Scheme};
use serde_json::Value;

use crate::report::Report;
use crate::{Difference, Error, KeyFile, VerifyOutcome};

/// What the token view of a detect report needs: the key and the input
/// files (checked against the report before anything is shown).
pub struct TokenView<'a> {
    /// The key of the report's first profile.
    pub key: &'a KeyFile,
    /// The report's input files, in its order.
    pub inputs: &'a [PathBuf],
    /// Texts shown token by token at most.
    pub max_texts: usize,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The page's Content-Security-Policy: nothing is fetched or run (no
/// scripts, no remote images, fonts or frames); only the inline style and
/// the inline SVG charts apply.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'";

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.abs() >= 1e4 || (x != 0.0 && x.abs() < 1e-3) => format!("{x:.3e}"),
        Some(x) => format!("{}", (x * 1000.0).round() / 1000.0),
        None => "–".into(),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222;line-height:1.45}
h1{font-size:1.5em}.verdict{font-size:1.25em;padding:.8em 1em;border-radius:6px;background:#f3f3f3}
.yes{border-left:8px solid #2e7d32}.no{border-left:8px solid #777}.warn{border-left:8px solid #ef6c00}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:.9em}
code,pre{background:#f6f6f6;padding:2px 4px;font-size:.85em;overflow-wrap:anywhere}pre{white-space:pre-wrap;padding:.6em}
.tokens{font-family:ui-monospace,monospace;font-size:.85em;line-height:1.8;white-space:pre-wrap;border:1px solid #ddd;padding:.6em}
.g{background:#b9f6ca}.r{background:#ffcdd2}.u{color:#999}.legend span{padding:0 6px;margin-right:8px}";

/// A JSON value as written in the page (numbers as JSON writes them), escaped.
fn val(v: &Value) -> String {
    esc(&v.to_string())
}

/// The verdict sentence and its CSS class (the sentence is escaped where it
/// is written).
fn headline(report: &Report) -> (String, &'static str) {
    let results = &report.results;
    if let Some(texts) = results["texts"].as_array() {
        let d = &report.decision;
        let marked = d["watermarked"].as_u64().unwrap_or(0);
        let sentence = format!(
            "{marked} of {} text(s) carry the watermark of the profile at significance level α = {} \
             ({} not detected, {} too short, {} unreadable){}.",
            texts.len(),
            num(&d["alpha"]),
            d["not_detected"],
            d["too_short"],
            d["errors"],
            if d["correction"] == "holm" {
                ", Holm-corrected over the profiles"
            } else {
                ""
            }
        );
        return (sentence, if marked > 0 { "yes" } else { "no" });
    }
    let swap = &results["key_swap"];
    let detail = format!(
        "exact test p = {} (log10 p = {}) over {} distinct scored tuples; {} of {} random keys scored at \
         least as high (key-swap p = {}); α = {}.",
        num(&results["p_value"]),
        num(&results["log10_p"]),
        results["scored"],
        swap["at_least"],
        swap["keys"],
        num(&swap["p_value"]),
        num(&results["alpha"])
    );
    let verdict = serde_json::from_value(results["verdict"].clone());
    match verdict.unwrap_or(AttributionVerdict::NotAttributed) {
        AttributionVerdict::Attributed => (
            format!("Attributed: the suspect's output carries the lab's watermark. The {detail}"),
            "yes",
        ),
        AttributionVerdict::Inconclusive => (
            format!(
                "Inconclusive: the suspect is flagged, but so is the clean reference, so the \
                 pipeline cannot tell them apart. The {detail}"
            ),
            "warn",
        ),
        AttributionVerdict::TooShort => ("Too short: nothing could be scored.".into(), "no"),
        AttributionVerdict::NotAttributed => (
            format!("Not attributed: the evidence does not reach the level required. The {detail}"),
            "no",
        ),
    }
}

/// A polyline chart as inline SVG.
fn line_svg(points: &[(f64, f64)], x_label: &str, y_label: &str) -> String {
    let (w, h, m) = (640.0, 220.0, 48.0);
    if points.len() < 2 {
        return String::new();
    }
    let (x1, y0) = points
        .iter()
        .fold((1f64, 0f64), |(a, b), &(x, y)| (a.max(x), b.min(y)));
    let y0 = y0.min(-1.0);
    let sx = |x: f64| m + x / x1 * (w - 2.0 * m);
    let sy = |y: f64| m / 2.0 + (y / y0) * (h - 1.5 * m);
    let pts: Vec<String> = points
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
        .collect();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{y_label} against {x_label}"><rect width="100%" height="100%" fill="white"/><path d="M{m},{t} V{b} H{r}" stroke="#000" fill="none"/><polyline points="{}" fill="none" stroke="#1565c0" stroke-width="2"/><text x="{m}" y="{ty}" font-size="11">0</text><text x="{r}" y="{ty}" font-size="11" text-anchor="end">{x1} {x_label}</text><text x="4" y="{yb}" font-size="11">{y0:.1}</text><text x="4" y="{t}" font-size="11">{y_label}</text></svg>"##,
        pts.join(" "),
        t = m / 2.0,
        b = h - m,
        r = w - m,
        ty = h - m + 16.0,
        yb = h - m,
    )
}

/// The key-swap null's histogram with the real key's statistic marked.
fn histogram_svg(null: &[f64], observed: f64) -> String {
    if null.is_empty() {
        return String::new();
    }
    let (w, h, m, bins) = (640.0, 220.0, 40.0, 30usize);
    let lo = null.iter().copied().fold(observed, f64::min);
    let hi = null.iter().copied().fold(observed, f64::max);
    let span = (hi - lo).max(1e-9);
    let mut counts = vec![0usize; bins];
    for &s in null {
        counts[(((s - lo) / span) * (bins as f64 - 1.0)).round() as usize] += 1;
    }
    let top = *counts.iter().max().unwrap_or(&1) as f64;
    let bw = (w - 2.0 * m) / bins as f64;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="key-swap null histogram"><rect width="100%" height="100%" fill="white"/>"#
    );
    for (i, &c) in counts.iter().enumerate() {
        let bh = c as f64 / top * (h - 2.0 * m);
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#90a4ae"/>"##,
            m + i as f64 * bw,
            h - m - bh,
            bw - 1.0
        );
    }
    let ox = m + (observed - lo) / span * (w - 2.0 * m);
    let _ = write!(
        svg,
        r##"<line x1="{ox:.1}" y1="{}" x2="{ox:.1}" y2="{}" stroke="#c62828" stroke-width="3"/><text x="{ox:.1}" y="{}" font-size="11" fill="#c62828" text-anchor="middle">real key: {observed:.1}</text><text x="{m}" y="{}" font-size="11">{lo:.1}</text><text x="{}" y="{}" font-size="11" text-anchor="end">{hi:.1} (statistic)</text></svg>"##,
        m / 2.0,
        h - m,
        m / 2.0 - 4.0 + 12.0,
        h - m + 16.0,
        w - m,
        h - m + 16.0
    );
    svg
}

/// The null distribution of a text's statistic (exact pmf or density, SPEC
/// §8) with the observed statistic marked.
fn null_svg(scheme: &Scheme, n: u64, observed: f64) -> String {
    let Some(null) = NullDistribution::of(scheme, n) else {
        return String::new();
    };
    let (mean, sd) = (null.mean(), null.sd());
    let lo = (mean - 5.0 * sd).max(0.0).min(observed);
    let hi = (mean + 5.0 * sd).max(observed + sd);
    let (w, h, m) = (640.0, 180.0, 40.0);
    let pts: Vec<(f64, f64)> = (0..=200)
        .map(|i| {
            let x = lo + (hi - lo) * i as f64 / 200.0;
            (x, null.ln_density(x).exp())
        })
        .collect();
    let top = pts.iter().map(|p| p.1).fold(1e-300, f64::max);
    let sx = |x: f64| m + (x - lo) / (hi - lo) * (w - 2.0 * m);
    let sy = |y: f64| h - m - y / top * (h - 2.0 * m);
    let line: Vec<String> = pts
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
        .collect();
    let ox = sx(observed);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="null distribution of the statistic"><rect width="100%" height="100%" fill="white"/><polyline points="{}" fill="none" stroke="#607d8b" stroke-width="2"/><line x1="{ox:.1}" y1="{}" x2="{ox:.1}" y2="{}" stroke="#c62828" stroke-width="3"/><text x="{ox:.1}" y="{}" font-size="11" fill="#c62828" text-anchor="middle">observed {observed:.1}</text><text x="{m}" y="{}" font-size="11">{lo:.0}</text><text x="{}" y="{}" font-size="11" text-anchor="end">{hi:.0} (statistic; grey: its distribution without the watermark)</text></svg>"##,
        line.join(" "),
        m / 2.0 + 8.0,
        h - m,
        m / 2.0 + 4.0,
        h - m + 16.0,
        w - m,
        h - m + 16.0
    )
}

/// The token view of one text: spans coloured by score, and its running
/// log10 p.
fn token_view(
    detector: &Detector,
    scheme: &Scheme,
    tokenizer: &TextTokenizer,
    text: &str,
) -> Result<String, Error> {
    let enc = tokenizer
        .inner()
        .encode(text, false)
        .map_err(|e| Error::Tokenize(e.to_string()))?;
    let ids = enc.get_ids();
    let offsets = enc.get_offsets();
    let scored = detector.score(&[], ids);
    let mut score_at = vec![None; ids.len()];
    for (&p, &s) in scored.positions.iter().zip(&scored.scores) {
        score_at[p] = Some(s);
    }
    let mut html = String::from(r#"<div class="tokens">"#);
    let mut last = 0usize;
    for (i, &(a, b)) in offsets.iter().enumerate() {
        let (a, b) = (a.max(last), b.max(a.max(last)));
        let piece = text.get(a..b).unwrap_or("");
        // Text between tokens (e.g. spaces the tokenizer folds in) as is.
        if let Some(gap) = text.get(last..a) {
            html.push_str(&esc(gap));
        }
        let class = match (score_at[i], scheme) {
            (None, _) => "u",
            (Some(s), Scheme::Kgw(_)) if s > 0.5 => "g",
            (Some(_), Scheme::Kgw(_)) => "r",
            (Some(s), Scheme::Gumbel) if s > 1.0 => "g",
            (Some(_), Scheme::Gumbel) => "r",
            (Some(s), Scheme::SynthId(p)) if s > p.layers() as f64 / 2.0 => "g",
            (Some(_), Scheme::SynthId(_)) => "r",
        };
        let title = score_at[i].map_or("not scored".to_string(), |s| format!("score {s:.3}"));
        let _ = write!(
            html,
            r#"<span class="{class}" title="{title}">{}</span>"#,
            esc(piece)
        );
        last = b;
    }
    if let Some(rest) = text.get(last..) {
        html.push_str(&esc(rest));
    }
    html.push_str("</div>");
    let mut sum = 0.0;
    let mut points = Vec::new();
    for (n, s) in scored.scores.iter().enumerate() {
        sum += s;
        if let Some(t) = detector.test(n as u64 + 1, sum) {
            points.push(((n + 1) as f64, t.p.log10()));
        }
    }
    html.push_str(&line_svg(&points, "scored tokens", "running log10 p"));
    html.push_str(&null_svg(
        scheme,
        scored.scores.len() as u64,
        scored.scores.iter().sum(),
    ));
    Ok(html)
}

/// The page of `report` (named `name` in its title and its re-verify
/// command). With `view`, a detect report's texts are shown token by token
/// after the key and the files are checked against the report.
///
/// Errors: [`Error::Edited`] when the content does not hash to its digest
/// (an edited report is never rendered), [`Error::Content`] /
/// [`Error::InvalidProfile`] when a member is not of its kind
/// ([`crate::validate::validate`]); for the token view
/// [`Error::NotTheKey`], [`Error::RenderInputCount`], [`Error::NotTheInput`],
/// or a failure to read or tokenize the texts.
pub fn render_html(
    report: &Report,
    name: &str,
    view: Option<&TokenView<'_>>,
) -> Result<String, Error> {
    render_page(report, name, view, &Standing::Unverified)
}

/// What a page says of its report's standing, beside the verdict.
#[derive(Clone, Copy, Debug)]
pub enum Standing<'a> {
    /// Not recomputed here: the page shows what the report says.
    Unverified,
    /// Verified here (`report verify`'s checks, recomputation included)
    /// with a MATCH; only such an outcome is accepted.
    Verified(&'a VerifyOutcome),
}

/// [`render_html`] with the report's `standing` stated beside the verdict:
/// who signed (the signature is checked; a signature that does not hold is
/// refused) and whether the numbers were recomputed for this page.
///
/// Errors: as [`render_html`]; [`Error::Unverified`] for a `Verified`
/// outcome that is not a MATCH, and [`Error::BadSignature`] for a
/// signature that does not verify.
pub fn render_page(
    report: &Report,
    name: &str,
    view: Option<&TokenView<'_>>,
    standing: &Standing<'_>,
) -> Result<String, Error> {
    if !report.digest_matches() {
        return Err(Error::Edited { action: "render" });
    }
    crate::validate::validate(report)?;
    let signer = match &report.signature {
        Some(sig) => match crate::sign::check(sig, &report.digest, None) {
            Ok(()) => Some(sig.public_key.to_ascii_lowercase()),
            Err(source) => return Err(Error::BadSignature { source }),
        },
        None => None,
    };
    if let Standing::Verified(outcome) = standing {
        if !outcome.matched() {
            return Err(Error::Unverified);
        }
    }
    let signed = match &signer {
        Some(key) => format!("Signed by the ed25519 key <code>{}</code>.", esc(key)),
        None => "<strong>Unsigned</strong>: anyone can write a report like this one.".into(),
    };
    let standing_html = match standing {
        Standing::Verified(outcome) => format!(
            "<p class=\"verdict yes\" id=\"standing\">Verified for this page: recomputed from the given key and files, every recomputed member agrees (MATCH). {signed} Taken as recorded: {}.</p>",
            esc(&outcome.not_recomputed.join(", "))
        ),
        Standing::Unverified => format!(
            "<p class=\"verdict warn\" id=\"standing\"><strong>Not verified</strong>: this page shows what the report says; nothing in it was recomputed. {signed} Run <code>provmark report verify</code> (or render with --key and --inputs) to recompute it.</p>"
        ),
    };
    let (sentence, class) = headline(report);
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\"><title>provmark evidence: {}</title><style>{STYLE}</style></head><body>",
        esc(name)
    );
    let _ = write!(
        page,
        "<h1>provmark evidence report</h1><p class=\"verdict {class}\" id=\"verdict\">{}</p>{standing_html}",
        esc(&sentence)
    );
    let _ = write!(
        page,
        "<p>Command <code>provmark {}</code>; report digest <code>{}</code>{}.</p>",
        esc(&report.command.name),
        esc(&report.digest),
        match &report.signature {
            Some(s) => format!(", signed (ed25519) by <code>{}</code>", esc(&s.public_key)),
            None => String::new(),
        }
    );

    // Evidence.
    page.push_str("<h2>Evidence</h2>");
    let results = &report.results;
    if let Some(texts) = results["texts"].as_array() {
        page.push_str("<table><tr><th>text</th><th>tokens</th><th>scored</th><th>log10 p</th><th>verdict</th></tr>");
        for t in texts {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(t["id"].as_str().unwrap_or("")),
                val(&t["tokens"]),
                val(&t["scored"]),
                num(&t["log10_p"]),
                esc(t["verdict"].as_str().unwrap_or(""))
            );
        }
        page.push_str("</table>");
        match view {
            Some(view) => page.push_str(&token_section(report, view)?),
            None => page.push_str(
                "<p><em>The token view needs the key and the inputs (render with --key and --inputs).</em></p>",
            ),
        }
    } else {
        let mut columns = vec![("suspect", results)];
        if results["reference"].is_object() {
            columns.push(("clean reference", &results["reference"]));
        }
        for (label, r) in columns {
            let _ = write!(
                page,
                "<h3>{label}</h3><table><tr><th>texts</th><td>{}</td></tr><tr><th>distinct tuples</th><td>{}</td></tr><tr><th>filtered out</th><td>{}</td></tr><tr><th>scored</th><td>{}</td></tr><tr><th>statistic</th><td>{}</td></tr><tr><th>exact log10 p</th><td>{}</td></tr><tr><th>key-swap</th><td>{} of {} keys at least as high: p = {}</td></tr></table>",
                val(&r["texts"]), val(&r["distinct_tuples"]), val(&r["filtered_out"]), val(&r["scored"]), num(&r["statistic"]),
                num(&r["log10_p"]), val(&r["key_swap"]["at_least"]), val(&r["key_swap"]["keys"]), num(&r["key_swap"]["p_value"])
            );
            let null: Vec<f64> = r["key_swap"]["statistics"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            let _ = write!(
                page,
                "<p>The statistic under the real key (red) against the same tuples scored under {} random keys:</p>{}",
                null.len(),
                histogram_svg(&null, r["statistic"].as_f64().unwrap_or(0.0))
            );
        }
    }

    // Provenance.
    page.push_str("<h2>What was tested</h2><table><tr><th>profile</th><th>scheme</th><th>h</th><th>digest</th><th>key id</th><th>key commitment</th></tr>");
    for p in &report.profiles {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            esc(&p.profile["params"].to_string()),
            esc(p.profile["scheme"].as_str().unwrap_or("")),
            val(&p.profile["context"]),
            esc(&p.digest),
            esc(&p.key_id),
            esc(p.key_commitment.as_deref().unwrap_or("–"))
        );
    }
    page.push_str("</table><table><tr><th>#</th><th>role</th><th>file</th><th>bytes</th><th>SHA-256</th></tr>");
    let mut verify_inputs = Vec::new();
    for i in &report.inputs {
        verify_inputs.push(i.name.clone());
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            i.index,
            esc(&i.role),
            esc(&i.name),
            i.bytes,
            esc(&i.sha256)
        );
    }
    let _ = write!(
        page,
        "</table><p>Merkle root of the inputs: <code>{}</code>. Parameters: <code>{}</code>.</p>",
        esc(&report.inputs_merkle_root),
        esc(&Value::Object(report.parameters.clone()).to_string())
    );
    let keys = report
        .keyed_profiles()
        .enumerate()
        .map(|(i, _)| format!(" --key KEY{i}"))
        .collect::<String>();
    let _ = writeln!(
        page,
        "<h2>How to re-verify</h2><p>With the key(s) and these files, anyone can recompute every number above (spec/SPEC.md, spec/report.md):</p><pre>provmark report verify {}{keys} --inputs {}</pre><p>It prints MATCH, or MISMATCH with each field that differs. <code>python3 spec/reference/check_report.py</code> re-derives the canonical bytes and digest independently.</p></body></html>",
        esc(name),
        esc(&verify_inputs.join(" "))
    );
    Ok(page)
}

/// The token view of a detect report's texts (after checking the key and
/// the input files against the report).
fn token_section(report: &Report, view: &TokenView<'_>) -> Result<String, Error> {
    let first = report.profiles.first().ok_or(Error::NoProfile)?;
    if first.key_commitment.as_deref() != Some(view.key.key.commitment().as_str()) {
        return Err(Error::NotTheKey {
            path: view.key.path.clone(),
        });
    }
    let recorded = &report.inputs;
    let differences =
        crate::verify::input_differences(report, view.inputs).map_err(|e| match e {
            Error::InputCount { expected, .. } => Error::RenderInputCount {
                expected: expected.len(),
            },
            e => e,
        })?;
    if let Some(Difference::InputDigest { path, .. }) = differences.into_iter().next() {
        return Err(Error::NotTheInput { path });
    }
    let profile = Profile::from_json(&first.profile)?;
    let detector = Detector::new(&profile, &view.key.key)?;
    let role_path = |role: &str| {
        recorded
            .iter()
            .zip(view.inputs)
            .find(|(r, _)| r.role == role)
            .map(|(_, p)| p.clone())
    };
    let tokenizer = provmark_audit::tokenizer::text_tokenizer(
        role_path("tokenizer").as_deref(),
        role_path("model").as_deref(),
        &mut |_| {},
    )?;
    let params = &report.parameters;
    // The token view shows the profile's ids through its own tokenizer,
    // unless the detection itself was forced onto another.
    let forced = params.get("force_tokenizer") == Some(&Value::Bool(true));
    tokenizer.check_profile(&profile, forced)?;
    let options = ReadOptions {
        field: params
            .get("field")
            .and_then(Value::as_str)
            .unwrap_or("text")
            .to_string(),
        max_record_bytes: params
            .get("max_record_bytes")
            .and_then(Value::as_u64)
            .unwrap_or(provmark_verify::input::DEFAULT_MAX_RECORD_BYTES as u64)
            as usize,
    };
    let mut html = format!(
        "<h3>Token by token (first {} texts, profile 1)</h3><p class=\"legend\"><span class=\"g\">favoured by the key</span><span class=\"r\">not favoured</span><span class=\"u\">not scored (first h tokens, repeats)</span></p>",
        view.max_texts
    );
    let jsonl = params.get("jsonl") == Some(&Value::Bool(true));
    // The text as the test read it (spec §5.1): normalised when the report
    // says so; an unknown name is refused, not shown un-normalised.
    let normalization: provmark_verify::Normalization = match params.get("normalize") {
        None => Default::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| Error::Recipe(format!("parameters.normalize: {e}")))?,
    };
    let mut shown = 0;
    for (rec, path) in recorded.iter().zip(view.inputs) {
        if rec.role != "input" || shown >= view.max_texts {
            continue;
        }
        // Read under the recorded name (ids, format), from the given file.
        let name = &rec.name;
        let format = if jsonl {
            InputFormat::Jsonl
        } else {
            InputFormat::guess(name)
        };
        let reader =
            RecordReader::open_at(name, path, format, options.clone()).map_err(|source| {
                Error::Open {
                    path: path.clone(),
                    source,
                }
            })?;
        for r in reader {
            if shown >= view.max_texts {
                break;
            }
            let r = r.map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            let Ok(text) = &r.text else { continue };
            let _ = write!(html, "<h4>{}</h4>", esc(&r.id));
            let text = normalization.apply(text).text;
            html.push_str(&token_view(&detector, profile.scheme(), &tokenizer, &text)?);
            shown += 1;
        }
    }
    Ok(html)
}
