//! provmark-watermark: the keyed schedule, the three schemes and the
//! serve-time embedding API of provmark, as defined by `spec/SPEC.md`.
//!
//! No ML dependencies: link it into any serving stack. The flow is
//! [`Key`] → [`Profile`] → [`Embedder`] → one [`ResponseEmbedder`] per
//! response (serve time), or [`Schedule`] (detection, in `provmark-verify`).
//!
//! ```
//! use provmark_watermark::{Embedder, Key, KgwParams, Profile, SamplingConfig, Scheme, TokenizerDigest};
//! use rand_chacha::rand_core::SeedableRng;
//!
//! let key = Key::from_bytes([7; 32]); // in production: Key::generate() or Key::load(path)
//! let scheme = Scheme::Kgw(KgwParams::new(0.25, 2.0)?);
//! let tokenizer = TokenizerDigest::of_bytes(b"the exact bytes of tokenizer.json");
//! let profile = Profile::new(scheme, 2, tokenizer, &key)?;
//! let embedder = Embedder::new(&profile, &key)?; // once; clones share the schedule
//!
//! // Each response gets its own handle: it remembers the windows it has
//! // already marked (spec §6.1) and holds the step's scratch buffers.
//! let mut response = embedder.response();
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! let cfg = SamplingConfig::new(1.0, 0, 0.95)?;
//! let mut context = vec![101u32, 102]; // prompt token ids
//! for _ in 0..5 {
//!     let logits = vec![0.0f32; 1000]; // the model's raw logits for this step
//!     let next = response.next_token(&context, &logits, &cfg, &mut rng);
//!     context.push(next);
//! }
//! assert_eq!(context.len(), 7);
//! # Ok::<(), provmark_watermark::Error>(())
//! ```

mod embed;
mod file_digest;
mod gumbel_score;
mod json_members;
mod key;
mod keystream;
mod policy;
mod profile;
mod sampling;
mod schedule;
mod scoring;
mod secret_file;

pub use embed::{Embedder, RepeatedWindows, ResponseEmbedder};
pub use file_digest::{file_sha256, not_regular, open_regular, FileDigest, FileDigestError};
pub use gumbel_score::GUMBEL_SCORE_UNITS;
pub use key::{exposure_warning, hex, Key, KEY_LEN, MAX_KEY_FILE_BYTES};
pub use policy::{Applied, BelowFloor, PolicyMode, SamplingFloor, SamplingParam, SamplingPolicy};
pub use profile::{
    KgwParams, Profile, Scheme, SynthIdParams, TokenizerDigest, MAX_CONTEXT, MAX_DELTA, MAX_LAYERS,
};
pub use rand_core;
pub use sampling::{Sampler, SamplingConfig};
pub use schedule::{GumbelUniform, Schedule, Seed, TokenValues, SYNTHID_DRAW_WORD};
pub use secret_file::{write_secret_file, SecretFileError};

/// The specification version this crate implements.
pub const SPEC_VERSION: &str = "provmark-wm/1";

/// Everything that can go wrong building a watermark. Messages name the
/// input and the field; they never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key file or key that cannot be used.
    #[error("key: {0}")]
    Key(String),
    /// The key is not the one the profile was made for.
    #[error(
        "key: the key (id {key_id}) is not the key this profile was made for (id {profile_key_id})"
    )]
    KeyMismatch {
        /// Id of the key given.
        key_id: String,
        /// Id of the key the profile records.
        profile_key_id: String,
    },
    /// A profile that is malformed or invalid.
    #[error("profile: {0}")]
    Profile(String),
    /// Invalid sampling settings.
    #[error("sampling: {0}")]
    Sampling(String),
}
