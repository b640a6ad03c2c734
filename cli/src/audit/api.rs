//! `provmark audit api`: the black-box audit of `provmark_audit::api`, the
//! verdict on stdout and the evidence report.

use anyhow::Result;
use provmark_audit::api::{chat_url, ApiAuditConfig};
use provmark_audit::corpus::AuditTotals;
use provmark_evidence::{AuditSettings, CorpusRecipe, Keyed, Recorder};
use serde_json::{json, Map, Value};

use super::{Bars, Output};

/// The report of an API audit: its numbers are those of `audit corpus` on
/// the kept answers (which is what a verifier recomputes); how the answers
/// were collected is recorded as evidence but cannot be replayed.
fn recorder(
    c: &ApiAuditConfig,
    lab: Keyed<'_>,
    tokenizer: Option<String>,
    collection: Map<String, Value>,
) -> Result<Recorder> {
    let settings = AuditSettings {
        alpha: c.alpha,
        null_keys: c.null.keys,
        null_seed: c.null.seed,
        field: "text".into(),
        normalize: c.normalization,
    };
    let answers = |name: &str| c.out.join(name).display().to_string();
    let recipe = CorpusRecipe {
        locations: Default::default(),
        settings,
        lab,
        tokenizer,
        model: None,
        filter_from: c.filter_from.clone(),
        reference: match c.reference_endpoint {
            Some(_) => vec![answers("reference.jsonl")],
            None => Vec::new(),
        },
        inputs: vec![answers("suspect.jsonl")],
    };
    let mut r = recipe.recorder()?;
    r.rename("audit api");
    let mut facts = collection;
    facts.insert("prompts_sha256".into(), json!(c.prompts_sha256));
    facts.insert("samples_per_prompt".into(), json!(c.samples_per_prompt));
    facts.insert("max_tokens".into(), json!(c.max_tokens));
    facts.insert("temperature".into(), json!(c.temperature));
    if let Some(e) = &c.reference_endpoint {
        facts.insert("reference_endpoint".into(), json!(chat_url(e)));
        facts.insert(
            "reference_model".into(),
            json!(c.reference_model.as_deref().unwrap_or(&c.model)),
        );
    }
    r.collection(Value::Object(facts));
    Ok(r)
}

/// Runs the audit (`tokenizer`: the lab's tokenizer file, if one was named).
pub(crate) fn run(
    config: ApiAuditConfig,
    lab: Keyed<'_>,
    tokenizer: Option<String>,
    out: Output,
) -> Result<std::process::ExitCode> {
    if config.top_logprobs.is_some() && out.report.is_some() {
        anyhow::bail!(
            "--report is not available with --logprobs yet: spec/report.md has no form for the \
             logprob test, and a report of the corpus test alone would leave it out; run \
             without --report (or without --logprobs)"
        );
    }
    let audit = provmark_audit::api::run(&lab.lab()?, &config, &Bars::default())?;
    let recorder = match out.report {
        Some(_) => Some(recorder(
            &config,
            lab.clone(),
            tokenizer,
            audit.extra.clone(),
        )?),
        None => None,
    };
    let totals = AuditTotals {
        suspect: audit.suspect.clone(),
        reference: audit.reference.clone(),
    };
    // JSON carries the logprob test as a member; people get its own table.
    let extra = match out.json {
        true => audit.shown(config.null.seed, config.alpha),
        false => audit.extra.clone(),
    };
    out.conclude(&lab.profile, &totals, config.alpha, &extra, recorder)?;
    if let (Some(t), false) = (&audit.logprob_test, out.json) {
        let mut stdout = std::io::stdout().lock();
        use std::io::Write;
        writeln!(
            stdout,
            "\nlogprob test (spec §8.5; {} tokens not in the lab's vocabulary)",
            t.unmapped
        )?;
        provmark_verify::print::expected(&t.columns(), 0, t.verdict, &mut stdout)?;
    }
    Ok(super::partial_failure(audit.failed()))
}
