//! What a report must hold before it is shown to a person: the members the
//! typed [`Report`] leaves as JSON (`profiles[].profile`, `results`,
//! `decision`) checked for their kinds, so that a forged report whose digest
//! was recomputed cannot carry markup or other text where the format has
//! numbers (spec/report.md §2; the page escapes every value besides).
//!
//! The rule: every leaf of `results` and `decision` is a number, a boolean
//! or null, except the members of [`TEXT_MEMBERS`] (free text, escaped
//! where shown) and of [`WORD_MEMBERS`] (short lowercase words such as
//! verdicts and schemes), `key_id` (16 hex digits) and `profile_digest`
//! (`sha256:` and 64 hex digits). Each embedded profile must be a valid
//! profile (SPEC §3) with its recorded digest and key id; the command is one
//! of [`COMMANDS`], every input role one of [`ROLES`] and every input digest
//! 64 hex digits.

use provmark_watermark::Profile;
use serde_json::Value;

use crate::report::Report;
use crate::Error;

/// Members holding free text: a record's id, an unreadable record's error,
/// a profile's name as given.
pub const TEXT_MEMBERS: &[&str] = &["id", "error", "profile"];

/// Members holding one lowercase word (`[a-z_]`, at most 32 characters):
/// verdicts, schemes, multiple-testing corrections, normalisations.
pub const WORD_MEMBERS: &[&str] = &["verdict", "scheme", "correction", "normalize"];

/// The commands a report records (spec/report.md §2).
pub const COMMANDS: &[&str] = &[
    "detect",
    "audit corpus",
    "audit weights",
    "audit api",
    "audit merge",
];

/// The input roles (spec/report.md §2).
pub const ROLES: &[&str] = &[
    "input",
    "tokenizer",
    "model",
    "filter",
    "reference",
    "suspect",
    "reference_model",
    "prompts",
    "partial",
];

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Checks one string leaf under `member` (the last object key on its path).
fn string_ok(member: &str, s: &str) -> bool {
    if TEXT_MEMBERS.contains(&member) {
        return true;
    }
    if WORD_MEMBERS.contains(&member) {
        return is_word(s);
    }
    match member {
        "key_id" => is_hex(s, 16),
        "profile_digest" => s.strip_prefix("sha256:").is_some_and(|h| is_hex(h, 64)),
        _ => false,
    }
}

fn walk(v: &Value, path: &str, member: &str) -> Result<(), Error> {
    let bad = |reason: &str| Error::Content {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        Value::String(s) if string_ok(member, s) => Ok(()),
        Value::String(_) => Err(bad(
            if TEXT_MEMBERS.contains(&member)
                || WORD_MEMBERS.contains(&member)
                || member == "key_id"
                || member == "profile_digest"
            {
                "not of the form this member has"
            } else {
                "text where the format has a number, a boolean or null"
            },
        )),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| walk(x, &format!("{path}[{i}]"), member)),
        Value::Object(m) => m
            .iter()
            .try_for_each(|(k, x)| walk(x, &format!("{path}.{k}"), k)),
    }
}

/// Checks the members of `report` that a page shows beyond its typed
/// fields: `results` and `decision` by the rule of this module, and every
/// embedded profile (valid, with its recorded digest and key id).
///
/// Errors: [`Error::Content`] naming the first member that breaks the rule
/// (by JSON path), [`Error::InvalidProfile`].
pub fn validate(report: &Report) -> Result<(), Error> {
    let content = |path: String, reason: &str| Error::Content {
        path,
        reason: reason.to_string(),
    };
    if !COMMANDS.contains(&report.command.name.as_str()) {
        return Err(content(
            "command.name".into(),
            "not a command provmark records",
        ));
    }
    for (i, input) in report.inputs.iter().enumerate() {
        if !ROLES.contains(&input.role.as_str()) {
            return Err(content(format!("inputs[{i}].role"), "not an input role"));
        }
        if !is_hex(&input.sha256, 64) {
            return Err(content(format!("inputs[{i}].sha256"), "not 64 hex digits"));
        }
    }
    for (index, p) in report.profiles.iter().enumerate() {
        let profile = Profile::from_json(&p.profile)
            .map_err(|source| Error::InvalidProfile { index, source })?;
        if profile.digest() != p.digest || profile.key_id() != p.key_id {
            return Err(Error::Content {
                path: format!("profiles[{index}]"),
                reason: "the digest or key id is not the embedded profile's".into(),
            });
        }
    }
    walk(&report.results, "results", "results")?;
    walk(&report.decision, "decision", "decision")
}
