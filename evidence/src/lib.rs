//! Evidence reports of `spec/report.md` (`provmark-report/1`).
//!
//! A report records one detecting run so that a third party holding the key,
//! the input files and `spec/SPEC.md` can recompute every number in it and
//! obtain the same bytes. This crate holds everything about reports that is
//! not a command line:
//!
//! - [`Report`]: the report as typed serde structure, its RFC 8785 (JCS)
//!   canonical bytes ([`Report::canonical`]) and digest ([`Report::computed_digest`]),
//!   [`read`] / [`parse`] / [`write()`];
//! - [`digest`]: file SHA-256, the inputs' Merkle root (RFC 6962 shape), JCS;
//! - [`Recorder`]: what a command fills while it runs, then [`Recorder::finish`];
//! - [`sign`]: the auditor's ed25519 key, signing and checking a signature;
//! - [`verify()`]: checks a report against keys and files and compares it
//!   with a recomputation, returning typed [`Difference`]s;
//! - `render` (feature `html`): one self-contained HTML page for people.
//!
//! Nothing here prints; every failure is an [`Error`] naming the file, field
//! or parameter (never key material).

pub mod digest;
pub mod output;
mod recipe;
mod recorder;
mod report;
pub mod sign;
pub mod tolerance;
pub mod validate;
mod verify;

#[cfg(feature = "html")]
pub mod render;

use std::path::PathBuf;

pub use digest::{file_sha256, jcs, merkle_root, FileDigest};
pub use recipe::{
    finish_audit, recompute, AuditSettings, CorpusRecipe, DetectRecipe, Keyed, MergeRecipe,
    WeightsRecipe, MAX_SHARDS,
};
pub use recorder::Recorder;
pub use report::{
    canonical_offset, parse, read, read_text, same_file, write, write_atomic, Command, Host,
    InputEntry, ProfileEntry, Report, Run, Signature, Tool,
};
pub use sign::{AuditorKey, SignatureError};
pub use verify::{
    differing_members, verify, verify_file, Difference, KeyFile, Recompute, VerifyOutcome,
    MAX_FIELD_DIFFERENCES,
};

/// The format string of this report version.
pub const FORMAT: &str = "provmark-report/1";

/// Members outside the digest (spec/report.md §2).
pub const UNDIGESTED: &[&str] = &["digest", "run", "signature"];

/// Members a recomputation does not reproduce (besides [`UNDIGESTED`]): the
/// tool build (the digest covers it). An API audit's `collection` is copied
/// from the report (it cannot be recomputed); any other report must have none.
/// `command` is compared: its replay line must be the one the recorded
/// parameters give, so that a person re-running it gets the same computation.
pub const NOT_RECOMPUTED: &[&str] = &["tool"];

