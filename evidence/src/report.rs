//! The report of spec/report.md §2 as a typed structure, its canonical
//! bytes and digest, and reading and writing report files.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::{jcs, sha256_tagged};
use crate::{Error, FORMAT, UNDIGESTED};

/// One evidence report (`provmark-report/1`, spec/report.md §2). Members
/// that differ per command (`parameters`, `results`, `decision`,
/// `collection`) stay JSON values; the rest is typed. Unknown top-level
/// members are refused, as the schema does (`additionalProperties: false`).
///
/// Serialising with [`Report::canonical`] gives the RFC 8785 bytes every
/// report file holds (followed by one line feed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// `"provmark-report/1"` ([`FORMAT`]).
    pub format: String,
    /// The watermark specification the numbers follow (`"provmark-wm/1"`).
    pub spec: String,
    /// The program and its source commit.
    pub tool: Tool,
    /// The command and the argument list that recomputes the report.
    pub command: Command,
    /// Every setting that changes a result, as typed JSON values, by name
    /// with `_` for `-` (e.g. `alpha`, `null_keys`, `window_min`).
    pub parameters: Map<String, Value>,
    /// The profiles used, in command-line order.
    pub profiles: Vec<ProfileEntry>,
    /// SHA-256 digests (SPEC §3 form, `sha256:…`) of the tokenizers used.
    pub tokenizers: Vec<String>,
    /// Every file read, in the order the command read it.
    pub inputs: Vec<InputEntry>,
    /// The Merkle root (spec/report.md §3) over `inputs[].sha256`, 64 hex characters.
    pub inputs_merkle_root: String,
    /// The command's results (detect: `{texts: [...]}`; audits: the members of `--json`).
    pub results: Value,
    /// The decision (detect: counts and correction; audits: verdict, alpha, correction).
    pub decision: Value,
    /// Facts of how the inputs were obtained that cannot be recomputed
    /// (e.g. `audit api`'s endpoint and model); digested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<Value>,
    /// Times, command line and host; not digested.
    pub run: Run,
    /// `"sha256:"` + hex SHA-256 of the JCS bytes without `digest`, `run`, `signature`.
    pub digest: String,
    /// The auditor's ed25519 signature over `digest`; not digested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// `tool`: the program that wrote the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    /// `"provmark"`.
    pub name: String,
    /// The program version (Cargo package version).
    pub version: String,
    /// The source commit (40 hex characters) or `"unknown"`.
    pub commit: String,
}

/// `command`: what ran and how to run it again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// `detect`, `audit corpus`, `audit weights`, `audit api` or `audit merge`.
    pub name: String,
    /// The argument list that recomputes the report; files appear as
    /// `@input:N`, `@profile:N`, `@key:N`. For people and other
    /// implementations; never executed as given by verification.
    pub replay: Vec<String>,
}

/// `profiles[]`: one profile and its key's public facts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileEntry {
    /// The profile object of SPEC §3 (parse it with `Profile::from_json`).
    pub profile: Value,
    /// Its SHA-256 digest (SPEC §3, `sha256:…`).
    pub digest: String,
    /// The key's public id (SPEC §2).
    pub key_id: String,
    /// The key's commitment (SPEC §2, 64 hex characters); `None` where the
    /// command used no key (e.g. `audit merge`).
    pub key_commitment: Option<String>,
}

/// `inputs[]`: one file the command read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputEntry {
    /// Its place in `inputs` (from 0).
    pub index: usize,
    /// `input`, `tokenizer`, `model`, `filter`, `reference`, `suspect`,
    /// `reference_model` or `partial`.
    pub role: String,
    /// The path as given on the command line.
    pub name: String,
    /// Hex SHA-256 of the file's bytes (64 characters).
    pub sha256: String,
    /// The file's length in bytes.
    pub bytes: u64,
}

/// `run`: facts of this run that are not evidence (not digested).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The command line as typed.
    pub argv: Vec<String>,
    /// Wall time of the command in seconds.
    pub seconds: f64,
    /// When it finished, in seconds since 1970 (UTC).
    pub finished_unix: u64,
    /// The machine.
    pub host: Host,
}

/// `run.host`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// `std::env::consts::OS`.
    pub os: String,
    /// `std::env::consts::ARCH`.
    pub arch: String,
    /// Worker threads.
    pub threads: usize,
}

