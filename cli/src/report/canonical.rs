//! The canonical evidence report (`spec/report.md`): how a detecting
//! command records what it read and what it found, so that anyone with the
//! key, the inputs and the spec can recompute it bit for bit.
//!
//! A report is one JSON object written in RFC 8785 (JCS) form. Everything
//! except `run` (times, host) and `signature` is covered by `digest`, the
//! SHA-256 of the JCS bytes of the report without those three members.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use provmark_watermark::{Key, Profile};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const FORMAT: &str = "provmark-report/1";

/// Members outside the digest.
pub const UNDIGESTED: &[&str] = &["digest", "run", "signature"];

/// The SHA-256 and length of a file, read in blocks.
pub fn file_digest(path: &Path) -> Result<([u8; 32], u64)> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((h.finalize().into(), len))
}

/// The Merkle root of the inputs' SHA-256 digests, in report order
/// (RFC 6962 style: leaf = H(0x00 ‖ digest), node = H(0x01 ‖ left ‖ right),
/// an odd node is carried up unchanged; no inputs: H of nothing).
pub fn merkle_root(leaves: &[[u8; 32]]) -> String {
    if leaves.is_empty() {
        return hex(&Sha256::digest([]).into());
    }
    let mut level: Vec<[u8; 32]> = leaves
        .iter()
        .map(|d| {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(d);
            h.finalize().into()
        })
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => {
                    let mut h = Sha256::new();
                    h.update([1u8]);
                    h.update(l);
                    h.update(r);
                    h.finalize().into()
                }
                [one] => *one,
                _ => unreachable!("chunks of two"),
            })
            .collect();
    }
    hex(&level[0])
}

pub fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// JCS bytes of a JSON value.
pub fn jcs(v: &Value) -> String {
    serde_jcs::to_string(v).expect("JSON values serialise")
}

