//! The rollout engine: step limits, crashed environments, cancellation, batching.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use eef_environments::vault::{ScriptedExpert, VaultConfig, VaultEnv, World};
use eef_runtime::environment::{EnvError, Environment, StepResult};
use eef_runtime::policy::{Act, ActRequest, Policy, PolicyError};
use eef_runtime::reward::FinalReward;
use eef_runtime::rollout::{CancellationToken, EpisodeJob, RolloutConfig, Rollouts};
use eef_runtime::{Error, Source, Task, Termination, Trajectory};

fn jobs(config: &VaultConfig, samples: usize) -> Vec<EpisodeJob> {
    train_tasks(config)
        .into_iter()
        .flat_map(|t| {
            (0..samples).map(move |s| {
                EpisodeJob::from_start(
                    t.clone(),
                    s,
                    eef_runtime::seed::derive(1, &format!("{}/{s}", t.id)),
                    1.0,
                    Source::Exploration { method: "test".into(), iteration: 1 },
                )
            })
        })
        .collect()
}

fn engine(factory: impl eef_runtime::EnvFactory, concurrency: usize, max_steps: Option<usize>) -> Rollouts {
    Rollouts::new(
        Arc::new(factory),
        RolloutConfig { concurrency, max_steps, progress: false, ..RolloutConfig::default() },
    )
}

async fn play(r: &Rollouts, policy: Arc<dyn Policy>, jobs: Vec<EpisodeJob>) -> Result<Vec<Trajectory>, Error> {
    r.run("test", policy, Arc::new(FinalReward), jobs, CancellationToken::new(), |_| Ok(())).await
}

/// A Vault whose steps crash every `every`-th call across all instances (like a dying JVM).
struct Flaky {
    inner: VaultEnv,
    calls: Arc<AtomicUsize>,
    every: usize,
}

impl Environment for Flaky {
    fn name(&self) -> &str {
        "flaky-vault"
    }
    fn tasks(&self) -> Vec<Task> {
        self.inner.tasks()
    }
    fn reset(&mut self, task: &Task, seed: u64) -> Result<String, EnvError> {
        self.inner.reset(task, seed)
    }
    fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) % self.every == self.every - 1 {
            return Err(EnvError::Crashed("simulated process death".into()));
        }
        self.inner.step(action)
    }
    fn valid_actions(&self) -> Option<Vec<String>> {
        self.inner.valid_actions()
    }
    fn max_steps(&self, task: &Task) -> usize {
        self.inner.max_steps(task)
    }
}

fn flaky_factory(config: &VaultConfig, every: usize) -> (impl eef_runtime::EnvFactory, Arc<AtomicUsize>) {
    let world = Arc::new(World::new(config));
    let calls = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let factory = move |_w: usize| -> Result<Flaky, EnvError> {
        made.fetch_add(1, Ordering::SeqCst);
        Ok(Flaky { inner: VaultEnv::with_world(world.clone()), calls: c.clone(), every })
    };
    (factory, calls)
}

#[test]
fn crashed_environments_are_restarted_and_nothing_is_lost() {
    let cfg = small_vault();
    let expert: Arc<dyn Policy> = Arc::new(ScriptedExpert::new(&World::new(&cfg)));
    let rt = runtime();
    let clean = rt.block_on(play(&engine(VaultEnv::factory(&cfg), 4, None), expert.clone(), jobs(&cfg, 2))).unwrap();
    let (factory, calls) = flaky_factory(&cfg, 23);
    let flaky = rt.block_on(play(&engine(factory, 4, None), expert, jobs(&cfg, 2))).unwrap();
    assert!(calls.load(Ordering::SeqCst) > 3 * 23, "several crashes happened");
    assert_eq!(clean, flaky, "a crash is invisible in the collected trajectories");
    assert!(flaky.iter().all(|t| t.termination == Termination::Done));
}

#[test]
fn an_environment_that_keeps_crashing_is_recorded_not_fatal() {
    let cfg = small_vault();
    let expert: Arc<dyn Policy> = Arc::new(ScriptedExpert::new(&World::new(&cfg)));
    let (factory, _) = flaky_factory(&cfg, 1); // every step crashes
    let out = runtime().block_on(play(&engine(factory, 2, None), expert, jobs(&cfg, 1))).unwrap();
    assert_eq!(out.len(), train_tasks(&cfg).len());
    assert!(out.iter().all(|t| matches!(t.termination, Termination::EnvFailed(_)) && !t.success));
}