/// `signature`: an Ed25519 signature (RFC 8032) over the ASCII bytes of `digest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// `"ed25519"`.
    pub algorithm: String,
    /// The signer's public key, 64 hex characters.
    pub public_key: String,
    /// What is signed: `"digest"`.
    pub signed: String,
    /// The signature, 128 hex characters.
    pub value: String,
}

impl Report {
    /// The report's RFC 8785 bytes (without the final line feed).
    pub fn canonical(&self) -> String {
        jcs(self)
    }

    /// The bytes of a report file: [`Report::canonical`] and one line feed.
    /// A file with other bytes (whitespace, member order, a duplicate
    /// member) is not in canonical form.
    pub fn canonical_file(&self) -> String {
        self.canonical() + "\n"
    }

    /// The report as a JSON value (objects sorted by member name).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a report is a JSON value")
    }

    /// The digest recomputed from the report's content:
    /// `"sha256:"` + hex SHA-256 of the JCS bytes without `digest`, `run`
    /// and `signature` (spec/report.md §2).
    pub fn computed_digest(&self) -> String {
        let mut v = self.to_value();
        if let Value::Object(m) = &mut v {
            for k in UNDIGESTED {
                m.remove(*k);
            }
        }
        sha256_tagged(&jcs(&v))
    }

    /// Whether the content hashes to the recorded `digest`.
    pub fn digest_matches(&self) -> bool {
        self.computed_digest() == self.digest
    }

    /// The profiles that were used with a key (those a verifier gives a key for).
    pub fn keyed_profiles(&self) -> impl Iterator<Item = &ProfileEntry> {
        self.profiles.iter().filter(|p| p.key_commitment.is_some())
    }
}

/// Parses a report from its bytes; `name` names it in errors.
///
/// Errors: [`Error::NotJson`], [`Error::Format`] (another `format`),
/// [`Error::Invalid`] (members of the wrong type, unknown members).
pub fn parse(text: &str, name: &str) -> Result<Report, Error> {
    let v: Value = serde_json::from_str(text).map_err(|source| Error::NotJson {
        name: name.to_string(),
        source,
    })?;
    if v["format"] != FORMAT {
        return Err(Error::Format {
            name: name.to_string(),
            found: v["format"].to_string(),
        });
    }
    serde_json::from_value(v).map_err(|source| Error::Invalid {
        name: name.to_string(),
        source,
    })
}

/// The largest report file read: 64 MiB (a detect report of about 250,000
/// texts). Parsing takes about 25 times a file's size in memory, so this
/// keeps a hostile report under about 1.6 GB; a larger file is refused
/// before it is parsed.
pub const MAX_REPORT_BYTES: u64 = 64 << 20;

/// The largest partial result read: 256 MiB (its null statistics, about 9
/// bytes a key, read straight into numbers).
pub const MAX_PARTIAL_BYTES: u64 = 256 << 20;

/// A report file's text, read at most [`MAX_REPORT_BYTES`].
///
/// Errors: [`Error::Read`] (unreadable, not a regular file, not UTF-8),
/// [`Error::TooLarge`].
pub fn read_text(path: &Path) -> Result<String, Error> {
    read_text_at_most(path, MAX_REPORT_BYTES)
}

