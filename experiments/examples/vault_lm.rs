//! SFT -> RFT -> EEF on the built-in Vault environment with the burn Llama policy on CPU.
//!
//! ```text
//! cargo run --release --example vault_lm -- [--config FILE] [--fresh]
//! ```
fn main() -> std::process::ExitCode {
    eef_experiments::cli::main(eef_experiments::vault::LM_CONFIG, eef_experiments::vault::experiment_lm)
}
