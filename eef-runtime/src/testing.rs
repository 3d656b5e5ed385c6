//! Test helpers for experiment authors: what a selector sees, for any environment, in a few
//! lines. [`TaskGroups::collect`] runs the expert on the training tasks, explores them as a
//! selector plans (task starts, expert states replayed with the expert's seed) and groups the
//! trajectories per task, as the experiment's runner does; [`TaskGroups::select`] then gives the
//! selection a snapshot test pins:
//!
//! ```
//! use eef_runtime::prelude::*;
//! use eef_runtime::selection::Eef;
//! use eef_runtime::testing::{GroupOptions, TaskGroups};
//! # #[derive(Default)] struct Door { open: bool }
//! # #[environment(name = "door", max_steps = 3)]
//! # impl Door {
//! #     fn tasks(&self) -> Vec<Task> { (0..4).map(|i| Task::new(format!("door-{i}"), "open the door", Split::Train, i)).collect() }
//! #     fn reset(&mut self, _task: &Task, _seed: u64) -> Result<String, EnvError> { self.open = false; Ok("a closed door".into()) }
//! #     fn step(&mut self, action: &str) -> StepResult {
//! #         if action == "open" { StepResult::finished("open", 1.0) } else { StepResult::running("still closed", 0.0) }
//! #     }
//! #     fn valid_actions(&self) -> Option<Vec<String>> { Some(vec!["open".into(), "wait".into()]) }
//! # }
//! # struct Opener; impl Policy for Opener { fn name(&self) -> String { "opener".into() }
//! # fn act_batch(&self, r: &[ActRequest]) -> Vec<Result<Act, PolicyError>> { r.iter().map(|_| Ok(Act::new("open"))).collect() } }
//! let eef = Eef::default();
//! let groups = TaskGroups::collect(|_| Ok::<_, EnvError>(Door::default()), Opener, Opener, &eef, &GroupOptions::default())?;
//! let selection = groups.select(&eef);
//! assert_eq!(groups.tasks.len(), 4);
//! assert!(!selection.examples.is_empty());
//! // insta::assert_snapshot!(selection.summary());
//! # Ok::<(), eef_runtime::Error>(())
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::environment::EnvFactory;
use crate::error::Error;
use crate::policy::Policy;
use crate::reward::{FinalReward, Reward};
use crate::rollout::{CancellationToken, EpisodeJob, RolloutConfig, Rollouts};
use crate::selection::{PlanContext, Selection, Selector, TaskGroup};
use crate::task::{Split, Task, TaskId};
use crate::trajectory::{Source, StartState, Trajectory};

/// How [`TaskGroups::collect`] runs.
#[derive(Clone)]
pub struct GroupOptions {
    /// The first this many training tasks (all when `None`).
    pub max_tasks: Option<usize>,
    /// Explorations per planned start.
    pub samples: usize,
    /// Every episode's seed derives from this and the episode's id.
    pub seed: u64,
    /// The explorer's sampling temperature (the expert acts at 0).
    pub temperature: f32,
    /// Episodes in flight at once (results do not depend on it).
    pub concurrency: usize,
    /// The reward (success = `Reward::is_success`).
    pub reward: Arc<dyn Reward>,
    /// The iteration the groups are labelled with (1 = the first exploration).
    pub iteration: usize,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions { max_tasks: None, samples: 1, seed: 0, temperature: 1.0, concurrency: 2, reward: Arc::new(FinalReward), iteration: 1 }
    }
}

/// The expert's and the explorer's trajectories of each training task.
#[derive(Clone, Debug, Default)]
pub struct TaskGroups {
    /// The training tasks, in the environment's order.
    pub tasks: Vec<Task>,
    /// The expert's trajectories per task.
    pub experts: BTreeMap<TaskId, Vec<Trajectory>>,
    /// The explorations per task, from every planned start.
    pub explored: BTreeMap<TaskId, Vec<Trajectory>>,
    /// The iteration the groups carry.
    pub iteration: usize,
}

