//! Helpers shared by the CLI's integration tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use provmark_testkit::lab::{self, LabBuilder};

/// Runs the `provmark` binary in `dir`.
#[allow(dead_code)] // not every test file runs it directly
pub fn provmark(dir: &Path, args: &[&str]) -> Output {
    lab::run(Path::new(env!("CARGO_BIN_EXE_provmark")), dir, args)
}

/// A lab directory made with this crate's `provmark` binary.
#[allow(dead_code)] // not every test file builds a lab
pub fn lab_builder() -> LabBuilder {
    LabBuilder::new(env!("CARGO_BIN_EXE_provmark"))
}

/// A `provmark serve` child on a free port, killed if a test fails.
#[allow(dead_code)] // not every test file serves
pub struct Server {
    pub child: Child,
    pub base: String,
}

#[allow(dead_code)]
impl Server {
    /// Starts `provmark serve` in `dir` with `extra` flags.
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_provmark"))
            .current_dir(dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--threads", "2"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Server { child, base }
    }

    /// POSTs JSON; the answer or (status, error body).
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, (u16, Value)> {
        match ureq::post(&format!("{}{path}", self.base)).send_json(body.clone()) {
            Ok(r) => Ok(r.into_json().unwrap()),
            Err(ureq::Error::Status(code, r)) => Err((code, r.into_json().unwrap())),
            Err(e) => panic!("{e}"),
        }
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        // SIGTERM: graceful shutdown.
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        for _ in 0..100 {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child.kill().unwrap();
        panic!("the server did not stop on SIGTERM");
    }
}

impl Drop for Server {
    /// A failing test must not leave its server running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `provmark detect --json` of `input` in `dir` under the lab's profile and
/// key: one result object per text.
#[allow(dead_code)] // not every test file detects
pub fn detect(dir: &Path, input: &str) -> Vec<Value> {
    detect_with(dir, input, &[])
}

/// As [`detect`], with `extra` arguments before the input.
#[allow(dead_code)]
pub fn detect_with(dir: &Path, input: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "detect",
        "--profile",
        "lab.profile.json",
        "--key",
        "lab.key",
        "--json",
        "--alpha",
        "1e-4",
    ];
    args.extend_from_slice(extra);
    args.push(input);
    let out = provmark(dir, &args);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
