//! provmark-watermark: the keyed schedule, the three schemes and the
//! serve-time embedding API of provmark, as defined by `spec/SPEC.md`.
//!
//! No ML dependencies: link it into any serving stack. The flow is
//! [`Key`] → [`Profile`] → [`Embedder`] (serve time) or [`Schedule`]
//! (detection, in `provmark-verify`).

mod embed;
mod key;
pub mod keystream;
mod profile;
mod sampling;
mod schedule;
pub mod scoring;

pub use embed::Embedder;
pub use key::{hex, Key, KEY_LEN};
pub use profile::{
    KgwParams, Profile, Scheme, SynthIdParams, TokenizerDigest, MAX_CONTEXT, MAX_DELTA, MAX_LAYERS,
};
pub use rand_core;
pub use sampling::SamplingConfig;
pub use schedule::{GumbelUniform, Schedule, Seed, TokenValues, SYNTHID_DRAW_WORD};

/// The specification version this crate implements.
pub const SPEC_VERSION: &str = "provmark-wm/1";

/// Everything that can go wrong building a watermark. Messages name the
/// input and the field; they never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key file or key that cannot be used.
    #[error("key: {0}")]
    Key(String),
    /// A profile that is malformed or invalid.
    #[error("profile: {0}")]
    Profile(String),
    /// Invalid sampling settings.
    #[error("sampling: {0}")]
    Sampling(String),
}