/// Always answers the same (possibly malformed) action; records batch sizes.
struct Stubborn {
    action: &'static str,
    batches: Mutex<Vec<usize>>,
    cancel_after: Option<(usize, CancellationToken)>,
    calls: AtomicUsize,
}

impl Stubborn {
    fn new(action: &'static str) -> Self {
        Stubborn { action, batches: Mutex::new(Vec::new()), cancel_after: None, calls: AtomicUsize::new(0) }
    }
}

impl Policy for Stubborn {
    fn name(&self) -> String {
        "stubborn".into()
    }
    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        std::thread::sleep(std::time::Duration::from_millis(2));
        self.batches.lock().unwrap().push(requests.len());
        let n = self.calls.fetch_add(requests.len(), Ordering::SeqCst) + requests.len();
        if let Some((limit, token)) = &self.cancel_after {
            if n >= *limit {
                token.cancel();
            }
        }
        requests.iter().map(|_| Ok(Act::new(self.action))).collect()
    }
}

#[test]
fn malformed_actions_run_into_the_step_limit() {
    let cfg = small_vault();
    let out = runtime()
        .block_on(play(&engine(VaultEnv::factory(&cfg), 4, Some(5)), Arc::new(Stubborn::new("dance wildly")), jobs(&cfg, 1)))
        .unwrap();
    for t in &out {
        assert_eq!(t.termination, Termination::StepLimit);
        assert_eq!(t.turns.len(), 5);
        assert!(t.final_observation.starts_with("Nothing happens."), "{}", t.final_observation);
        assert_eq!(t.reward, 0.0);
    }
}

#[test]
fn concurrent_episodes_are_batched() {
    let cfg = small_vault();
    let policy = Arc::new(Stubborn::new("look"));
    let out = runtime()
        .block_on(play(&engine(VaultEnv::factory(&cfg), 8, Some(6)), policy.clone(), jobs(&cfg, 2)))
        .unwrap();
    assert_eq!(out.len(), 32);
    let batches = policy.batches.lock().unwrap();
    assert_eq!(batches.iter().sum::<usize>(), 32 * 6);
    assert!(batches.iter().any(|&b| b > 1), "requests of concurrent episodes share act_batch calls: {batches:?}");
}

#[test]
fn cancellation_stops_the_run_and_keeps_finished_episodes() {
    let cfg = small_vault();
    let token = CancellationToken::new();
    let policy = Arc::new(Stubborn { cancel_after: Some((40, token.clone())), ..Stubborn::new("look") });
    let r = engine(VaultEnv::factory(&cfg), 2, Some(4));
    let mut sunk = Vec::new();
    let res = runtime().block_on(r.run("test", policy, Arc::new(FinalReward), jobs(&cfg, 4), token, |t| {
        sunk.push(t.clone());
        Ok(())
    }));
    assert!(matches!(res, Err(Error::Cancelled)), "{res:?}");
    assert!(!sunk.is_empty() && sunk.len() < 64, "{} of 64 finished", sunk.len());
    assert!(sunk.iter().all(|t| t.turns.len() == 4), "only complete episodes are handed out");
}

/// A Vault whose instances after the first render every observation with a mark, and whose
/// first instance crashes at its third step: a replay in the fresh instance lands elsewhere, like
/// a simulator whose state depends on the process it runs in.
struct Drifting {
    inner: VaultEnv,
    instance: usize,
    steps: usize,
}

impl Drifting {
    fn mark(&self, observation: String) -> String {
        if self.instance == 0 {
            observation
        } else {
            format!("{observation} (drifted)")
        }
    }
}

impl Environment for Drifting {
    fn name(&self) -> &str {
        "drifting-vault"
    }
    fn tasks(&self) -> Vec<Task> {
        self.inner.tasks()
    }
    fn reset(&mut self, task: &Task, seed: u64) -> Result<String, EnvError> {
        let o = self.inner.reset(task, seed)?;
        Ok(self.mark(o))
    }
    fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        self.steps += 1;
        if self.instance == 0 && self.steps == 3 {
            return Err(EnvError::Crashed("simulated process death".into()));
        }
        let mut s = self.inner.step(action)?;
        s.observation = self.mark(s.observation);
        Ok(s)
    }
    fn max_steps(&self, task: &Task) -> usize {
        self.inner.max_steps(task)
    }
}

fn drifting_factory(config: &VaultConfig) -> impl eef_runtime::EnvFactory {
    let world = Arc::new(World::new(config));
    let made = AtomicUsize::new(0);
    move |_w: usize| -> Result<Drifting, EnvError> {
        Ok(Drifting { inner: VaultEnv::with_world(world.clone()), instance: made.fetch_add(1, Ordering::SeqCst), steps: 0 })
    }
}