/// A regular file's text, read at most `limit` bytes (see [`read_text`]).
pub fn read_text_at_most(path: &Path, limit: u64) -> Result<String, Error> {
    use std::io::Read as _;
    let read = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = provmark_watermark::open_regular(path).map_err(read)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(read)?;
    if bytes.len() as u64 > limit {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    String::from_utf8(bytes)
        .map_err(|e| read(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// Where the file `text` first differs from the canonical bytes of the
/// `report` parsed from it (spec/report.md §1): `None` when it is exactly
/// [`Report::canonical_file`]. A duplicated member (a parser keeps the
/// last, a reader sees the first), other member order or whitespace all
/// differ.
pub fn canonical_offset(text: &str, report: &Report) -> Option<usize> {
    let canonical = report.canonical_file();
    let (a, b) = (text.as_bytes(), canonical.as_bytes());
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    (common != a.len() || a.len() != b.len()).then_some(common)
}

/// Reads a report file that must be in canonical form (what `render` and
/// `sign` accept): [`read_text`], [`parse`], then [`Error::NotCanonical`]
/// when the bytes are not the canonical form of the content.
pub fn read(path: &Path) -> Result<Report, Error> {
    let text = read_text(path)?;
    let name = path.display().to_string();
    let report = parse(&text, &name)?;
    if let Some(offset) = canonical_offset(&text, &report) {
        return Err(Error::NotCanonical { name, offset });
    }
    Ok(report)
}

/// Writes a report in canonical form: its JCS bytes and one line feed.
///
/// An existing file at `path` is replaced only when it is itself a report
/// (a rerun); anything else (the command's own input, a key) is refused with
/// [`Error::WouldOverwrite`]. The bytes go to a temporary file beside it that
/// is renamed into place, so a reader never sees half a report.
pub fn write(path: &Path, report: &Report) -> Result<(), Error> {
    crate::output::check_replaceable(path, crate::output::OutputKind::Report)?;
    // Nor one of the files the report was made from (its digest would
    // record bytes that no longer exist).
    if report
        .inputs
        .iter()
        .any(|i| same_file(path, Path::new(&i.name)))
    {
        return Err(Error::WouldOverwrite {
            path: path.to_path_buf(),
            what: "one of the report's own inputs",
        });
    }
    write_atomic(path, report.canonical_file().as_bytes()).map_err(|source| Error::WriteReport {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether `a` and `b` name one existing file (same device and inode).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path` (atomic on one file system).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "format": FORMAT, "spec": "provmark-wm/1",
            "tool": {"name": "provmark", "version": "0.1.0", "commit": "unknown"},
            "command": {"name": "detect", "replay": ["detect", "@input:0"]},
            "parameters": {"alpha": 0.01}, "profiles": [], "tokenizers": [],
            "inputs": [], "inputs_merkle_root": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "results": {"x": 1}, "decision": {},
            "run": {"argv": [], "seconds": 1.5, "finished_unix": 3, "host": {"os": "linux", "arch": "x86_64", "threads": 2}},
            "digest": "",
        })
    }

    #[test]
    fn digest_ignores_run_and_signature_only() {
        let a = parse(&sample().to_string(), "a").unwrap();
        let mut b = a.clone();
        b.run.seconds = 2.0;
        b.signature = Some(Signature {
            algorithm: "ed25519".into(),
            public_key: "00".into(),
            signed: "digest".into(),
            value: "00".into(),
        });
        b.digest = "sha256:other".into();
        assert_eq!(a.computed_digest(), b.computed_digest());
        b.results["x"] = json!(2);
        assert_ne!(a.computed_digest(), b.computed_digest());
        // The digest is that of the JCS bytes of the value without the three.
        let mut v = sample();
        for k in UNDIGESTED {
            v.as_object_mut().unwrap().remove(*k);
        }
        assert_eq!(a.computed_digest(), sha256_tagged(&jcs(&v)));
    }

    #[test]
    fn typed_form_round_trips_to_the_same_canonical_bytes() {
        let v = sample();
        let r = parse(&v.to_string(), "a").unwrap();
        assert_eq!(r.canonical(), jcs(&v));
        let mut with = v.clone();
        with["collection"] = json!({"endpoint": "https://x"});
        let r = parse(&with.to_string(), "a").unwrap();
        assert_eq!(r.canonical(), jcs(&with));
        // A duplicate member parses (the last wins) but is not canonical.
        let text = r.canonical_file();
        let dup = text.replacen("{", "{\"decision\":{\"x\":1},", 1);
        let d = parse(&dup, "d").unwrap();
        assert_eq!(d.canonical_file(), text);
        assert_ne!(d.canonical_file(), dup);
    }

    #[test]
    fn parse_names_what_is_wrong() {
        let e = parse("{", "r.json").unwrap_err();
        assert!(matches!(e, Error::NotJson { .. }) && e.to_string() == "r.json: not a JSON report");
        let e = parse(r#"{"format": "x"}"#, "r.json").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"r.json: field format is "x", expected "provmark-report/1""#
        );
        let mut v = sample();
        v["inputs"] =
            json!([{"index": 0, "role": "input", "name": "a", "sha256": "00", "bytes": "<b>"}]);
        assert!(matches!(
            parse(&v.to_string(), "r").unwrap_err(),
            Error::Invalid { .. }
        ));
        let mut v = sample();
        v["extra"] = json!(1);
        assert!(matches!(
            parse(&v.to_string(), "r").unwrap_err(),
            Error::Invalid { .. }
        ));
    }
}
