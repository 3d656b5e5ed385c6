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

/// `short_rft`'s parameters: `[[methods]] params = { max_turns = 3 }`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShortParams {
    /// The longest exploration kept.
    pub max_turns: usize,
}

impl Default for ShortParams {
    fn default() -> Self {
        ShortParams {
            max_turns: usize::MAX,
        }
    }
}

/// RFT that keeps the first successful exploration of at most `max_turns` turns.
#[selector]
fn short_rft(group: &TaskGroup<'_>, params: &ShortParams) -> Selection {
    let mut s = Selection::default();
    if let Some(t) = group
        .explored
        .iter()
        .find(|t| t.success && t.turns.len() <= params.max_turns)
    {
        s.push(
            eef_runtime::selection::mask_before(t, 0),
            Reason::Custom(format!("at most {} turns", params.max_turns)),
        );
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

fn short_rft_run(methods: &str) -> Result<(eef_runtime::Report, tempfile::TempDir), String> {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "[experiment]\nname = \"dsl\"\niterations = 1\n[rollout]\nprogress = false\n{methods}"
    );
    let mut config = ExperimentConfig::from_toml("dsl.toml", &text).map_err(|e| e.to_string())?;
    config.experiment.run_dir = tmp.path().to_owned();
    let exp = Experiment::new(config)
        .environment(|_| Ok::<_, EnvError>(Counter::default()))
        .expert(Incrementer)
        .policy(TabularPolicy::default)
        .reward(reached)
        .selector(short_rft);
    let report = common::runtime()
        .block_on(exp.run())
        .map_err(|e| e.to_string())?;
    Ok((report, tmp))
}

/// A selector's parameters come from its method's `params` table, each method its own; a method
/// without `params` runs with the type's defaults.
#[test]
fn a_selector_reads_its_parameters_from_the_method_table() {
    let methods = "[[methods]]\nselector = \"short_rft\"\nlabel = \"short\"\nsamples = 4\nparams = { max_turns = 3 }\n\n[[methods]]\nselector = \"short_rft\"\nlabel = \"any\"\nsamples = 4\n";
    let (_, tmp) = short_rft_run(methods).unwrap();
    let read = |m: &str| -> Vec<TrainingExample> {
        eef_runtime::jsonl::read(&tmp.path().join(format!("dsl/{m}/iter-1/selection.jsonl")))
            .unwrap()
    };
    let (short, any) = (read("short"), read("any"));
    assert!(
        !short.is_empty()
            && short.iter().all(|e| e.trajectory.turns.len() <= 3
                && e.reason == Reason::Custom("at most 3 turns".into()))
    );
    assert!(
        any.iter().any(|e| e.trajectory.turns.len() > 3),
        "without params the default (no limit) applies"
    );
    assert!(any
        .iter()
        .all(|e| e.reason == Reason::Custom(format!("at most {} turns", usize::MAX))));
    // The same selector, bound in code, as a snapshot test would use it.
    assert_eq!(
        short_rft::with(ShortParams { max_turns: 3 })
            .params()
            .max_turns,
        3
    );
}

/// Parameter errors name the file, line and column of the offending key and say what was
/// expected; a selector without parameters refuses a table; the built-in `eef` takes overrides of
/// its `[eef]` section.
#[test]
fn selector_parameter_errors_point_at_the_key() {
    let err = short_rft_run("[[methods]]\nselector = \"short_rft\"\nparams = { max_turn = 3 }\n")
        .unwrap_err();
    assert!(
        err.contains("dsl.toml:8:12")
            && err.contains("unknown field `max_turn`, expected `max_turns`")
            && err.contains("SHORT_RFT"),
        "{err}"
    );
    let err = short_rft_run(
        "[[methods]]\nselector = \"short_rft\"\nparams = { max_turns = \"three\" }\n",
    )
    .unwrap_err();
    assert!(
        err.contains("dsl.toml:8:24") && err.contains("invalid type"),
        "{err}"
    );
    let err =
        short_rft_run("[[methods]]\nselector = \"short_rft\"\n[methods.params]\nmax_turns = -1\n")
            .unwrap_err();
    assert!(
        err.starts_with("dsl.toml:") && err.contains("`params`") && err.contains("invalid value"),
        "{err}"
    );
    let err =
        short_rft_run("[[methods]]\nselector = \"sft\"\nparams = { states = 3 }\n").unwrap_err();
    assert!(
        err.contains("dsl.toml:8:") && err.contains("selector \"sft\" takes no parameters"),
        "{err}"
    );
    let err =
        short_rft_run("[[methods]]\nselector = \"eef\"\nparams = { state = 3 }\n").unwrap_err();
    assert!(
        err.contains("dsl.toml:8:12") && err.contains("unknown field `state`"),
        "{err}"
    );
}

/// `eef` with `params = { states = 2, .. }` runs with those keys over the `[eef]` section's.
#[test]
fn the_built_in_eef_takes_per_method_overrides() {
    use eef_runtime::selection::Eef;
    let text = "[eef]\nstates = 4\ninclude_expert_successes = false\n[[methods]]\nselector = \"eef\"\nlabel = \"m2\"\nparams = { states = 2, include_task_starts = false }\n";
    let config = ExperimentConfig::from_toml("x.toml", text).unwrap();
    let params = config.method_params(&config.methods[0]);
    let eef: Eef = params.overlay(&config.eef).unwrap();
    assert_eq!(
        (
            eef.states,
            eef.include_task_starts,
            eef.include_expert_successes
        ),
        (2, false, false),
        "params over [eef], the rest from [eef]"
    );
    let configured = config
        .eef
        .configure(&params)
        .unwrap()
        .expect("a configured copy");
    assert_eq!(configured.name(), "eef");
}

/// The public test helper: any environment's task groups in one call (expert, then exploration
/// as the selector plans), and the selection a snapshot pins.
#[test]
fn short_rft_snapshot() {
    use eef_runtime::testing::{GroupOptions, TaskGroups};
    let selector = short_rft::with(ShortParams { max_turns: 3 });
    let options = GroupOptions { samples: 4, seed: 5, ..GroupOptions::default() };
    let groups = TaskGroups::collect(|_| Ok::<_, EnvError>(Counter::default()), Incrementer, TabularPolicy::default(), &selector, &options).unwrap();
    assert_eq!(groups.tasks.len(), 8);
    assert!(groups.explored.values().all(|v| v.len() == 4), "four explorations from each task start");
    let selection = groups.select(&selector);
    assert!(!selection.examples.is_empty() && selection.examples.len() < 8, "some tasks have a short success, some not");
    insta::assert_snapshot!(selection.summary());
}
