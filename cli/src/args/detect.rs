//! `detect`: the texts, profiles and keys, into a [`DetectRecipe`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use provmark_evidence::{DetectRecipe, Keyed};
use provmark_verify::input::DEFAULT_MAX_RECORD_BYTES;
use provmark_verify::scan::{DEFAULT_BATCH, DEFAULT_WINDOW_MIN};
use provmark_watermark::{Key, Profile};

use crate::audit::Output;

#[derive(Args)]
#[command(after_long_help = include_str!("../../help/detect.txt").trim_end())]
pub struct DetectArgs {
    /// Texts to test: files, or - for standard input. Files ending in .jsonl or
    /// .ndjson hold one JSON object per line; other files are one text each.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
    /// Watermark profile. Repeat with --key to test several profiles at once.
    #[arg(long = "profile", value_name = "FILE", required = true)]
    profiles: Vec<PathBuf>,
    /// Key file of each --profile, in the same order.
    #[arg(long = "key", value_name = "FILE", required = true)]
    keys: Vec<PathBuf>,
    /// tokenizer.json matching the profiles' tokenizer digest (repeat if the
    /// profiles use different tokenizers). Default: the tokenizer of --model,
    /// else of the default model.
    #[arg(long = "tokenizer", value_name = "FILE")]
    tokenizers: Vec<PathBuf>,
    /// A GGUF model whose own tokenizer to use (instead of --tokenizer).
    #[arg(long, value_name = "GGUF", conflicts_with = "tokenizers")]
    model: Option<PathBuf>,
    /// Use the first tokenizer even when its digest differs from a profile's.
    #[arg(long)]
    force_tokenizer: bool,
    /// Significance level for the verdict (family-wise with several profiles).
    #[arg(long, default_value_t = 1e-6)]
    alpha: f64,
    /// One JSON object per text on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// JSONL field holding the text.
    #[arg(long, default_value = "text")]
    field: String,
    /// Read every input (including -) as JSON Lines.
    #[arg(long)]
    jsonl: bool,
    /// Also search for the best watermarked window (for texts that mix human
    /// and marked parts); the verdict then uses min(1, 2·min(p_text, p_window)).
    #[arg(long)]
    windows: bool,
    /// Shortest window, in scored tokens (doubling up to the text length).
    #[arg(long, default_value_t = DEFAULT_WINDOW_MIN, value_name = "N", value_parser = super::exact_integer::<usize>)]
    window_min: usize,
    /// Largest accepted JSONL line or text file, in bytes (refused while
    /// reading, never held). Each thread holds at most one record: about 125
    /// times its size while tokenized (0.5 GB at the default 4 MiB).
    #[arg(long, default_value_t = DEFAULT_MAX_RECORD_BYTES, value_name = "BYTES",
          value_parser = super::exact_integer::<usize>)]
    max_record_bytes: usize,
    /// Normalise every text before it is tokenized (recorded in the output and
    /// the report): invisible undoes edits that do not change how a text reads
    /// (zero-width characters, no-break and other spaces; spec §5.1), which a
    /// distiller may add to unmark an answer.
    #[arg(long, value_enum, default_value_t = super::NormalizeArg::None, value_name = "HOW")]
    normalize: super::NormalizeArg,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Texts read and scored per parallel batch (bounds memory).
    #[arg(long, default_value_t = DEFAULT_BATCH, value_name = "N", hide = true)]
    batch: usize,
    /// Also write an evidence report (canonical JSON, spec/report.md) that
    /// provmark report verify can recompute from the key and the inputs.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

pub fn run(args: DetectArgs) -> Result<ExitCode> {
    if args.profiles.len() != args.keys.len() {
        bail!(
            "{} --profile but {} --key: give one key per profile, in the same order",
            args.profiles.len(),
            args.keys.len()
        );
    }
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
            .context("cannot start the worker threads")?;
    }
    let keys = args
        .keys
        .iter()
        .map(|p| Key::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut profiles = Vec::new();
    for ((profile, key_path), key) in args.profiles.iter().zip(&args.keys).zip(&keys) {
        profiles.push(Keyed {
            profile: Profile::load(profile)?,
            key,
            profile_name: profile.display().to_string(),
            key_name: key_path.display().to_string(),
        });
    }
    let shown = |paths: &[PathBuf]| paths.iter().map(|p| p.display().to_string()).collect();
    let recipe = DetectRecipe {
        locations: Default::default(),
        alpha: args.alpha,
        field: args.field,
        max_record_bytes: args.max_record_bytes,
        window_min: args.window_min,
        jsonl: args.jsonl,
        windows: args.windows,
        force_tokenizer: args.force_tokenizer,
        normalization: args.normalize.into(),
        profiles,
        tokenizers: shown(&args.tokenizers),
        model: args.model.map(|m| m.display().to_string()),
        inputs: args.inputs,
    };
    crate::detect::run(&recipe, args.batch, Output::new(args.json, args.report))
}
