//! The recorder a detecting command fills while it runs: parameters,
//! profiles and key commitments, input digests, tokenizers, and the replay
//! argument list; [`Recorder::finish`] turns it into a digested [`Report`].

use std::path::Path;

use provmark_watermark::{Key, Profile};
use serde_json::{json, Map, Value};

use crate::digest::file_sha256;
use crate::report::{Command, Host, InputEntry, ProfileEntry, Report, Run, Tool};
use crate::{Error, FORMAT};

/// Collects what a detecting command read and decided, and how to replay it.
pub struct Recorder {
    command: String,
    /// Facts of the run that are evidence but cannot be recomputed (e.g. how
    /// an API audit's answers were collected): digested, not replayed.
    collection: Option<Value>,
    /// The command line to replay, files as `@input:N`, `@profile:N`, `@key:N`.
    replay: Vec<String>,
    parameters: Map<String, Value>,
    inputs: Vec<InputEntry>,
    leaves: Vec<[u8; 32]>,
    profiles: Vec<ProfileEntry>,
    tokenizers: Vec<String>,
    started: std::time::Instant,
}

impl Recorder {
    /// A recorder for `command` (e.g. `detect`, `audit corpus`); the replay
    /// starts with the command's words.
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

    /// A parameter with a value: recorded as `json_value` under `name` with
    /// `_` for `-`, and replayed as `--name value`.
    pub fn param(&mut self, name: &str, value: impl std::fmt::Display, json_value: Value) {
        self.replay.push(format!("--{name}"));
        self.replay.push(value.to_string());
        self.parameters.insert(name.replace('-', "_"), json_value);
    }

