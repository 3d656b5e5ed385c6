//! The rollout engine: many episodes at once against many environment instances.
//!
//! - Each of `concurrency` workers runs on tokio's blocking pool and owns one environment instance
//!   made by the [`EnvFactory`]; workers pull episodes from a shared queue.
//! - Workers ask for actions through a channel; one batching task answers every request that is
//!   ready with a single [`Policy::act_batch`] call (so a neural policy decodes concurrent
//!   episodes together).
//! - An environment that crashes or times out is replaced by a fresh instance and the episode is
//!   replayed to where it was (expert prefix and the policy's own actions), then continued.
//! - Every random choice derives from the episode's seed, so results do not depend on scheduling.
//! - A [`CancellationToken`] stops the run between steps; finished episodes have already been
//!   handed to the caller's sink (written to disk), unfinished ones are dropped and rerun on resume.

mod batcher;
mod job;
mod progress;
mod worker;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
pub use tokio_util::sync::CancellationToken;

pub use job::EpisodeJob;
pub use progress::Progress;

use crate::console::Console;
use crate::environment::EnvFactory;
use crate::error::Error;
use crate::policy::Policy;
use crate::reward::Reward;
use crate::trajectory::Trajectory;

/// Rollout settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutConfig {
    /// Episodes run at once (= environment instances).
    pub concurrency: usize,
    /// Most requests answered by one `act_batch` call.
    pub max_batch: usize,
    /// Per-episode step limit overriding the environment's own (expert prefix included).
    pub max_steps: Option<usize>,
    /// How many times in a row (without a successful step in between) an episode may restart its
    /// environment before it is recorded as failed.
    pub max_env_restarts: usize,
    /// Sampling temperature during exploration.
    pub temperature: f32,
    /// Sampling temperature during evaluation (0 = greedy).
    pub eval_temperature: f32,
    /// Whether to show progress on stderr: bars on a terminal, periodic lines elsewhere, and a
    /// line per finished phase (see [`crate::console`]); `--quiet` sets it to false.
    pub progress: bool,
    /// The largest share of a phase's episodes that may end broken (environment or policy
    /// failure, diverged replay: not evidence) before the run stops with an error naming the
    /// phase and the first failure: above it the phase's numbers say more about the machinery
    /// than about the method. 1 = never stop.
    pub max_broken_share: f64,
    /// Compare every replayed observation with the recorded one (expert prefixes, and the
    /// episode so far after an environment restart); an episode whose replay lands elsewhere
    /// ends as [`Termination::ReplayDiverged`](crate::Termination::ReplayDiverged) and never
    /// counts as evidence. Turn off only for expert data whose observations are known to be
    /// rendered differently from this environment's.
    pub verify_replay: bool,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        RolloutConfig {
            concurrency: 8,
            max_batch: 32,
            max_steps: None,
            max_env_restarts: 3,
            temperature: 0.7,
            eval_temperature: 0.0,
            progress: true,
            max_broken_share: 0.2,
            verify_replay: true,
        }
    }
}

/// Runs batches of episodes.
#[derive(Clone)]
pub struct Rollouts {
    factory: Arc<dyn EnvFactory>,
    config: RolloutConfig,
    console: Console,
}

impl std::fmt::Debug for Rollouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rollouts").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Rollouts {
    /// An engine over environments from `factory`, showing progress as `config.progress` says
    /// ([`Console::auto`]).
    pub fn new(factory: Arc<dyn EnvFactory>, config: RolloutConfig) -> Self {
        let console = Console::auto(config.progress);
        Rollouts { factory, config, console }
    }

    /// The same engine, showing progress on `console` (the run's).
    pub fn with_console(self, console: Console) -> Self {
        Rollouts { console, ..self }
    }

    /// The settings.
    pub fn config(&self) -> &RolloutConfig {
        &self.config
    }

    /// Runs `jobs` and returns their trajectories in job order. Each finished trajectory is first
    /// passed to `sink` (e.g. appended to a JSONL file), in completion order.
    ///
    /// Returns [`Error::Cancelled`] if `cancel` fires before every job finished; the trajectories
    /// handed to `sink` until then are complete.
    pub async fn run(
        &self,
        label: &str,
        policy: Arc<dyn Policy>,
        reward: Arc<dyn Reward>,
        jobs: Vec<EpisodeJob>,
        cancel: CancellationToken,
        mut sink: impl FnMut(&Trajectory) -> Result<(), Error>,
    ) -> Result<Vec<Trajectory>, Error> {
        let total = jobs.len();
        if total == 0 {
            return Ok(Vec::new());
        }
        let progress = Progress::new(&self.console, label, total as u64);
        let queue: Arc<Mutex<VecDeque<(usize, EpisodeJob)>>> =
            Arc::new(Mutex::new(jobs.into_iter().enumerate().collect()));
        let (act_tx, act_rx) = mpsc::channel(self.config.concurrency.max(1) * 2);
        let batcher = tokio::spawn(batcher::serve(policy, act_rx, self.config.max_batch.max(1)));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();

        // Workers stop on the run's cancellation, on a sink error, or when one of them meets an
        // error that ends the run (a panicking reward).
        let stop = cancel.child_token();
        let workers = self.config.concurrency.clamp(1, total);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let ctx = worker::Worker {
                id: w,
                factory: self.factory.clone(),
                reward: reward.clone(),
                queue: queue.clone(),
                act: act_tx.clone(),
                done: done_tx.clone(),
                cancel: stop.clone(),
                config: self.config.clone(),
            };
            handles.push(tokio::task::spawn_blocking(move || ctx.run()));
        }
        drop(act_tx);
        drop(done_tx);

        let mut results: Vec<Option<Trajectory>> = vec![None; total];
        let mut successes = 0u64;
        let mut sink_error = None;
        while let Some((index, trajectory)) = done_rx.recv().await {
            if sink_error.is_none() {
                if let Err(e) = sink(&trajectory) {
                    stop.cancel();
                    sink_error = Some(e);
                }
            }
            successes += u64::from(trajectory.success);
            progress.advance(successes);
            results[index] = Some(trajectory);
        }
        let mut worker_error = None;
        for h in handles {
            match h.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => worker_error = worker_error.or(Some(e)),
                Err(e) => worker_error = worker_error.or(Some(Error::Setup(format!("rollout worker panicked: {e}")))),
            }
        }
        batcher.abort();
        drop(progress);
        if let Some(e) = sink_error {
            return Err(e);
        }
        if results.iter().all(Option::is_some) {
            return Ok(results.into_iter().flatten().collect());
        }
        if let Some(e) = worker_error {
            return Err(e);
        }
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        Err(Error::Setup("rollout ended with unfinished episodes".into()))
    }
}
