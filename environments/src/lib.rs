//! Environments for **eef** experiments.
//!
//! - [`vault`]: the built-in Vault environment, small, deterministic and replayable, whose
//!   scripted expert fails on hard tasks after correct early steps: the situation EEF exploits.
//!
//! - [`sciworld`]: ScienceWorld through its real simulator (a JVM driven over py4j).
//! - [`webshop`]: WebShop's text environment, on the original data or the `webshop-synth` catalog.
#![warn(missing_docs)]

pub mod sciworld;
pub mod vault;
pub mod webshop;

/// The `shared/` folder with the benchmarks' data: `$EEF_SHARED`, else the folder beside the
/// repository.
pub fn shared_dir() -> std::path::PathBuf {
    std::env::var_os("EEF_SHARED")
        .map_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("shared"), std::path::PathBuf::from)
}
