//! SFT -> RFT -> EEF -> ETO on ScienceWorld through the real simulator: a **smoke run** on a
//! 2-core CPU. It runs every phase of the loop against the real simulator (JVMs, replays to the
//! probed states, valid actions, evaluation on unseen variations) in minutes; at this scale (30
//! training tasks, a small model trained from scratch) the policy does not learn ScienceWorld and
//! every method scores 0 (see the book's policy chapter). Raise the tasks and the model, on a GPU,
//! for results.
//!
//! ```text
//! bash scripts/setup-scienceworld.sh       # once: the jar (from PyPI) and a JRE
//! cargo run --release --example sciworld_eef -- [--config FILE] [--fresh]
//! ```
fn main() -> std::process::ExitCode {
    eef_experiments::cli::main(eef_experiments::sciworld::DEFAULT_CONFIG, eef_experiments::sciworld::experiment)
}
