//! `provmark`: keys, watermark profiles and detection from the command line.
//! The command line is [`args`]; the other modules do the commands' work.

mod args;
mod audit;
mod detect;
mod generate;
mod keys;
mod models;
mod profiles;
mod report;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match args::Cli::parse().run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("provmark: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
