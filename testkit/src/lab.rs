//! A temporary lab directory for tests of the `provmark` binary: optionally
//! a BPE tokenizer trained on the bundled corpus (`tokenizer.json`), one or
//! more keys made by `provmark keygen`, and a profile made by
//! `provmark profile new` (`lab.profile.json` under `lab.key`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::corpus::{docs_corpus, train_bpe_json};

/// Runs the binary `bin` in `dir` with `args`, capturing its output.
pub fn run(bin: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("provmark runs")
}

/// How to build a [`Lab`].
pub struct LabBuilder {
    bin: PathBuf,
    vocab: Option<usize>,
    scheme: Option<String>,
    extra_keys: Vec<String>,
    fixed_key: Option<u64>,
}

impl LabBuilder {
    /// A lab made with the `provmark` binary at `bin` (in tests:
    /// `env!("CARGO_BIN_EXE_provmark")`). By default: no tokenizer file (the
    /// profile is for the default model's tokenizer), the default scheme,
    /// only `lab.key`.
    pub fn new(bin: impl Into<PathBuf>) -> LabBuilder {
        LabBuilder {
            bin: bin.into(),
            vocab: None,
            scheme: None,
            extra_keys: Vec::new(),
            fixed_key: None,
        }
    }

    /// Trains a byte-level BPE tokenizer of `vocab` tokens on the bundled
    /// corpus, writes it as `tokenizer.json` and makes the profile for it.
    pub fn tokenizer(mut self, vocab: usize) -> LabBuilder {
        self.vocab = Some(vocab);
        self
    }

    /// The profile's scheme (`--scheme`), e.g. `kgw`.
    pub fn scheme(mut self, scheme: &str) -> LabBuilder {
        self.scheme = Some(scheme.into());
        self
    }

    /// `lab.key` is the seeded test key [`crate::fixtures::key`]`(seed)`
    /// instead of a new random one, so that tests whose outcome depends on
    /// the key (e.g. how long a marked model answer runs) are reproducible.
    pub fn fixed_key(mut self, seed: u64) -> LabBuilder {
        self.fixed_key = Some(seed);
        self
    }

    /// Also makes the key file `name` (after `lab.key`).
    pub fn key(mut self, name: &str) -> LabBuilder {
        self.extra_keys.push(name.into());
        self
    }

    /// Makes the directory: tokenizer, `lab.key`, the extra keys, then
    /// `lab.profile.json`. Panics (with the command's stderr) when a
    /// command fails, and when `profile new` prints the key.
    pub fn build(self) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let tokenizer_json = self.vocab.map(|vocab| {
            let json = train_bpe_json(&docs_corpus(), vocab);
            std::fs::write(dir.path().join("tokenizer.json"), &json).unwrap();
            json
        });
        let mut lab = Lab {
            dir,
            bin: self.bin,
            tokenizer_json,
            key_hex: String::new(),
        };
        lab.ok(&["keygen", "--out", "lab.key"]);
        if let Some(seed) = self.fixed_key {
            std::fs::write(
                lab.join("lab.key"),
                crate::fixtures::key(seed).to_hex_file(),
            )
            .unwrap();
        }
        lab.key_hex = std::fs::read_to_string(lab.join("lab.key"))
            .unwrap()
            .trim()
            .to_string();
        for name in &self.extra_keys {
            lab.ok(&["keygen", "--out", name]);
        }
        let mut args = vec!["profile", "new"];
        if let Some(s) = &self.scheme {
            args.extend(["--scheme", s.as_str()]);
        }
        if lab.tokenizer_json.is_some() {
            args.extend(["--tokenizer", "tokenizer.json"]);
        }
        args.extend(["--key", "lab.key", "--out", "lab.profile.json"]);
        let out = lab.ok(&args);
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(&lab.key_hex)
                && !String::from_utf8_lossy(&out.stderr).contains(&lab.key_hex),
            "the key leaked into output of {args:?}"
        );
        lab
    }
}

/// A lab directory, removed when dropped.
pub struct Lab {
    dir: tempfile::TempDir,
    bin: PathBuf,
    tokenizer_json: Option<String>,
    key_hex: String,
}

impl Lab {
    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A file in the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The trained `tokenizer.json`, when the lab has one.
    pub fn tokenizer_json(&self) -> Option<&str> {
        self.tokenizer_json.as_deref()
    }

    /// The hex of `lab.key` (to check that no output contains it).
    pub fn key_hex(&self) -> &str {
        &self.key_hex
    }

    /// Runs the binary in the directory.
    pub fn run(&self, args: &[&str]) -> Output {
        run(&self.bin, self.path(), args)
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}
