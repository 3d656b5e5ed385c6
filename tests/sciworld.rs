//! ScienceWorld through the real simulator. These tests need Java and the jar that
//! `scripts/setup-scienceworld.sh` installs, so they are `#[ignore]`d in a plain `cargo test`;
//! `.ci/run` runs them with `-- --include-ignored` after the setup script.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use eef_environments::sciworld::{gold_paths, GoldExpert, Install, SciWorldConfig, SciWorldEnv};
use eef_runtime::environment::{EnvError, Environment, StepResult};
use eef_runtime::reward::BestScore;
use eef_runtime::rollout::{CancellationToken, EpisodeJob, RolloutConfig, Rollouts};
use eef_runtime::{Source, Task, Termination, Trajectory};

const NEEDS: &str = "needs Java and ScienceWorld: bash scripts/setup-scienceworld.sh";

/// Short tasks of three types from ETO's training split.
fn config() -> SciWorldConfig {
    SciWorldConfig { max_test_tasks: Some(0), call_timeout_secs: 20.0, ..SciWorldConfig::default() }
}

fn pick(env: &SciWorldEnv, kinds: &[&str]) -> Vec<Task> {
    let tasks = env.tasks();
    kinds
        .iter()
        .map(|k| {
            let i = env.task_list().tasks.iter().position(|(t, _)| t.simulator_name == *k).expect(k);
            tasks[i].clone()
        })
        .collect()
}

