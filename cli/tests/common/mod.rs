//! Helpers shared by the CLI's integration tests.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `provmark` binary in `dir`.
pub fn provmark(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provmark"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("provmark runs")
}
