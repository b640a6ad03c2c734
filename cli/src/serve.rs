//! `provmark serve`: the OpenAI-compatible server until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Result;
use provmark_llm::serving::{Serving, ServingConfig};
use provmark_serve::{ListenConfig, ServeConfig};

/// Starts the engine and serves it on `addr` until Ctrl-C or SIGTERM.
pub fn run(
    addr: SocketAddr,
    serving: &ServingConfig,
    config: ServeConfig,
    listen: ListenConfig,
) -> Result<ExitCode> {
    let serving = Serving::start(serving, &mut |l| errln!("provmark: {l}"))?;
    let model_id = config.model_id_for(&serving.model_name);
    let mark = serving
        .profile
        .as_ref()
        .map_or("NO watermark (control)", |_| "watermark on");
    let app = provmark_serve::router(serving, config)?;
    // One line per answer on stderr (RUST_LOG overrides the level).
    tracing_subscriber::fmt()
        .with_writer(|| LossyStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("provmark=info")),
        )
        .init();
    provmark_serve::transport::serve_until_signal(addr, app, listen, |at| {
        // Announced on stdout; a closed stdout must not stop the server.
        let _ = {
            use std::io::Write as _;
            writeln!(
                std::io::stdout().lock(),
                "provmark: serving {model_id} on http://{at} ({mark})"
            )
        };
        errln!("provmark: Ctrl-C stops; running answers get --shutdown-timeout to finish");
    })?;
    errln!("provmark: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Standard error for the request log, where a failed write is dropped:
/// tracing-subscriber reports a failing writer with eprintln!, which panics
/// (and took the request's worker with it) when stderr is a closed pipe.
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
