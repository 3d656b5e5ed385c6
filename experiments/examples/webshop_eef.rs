//! SFT -> RFT -> RFT x6 -> EEF on WebShop (`webshop-synth` unless `[environment] data_dir` names
//! WebShop's own data), with the heuristic shopper as expert; the report prints win rate and
//! average reward per method, as the paper's table does.
//!
//! ```text
//! cargo run --release --example webshop_eef -- [--config FILE] [--fresh] [--iterations N]
//! ```
fn main() -> std::process::ExitCode {
    eef_experiments::cli::main(eef_experiments::webshop::DEFAULT_CONFIG, eef_experiments::webshop::experiment)
}
