//! A rollout worker: owns one environment instance and plays episodes from the queue.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::batcher::Pending;
use super::job::EpisodeJob;
use super::RolloutConfig;
use crate::environment::{EnvError, EnvFactory, Environment, StepResult};
use crate::error::Error;
use crate::policy::ActRequest;
use crate::reward::Reward;
use crate::seed;
use crate::trajectory::{Actor, Termination, Trajectory, Turn};

pub(crate) struct Worker {
    pub id: usize,
    pub factory: Arc<dyn EnvFactory>,
    pub reward: Arc<dyn Reward>,
    pub queue: Arc<Mutex<VecDeque<(usize, EpisodeJob)>>>,
    pub act: mpsc::Sender<Pending>,
    pub done: mpsc::UnboundedSender<(usize, Trajectory)>,
    pub cancel: CancellationToken,
    pub config: RolloutConfig,
}

/// Why an episode stopped early.
enum Abort {
    Cancelled,
    Env(EnvError),
    /// The run cannot go on (a panicking reward): every worker stops.
    Fatal(Error),
}

impl Worker {
    /// Plays episodes until the queue is empty or the run is cancelled.
    pub fn run(self) -> Result<(), Error> {
        let mut env: Option<Box<dyn Environment>> = None;
        loop {
            if self.cancel.is_cancelled() {
                return Ok(());
            }
            let Some((index, job)) = self.queue.lock().map_err(|_| Error::Setup("queue poisoned".into()))?.pop_front()
            else {
                return Ok(());
            };
            match self.episode(&mut env, &job) {
                Ok(t) => {
                    if self.done.send((index, t)).is_err() {
                        return Ok(());
                    }
                }
                Err(Abort::Cancelled) => return Ok(()),
                Err(Abort::Fatal(e)) => {
                    self.cancel.cancel();
                    return Err(e);
                }
                Err(Abort::Env(e)) => {
                    // The factory itself failed: put the job back for another worker and stop.
                    if let Ok(mut q) = self.queue.lock() {
                        q.push_front((index, job));
                    }
                    return Err(Error::Env(e));
                }
            }
        }
    }

    fn fresh_env(&self) -> Result<Box<dyn Environment>, Abort> {
        let mut last = None;
        for _ in 0..=self.config.max_env_restarts {
            match self.factory.make(self.id) {
                Ok(e) => return Ok(e),
                Err(e) => last = Some(e),
            }
        }
        Err(Abort::Env(last.unwrap_or_else(|| EnvError::Other("factory failed".into()))))
    }

    /// Restores a (fresh) environment to the state after `actions`.
    fn restore(
        &self,
        env: &mut Option<Box<dyn Environment>>,
        job: &EpisodeJob,
        actions: &[String],
        restarts: &mut usize,
    ) -> Result<Result<crate::environment::ReplayOutcome, EnvError>, Abort> {
        loop {
            if env.is_none() {
                *env = Some(self.fresh_env()?);
            }
            let e = env.as_mut().expect("environment present");
            match e.replay(&job.task, job.env_seed(), actions) {
                Err(err) if err.is_restartable() && *restarts < self.config.max_env_restarts => {
                    *restarts += 1;
                    tracing::warn!(worker = self.id, episode = %job.id, error = %err, "environment failed during replay; restarting");
                    *env = None;
                }
                other => return Ok(other),
            }
        }
    }

