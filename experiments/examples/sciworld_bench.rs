//! Benchmark: ScienceWorld steps per second through this project's client vs the Python package.
//!
//! ```text
//! bash scripts/setup-scienceworld.sh && pip install scienceworld==1.2.3   # the second for the comparison
//! cargo run --release --example sciworld_bench -- [TASKS] [ROUNDS]
//! ```
fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let tasks = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let rounds = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    eef_experiments::cli::print_report(eef_experiments::sciworld_bench::run(tasks, rounds))
}
