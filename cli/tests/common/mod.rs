//! Helpers shared by the CLI's integration tests.

use std::path::Path;
use std::process::Output;

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