/// The digested part of a report and its SHA-256.
pub fn digest_of(report: &Value) -> Result<String> {
    let Value::Object(m) = report else {
        bail!("a report is a JSON object");
    };
    let body: Map<String, Value> = m
        .iter()
        .filter(|(k, _)| !UNDIGESTED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(format!(
        "sha256:{}",
        hex(&Sha256::digest(jcs(&Value::Object(body)).as_bytes()).into())
    ))
}

/// Collects what a detecting command read and decided, and how to replay it.
pub struct Recorder {
    command: String,
    /// Facts of the run that are evidence but cannot be recomputed (e.g. how
    /// an API audit's answers were collected): digested, not replayed.
    collection: Option<Value>,
    /// The command line to replay, files as `@input:N`, `@profile:N`, `@key:N`.
    replay: Vec<String>,
    parameters: Map<String, Value>,
    inputs: Vec<Value>,
    leaves: Vec<[u8; 32]>,
    profiles: Vec<Value>,
    tokenizers: Vec<String>,
    started: std::time::Instant,
}

impl Recorder {
    /// A recorder for `command` (e.g. `detect`, `audit corpus`).
    pub fn new(command: &str) -> Recorder {
        Recorder {
            command: command.to_string(),
            collection: None,
            replay: command.split(' ').map(str::to_string).collect(),
            parameters: Map::new(),
            inputs: Vec::new(),
            leaves: Vec::new(),
            profiles: Vec::new(),
            tokenizers: Vec::new(),
            started: std::time::Instant::now(),
        }
    }

    /// A parameter with a value: recorded and replayed as `--name value`.
    pub fn param(&mut self, name: &str, value: impl std::fmt::Display, json_value: Value) {
        self.replay.push(format!("--{name}"));
        self.replay.push(value.to_string());
        self.parameters.insert(name.replace('-', "_"), json_value);
    }

    /// A boolean switch: recorded always, replayed when set.
    pub fn switch(&mut self, name: &str, on: bool) {
        if on {
            self.replay.push(format!("--{name}"));
        }
        self.parameters.insert(name.replace('-', "_"), json!(on));
    }

    /// Names the command differently from the replay (e.g. `audit api`,
    /// whose numbers are recomputed by `audit corpus` on its answers).
    pub fn rename(&mut self, name: &str) {
        self.command = name.to_string();
    }

    /// How the inputs were collected (digested, not recomputed).
    pub fn collection(&mut self, facts: Value) {
        self.collection = Some(facts);
    }

    /// An input file (`flag` is `None` for positional inputs); its digest
    /// is recorded and its place in the replay becomes `@input:N`.
    pub fn input(&mut self, flag: Option<&str>, role: &str, path: &str) -> Result<()> {
        if path == "-" {
            bail!(
                "--report needs every input as a file (standard input cannot be digested \
                 and given again to a verifier)"
            );
        }
        let (digest, bytes) = file_digest(Path::new(path))?;
        let n = self.inputs.len();
        if let Some(f) = flag {
            self.replay.push(format!("--{f}"));
        }
        self.replay.push(format!("@input:{n}"));
        self.inputs.push(json!({
            "index": n,
            "role": role,
            "name": path,
            "sha256": hex(&digest),
            "bytes": bytes,
        }));
        self.leaves.push(digest);
        Ok(())
    }

    /// A profile and its key: the profile is embedded (canonical form and
    /// digest), the key only by id and commitment.
    pub fn profile(&mut self, profile: &Profile, key: &Key) {
        let n = self.profiles.len();
        self.replay.push("--profile".into());
        self.replay.push(format!("@profile:{n}"));
        self.replay.push("--key".into());
        self.replay.push(format!("@key:{n}"));
        self.profiles.push(json!({
            "profile": profile.to_json(),
            "digest": profile.digest(),
            "key_id": key.id(),
            "key_commitment": key.commitment(),
        }));
    }

    /// A profile used without its key (e.g. audit merge).
    pub fn profile_only(&mut self, profile: &Profile) {
        let n = self.profiles.len();
        self.replay.push("--profile".into());
        self.replay.push(format!("@profile:{n}"));
        self.profiles.push(json!({
            "profile": profile.to_json(),
            "digest": profile.digest(),
            "key_id": profile.key_id(),
            "key_commitment": Value::Null,
        }));
    }

    /// The digest of a tokenizer the command used.
    pub fn tokenizer(&mut self, digest: &str) {
        if !self.tokenizers.iter().any(|t| t == digest) {
            self.tokenizers.push(digest.to_string());
        }
    }

    /// The finished report: results and decision from the command.
    pub fn finish(self, results: Value, decision: Value) -> Result<Value> {
        let mut report = json!({
            "format": FORMAT,
            "spec": provmark_watermark::SPEC_VERSION,
            "tool": {
                "name": "provmark",
                "version": env!("CARGO_PKG_VERSION"),
                "commit": option_env!("PROVMARK_COMMIT").unwrap_or("unknown"),
            },
            "command": {"name": self.command, "replay": self.replay},
            "parameters": self.parameters,
            "profiles": self.profiles,
            "tokenizers": self.tokenizers,
            "inputs": self.inputs,
            "inputs_merkle_root": merkle_root(&self.leaves),
            "results": results,
            "decision": decision,
            "run": {
                "argv": std::env::args().collect::<Vec<_>>(),
                "seconds": self.started.elapsed().as_secs_f64(),
                "finished_unix": std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
                "host": {
                    "os": std::env::consts::OS,
                    "arch": std::env::consts::ARCH,
                    "threads": rayon::current_num_threads(),
                },
            },
        });
        if let Some(c) = self.collection {
            report["collection"] = c;
        }
        let digest = digest_of(&report)?;
        report["digest"] = json!(digest);
        Ok(report)
    }
}

/// Writes a report in canonical form (one line).
pub fn write(path: &Path, report: &Value) -> Result<()> {
    std::fs::write(path, jcs(report) + "\n")
        .with_context(|| format!("cannot write the report {}", path.display()))?;
    eprintln!(
        "provmark: report {} ({})",
        path.display(),
        report["digest"].as_str().unwrap_or("")
    );
    Ok(())
}

/// Reads a report and checks its format.
pub fn read(path: &Path) -> Result<Value> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{name}: not a JSON report"))?;
    if v["format"] != FORMAT {
        bail!(
            "{name}: field format is {}, expected {FORMAT:?}",
            v["format"]
        );
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merkle_root_follows_rfc6962_shape() {
        let d = |b: u8| [b; 32];
        let leaf = |x: [u8; 32]| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(x);
            h.finalize().into()
        };
        let node = |l: [u8; 32], r: [u8; 32]| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(l);
            h.update(r);
            h.finalize().into()
        };
        assert_eq!(merkle_root(&[d(1)]), hex(&leaf(d(1))));
        let three = node(node(leaf(d(1)), leaf(d(2))), leaf(d(3)));
        assert_eq!(merkle_root(&[d(1), d(2), d(3)]), hex(&three));
        assert_ne!(merkle_root(&[d(2), d(1)]), merkle_root(&[d(1), d(2)]));
    }

    #[test]
    fn digest_ignores_run_and_signature_only() {
        let a = json!({"format": FORMAT, "results": {"x": 1}, "run": {"seconds": 1.0}});
        let mut b = a.clone();
        b["run"]["seconds"] = json!(2.0);
        b["signature"] = json!("sig");
        assert_eq!(digest_of(&a).unwrap(), digest_of(&b).unwrap());
        b["results"]["x"] = json!(2);
        assert_ne!(digest_of(&a).unwrap(), digest_of(&b).unwrap());
    }
}
