//! Verification of a report (spec/report.md §4) as a library call: the
//! digest, the signature, each key against its commitment, each file
//! against its SHA-256, then a recomputation compared member by member.
//!
//! How the report is recomputed is the caller's [`Recompute`] step; it is
//! only called when every key and every file is the recorded one, and gets
//! the report's typed content (command name, parameters, profiles, inputs)
//! with the verifier's own keys and files, so an in-process recomputation
//! can rebuild the computation through an allow-list without ever running
//! `command.replay`. What a caller can state about the result:
//! [`VerifyOutcome::recomputed`] (whether the recomputation ran),
//! [`VerifyOutcome::signer`] (who signed, when the signature holds),
//! [`crate::NOT_RECOMPUTED`] (members no recomputation covers), and
//! [`Report::canonical_file`] (to require a file's exact canonical bytes).

use std::fmt;
use std::path::{Path, PathBuf};

use provmark_watermark::{Key, Profile};
use serde_json::Value;

use crate::digest::file_sha256;
use crate::report::Report;
use crate::sign::{self, SignatureError};
use crate::tolerance::{self, Place};
use crate::{Error, NOT_RECOMPUTED, UNDIGESTED};

/// Field differences listed at most.
pub const MAX_FIELD_DIFFERENCES: usize = 50;

/// A key given to a verifier and the file it came from.
#[derive(Debug)]
pub struct KeyFile {
    /// The key file as given (named in differences).
    pub path: PathBuf,
    /// The key.
    pub key: Key,
}

impl KeyFile {
    /// Loads a key file (see `Key::load`).
    pub fn load(path: &Path) -> Result<KeyFile, Error> {
        Ok(KeyFile {
            path: path.to_path_buf(),
            key: Key::load(path)?,
        })
    }
}

/// The recomputation step: from the report, the verifier's keys (in the
/// order of the keyed profiles) and files (in `inputs` order), the report
/// the computation gives now. Only called once keys and files are checked.
pub type Recompute<'a> = dyn Fn(&Report, &[KeyFile], &[PathBuf]) -> Result<Report, Error> + 'a;

/// One way a report differs from what its keys, files and recomputation give.
/// `Display` gives the line `report verify` prints.
#[derive(Clone, Debug, PartialEq)]
pub enum Difference {
    /// The content hashes to `computed`, not to the `recorded` digest.
    Digest { computed: String, recorded: String },
    /// The file's bytes are not the canonical form of its content (spec/report.md
    /// §1): a duplicated, reordered or re-spaced member, so that a reader of
    /// the file may see other values than the ones verified. `offset` is the
    /// first byte that differs.
    NotCanonical { offset: usize },
    /// A signer was required but the report is unsigned.
    Unsigned,
    /// The signature does not hold.
    Signature(SignatureError),
    /// Key `index` (given as `path`) has commitment `computed`, not the recorded one.
    KeyCommitment {
        index: usize,
        path: PathBuf,
        computed: String,
        recorded: String,
    },
    /// Keyed profile `index`'s embedded profile no longer has its recorded digest.
    ProfileDigest { index: usize },
    /// File `index` (recorded as `role` `name`, given as `path`) has
    /// SHA-256 `computed`, not the `recorded` one.
    InputDigest {
        index: usize,
        role: String,
        name: String,
        path: PathBuf,
        computed: String,
        recorded: String,
    },
    /// The member at `path` (`a.b[3].c`) differs from the recomputation;
    /// `None` where one side lacks it.
    Field {
        path: String,
        recorded: Option<Value>,
        recomputed: Option<Value>,
    },
    /// A merged report's partial file `name` is not the shard its corpus
    /// files give (spec/report.md §6).
    Partial { name: String, detail: String },
    /// Not recomputed because a key or a file differs.
    NotRecomputed,
    /// The report's command, parameters or input roles are not ones the
    /// recomputation allows (spec/report.md §5): nothing was computed.
    NotRecomputable { reason: String },
}

impl Difference {
    /// Whether this difference is about the keys or files given (which
    /// stops the recomputation).
    pub fn is_about_given(&self) -> bool {
        matches!(
            self,
            Difference::KeyCommitment { .. } | Difference::InputDigest { .. }
        )
    }

