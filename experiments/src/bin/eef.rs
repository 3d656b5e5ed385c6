//! The `eef` command: `eef plan --config FILE` tells whether a configuration's run fits a device
//! before you rent one; `eef export --format sharegpt FILE.jsonl -o OUT.json` hands a run's
//! trajectories or selection to another trainer.
//!
//! ```text
//! cargo run --release --bin eef -- plan --config experiments/configs/webshop-llama3-8b.toml \
//!     --model-config experiments/models/Meta-Llama-3-8B-Instruct.json
//! ```
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "eef", about = "Tools around eef experiments")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parameters, trainable parameters and device memory of a configuration's run.
    Plan {
        /// The experiment configuration (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// The model's config.json, when `[policy] init` is not downloaded yet.
        #[arg(long)]
        model_config: Option<PathBuf>,
        /// Device memory to judge the plan against, in GiB (an A100/H100 80 GB card: 80).
        #[arg(long, default_value_t = 80.0)]
        device_gib: f64,
    },
    /// Converts a run's JSONL (trajectories, selection or data set) for another trainer.
    Export {
        /// The JSONL file (e.g. `runs/webshop/eef/iter-1/dataset.jsonl`).
        input: PathBuf,
        /// The output format.
        #[arg(long, value_enum, default_value_t = Format::Sharegpt)]
        format: Format,
        /// Where to write it.
        #[arg(long, short)]
        output: PathBuf,
    },
}

/// Export formats.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    /// ShareGPT conversations (`from`/`value`; masked actions carry `weight: 0`).
    Sharegpt,
}

fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        Command::Plan { config, model_config, device_gib } => eef_experiments::plan::run(&config, model_config, device_gib),
        Command::Export { input, format: Format::Sharegpt, output } => eef_experiments::export::to_sharegpt(&input, &output),
    };
    eef_experiments::cli::print_report(result)
}
