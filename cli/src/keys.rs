//! `provmark keygen` and `provmark key`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use provmark_watermark::{write_secret_file, Key};
use serde_json::json;

#[derive(Args)]
pub struct KeygenArgs {
    /// Where to write the key (64 hex characters). Never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Print the key id and commitment as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Check a key file against a published commitment (exit 0 if it matches, 1 if not).
    VerifyCommitment {
        /// The key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The commitment (64 hex characters) as published, e.g. in a report.
        #[arg(long, value_name = "HEX")]
        commitment: String,
    },
    /// Print a key file's public id and commitment (never the key).
    Info {
        /// The key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Print as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub fn keygen(args: KeygenArgs) -> Result<ExitCode> {
    let key = Key::generate()?;
    write_secret_file(&args.out, &key.to_hex_file())?;
    print_info(&key, &args.out, args.json);
    Ok(ExitCode::SUCCESS)
}

pub fn run(cmd: KeyCommand) -> Result<ExitCode> {
    match cmd {
        KeyCommand::Info { key, json } => {
            let k = Key::load(&key)?;
            print_info(&k, &key, json);
        }
        KeyCommand::VerifyCommitment { key, commitment } => {
            let k = Key::load(&key)?;
            let given = commitment.trim().to_ascii_lowercase();
            if given.len() != 64 || !given.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("--commitment must be 64 hex characters");
            }
            if k.commitment() == given {
                println!("MATCH  {} is the key of commitment {given}", key.display());
            } else {
                println!(
                    "MISMATCH  {} has commitment {}, not {given}",
                    key.display(),
                    k.commitment()
                );
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_info(key: &Key, path: &std::path::Path, as_json: bool) {
    if as_json {
        println!(
            "{}",
            json!({"file": path.display().to_string(), "key_id": key.id(), "commitment": key.commitment()})
        );
    } else {
        println!("key file    {}", path.display());
        println!("key id      {}", key.id());
        println!("commitment  {}", key.commitment());
        println!("Publish the commitment; keep the key file secret.");
    }
}