    /// The first turn at which a replay's observations differ from the recorded ones, logged.
    fn divergence<'a>(
        &self,
        job: &EpisodeJob,
        recorded: impl Iterator<Item = &'a str>,
        replayed: impl Iterator<Item = &'a str>,
    ) -> Option<usize> {
        let (step, (want, got)) = recorded.zip(replayed).enumerate().find(|(_, (a, b))| a != b)?;
        let clip = |s: &str| s.chars().take(160).collect::<String>();
        tracing::warn!(
            worker = self.id,
            episode = %job.id,
            step,
            recorded = %clip(want),
            replayed = %clip(got),
            "replay diverged from the recorded observation; the episode is not evidence"
        );
        Some(step)
    }

    fn episode(&self, env: &mut Option<Box<dyn Environment>>, job: &EpisodeJob) -> Result<Trajectory, Abort> {
        let mut restarts = 0usize;
        let prefix_actions: Vec<String> = job.prefix.iter().map(|t| t.action.clone()).collect();
        let finish = |turns: Vec<Turn>, final_observation: String, termination: Termination| {
            let mut t = Trajectory {
                id: job.id.clone(),
                task_id: job.task.id.clone(),
                instruction: job.task.instruction.clone(),
                source: job.source.clone(),
                start: job.start.clone(),
                sample: job.sample,
                seed: job.env_seed(),
                turns,
                final_observation,
                termination,
                reward: 0.0,
                success: false,
                provenance: job.provenance.clone(),
            };
            (t.reward, t.success) = crate::reward::score_checked(self.reward.as_ref(), &t).map_err(Abort::Fatal)?;
            Ok(t)
        };

        let replay = match self.restore(env, job, &prefix_actions, &mut restarts)? {
            Ok(r) => r,
            Err(e) => return finish(Vec::new(), String::new(), Termination::EnvFailed(e.to_string())),
        };
        let mut turns: Vec<Turn> = job
            .prefix
            .iter()
            .zip(replay.observations)
            .zip(replay.rewards)
            .map(|((t, observation), reward)| Turn {
                observation,
                thought: t.thought.clone(),
                action: t.action.clone(),
                actor: Actor::Expert,
                reward,
                trainable: false,
            })
            .collect();
        let mut observation = replay.observation;
        if self.config.verify_replay {
            // Every replayed observation, the probed state's own included.
            let recorded = job.prefix.iter().map(|t| t.observation.as_str()).chain(job.state_observation.as_deref());
            let replayed = turns.iter().map(|t| t.observation.as_str()).chain([observation.as_str()]);
            if let Some(step) = self.divergence(job, recorded, replayed) {
                return finish(turns, observation, Termination::ReplayDiverged { step });
            }
        }
        if replay.done {
            let step = turns.len();
            if job.state_observation.is_some() {
                // The recording went on from this state; the replay ended the episode there, so
                // the state was not reached.
                tracing::warn!(worker = self.id, episode = %job.id, step, "the replayed prefix ended the episode where the recording went on; the episode is not evidence");
                return finish(turns, observation, Termination::ReplayDiverged { step });
            }
            // A terminal state (or a task whose reset ends it): the policy never acts.
            return finish(turns, observation, if step == 0 { Termination::Done } else { Termination::ReplayEnded { step } });
        }
        let max_steps = match self.config.max_steps {
            Some(n) => n,
            None => env.as_ref().map_or(0, |e| e.max_steps(&job.task)),
        };

        while turns.len() < max_steps {
            if self.cancel.is_cancelled() {
                return Err(Abort::Cancelled);
            }
            let valid_actions = env.as_ref().and_then(|e| e.valid_actions());
            let request = ActRequest {
                seed: seed::derive_n(job.seed, turns.len() as u64),
                task: job.task.id.clone(),
                instruction: job.task.instruction.clone(),
                history: turns.iter().map(crate::policy::Step::of).collect(),
                observation: observation.clone(),
                valid_actions,
                temperature: job.temperature,
            };
            let (tx, rx) = oneshot::channel();
            if self.act.blocking_send((request, tx)).is_err() {
                return Err(Abort::Cancelled);
            }
            let act = match rx.blocking_recv() {
                Ok(Ok(a)) => a,
                Ok(Err(e)) => return finish(turns, observation, Termination::PolicyFailed(e.to_string())),
                Err(_) => return Err(Abort::Cancelled),
            };
            let step: StepResult = loop {
                let e = env.as_mut().expect("environment present");
                match e.step(&act.action) {
                    Ok(s) => break s,
                    Err(err) if err.is_restartable() && restarts < self.config.max_env_restarts => {
                        restarts += 1;
                        tracing::warn!(worker = self.id, episode = %job.id, error = %err, "environment failed; restarting and replaying");
                        *env = None;
                        let so_far: Vec<String> = turns.iter().map(|t| t.action.clone()).collect();
                        let replay = match self.restore(env, job, &so_far, &mut restarts)? {
                            Ok(r) => r,
                            Err(e) => return finish(turns, observation, Termination::EnvFailed(e.to_string())),
                        };
                        if self.config.verify_replay {
                            // The episode so far, and the observation the policy just acted on.
                            let recorded = turns.iter().map(|t| t.observation.as_str()).chain([observation.as_str()]);
                            let replayed = replay.observations.iter().map(String::as_str).chain([replay.observation.as_str()]);
                            if let Some(step) = self.divergence(job, recorded, replayed) {
                                return finish(turns, observation, Termination::ReplayDiverged { step });
                            }
                        }
                    }
                    Err(err) => return finish(turns, observation, Termination::EnvFailed(err.to_string())),
                }
            };
            restarts = 0; // the budget counts consecutive restarts without progress
            turns.push(Turn {
                observation: std::mem::take(&mut observation),
                thought: act.thought,
                action: act.action,
                actor: job.actor(),
                reward: step.reward,
                trainable: false,
            });
            observation = step.observation;
            if step.done {
                return finish(turns, observation, Termination::Done);
            }
        }
        finish(turns, observation, Termination::StepLimit)
    }
}
