//! Training and generation speed of the burn Llama on every CPU backend compiled in, next to
//! PyTorch on the same model and batch.
//!
//! ```text
//! EEF_PYTHON=/path/to/venv/bin/python cargo run --release --example lm_bench
//! ```
fn main() {
    println!("{}", eef_experiments::lm_bench::run(&eef_experiments::lm_bench::BenchConfig::default()));
}
