//! Experiment modules of **eef**. Each module builds an [`eef_runtime::Experiment`] from a
//! configuration; the examples in `examples/` are thin `main`s over them:
//!
//! ```text
//! cargo run --example vault_eef        # SFT -> RFT -> EEF on the built-in Vault environment
//! cargo run --example sciworld_eef     # ScienceWorld (real simulator; scripts/setup-scienceworld.sh first)
//! cargo run --example webshop_eef      # WebShop (webshop-synth catalog by default, or the original data)
//! cargo run --example lm_bench         # speed of the burn Llama vs PyTorch
//! ```
#![warn(missing_docs)]

pub mod act_bench;
pub mod cli;
pub mod export;
pub mod hf_export;
pub mod lm;
pub mod lm_bench;
pub mod mem_bench;
pub mod plan;
pub mod remote_bench;
pub mod sciworld;
pub mod sciworld_bench;
pub mod serve;
pub mod tokens;
pub mod train_node;
pub mod vault;
pub mod webshop;
pub mod webshop_bench;
pub mod webshop_reference;
pub mod webshop_titles;

/// The book's chapter on writing an experiment, compiled and run as doctests so that its code
/// stays correct.
#[cfg(doctest)]
#[doc = include_str!("../../book/src/writing-an-experiment.md")]
pub struct WritingAnExperiment;
