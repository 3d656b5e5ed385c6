//! SFT -> RFT -> EEF on the built-in Vault environment.
//!
//! ```text
//! cargo run --example vault_eef -- [--config FILE] [--fresh] [--iterations N]
//! ```
fn main() -> std::process::ExitCode {
    eef_experiments::cli::main(eef_experiments::vault::DEFAULT_CONFIG, eef_experiments::vault::experiment)
}
