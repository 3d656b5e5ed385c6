//! The ScienceWorld environment.

use std::sync::Arc;
use std::time::Duration;

use eef_runtime::environment::EnvError;
use eef_runtime::{environment, Split, StepResult, Task};

use super::calls::Observed;
use super::client::ScienceWorld;
use super::config::{SciWorldConfig, TestSplit};
use super::install::{default_dir, Install};
use super::py4j::Py4jError;
use super::tasks::{default_split_dir, read_split, step_limit, SciTask};

/// The task list of an environment: tasks and their splits.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskList {
    /// `(task, split)` in order: training tasks first.
    pub tasks: Vec<(SciTask, Split)>,
}

impl TaskList {
    /// ETO's split as `config` selects it.
    pub fn load(config: &SciWorldConfig) -> Result<Self, String> {
        let dir = config.split_dir.clone().unwrap_or_else(default_split_dir);
        let mut train = read_split(&dir.join("eto_train_indices.json"))?;
        let test_file = match config.test_split {
            TestSplit::Unseen => "eto_test_unseen_indices.json",
            TestSplit::Seen => "eto_dev_seen_indices.json",
        };
        let mut test = read_split(&dir.join(test_file))?;
        if let Some(n) = config.max_train_tasks {
            train.truncate(n);
        }
        if let Some(n) = config.max_test_tasks {
            test.truncate(n);
        }
        let tasks = train.into_iter().map(|t| (t, Split::Train)).chain(test.into_iter().map(|t| (t, Split::Test))).collect();
        Ok(TaskList { tasks })
    }

    /// The runtime's tasks.
    pub fn runtime_tasks(&self) -> Vec<Task> {
        self.tasks
            .iter()
            .enumerate()
            .map(|(i, (t, split))| Task::new(t.id(), format!("{} (variation {})", t.simulator_name, t.variation), *split, i))
            .collect()
    }
}

/// The episode in progress.
#[derive(Clone, Debug)]
struct Episode {
    done: bool,
}

/// ScienceWorld through its real simulator, one JVM per instance (started on first use, replaced
/// when it dies or hangs).
///
/// - The first observation is `Task Description: …` followed by the output of `look around`
///   (the Python API's `reset` also takes that step).
/// - A step's reward is the current score, 0-100 (a failed task's negative score counts as 0),
///   so the best step reward is ETO's "best score reached"; score it with
///   `BestScore { scale: 100.0, threshold: 1.0 }`.
/// - The episode ends when the simulator reports completion or a negative score (as the Python
///   API does); ETO's per-task step limits apply.
/// - Malformed actions get the simulator's own answer ("No known action matches that input.").
/// - Every step makes the Python package's calls ([`Calls`](super::Calls)) whether or not the
///   valid actions are offered, and the JVM runs with constant identity hashes, so the same
///   actions give the same episode in any JVM: replays after a crash, and the expert prefixes EEF
///   replays, land in the recorded states. Valid actions are sorted as the package sorts them.
pub struct SciWorldEnv {
    install: Install,
    config: Arc<SciWorldConfig>,
    list: Arc<TaskList>,
    sim: Option<ScienceWorld>,
    loaded: Option<(String, usize)>,
    episode: Option<Episode>,
    valid: Option<Vec<String>>,
}

impl std::fmt::Debug for SciWorldEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SciWorldEnv").field("jvm", &self.sim.as_ref().map(ScienceWorld::pid)).finish_non_exhaustive()
    }
}

fn env_error(e: Py4jError) -> EnvError {
    match e {
        Py4jError::Timeout(d) => EnvError::Timeout(d),
        Py4jError::Java(m) => EnvError::Other(format!("ScienceWorld: {m}")),
        other => EnvError::Crashed(other.to_string()),
    }
}

impl SciWorldEnv {
    /// An environment over the installation and task list of `config`.
    pub fn new(config: &SciWorldConfig) -> Result<Self, EnvError> {
        config.validate().map_err(EnvError::Other)?;
        let install = Install::at(&config.home.clone().unwrap_or_else(default_dir)).map_err(|e| EnvError::Other(e.to_string()))?;
        let list = TaskList::load(config).map_err(EnvError::Other)?;
        Ok(Self::with_parts(install, Arc::new(config.clone()), Arc::new(list)))
    }

