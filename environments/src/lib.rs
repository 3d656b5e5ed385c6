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
