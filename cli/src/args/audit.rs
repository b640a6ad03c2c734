//! `audit`: corpus, weights, api and merge, into the audits' recipes and
//! configs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use provmark_audit::api::ApiAuditConfig;
use provmark_audit::tokenizer::text_tokenizer;
use provmark_evidence::{AuditSettings, CorpusRecipe, Keyed, MergeRecipe, WeightsRecipe};
use provmark_verify::attribution::check_levels;
use provmark_verify::corpus::Shard;
use provmark_verify::Normalization;
use provmark_watermark::{Key, Profile};

use crate::audit::{self, Output};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Test a whole corpus (e.g. a suspect model's answers) as one sample.
    Corpus(CorpusArgs),
    /// Open-weight audit ("reading mode"): run a suspect GGUF over the lab's own
    /// watermarked texts and test its top-1 predictions against the schedule.
    Weights(WeightsArgs),
    /// Black-box audit: query a suspect's OpenAI-compatible API with prompts, keep
    /// every answer (resumable), and test the answers as one corpus.
    Api(ApiArgs),
    /// Combine the partial results of a sharded audit into one verdict.
    Merge(MergeArgs),
}

/// What every audit mode takes: the lab's profile and key, the key-swap
/// null and the decision level, and the output form.
#[derive(Args, Clone)]
pub struct AuditCommon {
    /// Watermark profile.
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,
    /// The profile's key file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Random keys in the key-swap null.
    #[arg(long, default_value_t = 999, value_name = "M")]
    null_keys: usize,
    /// Public seed the null keys are derived from (recorded in the output).
    #[arg(long, default_value_t = 0, value_parser = super::exact_integer::<u64>)]
    null_seed: u64,
    /// Level for attribution (both p-values must reach it).
    #[arg(long, default_value_t = 1e-3)]
    alpha: f64,
    /// JSONL field holding the text.
    #[arg(long, default_value = "text")]
    field: String,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
    /// Also write an evidence report (canonical JSON, spec/report.md) that
    /// provmark report verify can recompute from the key and the inputs.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

#[derive(Args)]
#[command(after_long_help = include_str!("../../help/audit-weights.txt").trim_end())]
pub struct WeightsArgs {
    /// The suspect model (GGUF of the llama, Qwen2 or Qwen3 family), run in its
    /// stored precision (F32 as is, F16/BF16 widened to f32; not re-quantized).
    #[arg(long, value_name = "GGUF")]
    suspect: PathBuf,
    /// The lab's watermarked texts (JSONL with --field, or text files).
    #[arg(long = "texts", value_name = "FILE", required = true)]
    texts: Vec<String>,
    /// Compute threads for the suspect model.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// A clean reference model (same tokenizer) known not to be trained on the
    /// lab's outputs, e.g. the suspect's base model: read the same texts and shown
    /// beside the suspect.
    #[arg(long, value_name = "GGUF")]
    reference_model: Option<PathBuf>,
    /// The prompts the texts answer (a prompt file as generate reads): each text
    /// is read after the prompt whose id is its record's id, rendered with the
    /// suspect's chat template, as a chat-distilled student saw it; only the
    /// answer's positions are scored.
    #[arg(long, value_name = "FILE")]
    prompts: Option<PathBuf>,
    /// The reading test: top1 (the suspect's most likely token, spec §8.2) or
    /// expected (its whole top-k distribution, paired against --reference-model
    /// when given, spec §8.5; far more powerful on fine-tuned students).
    #[arg(long, value_enum, default_value_t = ReadingStatistic::Top1)]
    statistic: ReadingStatistic,
    /// Read a suspect whose tokenizer is not the lab's through the text (spec §8.6):
    /// the lab's tokens are scored where both tokenizations start a token at the
    /// same byte, the suspect's predictions mapped to the lab's vocabulary.
    #[arg(long)]
    cross_tokenizer: bool,
    /// The lab's tokenizer.json, for --cross-tokenizer (default: the default
    /// model's; it must be the profile's).
    #[arg(long, value_name = "FILE", requires = "cross_tokenizer")]
    tokenizer: Option<PathBuf>,
    /// Tokens per position the expected test weighs (top-k of the suspect and of
    /// the reference; default 20). Only with --statistic expected.
    #[arg(long, value_name = "K")]
    top_k: Option<usize>,
    #[command(flatten)]
    common: AuditCommon,
}

/// `audit weights --statistic`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadingStatistic {
    /// Score the suspect's top-1 prediction (spec §8.2).
    Top1,
    /// Weigh the suspect's top-k distribution (spec §8.5).
    Expected,
}