    /// An environment sharing an installation, settings and task list.
    pub fn with_parts(install: Install, config: Arc<SciWorldConfig>, list: Arc<TaskList>) -> Self {
        SciWorldEnv { install, config, list, sim: None, loaded: None, episode: None, valid: None }
    }

    /// A factory for the rollout engine: one instance (one JVM) per worker.
    pub fn factory(config: &SciWorldConfig) -> Result<impl Fn(usize) -> Result<SciWorldEnv, EnvError> + Send + Sync + 'static, EnvError> {
        let first = Self::new(config)?;
        let (install, config, list) = (first.install, first.config, first.list);
        Ok(move |_worker| Ok(SciWorldEnv::with_parts(install.clone(), config.clone(), list.clone())))
    }

    /// The process id of this instance's JVM, if it is running.
    pub fn jvm_pid(&self) -> Option<u32> {
        self.sim.as_ref().map(ScienceWorld::pid)
    }

    /// The task list.
    pub fn task_list(&self) -> &TaskList {
        &self.list
    }

    /// Runs `f` on the simulator, starting a JVM if needed; a transport failure drops the JVM so
    /// that the next use starts a fresh one.
    fn with_sim<T>(&mut self, f: impl FnOnce(&mut ScienceWorld) -> Result<T, Py4jError>) -> Result<T, EnvError> {
        if self.sim.is_none() {
            let timeout = Duration::from_secs_f64(self.config.call_timeout_secs.max(0.1));
            let startup = Duration::from_secs_f64(self.config.startup_timeout_secs.max(1.0));
            let jvm = self.config.jvm_options();
            self.sim = Some(ScienceWorld::start(&self.install, jvm, timeout, startup).map_err(env_error)?);
            self.loaded = None;
        }
        let sim = self.sim.as_mut().expect("simulator started");
        let out = f(sim);
        if sim.is_broken() {
            self.sim = None;
            self.loaded = None;
            self.episode = None;
        }
        out.map_err(env_error)
    }

    /// Applies `action` with the configured calls and keeps the valid actions if they are offered.
    fn observe(&mut self, action: &str) -> Result<Observed, EnvError> {
        let calls = self.config.calls;
        let mut observed = self.with_sim(|s| calls.step(s, action))?;
        self.valid = if self.config.offer_valid_actions { observed.valid.take() } else { None };
        Ok(observed)
    }
}

#[environment(name = "sciworld")]
impl SciWorldEnv {
    fn tasks(&self) -> Vec<Task> {
        self.list.runtime_tasks()
    }

    fn reset(&mut self, task: &Task, _seed: u64) -> Result<String, EnvError> {
        // A reset that fails leaves no episode to step (the previous one is over either way).
        self.episode = None;
        self.valid = None;
        let Some((t, _)) = self.list.tasks.get(task.index).filter(|(t, _)| t.id() == task.id.as_str()).cloned() else {
            return Err(EnvError::UnknownTask(task.id.to_string()));
        };
        let key = (t.simulator_name.clone(), t.variation);
        let simplifications = self.config.simplifications.clone();
        if self.loaded.as_ref() != Some(&key) {
            self.loaded = None;
            self.with_sim(|s| s.load(&t.simulator_name, t.variation, &simplifications, false))?;
            self.loaded = Some(key);
        }
        // As the Python package's `reset`: reset, then a `look around` step with a step's calls.
        self.with_sim(ScienceWorld::reset)?;
        let look = self.observe("look around")?.observation;
        let description = self.with_sim(ScienceWorld::task_description)?;
        self.episode = Some(Episode { done: false });
        Ok(format!("Task Description: {description}\n{look}"))
    }

    fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        match &self.episode {
            Some(e) if !e.done => {}
            Some(_) => return Err(EnvError::InvalidState("step after the episode ended".into())),
            None => return Err(EnvError::InvalidState("step before reset".into())),
        }
        let Observed { observation, score, completed, .. } = self.observe(action)?;
        let done = completed || score < 0;
        if let Some(e) = &mut self.episode {
            e.done = done;
        }
        if done {
            self.valid = None;
        }
        Ok(StepResult { observation, reward: score.max(0) as f64, done })
    }

    fn valid_actions(&self) -> Option<Vec<String>> {
        self.valid.clone()
    }

    fn max_steps(&self, task: &Task) -> usize {
        self.config.max_steps.unwrap_or_else(|| {
            self.list.tasks.get(task.index).and_then(|(t, _)| step_limit(&t.simulator_name)).unwrap_or(100)
        })
    }
}
