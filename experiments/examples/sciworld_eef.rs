//! SFT -> RFT -> EEF on ScienceWorld through the real simulator.
//!
//! ```text
//! bash scripts/setup-scienceworld.sh       # once: the jar (from PyPI) and a JRE
//! cargo run --release --example sciworld_eef -- [--config FILE] [--fresh]
//! ```
fn main() -> std::process::ExitCode {
    eef_experiments::cli::main(eef_experiments::sciworld::DEFAULT_CONFIG, eef_experiments::sciworld::experiment)
}