    /// A parameter recorded under `name` but not replayed (a merge's
    /// settings come from its partials, not from its command line).
    pub fn parameter(&mut self, name: &str, json_value: Value) {
        self.parameters.insert(name.to_string(), json_value);
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

    /// An input file (`flag` is `None` for positional inputs); its SHA-256
    /// and length are recorded and its place in the replay becomes `@input:N`.
    ///
    /// Errors: [`Error::StandardInput`] for `-`; [`Error::Open`] /
    /// [`Error::Read`] when the file cannot be read.
    pub fn input(&mut self, flag: Option<&str>, role: &str, path: &str) -> Result<(), Error> {
        self.input_at(flag, role, path, Path::new(path))
    }

    /// As [`Recorder::input`] for the input named `name` whose bytes are
    /// read from `path` (a verifier's copy): the name is recorded, the
    /// digest is of `path`'s bytes.
    pub fn input_at(
        &mut self,
        flag: Option<&str>,
        role: &str,
        name: &str,
        path: &Path,
    ) -> Result<(), Error> {
        if name == "-" || path == Path::new("-") {
            return Err(Error::StandardInput);
        }
        let digest = file_sha256(path)?;
        let n = self.inputs.len();
        if let Some(f) = flag {
            self.replay.push(format!("--{f}"));
        }
        self.replay.push(format!("@input:{n}"));
        self.inputs.push(InputEntry {
            index: n,
            role: role.to_string(),
            name: name.to_string(),
            sha256: digest.hex(),
            bytes: digest.bytes,
        });
        self.leaves.push(digest.sha256);
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
        self.profiles.push(ProfileEntry {
            profile: profile.to_json(),
            digest: profile.digest(),
            key_id: key.id(),
            key_commitment: Some(key.commitment()),
        });
    }

    /// A profile with its key's commitment only (a merge holds no key but
    /// its shards were made under one): replayed as `--profile @profile:N`.
    pub fn profile_committed(&mut self, profile: &Profile, key_commitment: &str) {
        let n = self.profiles.len();
        self.replay.push("--profile".into());
        self.replay.push(format!("@profile:{n}"));
        self.profiles.push(ProfileEntry {
            profile: profile.to_json(),
            digest: profile.digest(),
            key_id: profile.key_id().to_string(),
            key_commitment: Some(key_commitment.to_string()),
        });
    }

    /// A file the computation depends on but this command did not read
    /// (a merge's corpus, known from its shards' bindings): recorded with
    /// the given digest and length, not replayed.
    ///
    /// Errors: [`Error::Recipe`] when `sha256` is not 64 lowercase hex digits.
    pub fn input_recorded(
        &mut self,
        role: &str,
        name: &str,
        sha256: &str,
        bytes: u64,
    ) -> Result<(), Error> {
        let mut leaf = [0u8; 32];
        let hex = sha256.as_bytes();
        let valid = hex.len() == 64 && hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !valid {
            return Err(Error::Recipe(format!(
                "{name}: SHA-256 {sha256:?} is not 64 hex digits"
            )));
        }
        for (i, byte) in leaf.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&sha256[2 * i..2 * i + 2], 16).expect("hex checked");
        }
        self.inputs.push(InputEntry {
            index: self.inputs.len(),
            role: role.to_string(),
            name: name.to_string(),
            sha256: sha256.to_string(),
            bytes,
        });
        self.leaves.push(leaf);
        Ok(())
    }

    /// The parameters recorded so far (name → typed value).
    pub fn parameters(&self) -> &Map<String, Value> {
        &self.parameters
    }

    /// The inputs recorded so far, in order.
    pub fn inputs(&self) -> &[InputEntry] {
        &self.inputs
    }

    /// The profiles recorded so far, in order.
    pub fn profiles(&self) -> &[ProfileEntry] {
        &self.profiles
    }

    /// The digest of a tokenizer the command used (recorded once).
    pub fn tokenizer(&mut self, digest: &str) {
        if !self.tokenizers.iter().any(|t| t == digest) {
            self.tokenizers.push(digest.to_string());
        }
    }

    /// The finished report: `results` and `decision` from the command, the
    /// tool, the run (this process's argv, elapsed time, host) and the digest.
    pub fn finish(self, results: Value, decision: Value) -> Report {
        let mut report = Report {
            format: FORMAT.to_string(),
            spec: provmark_watermark::SPEC_VERSION.to_string(),
            tool: Tool {
                name: "provmark".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                commit: option_env!("PROVMARK_COMMIT").unwrap_or("unknown").into(),
            },
            command: Command {
                name: self.command,
                replay: self.replay,
            },
            parameters: self.parameters,
            profiles: self.profiles,
            tokenizers: self.tokenizers,
            inputs: self.inputs,
            inputs_merkle_root: crate::digest::merkle_root(&self.leaves),
            results,
            decision,
            collection: self.collection,
            run: Run {
                argv: std::env::args().collect(),
                seconds: self.started.elapsed().as_secs_f64(),
                finished_unix: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
                host: Host {
                    os: std::env::consts::OS.into(),
                    arch: std::env::consts::ARCH.into(),
                    threads: rayon::current_num_threads(),
                },
            },
            digest: String::new(),
            signature: None,
        };
        report.digest = report.computed_digest();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_replay_parameters_inputs_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        std::fs::write(&a, "{\"text\": \"x\"}\n").unwrap();
        let mut r = Recorder::new("audit corpus");
        r.param("null-keys", 9, json!(9));
        r.switch("jsonl", false);
        r.switch("windows", true);
        r.tokenizer("sha256:t");
        r.tokenizer("sha256:t");
        r.input(Some("filter-from"), "filter", a.to_str().unwrap())
            .unwrap();
        r.input(None, "input", a.to_str().unwrap()).unwrap();
        assert!(matches!(
            r.input(None, "input", "-"),
            Err(Error::StandardInput)
        ));
        r.collection(json!({"endpoint": "e"}));
        let report = r.finish(json!({"n": 1}), json!({"verdict": "x"}));
        assert_eq!(
            report.command.replay,
            [
                "audit",
                "corpus",
                "--null-keys",
                "9",
                "--windows",
                "--filter-from",
                "@input:0",
                "@input:1"
            ]
        );
        assert_eq!(report.parameters["null_keys"], json!(9));
        assert_eq!(report.parameters["jsonl"], json!(false));
        assert_eq!(report.tokenizers, ["sha256:t"]);
        assert_eq!(report.inputs[1].index, 1);
        assert_eq!(report.inputs[1].bytes, 14);
        let d = file_sha256(&a).unwrap();
        assert_eq!(
            report.inputs_merkle_root,
            crate::merkle_root(&[d.sha256, d.sha256])
        );
        assert!(report.digest_matches());
        assert_eq!(report.collection, Some(json!({"endpoint": "e"})));
    }
}
