//! `provmark`: keys, watermark profiles and detection from the command line.
//! The command line is [`args`]; the other modules do the commands' work.

/// `println!` that hands a failed write back as an error instead of
/// panicking: `provmark … | head` closes standard output early, and that is
/// an ordinary error (exit 2), not a crash.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
            .map_err(|e| anyhow::anyhow!("cannot write to standard output: {e}"))?
    }};
}

/// `eprintln!` that never panics: a diagnostic lost to a closed standard
/// error must not stop the work (a server keeps serving).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

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
            errln!("provmark: error: {err:#}");
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
