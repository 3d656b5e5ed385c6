//! Environments for **eef** experiments.
//!
//! - [`vault`]: the built-in Vault environment, small, deterministic and replayable, whose
//!   scripted expert fails on hard tasks after correct early steps: the situation EEF exploits.
//!
//! WebShop and ScienceWorld are being ported (see the book's roadmap).
#![warn(missing_docs)]

pub mod vault;