#[derive(Args)]
#[command(after_long_help = include_str!("../../help/audit-corpus.txt").trim_end())]
pub struct CorpusArgs {
    /// The suspect corpus: files or - (JSONL with --field, or one text per file).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
    /// tokenizer.json matching the profile (default: the default model's).
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    /// A GGUF model whose own tokenizer to use.
    #[arg(long, value_name = "GGUF", conflicts_with = "tokenizer")]
    model: Option<PathBuf>,
    /// The lab's own watermarked outputs (same formats as the inputs): keep only
    /// suspect tuples whose window occurs in them.
    #[arg(long, value_name = "FILE")]
    filter_from: Vec<String>,
    /// A clean reference corpus (e.g. a model known not to be trained on the lab's
    /// outputs answering the same prompts): the same pipeline runs on it and it is
    /// shown beside the suspect.
    #[arg(long, value_name = "FILE", conflicts_with = "shard")]
    reference: Vec<String>,
    /// Normalise every text (suspect, reference, filter) before it is tokenized,
    /// as detect --normalize does (spec §5.1; recorded in the report).
    #[arg(long, value_enum, default_value_t = super::NormalizeArg::None, value_name = "HOW")]
    normalize: super::NormalizeArg,
    #[command(flatten)]
    common: AuditCommon,
    /// Only this shard of the tuple space, as INDEX/COUNT (e.g. 3/8): shards are
    /// disjoint, so separate jobs can split a large audit exactly.
    #[arg(long, value_name = "I/N", requires = "partial")]
    shard: Option<String>,
    /// Write this shard's partial result (JSON) instead of a verdict (a report
    /// comes from audit merge).
    #[arg(long, value_name = "FILE", conflicts_with = "report")]
    partial: Option<PathBuf>,
}

#[derive(Args)]
pub struct MergeArgs {
    /// Partial results written by audit corpus --shard ... --partial, one per shard.
    #[arg(required = true, value_name = "PARTIAL")]
    parts: Vec<PathBuf>,
    /// The watermark profile (its scheme gives the null distribution; no key needed).
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,
    /// Level for attribution (both p-values must reach it).
    #[arg(long, default_value_t = 1e-3)]
    alpha: f64,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
    /// Also write an evidence report of the merged result (spec/report.md).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

#[derive(Args)]
#[command(after_long_help = include_str!("../../help/audit-api.txt").trim_end())]
pub struct ApiArgs {
    /// Also ask for the top-K log-probabilities of every generated token
    /// (logprobs: true, top_logprobs: K; 1 ≤ K ≤ 20) and test the suspect's whole
    /// distribution at each position with the expected-score test (spec §8.5),
    /// shown as its own verdict beside the corpus test's. The suspect must answer
    /// in the lab's tokenizer; an endpoint that returns no logprobs stops the run.
    #[arg(long, value_name = "K")]
    logprobs: Option<u32>,
    /// Base URL of the OpenAI-compatible API (…/v1) or the full …/chat/completions URL.
    #[arg(long, value_name = "URL")]
    endpoint: String,
    /// Model name to ask the endpoint for.
    #[arg(long, value_name = "NAME")]
    model: String,
    /// Prompts (JSON Lines: {"id", "prompt"} or {"id", "messages"}, as for generate).
    #[arg(long, value_name = "FILE")]
    prompts: PathBuf,
    /// Directory for the answer cache and the verdict (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Answers asked per prompt.
    #[arg(long, default_value_t = 1, value_name = "N")]
    samples_per_prompt: u32,
    /// max_tokens of each request.
    #[arg(long, default_value_t = 256, value_name = "N")]
    max_tokens: u32,
    /// temperature of each request.
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Environment variable holding the endpoint's API key (none sent if unset).
    #[arg(long, default_value = "OPENAI_API_KEY", value_name = "VAR")]
    api_key_env: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    concurrency: usize,
    /// Most requests started per second (0 = no limit).
    #[arg(long, default_value_t = 0.0, value_name = "PER_SECOND")]
    rate_limit: f64,
    /// Retries per item after the first attempt.
    #[arg(long, default_value_t = 5, value_name = "N")]
    retries: u32,
    /// First backoff delay; doubles on each retry (at most 60 s).
    #[arg(long, default_value_t = 500, value_name = "MS")]
    backoff_ms: u64,
    /// Seconds before a request is abandoned (and retried).
    #[arg(long, default_value_t = 120.0, value_name = "SECONDS")]
    timeout: f64,
    /// A clean reference endpoint (e.g. a model known not to be trained on the lab's
    /// outputs) asked the same prompts; shown beside the suspect.
    #[arg(long, value_name = "URL")]
    reference_endpoint: Option<String>,
    /// Model name at the reference endpoint (default: --model).
    #[arg(long, value_name = "NAME", requires = "reference_endpoint")]
    reference_model: Option<String>,
    /// The lab's tokenizer.json (default: the default model's).
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    /// The lab's own watermarked outputs: keep only tuples whose window occurs in them.
    #[arg(long, value_name = "FILE")]
    filter_from: Vec<String>,
    /// Normalise every text (answers, filter) before it is tokenized,
    /// as detect --normalize does (spec §5.1; recorded in the report).
    #[arg(long, value_enum, default_value_t = super::NormalizeArg::None, value_name = "HOW")]
    normalize: super::NormalizeArg,
    #[command(flatten)]
    common: AuditCommon,
}

impl AuditCommon {
    /// The settings an audit records.
    fn settings(&self) -> AuditSettings {
        AuditSettings {
            alpha: self.alpha,
            null_keys: self.null_keys,
            null_seed: self.null_seed,
            field: self.field.clone(),
            normalize: Normalization::None,
        }
    }

