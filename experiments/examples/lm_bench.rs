//! Training and generation speed of the burn Llama next to PyTorch at a run's shape, A/B
//! interleaved (see `eef_experiments::lm_bench`).
//!
//! ```text
//! EEF_PYTHON=/path/to/venv/bin/python cargo run --release --example lm_bench -- --config experiments/configs/webshop.toml
//! ```
use std::path::PathBuf;

use clap::Parser;
use eef_experiments::lm_bench::{self, BenchConfig};
use eef_runtime::model::BackendKind;

/// Measure the burn Llama against PyTorch.
#[derive(Parser)]
struct Args {
    /// Take the shape (model, vocabulary, batch, context) from this experiment config's
    /// `[policy]`; without it, lm_bench's own small shape.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The backend to measure (`cpu`, or `wgpu` / `cuda` when compiled in).
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// Timed rounds per side.
    #[arg(long)]
    rounds: Option<usize>,
    /// Also write the measurements as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => BenchConfig::from_experiment(path).unwrap_or_else(|e| exit(&e)),
        None => BenchConfig::default(),
    };
    if let Some(r) = args.rounds {
        config.rounds = r;
    }
    let backend: BackendKind = serde_json::from_value(serde_json::Value::String(args.backend.clone())).unwrap_or_else(|_| exit(&format!("unknown backend {:?}", args.backend)));
    let measured = lm_bench::measure(&config, backend).unwrap_or_else(|e| exit(&e));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&measured).expect("serialisable")).unwrap_or_else(|e| exit(&format!("{}: {e}", path.display())));
    }
    println!("{}", lm_bench::report(&measured));
}

fn exit(message: &str) -> ! {
    eprintln!("lm_bench: {message}");
    std::process::exit(2)
}
