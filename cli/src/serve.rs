//! `provmark serve`: the OpenAI-compatible server (provmark-serve) on a
//! listener until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result};
use provmark_llm::serving::{Serving, ServingConfig};
use provmark_serve::ServeConfig;

/// Starts the engine and serves it on `listen` until Ctrl-C or SIGTERM.
pub fn run(listen: SocketAddr, serving: &ServingConfig, config: ServeConfig) -> Result<ExitCode> {
    let serving = Serving::start(serving, &mut |l| eprintln!("provmark: {l}"))?;
    let model_id = config.model_id_for(&serving.model_name);
    let mark = if serving.profile.is_some() {
        "watermark on"
    } else {
        "NO watermark (control)"
    };
    let app = provmark_serve::router(serving, config)?;
    // One line per answer on stderr (RUST_LOG overrides the level).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("provmark=info")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        println!("provmark: serving {model_id} on http://{addr} ({mark})");
        eprintln!("provmark: Ctrl-C stops; running answers finish first");
        provmark_serve::serve(listener, app, provmark_serve::shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    eprintln!("provmark: stopped");
    Ok(ExitCode::SUCCESS)
}