    /// Whether this difference is about the report's own integrity (its
    /// bytes, digest or signature): nothing is recomputed from such a report.
    pub fn is_about_integrity(&self) -> bool {
        matches!(
            self,
            Difference::NotCanonical { .. }
                | Difference::Digest { .. }
                | Difference::Unsigned
                | Difference::Signature(_)
                | Difference::ProfileDigest { .. }
        )
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted = |s: &str| Value::from(s).to_string();
        match self {
            Difference::Digest { computed, recorded } => write!(
                f,
                "digest: the report's content hashes to {computed}, not its recorded {recorded} \
                 (it was edited after it was made)"
            ),
            Difference::NotCanonical { offset } => write!(
                f,
                "file: not the canonical bytes of its content (RFC 8785; first difference at byte \
                 {offset}): a duplicated, reordered or re-spaced member can show a reader other \
                 values than the ones verified"
            ),
            Difference::Unsigned => write!(f, "signature: none, but --signer was given"),
            Difference::Signature(e) => write!(f, "signature: {e}"),
            Difference::KeyCommitment {
                index,
                path,
                computed,
                recorded,
            } => write!(
                f,
                "key {index} ({}): its commitment {computed} is not the recorded {}",
                path.display(),
                quoted(recorded)
            ),
            Difference::ProfileDigest { index } => {
                write!(f, "profiles[{index}].digest: does not match its profile")
            }
            Difference::InputDigest {
                index,
                role,
                name,
                path,
                computed,
                recorded,
            } => write!(
                f,
                "input {index} ({role} {name}, given {}): SHA-256 {computed} is not the recorded {}",
                path.display(),
                quoted(recorded)
            ),
            Difference::Field {
                path,
                recorded: Some(old),
                recomputed: Some(new),
            } => write!(f, "{path}: {} ≠ recomputed {}", short(old), short(new)),
            Difference::Field { path, .. } => write!(f, "{path}"),
            Difference::Partial { name, detail } => write!(f, "partial {name}: {detail}"),
            Difference::NotRecomputed => write!(
                f,
                "computation: not recomputed (the report's integrity, the key or the inputs fail)"
            ),
            Difference::NotRecomputable { reason } => write!(
                f,
                "computation: refused, not a computation provmark records: {reason}"
            ),
        }
    }
}

/// What verification found.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyOutcome {
    /// The digest as recorded in the report.
    pub digest: String,
    /// Every difference, in the order of spec/report.md §4; empty on MATCH.
    pub differences: Vec<Difference>,
    /// Whether the recomputation ran.
    pub recomputed: bool,
    /// The public key (hex) of a signature that verified; `None`: unsigned,
    /// or the signature does not hold.
    pub signer: Option<String>,
    /// The members taken as recorded, which no recomputation checks (by
    /// JSON path: `tool`, `run`, and each member of an API audit's
    /// `collection`): only a signature vouches for them.
    pub not_recomputed: Vec<String>,
}

