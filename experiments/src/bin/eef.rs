//! The `eef` command: `eef plan --config FILE` tells whether a configuration's run fits a device
//! before you rent one; `eef export --format sharegpt FILE.jsonl -o OUT.json` hands a run's
//! trajectories or selection to another trainer; `eef tokens --config FILE --data FILE.jsonl`
//! counts what an epoch of training on a data set costs in each sequence form; `eef serve-env --env webshop` serves an
//! environment to rollouts on other hosts (AgentGym's environment-server protocol); `eef
//! train-node --config FILE --address ws://HOST:PORT` trains alongside a driver on another
//! machine (`[policy.train.cluster]`).
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
    /// Serves an environment over AgentGym's environment-server protocol (HTTP + JSON).
    ServeEnv {
        /// The environment.
        #[arg(long, value_enum)]
        env: eef_experiments::serve::ServedEnv,
        /// An experiment configuration whose `[environment]` configures it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Address to listen on (port 0: any free port, printed).
        #[arg(long, default_value = "127.0.0.1:36001")]
        addr: String,
        /// Handler threads (calls on different instances run in parallel).
        #[arg(long, default_value_t = 32)]
        threads: usize,
    },
    /// Trains alongside a driver on another machine (`[policy.train.cluster]`): serves its
    /// training phases on this machine's devices, all-reducing gradients with burn-collective.
    TrainNode {
        /// The experiment configuration the driver runs: its `[policy]` backend, precision and
        /// `[policy.train] devices` apply here.
        #[arg(long, short)]
        config: PathBuf,
        /// Address the driver connects to (one of `[policy.train.cluster] nodes`).
        #[arg(long, default_value = "0.0.0.0:8700")]
        listen: String,
        /// This machine's tensor-data service as the other machines reach it (`ws://HOST:PORT`;
        /// listened on at PORT).
        #[arg(long)]
        address: String,
        /// The devices to train on here, e.g. `0,1,2,3` (default: `[policy.train] devices`).
        #[arg(long, value_delimiter = ',')]
        devices: Vec<usize>,
    },
    /// Training tokens per epoch of a data set in each sequence form (windows, whole
    /// conversations, packed), with a configuration's tokenizer, template and context.
    Tokens {
        /// The experiment configuration (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// A run's JSONL of trajectories (e.g. `runs/webshop/expert.jsonl`).
        #[arg(long)]
        data: PathBuf,
        /// Count every trajectory, not only the successes (the SFT set).
        #[arg(long)]
        all: bool,
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
        Command::ServeEnv { env, config, addr, threads } => eef_experiments::serve::run(env, config.as_deref(), &addr, threads),
        Command::TrainNode { config, listen, address, devices } => eef_experiments::train_node::run(&config, &listen, &address, &devices),
        Command::Tokens { config, data, all } => eef_experiments::tokens::run(&config, &data, all),
        Command::Export { input, format: Format::Sharegpt, output } => eef_experiments::export::to_sharegpt(&input, &output),
    };
    eef_experiments::cli::print_report(result)
}
