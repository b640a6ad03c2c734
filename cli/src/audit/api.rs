//! `provmark audit api`: the prompts and settings from the arguments, the
//! black-box audit of `provmark_audit::api`, the verdict on stdout and the
//! evidence report.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use provmark_audit::api::{chat_url, ApiAuditConfig, ApiPrompt};
use serde_json::{json, Map, Value};

use super::verdict::{render, write_report, Shown};
use super::{Bars, Common};
use provmark_evidence::{CorpusRecipe, Keyed, Recorder};
use provmark_llm::prompts;

/// `audit api`, as given.
pub(crate) struct ApiRequest {
    pub endpoint: String,
    pub model: String,
    pub prompts: PathBuf,
    pub out: PathBuf,
    pub samples_per_prompt: u32,
    pub max_tokens: u32,
    pub temperature: f64,
    pub api_key_env: String,
    pub concurrency: usize,
    pub rate_limit: f64,
    pub retries: u32,
    pub backoff_ms: u64,
    pub timeout: f64,
    pub reference_endpoint: Option<String>,
    pub reference_model: Option<String>,
    pub tokenizer: Option<PathBuf>,
    pub filter_from: Vec<String>,
    pub common: Common,
}

/// The report of an API audit: its numbers are those of `audit corpus` on
/// the kept answers (which is what a verifier recomputes); how the answers
/// were collected is recorded as evidence but cannot be replayed.
fn recorder(
    req: &ApiRequest,
    lab: Keyed<'_>,
    prompts_sha256: &str,
    collection: Map<String, Value>,
) -> Result<Recorder> {
    let mut settings = req.common.settings();
    settings.field = "text".into();
    let answers = |name: &str| req.out.join(name).display().to_string();
    let recipe = CorpusRecipe {
        settings,
        lab,
        tokenizer: req.tokenizer.as_ref().map(|t| t.display().to_string()),
        model: None,
        filter_from: req.filter_from.clone(),
        reference: match req.reference_endpoint {
            Some(_) => vec![answers("reference.jsonl")],
            None => Vec::new(),
        },
        inputs: vec![answers("suspect.jsonl")],
    };
    let mut r = recipe.recorder()?;
    r.rename("audit api");
    let mut facts = collection;
    facts.insert("prompts_sha256".into(), json!(prompts_sha256));
    facts.insert("samples_per_prompt".into(), json!(req.samples_per_prompt));
    facts.insert("max_tokens".into(), json!(req.max_tokens));
    facts.insert("temperature".into(), json!(req.temperature));
    if let Some(e) = &req.reference_endpoint {
        facts.insert("reference_endpoint".into(), json!(chat_url(e)));
        facts.insert(
            "reference_model".into(),
            json!(req.reference_model.as_deref().unwrap_or(&req.model)),
        );
    }
    r.collection(Value::Object(facts));
    Ok(r)
}

pub fn run(req: ApiRequest) -> Result<std::process::ExitCode> {
    let key = req.common.key()?;
    let keyed = req.common.keyed(&key)?;
    let lab = keyed.lab()?;
    let tokenizer = crate::models::text_tokenizer(req.tokenizer.as_deref(), None)?;
    tokenizer.check_profile(&lab.profile, false)?;
    ApiAuditConfig::check_counts(req.samples_per_prompt, req.max_tokens, req.concurrency)?;
    let prompts = prompts::read(&req.prompts)?;
    if prompts.is_empty() {
        bail!("{}: no prompts", req.prompts.display());
    }
    let prompts_sha256 = provmark_llm::default_model::sha256_file(&req.prompts)
        .with_context(|| format!("cannot read {}", req.prompts.display()))?;
    let prompts = prompts.into_iter().map(ApiPrompt::from).collect();
    let config = ApiAuditConfig {
        endpoint: req.endpoint.clone(),
        model: req.model.clone(),
        reference_endpoint: req.reference_endpoint.clone(),
        reference_model: req.reference_model.clone(),
        prompts,
        prompts_sha256: prompts_sha256.clone(),
        out: req.out.clone(),
        samples_per_prompt: req.samples_per_prompt,
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        api_key_env: req.api_key_env.clone(),
        concurrency: req.concurrency,
        rate_limit: req.rate_limit,
        retries: req.retries,
        backoff_ms: req.backoff_ms,
        timeout_s: req.timeout,
        tokenizer,
        filter_from: req.filter_from.clone(),
        field: req.common.field.clone(),
        null: req.common.null,
        alpha: req.common.alpha,
    };
    let audit = provmark_audit::api::run(&lab, &config, &Bars::default())?;
    let shown = Shown {
        suspect: &audit.suspect,
        reference: audit.reference.as_ref(),
        decision: &audit.decision,
        extra: &audit.extra,
    };
    render(&shown, req.common.json, &mut std::io::stdout().lock())?;
    if let Some(path) = &req.common.report {
        let recorder = recorder(&req, keyed, &prompts_sha256, audit.extra.clone())?;
        // The results are audit corpus's on the kept answers; the collection
        // facts live in the report's collection member.
        write_report(
            &audit.suspect,
            audit.reference.as_ref(),
            &audit.decision,
            Some(path),
            Some(recorder),
        )?;
    }
    Ok(super::partial_failure(audit.failed()))
}