/// An error and its sources, `: `-separated (as the CLI prints them).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// A boxed error from a caller-supplied step (recomputation, tokenizer).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong with a report. Messages name the file, the
/// field or the parameter; none contains key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file that cannot be opened.
    #[error("cannot open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file that cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A report that cannot be written.
    #[error("cannot write the report {}", path.display())]
    WriteReport {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another file that cannot be written.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not JSON at all.
    #[error("{name}: not a JSON report")]
    NotJson {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    /// JSON whose `format` member is not [`FORMAT`] (`found` is its JSON text).
    #[error("{name}: field format is {found}, expected {FORMAT:?}")]
    Format { name: String, found: String },
    /// A `provmark-report/1` object whose members do not have the types of
    /// spec/report.md §2 (e.g. a string where `inputs[].bytes` is a count).
    #[error("{name}: not a valid report")]
    Invalid {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    /// Standard input named as a report input.
    #[error(
        "a report's inputs are files: standard input (-) cannot be digested and given again \
         to a verifier"
    )]
    StandardInput,
    /// The report's content does not hash to its `digest`; `action` is what
    /// was refused (`sign`, `render`).
    #[error("{}: larger than the {limit}-byte limit of a report file", path.display())]
    TooLarge { path: PathBuf, limit: u64 },

    #[error(
        "{name}: not the canonical bytes of its content (RFC 8785, spec/report.md §1; first \
         difference at byte {offset}): a duplicated, reordered or re-spaced member can show a \
         reader other values than a parser; refusing it"
    )]
    NotCanonical { name: String, offset: usize },

    #[error("{path}: {reason}; not a report provmark makes, refusing to show it")]
    Content { path: String, reason: String },

    #[error("{} exists and is {}{what}: refusing to overwrite it (give another path)", path.display(), if what.starts_with("one of") { "" } else { "not " })]
    WouldOverwrite { path: PathBuf, what: &'static str },

    #[error("its signature does not verify; refusing to render it")]
    BadSignature {
        #[source]
        source: SignatureError,
    },

    #[error("it does not verify against the given key and files (provmark report verify names what differs); refusing to render it")]
    Unverified,

    #[error("its content does not match its digest; refusing to {action} an edited report")]
    Edited { action: &'static str },
    /// A key or profile from the watermark crate.
    #[error(transparent)]
    Watermark(#[from] provmark_watermark::Error),
    /// A profile embedded in the report that is not a valid profile.
    #[error("profile {index} is not a valid profile")]
    InvalidProfile {
        index: usize,
        #[source]
        source: provmark_watermark::Error,
    },
    /// `verify`: not as many keys as the report has keyed profiles.
    #[error(
        "the report was made with {expected} key(s); give exactly that many, in the report's order"
    )]
    KeyCount { expected: usize, given: usize },
    /// `verify`: not as many files as the report lists inputs; `expected`
    /// holds each input's `(role, name)`.
    #[error("the report lists {} input file(s); give exactly those, in that order", expected.len())]
    InputCount {
        expected: Vec<(String, String)>,
        given: usize,
    },
    /// The auditor's signing key file cannot be read.
    #[error("cannot read the signing key {}", path.display())]
    ReadSigningKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The auditor's signing key file is malformed (its bytes are never shown).
    #[error("the signing key {} must be 64 hex characters", path.display())]
    SigningKey { path: PathBuf },
    /// A new key file that was not written (it exists, or cannot be created).
    #[error(transparent)]
    SecretFile(#[from] provmark_watermark::SecretFileError),
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    /// The recomputation supplied by the caller failed.
    #[error(transparent)]
    Recompute(BoxError),
    /// Rendering: the report has no profile for the token view.
    #[error("the report has no profile")]
    NoProfile,
    /// Rendering: the key is not the one of the report's first profile.
    #[error("{}: not the key of the report's first profile (commitment differs)", path.display())]
    NotTheKey { path: PathBuf },
    /// Rendering: not as many files as the report lists inputs.
    #[error("give the report's {expected} input file(s) with --inputs, in its order")]
    RenderInputCount { expected: usize },
    /// Rendering: a file that is not the one the report was made from.
    #[error("{}: not the file the report was made from (SHA-256 differs)", path.display())]
    NotTheInput { path: PathBuf },
    /// Rendering: tokenization of a text failed.
    #[error("tokenization failed: {0}")]
    Tokenize(String),
    /// A tokenizer, profile or detector problem from the verify crate.
    #[error(transparent)]
    Verify(#[from] provmark_verify::Error),
    /// A profile's detector could not be built under its key.
    #[error("{profile} with {key}")]
    Detector {
        profile: String,
        key: String,
        #[source]
        source: provmark_verify::Error,
    },
    /// No tokenizer given has the profile's digest.
    #[error("{profile} and {tokenizer}")]
    TokenizerFor {
        profile: String,
        tokenizer: String,
        #[source]
        source: provmark_verify::Error,
    },
    /// An input file of a detect run could not be opened or read.
    #[error(transparent)]
    Scan(#[from] provmark_verify::scan::ScanError),
    /// An audit failed.
    #[error(transparent)]
    Audit(#[from] provmark_audit::Error),
    /// Levels, partial files or merging.
    #[error(transparent)]
    Attribution(#[from] provmark_verify::attribution::Error),
    /// Recomputation: a command this version does not record.
    #[error("command {name:?} is not one provmark records (detect, audit corpus, audit api, audit weights, audit merge)")]
    UnknownCommand { name: String },
    /// Recomputation: the parameters are not those the command records.
    #[error("parameters: not those {command} records")]
    Parameters {
        command: String,
        #[source]
        source: serde_json::Error,
    },
    /// Recomputation: inputs or profiles the command does not take.
    #[error("{0}")]
    Recipe(String),
    /// Recomputation of a merged report: a partial file given is not the
    /// shard the corpus files give.
    #[error("partial {name}: {detail}")]
    PartialDiffers { name: String, detail: String },
    /// Recomputation needs the default model's tokenizer, which is not
    /// cached; verification never downloads.
    #[error(
        "the report was made with the default model's tokenizer, which is not cached here; \
         run `provmark model fetch` first (verification never contacts the network)"
    )]
    DefaultModelNotCached,
    /// Rendering: the tokenizer could not be built (caller-supplied step).
    #[error(transparent)]
    Tokenizer(BoxError),
}