#[test]
fn a_replay_after_a_crash_that_lands_elsewhere_is_not_evidence() {
    let cfg = small_vault();
    let expert: Arc<dyn Policy> = Arc::new(ScriptedExpert::new(&World::new(&cfg)));
    let one_job = || jobs(&cfg, 1).into_iter().take(1).collect::<Vec<_>>();
    let checked = Rollouts::new(Arc::new(drifting_factory(&cfg)), RolloutConfig { concurrency: 1, progress: false, ..RolloutConfig::default() });
    let out = runtime().block_on(play(&checked, expert.clone(), one_job())).unwrap();
    // Turn 0's observation came from the first instance; its replay from the second differs.
    assert_eq!(out[0].termination, Termination::ReplayDiverged { step: 0 });
    assert!(!out[0].termination.is_evidence());
    assert_eq!(out[0].turns.len(), 2, "the two steps taken before the crash are kept");

    let unchecked = Rollouts::new(
        Arc::new(drifting_factory(&cfg)),
        RolloutConfig { concurrency: 1, progress: false, verify_replay: false, ..RolloutConfig::default() },
    );
    let out = runtime().block_on(play(&unchecked, expert, one_job())).unwrap();
    assert!(out[0].termination.is_evidence(), "{:?}", out[0].termination);
    let drifted = out[0].turns.iter().map(|t| &t.observation).chain([&out[0].final_observation]).any(|o| o.ends_with("(drifted)"));
    assert!(drifted, "the episode went on elsewhere: {}", out[0].summary());
}

#[test]
fn an_expert_prefix_whose_replay_differs_from_the_record_is_not_evidence() {
    let cfg = small_vault();
    let expert: Arc<dyn Policy> = Arc::new(ScriptedExpert::new(&World::new(&cfg)));
    let r = engine(VaultEnv::factory(&cfg), 1, None);
    let first = jobs(&cfg, 1).remove(0);
    let recorded = runtime().block_on(play(&r, expert.clone(), vec![first.clone()])).unwrap().remove(0);
    assert!(recorded.turns.len() >= 4, "{}", recorded.summary());
    let from_state = |prefix: Vec<eef_runtime::Turn>| EpisodeJob {
        id: format!("{}/s3/0", first.task.id),
        start: eef_runtime::StartState::Expert { trajectory: recorded.id.clone(), step: 3 },
        prefix,
        state_observation: Some(recorded.turns[3].observation.clone()),
        ..first.clone()
    };
    let faithful = runtime().block_on(play(&r, expert.clone(), vec![from_state(recorded.turns[..3].to_vec())])).unwrap();
    assert_eq!(faithful[0].termination, Termination::Done);
    assert_eq!(faithful[0].turns[..3].iter().map(|t| &t.observation).collect::<Vec<_>>(), recorded.turns[..3].iter().map(|t| &t.observation).collect::<Vec<_>>());

    // Expert data rendered by another implementation: turn 1's observation differs.
    let mut imported = recorded.turns[..3].to_vec();
    imported[1].observation.push_str(" [as another implementation renders it]");
    let diverged = runtime().block_on(play(&r, expert.clone(), vec![from_state(imported)])).unwrap();
    assert_eq!(diverged[0].termination, Termination::ReplayDiverged { step: 1 });

    // Only the probed state itself differs (the replay's last action lands elsewhere): the
    // state's own observation is checked too.
    let mut elsewhere = from_state(recorded.turns[..3].to_vec());
    elsewhere.state_observation.as_mut().unwrap().push_str(" [another state]");
    let diverged = runtime().block_on(play(&r, expert.clone(), vec![elsewhere])).unwrap();
    assert_eq!(diverged[0].termination, Termination::ReplayDiverged { step: 3 });
    assert!(diverged[0].turns.iter().all(|t| t.actor == eef_runtime::Actor::Expert), "the policy never acted");

    // The from_plan path records the state's observation from the expert's next turn.
    let planned = EpisodeJob::from_plan("p".into(), &first.task, &eef_runtime::StartState::Expert { trajectory: recorded.id.clone(), step: 3 }, std::slice::from_ref(&recorded), 0, 9, 0.0, first.source.clone()).unwrap();
    assert_eq!(planned.state_observation.as_deref(), Some(recorded.turns[3].observation.as_str()));
    let last = recorded.turns.len();
    let after_end = EpisodeJob::from_plan("q".into(), &first.task, &eef_runtime::StartState::Expert { trajectory: recorded.id.clone(), step: last }, std::slice::from_ref(&recorded), 0, 9, 0.0, first.source.clone()).unwrap();
    assert_eq!(after_end.state_observation, None, "no recorded continuation after the last action");
}

