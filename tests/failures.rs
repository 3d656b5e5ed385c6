//! Runs whose result would be meaningless stop with an error that names the cause and the fix
//! (and the example command exits non-zero), instead of writing a report of zeros.

mod common;

use std::path::Path;

use common::runtime;
use eef_runtime::policy::{Act, ActRequest, Policy, PolicyError, TabularPolicy};
use eef_runtime::prelude::*;
use eef_runtime::Error;

/// Count up to the task's target with `inc`. `tasks` lists the tasks; the episodes of tasks in
/// `broken` fail at reset with `InvalidState`.
#[derive(Clone, Default)]
struct Counter {
    tasks: Vec<Task>,
    broken: Vec<usize>,
    target: u32,
    value: u32,
}

fn counter_tasks(train: usize, test: usize) -> Vec<Task> {
    (0..train + test).map(|i| Task::new(format!("count-{i}"), format!("reach {}", 1 + i % 3), if i < train { Split::Train } else { Split::Test }, i)).collect()
}

impl Environment for Counter {
    fn name(&self) -> &str {
        "counter"
    }
    fn tasks(&self) -> Vec<Task> {
        self.tasks.clone()
    }
    fn reset(&mut self, task: &Task, _seed: u64) -> Result<String, EnvError> {
        if self.broken.contains(&task.index) {
            return Err(EnvError::InvalidState(format!("task {} cannot be set up", task.id)));
        }
        self.target = 1 + (task.index as u32) % 3;
        self.value = 0;
        Ok(format!("value 0 of {}", self.target))
    }
    fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        if action == "inc" {
            self.value += 1;
        }
        let done = self.value >= self.target;
        Ok(StepResult { observation: format!("value {} of {}", self.value, self.target), reward: f64::from(u8::from(done)), done })
    }
    fn max_steps(&self, _task: &Task) -> usize {
        5
    }
}

/// An expert that always answers `action`; `short` answers one request fewer than asked.
struct Scripted {
    action: &'static str,
    short: bool,
}

impl Policy for Scripted {
    fn name(&self) -> String {
        "scripted".into()
    }
    fn act_batch(&self, r: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        let n = if self.short { r.len().saturating_sub(1) } else { r.len() };
        (0..n).map(|_| Ok(Act::new(self.action))).collect()
    }
}

const CONFIG: &str = r#"
[experiment]
name = "failing"
iterations = 1

[rollout]
concurrency = 2
max_batch = 2
progress = false

[[methods]]
selector = "rft"
"#;

fn config(dir: &Path, extra: &str) -> ExperimentConfig {
    let mut c = ExperimentConfig::from_toml("failing.toml", &format!("{CONFIG}\n{extra}")).unwrap();
    c.experiment.run_dir = dir.to_owned();
    c
}

/// A reward from a closure.
type ScoreFn = Box<dyn Fn(&Trajectory) -> f64 + Send + Sync>;

fn run_counter(env: Counter, expert: Scripted, extra: &str, reward: Option<ScoreFn>) -> Error {
    let tmp = tempfile::tempdir().unwrap();
    let mut exp = Experiment::new(config(tmp.path(), extra))
        .environment(move |_| -> Result<Counter, EnvError> { Ok(env.clone()) })
        .expert(expert)
        .policy(TabularPolicy::default);
    if let Some(f) = reward {
        exp = exp.reward(Panicky(f));
    }
    let err = runtime().block_on(exp.run()).expect_err("the run must stop");
    assert!(!tmp.path().join("failing/report.md").exists(), "a stopped run writes no report");
    err
}

struct Panicky(ScoreFn);

impl Reward for Panicky {
    fn name(&self) -> &str {
        "reaches_target"
    }
    fn score(&self, t: &Trajectory) -> f64 {
        (self.0)(t)
    }
}

fn good() -> Scripted {
    Scripted { action: "inc", short: false }
}

/// The error names the cause and a fix, and the example command exits non-zero on it.
fn meaningless(err: &Error, cause: &str, fix: &str) {
    let text = err.to_string();
    assert!(matches!(err, Error::Meaningless { .. }), "{text}");
    assert!(text.contains(cause), "cause {cause:?} not in:\n{text}");
    let fix_part = text.split("fix:").nth(1).unwrap_or_else(|| panic!("no fix in:\n{text}"));
    assert!(fix_part.contains(fix), "fix {fix:?} not in:\n{text}");
    assert_ne!(eef_experiments::cli::exit_status(err), 0);
}

fn vault(extra: &str) -> Error {
    vault_with(extra, |_| {})
}

