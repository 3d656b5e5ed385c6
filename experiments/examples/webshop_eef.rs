//! SFT -> RFT -> EEF on WebShop.
//!
//! The WebShop port is not in this release yet: until it lands this example runs the same
//! pipeline on the built-in Vault environment and says so in its report.
//!
//! ```text
//! cargo run --example webshop_eef -- [--config FILE] [--fresh] [--iterations N]
//! ```
fn main() -> std::process::ExitCode {
    eef_experiments::cli::main(eef_experiments::vault::DEFAULT_CONFIG, |config| {
        eprintln!("note: WebShop is not ported yet; running the built-in Vault environment instead.");
        Ok(eef_experiments::vault::experiment(config)?.note(
            "WebShop is not ported yet: these are numbers of the built-in Vault environment, not WebShop numbers.",
        ))
    })
}