impl VerifyOutcome {
    /// MATCH: no difference at all.
    pub fn matched(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Paths where two JSON values differ (`a.b[3].c`), at most `limit`;
/// numbers compare as spec/report.md §4 step 5 says ([`crate::tolerance`]).
fn differences(old: &Value, new: &Value, path: &str, out: &mut Vec<Difference>, limit: usize) {
    differences_at(old, new, path, Place::default(), out, limit)
}

/// The JSON paths where `new` differs from `old` under the comparison rule
/// of spec/report.md §4 step 5 (exact, or within SPEC §8's tolerance for
/// the approximations of real numbers), at most [`MAX_FIELD_DIFFERENCES`].
pub fn differing_members(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    differences(old, new, "", &mut out, MAX_FIELD_DIFFERENCES);
    out.iter()
        .map(|d| match d {
            Difference::Field { path, .. } => path.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn is_expected_test(a: &Value, b: &Value) -> bool {
    a.get("variance").is_some() || b.get("variance").is_some()
}

fn differences_at(
    old: &Value,
    new: &Value,
    path: &str,
    place: Place<'_>,
    out: &mut Vec<Difference>,
    limit: usize,
) {
    if out.len() >= limit {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let expected =
                is_expected_test(old, new) || (place.expected && place.member == Some("key_swap"));
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let inner = Place {
                    member: Some(k.as_str()),
                    parent: place.member,
                    expected,
                };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => differences_at(x, y, &p, inner, out, limit),
                    (x, y) => out.push(Difference::Field {
                        path: p,
                        recorded: x.cloned(),
                        recomputed: y.cloned(),
                    }),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences_at(x, y, &format!("{path}[{i}]"), place, out, limit);
            }
        }
        // Numbers compare by value, as their canonical bytes (2.0 and 2 are
        // one number; a file read back holds the latter), or within the
        // spec's tolerance where they approximate a real number.
        _ if old == new || crate::jcs(old) == crate::jcs(new) => {}
        _ if tolerance::leaves_agree(place, old, new) => {}
        _ => out.push(Difference::Field {
            path: path.to_string(),
            recorded: Some(old.clone()),
            recomputed: Some(new.clone()),
        }),
    }
}

/// The members a recomputation reproduces.
fn recomputable(report: &Report) -> Value {
    let mut v = report.to_value();
    if let Value::Object(m) = &mut v {
        for k in UNDIGESTED.iter().chain(NOT_RECOMPUTED) {
            m.remove(*k);
        }
    }
    v
}

/// Each given file against the SHA-256 the report records for it (in
/// `inputs` order): the differences, or [`Error::InputCount`] when not as
/// many files are given as the report lists.
pub(crate) fn input_differences(
    report: &Report,
    inputs: &[PathBuf],
) -> Result<Vec<Difference>, Error> {
    let mut problems = Vec::new();
    if inputs.len() != report.inputs.len() {
        return Err(Error::InputCount {
            expected: report
                .inputs
                .iter()
                .map(|i| (i.role.clone(), i.name.clone()))
                .collect(),
            given: inputs.len(),
        });
    }
    for (i, (rec, path)) in report.inputs.iter().zip(inputs).enumerate() {
        let d = file_sha256(path)?.hex();
        if d != rec.sha256 {
            problems.push(Difference::InputDigest {
                index: i,
                role: rec.role.clone(),
                name: rec.name.clone(),
                path: path.clone(),
                computed: d,
                recorded: rec.sha256.clone(),
            });
        }
    }
    Ok(problems)
}

/// Verifies `report` (spec/report.md §4): its digest; its signature (and
/// that it is `signer`'s, a hex public key, when given); each key file in
/// `keys` (one per keyed profile, in order) against its commitment, and each
/// embedded profile against its digest; each file in `inputs` (one per
/// `inputs` entry, in order) against its SHA-256; then, when every key and
/// file is the recorded one, `recompute` and every member other than
/// `digest`, `run`, `signature`, `tool`, `collection` and `command`
/// compared by JSON path (at most [`MAX_FIELD_DIFFERENCES`]).
///
/// Errors (the check cannot run): [`Error::KeyCount`], [`Error::InputCount`],
/// a key file that cannot be loaded, [`Error::InvalidProfile`], a file that
/// cannot be read, or the recomputation's own error.
pub fn verify(
    report: &Report,
    keys: &[PathBuf],
    inputs: &[PathBuf],
    signer: Option<&str>,
    recompute: &Recompute<'_>,
) -> Result<VerifyOutcome, Error> {
    verify_with(Vec::new(), report, keys, inputs, signer, recompute)
}

/// [`verify`] after the differences already `found` in the file.
fn verify_with(
    found: Vec<Difference>,
    report: &Report,
    keys: &[PathBuf],
    inputs: &[PathBuf],
    signer: Option<&str>,
    recompute: &Recompute<'_>,
) -> Result<VerifyOutcome, Error> {
    let mut problems = found;
    let recorded = report.digest.clone();
    let computed = report.computed_digest();
    if computed != recorded {
        problems.push(Difference::Digest {
            computed,
            recorded: recorded.clone(),
        });
    }
    let mut signed_by = None;
    match (&report.signature, signer) {
        (None, Some(_)) => problems.push(Difference::Unsigned),
        (None, None) => {}
        (Some(sig), signer) => match sign::check(sig, &recorded, signer) {
            Ok(()) => signed_by = Some(sig.public_key.to_ascii_lowercase()),
            Err(e) => problems.push(Difference::Signature(e)),
        },
    }
    let keyed: Vec<_> = report.keyed_profiles().collect();
    if keys.len() != keyed.len() {
        return Err(Error::KeyCount {
            expected: keyed.len(),
            given: keys.len(),
        });
    }
    let mut key_files = Vec::with_capacity(keys.len());
    for (i, (p, path)) in keyed.iter().zip(keys).enumerate() {
        let key = KeyFile::load(path)?;
        let commitment = key.key.commitment();
        let recorded = p.key_commitment.as_deref().unwrap_or_default();
        if commitment != recorded {
            problems.push(Difference::KeyCommitment {
                index: i,
                path: path.clone(),
                computed: commitment,
                recorded: recorded.to_string(),
            });
        }
        // The embedded profile must still be valid and keep its digest.
        let profile = Profile::from_json(&p.profile)
            .map_err(|source| Error::InvalidProfile { index: i, source })?;
        if profile.digest() != p.digest {
            problems.push(Difference::ProfileDigest { index: i });
        }
        key_files.push(key);
    }
    problems.extend(input_differences(report, inputs)?);
    let given_ok = !problems
        .iter()
        .any(|d| d.is_about_given() || d.is_about_integrity());
    if given_ok {
        match recompute(report, &key_files, inputs) {
            Ok(new) => {
                let limit = problems.len() + MAX_FIELD_DIFFERENCES;
                differences(
                    &recomputable(report),
                    &recomputable(&new),
                    "",
                    &mut problems,
                    limit,
                );
            }
            // A command, parameter, level or input role provmark does not
            // record: not a report it makes, so a mismatch, not a failed run.
            Err(
                e @ (Error::Recipe(_)
                | Error::Parameters { .. }
                | Error::UnknownCommand { .. }
                | Error::Attribution(_)),
            ) => problems.push(Difference::NotRecomputable {
                reason: crate::error_chain(&e),
            }),
            Err(Error::PartialDiffers { name, detail }) => {
                problems.push(Difference::Partial { name, detail })
            }
            Err(e) => return Err(e),
        }
    } else {
        problems.push(Difference::NotRecomputed);
    }
    Ok(VerifyOutcome {
        digest: recorded,
        differences: problems,
        recomputed: given_ok,
        signer: signed_by,
        not_recomputed: not_recomputed(report),
    })
}

/// The members of `report` no recomputation reproduces, by JSON path.
fn not_recomputed(report: &Report) -> Vec<String> {
    let mut members: Vec<String> = NOT_RECOMPUTED.iter().map(|m| m.to_string()).collect();
    members.push("run".into());
    if let Some(Value::Object(c)) = &report.collection {
        members.extend(c.keys().map(|k| format!("collection.{k}")));
    }
    members
}

/// Reads the report file at `path` and verifies it ([`verify`]), first
/// requiring that the file holds exactly the canonical bytes of its content
/// ([`Difference::NotCanonical`] otherwise: a parser keeps the last of two
/// equal members while a reader sees the first).
///
/// Errors: as [`crate::read_text`] and [`crate::parse`], then as [`verify`].
pub fn verify_file(
    path: &Path,
    keys: &[PathBuf],
    inputs: &[PathBuf],
    signer: Option<&str>,
    recompute: &Recompute<'_>,
) -> Result<VerifyOutcome, Error> {
    let text = crate::report::read_text(path)?;
    let report = crate::parse(&text, &path.display().to_string())?;
    // Nothing is recomputed from a file whose bytes are not its content.
    let found = crate::report::canonical_offset(&text, &report)
        .map(|offset| Difference::NotCanonical { offset })
        .into_iter()
        .collect();
    verify_with(found, &report, keys, inputs, signer, recompute)
}