fn vault_with(extra: &str, change: impl FnOnce(&mut ExperimentConfig)) -> Error {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(tmp.path(), extra);
    change(&mut c);
    let err = runtime().block_on(eef_experiments::vault::experiment(c).unwrap().run()).expect_err("the run must stop");
    assert!(!tmp.path().join("failing/report.md").exists());
    err
}

#[test]
fn zero_test_tasks_stop_the_run() {
    let err = vault("[environment]\ntrain_tasks = 10\ntest_tasks = 0\n");
    meaningless(&err, "no test tasks: the environment \"vault\" has no test tasks (train 10, test 0, dev 0)", "set [eval] split");
    let err = vault("[environment]\ntrain_tasks = 10\ntest_tasks = 5\n[eval]\nmax_tasks = 0\n");
    meaningless(&err, "no test tasks: [eval] max_tasks = 0", "raise [eval] max_tasks");
}

#[test]
fn zero_training_tasks_stop_the_run() {
    let err = vault("[environment]\ntrain_tasks = 0\ntest_tasks = 5\n");
    meaningless(&err, "no training tasks: the environment \"vault\" has no training tasks", "Split::Train");
    let err = vault_with("", |c| c.experiment.max_train_tasks = Some(0));
    meaningless(&err, "no training tasks: [experiment] max_train_tasks = 0", "raise [experiment] max_train_tasks");
}

#[test]
fn an_environment_with_no_tasks_stops_the_run() {
    let err = run_counter(Counter::default(), good(), "", None);
    meaningless(&err, "lists no tasks", "make tasks() return");
}

#[test]
fn duplicate_task_ids_are_named() {
    let mut tasks = counter_tasks(4, 2);
    tasks[5].id = tasks[1].id.clone();
    let err = run_counter(Counter { tasks, ..Counter::default() }, good(), "", None);
    meaningless(&err, "lists the task id \"count-1\" twice (a train task and a test task)", "unique");
}

#[test]
fn an_expert_without_successes_stops_the_run() {
    let err = run_counter(Counter { tasks: counter_tasks(6, 3), ..Counter::default() }, Scripted { action: "wait", short: false }, "", None);
    meaningless(&err, "the expert succeeded on none of the 6 training tasks: its best score was 0.000", "expert.jsonl");
}

#[test]
fn an_expert_that_answers_too_few_requests_is_named() {
    let err = run_counter(Counter { tasks: counter_tasks(8, 4), ..Counter::default() }, Scripted { action: "inc", short: true }, "", None);
    meaningless(&err, "of the phase \"expert\" broke (policy_failed", "act_batch");
    let text = err.to_string();
    assert!(text.contains("the policy \"scripted\" answered ") && text.contains(" requests in one act_batch call"), "{text}");
}

#[test]
fn an_environment_that_mostly_fails_stops_the_run_and_the_threshold_is_a_setting() {
    // 5 of 8 training tasks cannot be set up: 62% of the expert phase is broken.
    let env = Counter { tasks: counter_tasks(8, 4), broken: vec![0, 1, 2, 3, 4], ..Counter::default() };
    let err = run_counter(env.clone(), good(), "", None);
    meaningless(&err, "5 of 8 episodes of the phase \"expert\" broke (env_failed 5)", "raise [rollout] max_broken_share (now 0.2)");
    assert!(err.to_string().contains("the first, count-0/expert/0, ended with env_failed: invalid environment state: task count-0 cannot be set up"), "{err}");
    // Below the threshold the run goes on.
    let tmp = tempfile::tempdir().unwrap();
    let env = Counter { broken: vec![0], ..env };
    let exp = Experiment::new(config(tmp.path(), "")).environment(move |_| -> Result<Counter, EnvError> { Ok(env.clone()) }).expert(good()).policy(TabularPolicy::default);
    let report = runtime().block_on(exp.run()).expect("1 of 8 broken is within the default share");
    assert_eq!(report.train_tasks, 8);
}

#[test]
fn a_panicking_reward_is_named_with_its_task() {
    let reward = Box::new(|t: &Trajectory| -> f64 {
        if t.task_id.as_str() == "count-2" {
            panic!("no score for {}", t.task_id.as_str());
        }
        t.last_step_reward()
    });
    let err = run_counter(Counter { tasks: counter_tasks(4, 2), ..Counter::default() }, good(), "", Some(reward));
    assert!(matches!(err, Error::Reward { .. }), "{err}");
    assert_eq!(err.to_string(), "the reward `reaches_target` panicked scoring an episode of task count-2: no score for count-2");
    assert_ne!(eef_experiments::cli::exit_status(&err), 0);
}

#[test]
fn a_missing_config_file_is_named_without_a_position() {
    let err = ExperimentConfig::from_file("does/not/exist.toml").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("does/not/exist.toml: cannot read the configuration:"), "{text}");
    assert!(!text.contains(":0:0"), "{text}");
}