    /// Checks the levels and loads the key file.
    fn key(&self) -> Result<Key> {
        check_levels(self.alpha, self.null_keys)?;
        Ok(Key::load(&self.key)?)
    }

    /// The profile with `key` (from [`AuditCommon::key`]).
    fn keyed<'k>(&self, key: &'k Key) -> Result<Keyed<'k>> {
        Ok(Keyed {
            profile: Profile::load(&self.profile)?,
            key,
            profile_name: self.profile.display().to_string(),
            key_name: self.key.display().to_string(),
        })
    }

    fn output(&self) -> Output {
        Output::new(self.json, self.report.clone())
    }
}

fn shown(path: &Option<PathBuf>) -> Option<String> {
    path.as_ref().map(|p| p.display().to_string())
}

/// Converts the arguments into the audits' recipes and configs, and runs
/// the audit.
pub fn run(cmd: AuditCommand) -> Result<ExitCode> {
    match cmd {
        AuditCommand::Corpus(a) => {
            let shard = match &a.shard {
                Some(s) => parse_shard(s)?,
                None => Shard::ALL,
            };
            let key = a.common.key()?;
            let recipe = CorpusRecipe {
                locations: Default::default(),
                settings: AuditSettings {
                    normalize: a.normalize.into(),
                    ..a.common.settings()
                },
                lab: a.common.keyed(&key)?,
                tokenizer: shown(&a.tokenizer),
                model: shown(&a.model),
                filter_from: a.filter_from,
                reference: a.reference,
                inputs: a.inputs,
            };
            audit::corpus(recipe, shard, a.partial, a.common.output())
        }
        AuditCommand::Weights(a) => {
            let key = a.common.key()?;
            let recipe = WeightsRecipe {
                locations: Default::default(),
                settings: a.common.settings(),
                lab: a.common.keyed(&key)?,
                suspect: a.suspect.display().to_string(),
                reference_model: shown(&a.reference_model),
                texts: a.texts,
                prompts: shown(&a.prompts),
            };
            let reading = audit::Reading {
                threads: a.threads,
                cross_tokenizer: a.cross_tokenizer,
                lab_tokenizer: a.tokenizer,
            };
            match (a.statistic, a.top_k) {
                (ReadingStatistic::Top1, Some(_)) => {
                    anyhow::bail!("--top-k applies to --statistic expected only")
                }
                (ReadingStatistic::Top1, None) => {
                    audit::weights(recipe, reading, a.common.output())
                }
                (ReadingStatistic::Expected, k) => audit::weights_expected(
                    recipe,
                    reading,
                    k.unwrap_or(provmark_audit::weights::DEFAULT_TOP_K),
                    a.common.output(),
                ),
            }
        }
        AuditCommand::Merge(a) => {
            let recipe = MergeRecipe {
                alpha: a.alpha,
                profile: Profile::load(&a.profile)?,
                profile_name: a.profile.display().to_string(),
                parts: a.parts.iter().map(|p| p.display().to_string()).collect(),
                locations: Default::default(),
            };
            audit::merge(recipe, Output::new(a.json, a.report))
        }
        AuditCommand::Api(a) => {
            let key = a.common.key()?;
            let lab = a.common.keyed(&key)?;
            let log = &mut |l: &str| errln!("provmark: {l}");
            let tokenizer = text_tokenizer(a.tokenizer.as_deref(), None, log)?;
            tokenizer.check_profile(&lab.profile, false)?;
            ApiAuditConfig::check_counts(a.samples_per_prompt, a.max_tokens, a.concurrency)?;
            let (prompts, prompts_sha256) = provmark_audit::api::read_prompts(&a.prompts)?;
            let config = ApiAuditConfig {
                endpoint: a.endpoint,
                model: a.model,
                reference_endpoint: a.reference_endpoint,
                reference_model: a.reference_model,
                prompts,
                prompts_sha256,
                out: a.out,
                samples_per_prompt: a.samples_per_prompt,
                max_tokens: a.max_tokens,
                temperature: a.temperature,
                api_key_env: a.api_key_env,
                concurrency: a.concurrency,
                rate_limit: a.rate_limit,
                retries: a.retries,
                backoff_ms: a.backoff_ms,
                timeout_s: a.timeout,
                tokenizer,
                normalization: a.normalize.into(),
                filter_from: a.filter_from,
                field: a.common.field.clone(),
                null: a.common.settings().null(),
                alpha: a.common.alpha,
                top_logprobs: a.logprobs,
            };
            audit::api::run(config, lab, shown(&a.tokenizer), a.common.output())
        }
    }
}

fn parse_shard(text: &str) -> Result<Shard> {
    let bad = || {
        anyhow::anyhow!("--shard must be INDEX/COUNT with INDEX < COUNT (e.g. 0/4), got {text:?}")
    };
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let i: u32 = i.trim().parse().map_err(|_| bad())?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    let most = provmark_evidence::MAX_SHARDS;
    if n > most {
        anyhow::bail!("--shard: at most {most} shards (a merged report is recomputed shard by shard), got {n}");
    }
    Shard::new(i, n).ok_or_else(bad)
}
