//! The DSL as a user writes it: an environment, a reward and a selector declared with the
//! macros, run through the loop.

mod common;

use eef_runtime::policy::{Act, ActRequest, Policy, PolicyError, TabularPolicy};
use eef_runtime::prelude::*;
use eef_runtime::selection::{PlanContext, Reason};

/// Count up to a target by pressing `inc`; `dec` undoes. Trains and tests are split by index.
#[derive(Default)]
pub struct Counter {
    target: u32,
    value: u32,
}

#[derive(Debug)]
pub struct CounterError;


impl std::fmt::Display for CounterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("counter error")
    }
}

impl From<CounterError> for EnvError {
    fn from(e: CounterError) -> Self {
        EnvError::Other(e.to_string())
    }
}

#[environment(name = "counter")]
impl Counter {
    fn tasks(&self) -> Vec<Task> {
        (0..12).map(|i| Task::new(format!("count-{i}"), format!("reach {}", 1 + i % 4), if i < 8 { Split::Train } else { Split::Test }, i)).collect()
    }

    fn reset(&mut self, task: &Task, _seed: u64) -> Result<String, CounterError> {
        self.target = 1 + (task.index as u32) % 4;
        self.value = 0;
        Ok(format!("value 0 of {}", self.target))
    }

    fn step(&mut self, action: &str) -> StepResult {
        match action {
            "inc" => self.value += 1,
            "dec" => self.value = self.value.saturating_sub(1),
            _ => return StepResult::running(format!("unknown action\nvalue {} of {}", self.value, self.target), 0.0),
        }
        let obs = format!("value {} of {}", self.value, self.target);
        if self.value == self.target {
            StepResult::finished(obs, 1.0)
        } else {
            StepResult::running(obs, 0.0)
        }
    }

    fn valid_actions(&self) -> Option<Vec<String>> {
        Some(vec!["inc".into(), "dec".into()])
    }

    fn max_steps(&self, task: &Task) -> usize {
        2 + 2 * (1 + task.index % 4)
    }
}

/// Success is any positive final reward.
#[reward(name = "reached", success = 0.5)]
fn reached(t: &Trajectory) -> f64 {
    t.last_step_reward()
}

fn starts_only(_ctx: &PlanContext<'_>) -> Vec<StartState> {
    vec![StartState::TaskStart]
}

/// Keep the *longest* successful exploration per task, fully trainable.
#[selector(name = "longest", plan = starts_only)]
fn longest(group: &TaskGroup<'_>) -> Selection {
    let mut s = Selection::default();
    if let Some(t) = group.explored.iter().filter(|t| t.success).max_by_key(|t| (t.turns.len(), std::cmp::Reverse(t.sample))) {
        s.push(eef_runtime::selection::mask_before(t, 0), Reason::Custom("longest".into()));
    }
    s
}

/// An expert that always increments.
struct Incrementer;

impl Policy for Incrementer {
    fn name(&self) -> String {
        "incrementer".into()
    }
    fn act_batch(&self, r: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        r.iter().map(|_| Ok(Act::new("inc"))).collect()
    }
}

#[test]
fn declared_items_implement_the_runtime_traits() {
    let mut env = Counter::default();
    assert_eq!(Environment::name(&env), "counter");
    let task = env.tasks()[2].clone();
    assert_eq!(env.max_steps(&task), 8);
    assert_eq!(Environment::reset(&mut env, &task, 0).unwrap(), "value 0 of 3");
    let r = env.replay(&task, 0, &["inc".into(), "inc".into()]).unwrap();
    assert_eq!(r.observation, "value 2 of 3");
    assert!(!r.done);

    assert_eq!(reached.name(), "reached");
    assert!(reached.is_success(0.5) && !reached.is_success(0.4));
    assert_eq!(longest.name(), "longest");
}

#[test]
fn a_custom_selector_runs_in_the_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = ExperimentConfig::from_toml(
        "dsl.toml",
        "[experiment]\nname = \"dsl\"\niterations = 1\n[rollout]\nprogress = false\n[[methods]]\nselector = \"longest\"\nsamples = 3\n",
    )
    .unwrap();
    config.experiment.run_dir = tmp.path().to_owned();
    let exp = Experiment::new(config)
        .environment(|_| Ok::<_, EnvError>(Counter::default()))
        .expert(Incrementer)
        .policy(TabularPolicy::default)
        .reward(reached)
        .selector(longest);
    let report = common::runtime().block_on(exp.run()).unwrap();
    assert_eq!(report.methods[0].label, "LONGEST x3");
    assert_eq!(report.expert_eval.win_rate, 1.0);
    let picked: Vec<TrainingExample> =
        eef_runtime::jsonl::read(&tmp.path().join("dsl/longest-x3/iter-1/selection.jsonl")).unwrap();
    assert!(!picked.is_empty());
    assert!(picked.iter().all(|e| e.reason == Reason::Custom("longest".into())));
}