#[test]
fn a_replayed_prefix_that_ends_the_episode_where_the_recording_went_on_is_not_evidence() {
    let cfg = small_vault();
    let expert: Arc<dyn Policy> = Arc::new(ScriptedExpert::new(&World::new(&cfg)));
    let r = engine(VaultEnv::factory(&cfg), 1, None);
    let first = jobs(&cfg, 1).remove(0);
    let recorded = runtime().block_on(play(&r, expert.clone(), vec![first.clone()])).unwrap().remove(0);
    assert_eq!(recorded.termination, Termination::Done, "{}", recorded.summary());
    // A recording that claims the episode went on after its final action (as data from another
    // implementation might): replaying every action ends the episode instead.
    let n = recorded.turns.len();
    let job = EpisodeJob {
        id: format!("{}/s{n}/0", first.task.id),
        start: eef_runtime::StartState::Expert { trajectory: recorded.id.clone(), step: n },
        prefix: recorded.turns.clone(),
        state_observation: Some(recorded.final_observation.clone()),
        ..first.clone()
    };
    let out = runtime().block_on(play(&r, expert, vec![job])).unwrap().remove(0);
    assert_eq!(out.termination, Termination::ReplayDiverged { step: n }, "{}", out.summary());
    assert!(!out.termination.is_evidence());
}

/// An environment whose start depends on the reset seed (a shuffled room), like a simulator
/// that draws its layout from the seed.
struct SeededRooms {
    room: u64,
}

impl Environment for SeededRooms {
    fn name(&self) -> &str {
        "seeded-rooms"
    }
    fn tasks(&self) -> Vec<Task> {
        vec![Task::new("rooms-0", "leave the room", eef_runtime::Split::Train, 0)]
    }
    fn reset(&mut self, _task: &Task, seed: u64) -> Result<String, EnvError> {
        self.room = seed % 97;
        Ok(format!("You are in room {}.", self.room))
    }
    fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        let done = action == "leave";
        Ok(StepResult { observation: format!("Still in room {} after {action}.", self.room), reward: if done { 1.0 } else { 0.0 }, done })
    }
    fn max_steps(&self, _task: &Task) -> usize {
        5
    }
}

/// Always answers `wait`, then `leave`.
struct Leaver;

impl Policy for Leaver {
    fn name(&self) -> String {
        "leaver".into()
    }
    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        requests.iter().map(|r| Ok(Act::new(if r.history.len() < 2 { "wait" } else { "leave" }))).collect()
    }
}

#[test]
fn probes_replay_the_expert_prefix_with_the_experts_own_seed() {
    let r = engine(|_w: usize| -> Result<SeededRooms, EnvError> { Ok(SeededRooms { room: 0 }) }, 1, None);
    let task = SeededRooms { room: 0 }.tasks().remove(0);
    let policy: Arc<dyn Policy> = Arc::new(Leaver);
    let expert_job = EpisodeJob::from_start(task.clone(), 0, 1234, 0.0, Source::Expert);
    let recorded = runtime().block_on(play(&r, policy.clone(), vec![expert_job])).unwrap().remove(0);
    assert_eq!(recorded.seed, 1234);
    let probe = |reset_seed: Option<u64>| EpisodeJob {
        id: "rooms-0/probe".into(),
        start: eef_runtime::StartState::Expert { trajectory: recorded.id.clone(), step: 2 },
        prefix: recorded.turns[..2].to_vec(),
        seed: 777,
        reset_seed,
        ..EpisodeJob::from_start(task.clone(), 0, 777, 1.0, Source::Exploration { method: "eef".into(), iteration: 1 })
    };
    let with_expert_seed = runtime().block_on(play(&r, policy.clone(), vec![probe(Some(recorded.seed))])).unwrap().remove(0);
    assert_eq!(with_expert_seed.termination, Termination::Done, "{}", with_expert_seed.summary());
    assert_eq!(with_expert_seed.turns[0].observation, recorded.turns[0].observation);
    assert_eq!(with_expert_seed.seed, 1234, "the trajectory records the seed its environment was reset with");
    // Resetting with the probe's own seed lands in another room: the replay diverges.
    let with_job_seed = runtime().block_on(play(&r, policy, vec![probe(None)])).unwrap().remove(0);
    assert_eq!(with_job_seed.termination, Termination::ReplayDiverged { step: 0 });
}
