//! The `eef` command: `eef plan --config FILE` tells whether a configuration's run fits a device
//! before you rent one.
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
}

fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::Plan { config, model_config, device_gib } => match eef_experiments::plan::run(&config, model_config, device_gib) {
            Ok(text) => {
                println!("{text}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
