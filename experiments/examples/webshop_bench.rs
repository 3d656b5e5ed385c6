//! WebShop measurements: env steps/s, search latency, the expert on the test split, search recall
//! and the noun approximation's effect on rewards.
//!
//! ```text
//! cargo run --release --example webshop_bench -- [GOALS] [DATA_DIR]
//! ```
fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let goals = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let config = eef_environments::webshop::WebShopConfig { data_dir: args.next().map(Into::into), ..Default::default() };
    eef_experiments::cli::print_report(eef_experiments::webshop_bench::run(&config, goals))
}
