//! `provmark serve`: the arguments of the OpenAI-compatible server
//! (provmark-serve) and starting it on a listener until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use provmark_llm::serving::ServingConfig;
use provmark_serve::ServeConfig;

use crate::serving::{self, ModelArgs};

#[derive(Args)]
#[command(after_long_help = include_str!("../help/serve.txt").trim_end())]
pub struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Largest max_tokens a request may ask for (also the default).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    max_tokens_limit: usize,
    /// Requests in flight at most (queued or decoding); more get 429.
    #[arg(long, default_value_t = 64, value_name = "N")]
    max_concurrent: usize,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    max_body_bytes: usize,
    /// Name the profile's key id (never the key) and profile digest in an
    /// X-Provmark-Key-Id header and a "provmark" field of each answer.
    #[arg(long)]
    disclose_key_id: bool,
}

impl ServeArgs {
    /// The address, the engine's and the server's settings.
    fn to_config(&self) -> Result<(SocketAddr, ServingConfig, ServeConfig)> {
        if self.max_tokens_limit == 0 || self.max_concurrent == 0 {
            anyhow::bail!("--max-tokens-limit and --max-concurrent must be at least 1");
        }
        let serve = ServeConfig {
            model_id: None,
            max_tokens_limit: self.max_tokens_limit,
            max_concurrent: self.max_concurrent,
            max_body_bytes: self.max_body_bytes,
            disclose_key_id: self.disclose_key_id,
        };
        Ok((self.listen, self.model.to_config()?, serve))
    }
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let (listen, serving, config) = args.to_config()?;
    execute(listen, &serving, config)
}

/// Starts the engine and serves it on `listen` until Ctrl-C or SIGTERM.
pub fn execute(
    listen: SocketAddr,
    serving: &ServingConfig,
    config: ServeConfig,
) -> Result<ExitCode> {
    let serving = serving::start(serving)?;
    let model_id = config.model_id_for(&serving.model_name);
    let mark = if serving.profile.is_some() {
        "watermark on"
    } else {
        "NO watermark (control)"
    };
    let app = provmark_serve::router(serving, config)?;
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
