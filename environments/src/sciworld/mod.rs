//! ScienceWorld (Wang et al., 2022) through the real simulator, driven from Rust with no Python
//! at run time.
//!
//! The PyPI package `scienceworld==1.2.3` ships a self-contained `scienceworld.jar`;
//! `scripts/setup-scienceworld.sh` extracts it (see [`install`]). Each [`SciWorldEnv`] starts its
//! own JVM running py4j's `GatewayServer` and speaks the py4j text protocol to it ([`py4j`]),
//! calling the same `PythonInterface` the Python package calls. A JVM that dies or stops
//! answering within the call timeout is dropped; the rollout engine then makes a fresh instance
//! and replays the episode's actions, so nothing collected is lost. Replays are exact: every step
//! makes the same simulator calls ([`Calls`]) and the JVM runs with constant identity hashes
//! ([`DETERMINISTIC_JVM_OPTIONS`]), so an episode depends only on the calls made since `reset`. JVMs are killed when their
//! environment is dropped, and exit by themselves if this process dies (`--die-on-broken-pipe`).
//!
//! Tasks come from ETO's split (train 1,483; test-seen 194; test-unseen 211), with ETO's per-task
//! step limits; the offline [`GoldExpert`] follows the simulator's gold action sequences with
//! seeded corruption.

mod calls;
mod client;
mod config;
mod env;
mod expert;
pub mod install;
mod prompt;
pub mod py4j;
mod tasks;

pub use calls::{Calls, Observed};
pub use client::{ScienceWorld, DETERMINISTIC_JVM_OPTIONS};
pub use config::{CorruptionConfig, SciWorldConfig, TestSplit};
pub use env::{SciWorldEnv, TaskList};
pub use expert::{corrupt, gold_cache_file, gold_paths, Corruption, GoldExpert};
pub use install::{Install, InstallError};
pub use prompt::SYSTEM_PROMPT;
pub use tasks::{default_split_dir, read_split, simulator_name, step_limit, SciTask};
