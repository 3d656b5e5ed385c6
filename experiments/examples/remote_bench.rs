//! Environments across hosts, measured: WebShop episodes in process vs through AgentGym-protocol
//! servers on loopback (episodes/s, p50/p99 step latency).
//!
//! ```text
//! cargo run --release --example remote_bench -- [EPISODES] [SERVERS] [CONCURRENCY]
//! ```
fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().ok());
    let episodes = args.next().flatten().unwrap_or(1000);
    let servers = args.next().flatten().unwrap_or(8);
    let concurrency = args.next().flatten().unwrap_or(200);
    let config = eef_environments::webshop::WebShopConfig::default();
    eef_experiments::cli::print_report(eef_experiments::remote_bench::run(&config, episodes, servers, concurrency))
}
