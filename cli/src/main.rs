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
    quiet_caught_panics();
    match args::Cli::parse().run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("provmark: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// A panic inside a guarded load of an untrusted file (a suspect's GGUF,
/// its tokenizer or chat template: `provmark_llm::gguf::guard`) is caught
/// and reported as an error naming the file, then exit 2; the default hook
/// would first print "thread 'main' panicked at …" as if provmark had
/// crashed. So while a guarded call runs, the hook stays quiet, unless
/// `RUST_BACKTRACE` is set (a developer chasing the bug gets the full
/// report). Panics anywhere else are reported as usual.
fn quiet_caught_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if provmark_llm::gguf::guarded() && std::env::var_os("RUST_BACKTRACE").is_none() {
            return;
        }
        default(info)
    }));
}
