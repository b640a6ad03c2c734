//! Starting a watermarked engine (what `provmark generate` and
//! `provmark serve` share): find the model (default: the default model,
//! fetched once), load the profile and key, check that the profile was made
//! for this model's tokenizer, and start the batching [`Engine`] with the
//! watermark embedder — or, for the control arm, without it.

use crate::model::Precision;
use std::path::PathBuf;
use std::sync::Arc;

use provmark_watermark::{Embedder, Key, Profile, TokenizerDigest};

use crate::engine::{default_threads, Engine, EngineConfig};
use crate::runtime::Runtime;

/// The profile and key files of the watermark to embed.
#[derive(Clone, Debug)]
pub struct WatermarkFiles {
    /// The profile (JSON).
    pub profile: PathBuf,
    /// Its secret key file.
    pub key: PathBuf,
}

/// What [`Serving::start`] needs.
#[derive(Clone, Debug)]
pub struct ServingConfig {
    /// A GGUF model (llama, Qwen2 or Qwen3 family); `None`: the default model
    /// ([`crate::default_model::ensure`]).
    pub model: Option<PathBuf>,
    /// The watermark; `None` runs without one (the control arm).
    pub watermark: Option<WatermarkFiles>,
    /// Use the model even when its tokenizer's digest differs from the
    /// profile's.
    pub force_tokenizer: bool,
    /// Compute threads; `None`: [`default_threads`]. 0 counts as 1.
    pub threads: Option<usize>,
    /// Sequences decoded together (continuous batching), at least 1.
    pub batch: usize,
    /// How the weights are held: [`Precision::Q8_0`] (fast; the default of
    /// serving) or [`Precision::AsStored`] (an F32/F16 model exactly as its
    /// file holds it, e.g. a fine-tuned student served for a grey-box audit).
    pub precision: Precision,
}

/// Why an engine could not be started. Messages name the files.
#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    /// The model cannot be fetched or loaded, or the engine not started.
    #[error(transparent)]
    Model(#[from] crate::Error),
    /// The profile or the key file cannot be used.
    #[error(transparent)]
    Watermark(#[from] provmark_watermark::Error),
    /// The key is not the profile's (or the profile cannot be embedded).
    #[error("{} with {}", profile.display(), key.display())]
    Embedder {
        /// The profile file.
        profile: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        #[source]
        source: provmark_watermark::Error,
    },
    /// The profile records another tokenizer than the model's own.
    #[error(
        "{} was made for another tokenizer than {}'s: tokenizer mismatch: the profile was made \
         for {expected} but this tokenizer is {got}; token ids would differ and detection would \
         be meaningless (--force-tokenizer overrides)",
        profile.display(),
        model.display()
    )]
    TokenizerMismatch {
        /// The profile file.
        profile: PathBuf,
        /// The model file.
        model: PathBuf,
        /// The digest the profile records.
        expected: TokenizerDigest,
        /// The model tokenizer's digest.
        got: TokenizerDigest,
    },
    /// `batch` is 0.
    #[error("batch must be at least 1")]
    ZeroBatch,
}

/// A started engine and what records and APIs say about it.
pub struct Serving {
    /// The engine (owns the model).
    pub engine: Engine,
    /// The watermark's profile; `None` for a control engine.
    pub profile: Option<Profile>,
    /// The model file's name (e.g. `SmolLM2-135M-Instruct.Q4_1.gguf`).
    pub model_name: String,
}

impl Serving {
    /// Finds and loads the model, loads and checks the watermark, and starts
    /// the engine. `log` receives progress lines (fetching, loading).
    pub fn start(
        config: &ServingConfig,
        log: &mut dyn FnMut(&str),
    ) -> Result<Serving, ServingError> {
        if config.batch == 0 {
            return Err(ServingError::ZeroBatch);
        }
        let path = match &config.model {
            Some(p) => p.clone(),
            None => crate::default_model::ensure(log)?,
        };
        let model_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        let watermark = match &config.watermark {
            Some(files) => {
                let profile = Profile::load(&files.profile)?;
                let key = Key::load(&files.key)?;
                let embedder =
                    Embedder::new(&profile, &key).map_err(|source| ServingError::Embedder {
                        profile: files.profile.clone(),
                        key: files.key.clone(),
                        source,
                    })?;
                Some((profile, embedder, &files.profile))
            }
            None => None,
        };
        log(&format!("loading {}", path.display()));
        let runtime = Runtime::load_with(&path, &model_name, config.precision)?;
        let (profile, embedder) = match watermark {
            Some((profile, embedder, profile_path)) => {
                let got = runtime.tokenizer.digest();
                if !config.force_tokenizer && !runtime.tokenizer.accepts(profile.tokenizer()) {
                    return Err(ServingError::TokenizerMismatch {
                        profile: profile_path.clone(),
                        model: path,
                        expected: profile.tokenizer().clone(),
                        got,
                    });
                }
                (Some(profile), Some(embedder))
            }
            None => (None, None),
        };
        let engine_config = EngineConfig {
            threads: config.threads.unwrap_or_else(default_threads).max(1),
            max_batch: config.batch,
            ..EngineConfig::default()
        };
        let engine = Engine::start(Arc::new(runtime), embedder, engine_config)?;
        Ok(Serving {
            engine,
            profile,
            model_name,
        })
    }

    /// The model bundle (tokenizer, chat template, SHA-256).
    pub fn runtime(&self) -> &Runtime {
        self.engine.runtime()
    }

    /// The profile's key id and digest, when the watermark is on.
    pub fn disclosure(&self) -> Option<(String, String)> {
        self.profile
            .as_ref()
            .map(|p| (p.key_id().to_string(), p.digest()))
    }
}