impl TaskGroups {
    /// Runs `expert` once on each training task (greedy), then `explorer` from every start
    /// `selector` plans, `options.samples` times each. Blocking: it runs its own async runtime
    /// (inside one, use [`TaskGroups::collect_async`]).
    pub fn collect(factory: impl EnvFactory, expert: impl Policy, explorer: impl Policy, selector: &dyn Selector, options: &GroupOptions) -> Result<Self, Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Setup("TaskGroups::collect blocks; inside an async runtime call TaskGroups::collect_async".into()));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.concurrency.clamp(1, 4))
            .enable_all()
            .build()
            .map_err(|e| Error::Setup(format!("cannot start an async runtime: {e}")))?;
        runtime.block_on(Self::collect_async(Arc::new(factory), Arc::new(expert), Arc::new(explorer), selector, options))
    }

    /// [`TaskGroups::collect`] inside an async runtime.
    pub async fn collect_async(factory: Arc<dyn EnvFactory>, expert: Arc<dyn Policy>, explorer: Arc<dyn Policy>, selector: &dyn Selector, options: &GroupOptions) -> Result<Self, Error> {
        let probe = factory.make(0)?;
        let mut tasks: Vec<Task> = probe.tasks().into_iter().filter(|t| t.split == Split::Train).collect();
        drop(probe);
        if let Some(n) = options.max_tasks {
            tasks.truncate(n);
        }
        let rollouts = Rollouts::new(factory, RolloutConfig { concurrency: options.concurrency.max(1), progress: false, ..RolloutConfig::default() });
        let seed = |id: &str| crate::seed::derive(options.seed, id);
        let expert_jobs: Vec<EpisodeJob> = tasks
            .iter()
            .map(|t| {
                let id = format!("{}/expert/0", t.id);
                let mut job = EpisodeJob::from_start(t.clone(), 0, seed(&id), 0.0, Source::Expert);
                job.id = id;
                job
            })
            .collect();
        let experts = rollouts.run("expert", expert, options.reward.clone(), expert_jobs, CancellationToken::new(), |_| Ok(())).await?;
        let mut by_task: BTreeMap<TaskId, Vec<Trajectory>> = BTreeMap::new();
        for t in experts {
            by_task.entry(t.task_id.clone()).or_default().push(t);
        }
        let mut jobs = Vec::new();
        for task in &tasks {
            let mine = by_task.get(&task.id).map_or(&[][..], Vec::as_slice);
            for start in selector.plan(&PlanContext { task, experts: mine }) {
                let tag = match &start {
                    StartState::TaskStart => "s0".to_owned(),
                    StartState::Expert { trajectory, step } => format!("{trajectory}@s{step}"),
                };
                for sample in 0..options.samples.max(1) {
                    let id = format!("{}/it{}/{}/{tag}/{sample}", selector.name(), options.iteration, task.id);
                    let source = Source::Exploration { method: selector.name().to_owned(), iteration: options.iteration };
                    let job = EpisodeJob::from_plan(id.clone(), task, &start, mine, sample, seed(&id), options.temperature, source)
                        .ok_or_else(|| Error::Setup(format!("{} planned a start on an unknown expert trajectory: {tag}", selector.name())))?;
                    jobs.push(job);
                }
            }
        }
        let explored = rollouts.run("explore", explorer, options.reward.clone(), jobs, CancellationToken::new(), |_| Ok(())).await?;
        let mut explored_by_task: BTreeMap<TaskId, Vec<Trajectory>> = BTreeMap::new();
        for t in explored {
            explored_by_task.entry(t.task_id.clone()).or_default().push(t);
        }
        Ok(TaskGroups { tasks, experts: by_task, explored: explored_by_task, iteration: options.iteration })
    }

    /// The group of each task, as a selector sees it.
    pub fn groups(&self) -> Vec<TaskGroup<'_>> {
        self.tasks
            .iter()
            .map(|task| TaskGroup {
                task,
                experts: self.experts.get(&task.id).map_or(&[], Vec::as_slice),
                explored: self.explored.get(&task.id).map_or(&[], Vec::as_slice),
                iteration: self.iteration,
            })
            .collect()
    }

    /// `selector`'s selection over every task (what one iteration adds to the training set).
    pub fn select(&self, selector: &dyn Selector) -> Selection {
        let mut selection = Selection::default();
        for group in self.groups() {
            selection.extend(selector.select(&group));
        }
        selection
    }
}
