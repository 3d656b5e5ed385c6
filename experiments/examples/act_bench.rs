//! Acting speed of a run's trained policy on the run's own episodes, with and without the reuse
//! of earlier turns' keys and values (see `eef_experiments::act_bench`).
//!
//! ```text
//! cargo run --release --example act_bench -- --config experiments/configs/webshop.toml --run runs/webshop
//! ```
use std::path::PathBuf;

use clap::Parser;

/// Measure acting with and without the cache of earlier turns.
#[derive(Parser)]
struct Args {
    /// The experiment configuration the run used.
    #[arg(long)]
    config: PathBuf,
    /// The run directory (its expert.jsonl and sft/checkpoint).
    #[arg(long)]
    run: PathBuf,
    /// Episodes replayed.
    #[arg(long, default_value_t = 64)]
    episodes: usize,
    /// Episodes in flight at once.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// A/B pairs.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

fn main() -> std::process::ExitCode {
    let a = Args::parse();
    eef_experiments::cli::print_report(eef_experiments::act_bench::run(&a.config, &a.run, a.episodes, a.in_flight, a.rounds))
}