fn gold_for(env: &SciWorldEnv, tasks: &[Task]) -> BTreeMap<String, Vec<String>> {
    let install = Install::locate().expect(NEEDS);
    let list: Vec<_> = tasks.iter().map(|t| env.task_list().tasks[t.index].0.clone()).collect();
    gold_paths(&install, "easy", &list).unwrap()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
#[ignore = "needs Java and ScienceWorld: bash scripts/setup-scienceworld.sh"]
fn gold_paths_score_100() {
    let mut env = SciWorldEnv::new(&config()).expect(NEEDS);
    let tasks = pick(&env, &["find-animal", "lifespan-longest-lived", "chemistry-mix-paint-secondary-color"]);
    let gold = gold_for(&env, &tasks);
    for task in &tasks {
        let first = env.reset(task, 0).unwrap();
        assert!(first.starts_with("Task Description: "), "{first}");
        // Gold sequences may end with a trailing `wait1` after the completing action; like an
        // agent, stop when the simulator reports completion.
        let mut last = StepResult::running("", 0.0);
        for a in &gold[task.id.as_str()] {
            last = env.step(a).unwrap();
            if last.done {
                break;
            }
        }
        assert!(last.done && last.reward == 100.0, "{}: {last:?}", task.id);
        assert!(env.max_steps(task) >= gold[task.id.as_str()].len(), "ETO's limit fits the gold path");
    }
    // A malformed action gets the simulator's own answer and changes nothing.
    env.reset(&tasks[0], 0).unwrap();
    let before = env.step("look around").unwrap();
    let s = env.step("dance with the thermometer").unwrap();
    assert_eq!(s.observation, "No known action matches that input.");
    assert!(!s.done, "{s:?}");
    assert_eq!(s.reward, before.reward, "the score is untouched");
    let pid = env.jvm_pid().unwrap();
    drop(env);
    assert!(!alive(pid), "dropping the environment ends its JVM");
}

#[test]
#[ignore = "needs Java and ScienceWorld: bash scripts/setup-scienceworld.sh"]
fn replaying_a_prefix_gives_the_original_observation() {
    let mut env = SciWorldEnv::new(&config()).expect(NEEDS);
    let task = pick(&env, &["chemistry-mix-paint-secondary-color"]).remove(0);
    let gold = gold_for(&env, std::slice::from_ref(&task));
    let actions = &gold[task.id.as_str()];
    env.reset(&task, 0).unwrap();
    let mut played = Vec::new();
    for a in actions {
        let s = env.step(a).unwrap();
        played.push(s.observation);
        if s.done {
            break;
        }
    }
    for k in [1, 5, played.len() / 2, played.len() - 1] {
        let mut fresh = SciWorldEnv::new(&config()).unwrap();
        let r = fresh.replay(&task, 0, &actions[..k]).unwrap();
        assert_eq!(r.observation, played[k - 1], "state after {k} actions");
        assert!(!r.done);
    }
}

/// A SciWorld instance that kills (or freezes) its own JVM before a given step, once per test.
struct Sabotaged {
    inner: SciWorldEnv,
    at_step: usize,
    steps: usize,
    signal: &'static str,
    done: Arc<AtomicBool>,
    pids: Arc<Mutex<Vec<u32>>>,
}

impl Environment for Sabotaged {
    fn name(&self) -> &str {
        "sabotaged-sciworld"
    }
    fn tasks(&self) -> Vec<Task> {
        self.inner.tasks()
    }
    fn reset(&mut self, task: &Task, seed: u64) -> Result<String, EnvError> {
        self.steps = 0;
        let r = self.inner.reset(task, seed);
        if let Some(p) = self.inner.jvm_pid() {
            let mut pids = self.pids.lock().unwrap();
            if !pids.contains(&p) {
                pids.push(p);
            }
        }
        r
    }
    fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        self.steps += 1;
        if self.steps == self.at_step && !self.done.swap(true, Ordering::SeqCst) {
            let pid = self.inner.jvm_pid().unwrap().to_string();
            std::process::Command::new("kill").args([self.signal, &pid]).status().unwrap();
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

fn run_with(signal: &'static str, call_timeout_secs: f64) -> (Vec<Trajectory>, Vec<u32>) {
    let cfg = SciWorldConfig { call_timeout_secs, ..config() };
    let probe = SciWorldEnv::new(&cfg).expect(NEEDS);
    let tasks = pick(&probe, &["find-animal", "lifespan-longest-lived"]);
    let expert = GoldExpert::new(&gold_for(&probe, &tasks), &eef_environments::sciworld::CorruptionConfig { rate: 0.0, seed: 0 });
    drop(probe);
    let make = SciWorldEnv::factory(&cfg).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let pids = Arc::new(Mutex::new(Vec::new()));
    let (d, p) = (done.clone(), pids.clone());
    let factory = move |w: usize| -> Result<Sabotaged, EnvError> {
        Ok(Sabotaged { inner: make(w)?, at_step: 4, steps: 0, signal, done: d.clone(), pids: p.clone() })
    };
    let engine = Rollouts::new(Arc::new(factory), RolloutConfig { concurrency: 1, progress: false, ..RolloutConfig::default() });
    let jobs = tasks
        .into_iter()
        .map(|t| EpisodeJob::from_start(t, 0, 1, 0.0, Source::Expert))
        .collect();
    let out = common::runtime()
        .block_on(engine.run("sciworld", Arc::new(expert), Arc::new(BestScore { scale: 100.0, threshold: 1.0 }), jobs, CancellationToken::new(), |_| Ok(())))
        .unwrap();
    assert!(done.load(Ordering::SeqCst), "the sabotage happened");
    let pids = pids.lock().unwrap().clone();
    (out, pids)
}

#[test]
#[ignore = "needs Java and ScienceWorld: bash scripts/setup-scienceworld.sh"]
fn a_killed_jvm_is_restarted_and_the_episode_completes() {
    let (out, pids) = run_with("-KILL", 20.0);
    for t in &out {
        assert_eq!(t.termination, Termination::Done, "{}", t.id);
        assert!(t.success && t.reward == 1.0, "{}: {}", t.id, t.reward);
    }
    assert!(pids.len() >= 2, "a second JVM replaced the killed one: {pids:?}");
    assert!(pids.iter().all(|&p| !alive(p)), "no JVM outlives its environment: {pids:?}");
}

#[test]
#[ignore = "needs Java and ScienceWorld: bash scripts/setup-scienceworld.sh"]
fn a_hung_jvm_times_out_and_is_replaced() {
    let (out, pids) = run_with("-STOP", 3.0);
    for t in &out {
        assert!(t.success, "{}: {:?}", t.id, t.termination);
    }
    assert!(pids.len() >= 2, "{pids:?}");
    assert!(pids.iter().all(|&p| !alive(p)), "the frozen JVM was killed: {pids:?}");
}
