//! # eef-runtime
//!
//! The runtime of **eef**, a framework for LLM-agent tuning experiments built around
//! *Exploring Expert Failures Improves LLM Agent Tuning* (EEF, arXiv 2504.13145).
//!
//! An experiment is made of:
//! - an [`Environment`] (declare one with [`#[environment]`](macro@environment)),
//! - a [`Reward`] that turns a finished [`Trajectory`] into a score (declare one with
//!   [`#[reward]`](macro@reward)),
//! - a [`Selector`] that decides what enters the training set (the built-in [`selection::Sft`],
//!   [`selection::Rft`], [`selection::Eef`], [`selection::Eto`], or your own with
//!   [`#[selector]`](macro@selector)),
//! - a [`Policy`] (the model being tuned) and an expert (any policy, or recorded trajectories),
//! - an [`ExperimentConfig`] read from TOML.
//!
//! [`Experiment`] runs `expert data -> SFT -> [explore -> select -> train] x N -> evaluate` for every
//! method, writing trajectories, selections and metrics under a run directory.
#![warn(missing_docs)]

pub mod config;
pub mod console;
pub mod environment;
pub mod error;
pub mod experiment;
pub mod jsonl;
pub mod live;
pub mod logging;
pub mod remote;
pub mod model;
pub mod policy;
pub mod reward;
pub mod rollout;
pub mod seed;
pub mod selection;
pub mod sharegpt;
pub mod testing;
pub mod task;
pub mod trajectory;

pub use config::{ConfigError, ExperimentConfig};
pub use eef_macros::{environment, reward, selector};
pub use environment::{EnvError, EnvFactory, Environment, StepResult};
pub use error::Error;
pub use experiment::{Experiment, Report};
pub use policy::{Act, ActRequest, Policy, PolicyError, Step, TrainConfig, TrainReport};
pub use reward::Reward;
pub use selection::{Selection, Selector, TaskGroup};
pub use task::{Split, Task, TaskId};
pub use trajectory::{Actor, Source, StartState, Termination, Trajectory, Turn};

/// Everything an experiment file usually needs, in one import.
pub mod prelude {
    pub use crate::config::ExperimentConfig;
    pub use crate::environment::{EnvError, EnvFactory, Environment, StepResult};
    pub use crate::experiment::{Experiment, Report};
    pub use crate::policy::{Act, ActRequest, Policy, PolicyError, Step};
    pub use crate::reward::Reward;
    pub use crate::selection::{Selection, Selector, TaskGroup, TrainingExample};
    pub use crate::task::{Split, Task, TaskId};
    pub use crate::trajectory::{Actor, StartState, Trajectory, Turn};
    pub use eef_macros::{environment, reward, selector};
}

/// Items the macros expand to. Not public API: names here may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::environment::{
        default_replay, EnvParam, Environment, IntoEnvResult, ReplayOutcome,
    };
    pub use crate::reward::{IntoScore, Reward};
    pub use crate::config::ConfigError;
    pub use crate::selection::{configured, Configured, Params, PlanContext, Selection, Selector, TaskGroup};
    pub use ::core::default::Default;
    pub use ::std::sync::Arc;
    pub use crate::task::Task;
    pub use crate::trajectory::{StartState, Trajectory};
    pub use crate::environment::{EnvError, StepResult};
    pub use ::core::option::Option;
    pub use ::core::result::Result;
    pub use ::std::string::String;
    pub use ::std::vec::Vec;
}
