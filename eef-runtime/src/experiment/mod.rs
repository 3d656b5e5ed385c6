//! The iteration loop:
//! `expert data -> SFT -> [explore (plan) -> select -> train] x N -> evaluate`, for every method
//! of the configuration, all starting from the same SFT checkpoint.
//!
//! ```no_run
//! # async fn demo() -> Result<(), eef_runtime::Error> {
//! use eef_runtime::prelude::*;
//! use eef_runtime::policy::TabularPolicy;
//! # fn factory(_: usize) -> Result<MyEnv, EnvError> { unimplemented!() }
//! # struct MyEnv; impl Environment for MyEnv { fn name(&self) -> &str { "" } fn tasks(&self) -> Vec<Task> { vec![] }
//! # fn reset(&mut self, _: &Task, _: u64) -> Result<String, EnvError> { todo!() }
//! # fn step(&mut self, _: &str) -> Result<StepResult, EnvError> { todo!() } fn max_steps(&self, _: &Task) -> usize { 1 } }
//! # let expert = TabularPolicy::default();
//! let config = ExperimentConfig::from_file("experiments/vault.toml")?;
//! let report = Experiment::new(config)
//!     .environment(factory)
//!     .expert(expert)
//!     .policy(TabularPolicy::default)
//!     .run()
//!     .await?;
//! println!("{}", report.to_markdown());
//! # Ok(()) }
//! ```

mod checks;
mod dataset;
pub mod code;
pub mod metrics;
pub mod plots;
pub mod report;
pub mod run_dir;
pub mod seeds;
mod shared_policy;

use crate::policy::TrainReport;
use crate::selection::PreferencePair;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

pub use dataset::Dataset;
pub use report::{IterationReport, MethodReport, Report};
pub use run_dir::RunDir;

use self::metrics::{ExploreStats, Metrics};
use self::shared_policy::SharedPolicy;
use crate::config::{ExperimentConfig, MethodConfig, TrainFrom};
use crate::console::{Console, PhaseKind};
use crate::environment::EnvFactory;
use crate::error::Error;
use crate::jsonl;
use crate::live::LiveMetrics;
use crate::policy::{Policy, TrainConfig};
use crate::reward::{FinalReward, Reward};
use crate::rollout::{CancellationToken, EpisodeJob, Rollouts};
use crate::seed;
use crate::selection::{Eto, PlanContext, Reason, Selection, Selector, Sft, TaskGroup, Training};
use crate::task::{Split, Task, TaskId};
use crate::trajectory::{Source, StartState, Trajectory};

type PolicyMaker = Arc<dyn Fn() -> Box<dyn Policy> + Send + Sync>;

/// An experiment: environment, expert, policy, reward and selectors, driven by a configuration.
pub struct Experiment {
    config: ExperimentConfig,
    factory: Option<Arc<dyn EnvFactory>>,
    expert: Option<Arc<dyn Policy>>,
    make_policy: Option<PolicyMaker>,
    reward: Arc<dyn Reward>,
    selectors: BTreeMap<String, Arc<dyn Selector>>,
    cancel: CancellationToken,
    note: Option<String>,
    fresh: bool,
    code: Option<code::CodeIdentity>,
    resume_anyway: bool,
    console: Option<Console>,
}

impl std::fmt::Debug for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Experiment")
            .field("config", &self.config)
            .field("selectors", &self.selectors.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The expert trajectories of each task.
type ByTask = BTreeMap<TaskId, Vec<Trajectory>>;

impl Experiment {
    /// An experiment driven by `config`, with the built-in selectors `sft`, `rft`, `eef` and `eto`
    /// (settings from `[rft]` and `[eef]`) and [`FinalReward`].
    pub fn new(config: ExperimentConfig) -> Self {
        let mut selectors: BTreeMap<String, Arc<dyn Selector>> = BTreeMap::new();
        selectors.insert("sft".into(), Arc::new(Sft));
        selectors.insert("rft".into(), Arc::new(config.rft.clone()));
        selectors.insert("eef".into(), Arc::new(config.eef.clone()));
        selectors.insert("eto".into(), Arc::new(Eto));
        Experiment {
            config,
            factory: None,
            expert: None,
            make_policy: None,
            reward: Arc::new(FinalReward),
            selectors,
            cancel: CancellationToken::new(),
            note: None,
            fresh: false,
            code: None,
            resume_anyway: false,
            console: None,
        }
    }

    /// The environment factory (one instance per rollout worker).
    pub fn environment(mut self, factory: impl EnvFactory) -> Self {
        self.factory = Some(Arc::new(factory));
        self
    }

    /// The expert that produces the expert trajectories (not needed with `[expert] from_file`).
    pub fn expert(mut self, expert: impl Policy) -> Self {
        self.expert = Some(Arc::new(expert));
        self
    }

    /// Makes the base policy (called for SFT and whenever training starts from the base).
    pub fn policy<P: Policy>(mut self, make: impl Fn() -> P + Send + Sync + 'static) -> Self {
        self.make_policy = Some(Arc::new(move || Box::new(make()) as Box<dyn Policy>));
        self
    }

    /// The reward that scores trajectories and decides success (default [`FinalReward`]).
    pub fn reward(mut self, reward: impl Reward + 'static) -> Self {
        self.reward = Arc::new(reward);
        self
    }

    /// Registers a selector under its [`Selector::name`], for use in `[[methods]]`.
    pub fn selector(mut self, selector: impl Selector + 'static) -> Self {
        self.selectors.insert(selector.name().to_owned(), Arc::new(selector));
        self
    }

    /// A note printed at the top of the report (e.g. which data the environment uses).
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Deletes an existing run directory of the same name instead of resuming it.
    pub fn fresh(mut self, fresh: bool) -> Self {
        self.fresh = fresh;
        self
    }

    /// Records what code produces the run (`code.json`) and refuses to resume a run produced by
    /// other code ([`code::check`]). The examples pass [`code::CodeIdentity::of_current_exe`].
    pub fn code(mut self, code: code::CodeIdentity) -> Self {
        self.code = Some(code);
        self
    }

    /// Resumes a run even when it was produced by other code (`--resume-anyway`).
    pub fn resume_anyway(mut self, yes: bool) -> Self {
        self.resume_anyway = yes;
        self
    }

    /// Where the run shows its progress (default: [`Console::auto`] with `[rollout] progress`:
    /// bars on a terminal, plain lines elsewhere).
    pub fn console(mut self, console: Console) -> Self {
        self.console = Some(console);
        self
    }

    /// A token that stops the run when cancelled (e.g. from a Ctrl-C handler).
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &ExperimentConfig {
        &self.config
    }

    /// Runs every method, resuming from whatever the run directory already holds, and writes
    /// `report.md` and `report.json`.
    pub async fn run(self) -> Result<Report, Error> {
        let factory = self.factory.clone().ok_or_else(|| Error::Setup("no environment: call .environment(...)".into()))?;
        let make_policy = self.make_policy.clone().ok_or_else(|| Error::Setup("no policy: call .policy(...)".into()))?;
        for m in &self.config.methods {
            if !self.selectors.contains_key(&m.selector) {
                let message = format!(
                    "method {:?} uses selector {:?}, which is not registered; known: {} (register your own with Experiment::selector)",
                    m.label(),
                    m.selector,
                    self.selectors.keys().cloned().collect::<Vec<_>>().join(", ")
                );
                return Err(self.config.error_at(&format!("\"{}\"", m.selector), message).into());
            }
        }
        for m in &self.config.methods {
            if let Some(other) = &m.match_budget_of {
                if !self.selectors.contains_key(other) {
                    let message = format!("method {:?} matches the budget of selector {other:?}, which is not registered", m.label());
                    return Err(self.config.error_at(&format!("\"{other}\""), message).into());
                }
            }
        }
        // Each method's selector, configured with its `params` (errors carry the TOML position).
        let mut method_selectors: Vec<Arc<dyn Selector>> = Vec::new();
        for m in &self.config.methods {
            let registered = self.selectors[&m.selector].clone();
            method_selectors.push(registered.configure(&self.config.method_params(m))?.unwrap_or(registered));
        }
        if let Some((m, _)) = self.config.methods.iter().zip(&method_selectors).find(|(_, s)| s.uses_preferences()) {
            let policy = (make_policy)();
            if !policy.supports_preferences() {
                return Err(Error::Setup(format!(
                    "method {:?} (selector {:?}) trains on preference pairs (DPO), but the policy {:?} cannot train on preferences; remove the method or use a policy that implements Policy::train_preferences",
                    m.label(),
                    m.selector,
                    policy.name()
                )));
            }
        }
        let dir = RunDir::open(&self.config, self.fresh)?;
        if let Some(code) = &self.code {
            code::check(dir.root(), code, self.resume_anyway, dir.file("expert.jsonl").exists())?;
        }
        let probe = factory.make(0)?;
        let env_name = probe.name().to_owned();
        let all_tasks = probe.tasks();
        drop(probe);
        checks::unique_task_ids(&env_name, &all_tasks)?;
        let mut train: Vec<Task> = all_tasks.iter().filter(|t| t.split == Split::Train).cloned().collect();
        if let Some(n) = self.config.experiment.max_train_tasks {
            train.truncate(n);
        }
        // The dev split (choosing best iterations): the environment's, or held out from training.
        let env_dev: Vec<Task> = all_tasks.iter().filter(|t| t.split == Split::Dev).cloned().collect();
        let dev: Vec<Task> = match self.config.eval.dev_tasks {
            None => env_dev,
            Some(n) if !env_dev.is_empty() => env_dev.into_iter().take(n).collect(),
            Some(n) => {
                if n >= train.len() {
                    return Err(Error::Setup(format!("[eval] dev_tasks = {n} would hold out all {} training tasks", train.len())));
                }
                train.split_off(train.len() - n).into_iter().map(|t| Task { split: Split::Dev, ..t }).collect()
            }
        };
        let mut eval: Vec<Task> = all_tasks.iter().filter(|t| t.split == self.config.eval.split).cloned().collect();
        if let Some(n) = self.config.eval.max_tasks {
            eval.truncate(n);
        }
        checks::tasks(&self.config, &env_name, &all_tasks, train.len(), eval.len())?;
        tracing::info!(environment = %env_name, train = train.len(), dev = dev.len(), eval = eval.len(), dir = %dir.root().display(), "starting run");
        let console = self.console.clone().unwrap_or_else(|| Console::auto(self.config.rollout.progress));
        console.line(&format!(
            "{env_name}: {} training, {} test{} tasks; methods {}; run directory {}",
            train.len(),
            eval.len(),
            if dev.is_empty() { String::new() } else { format!(", {} dev", dev.len()) },
            self.config.methods.iter().map(MethodConfig::label).collect::<Vec<_>>().join(", "),
            dir.root().display()
        ));
        expect_phases(&console, &self.config, &dir, !dev.is_empty());

        let metrics_path = dir.file("metrics.jsonl");
        let runner = Runner {
            config: &self.config,
            rollouts: Rollouts::new(factory, self.config.rollout.clone()).with_console(console.clone()),
            reward: self.reward.clone(),
            cancel: self.cancel.clone(),
            make_policy,
            dir,
            eval_tasks: eval,
            dev_tasks: dev,
            live: LiveMetrics::open(&metrics_path).map_err(|e| Error::io(&metrics_path, e))?.with_console(console.clone()),
        };

        let (experts, expert_eval) = runner.expert_phase(self.expert.clone(), &train).await?;
        checks::expert_successes(&experts, train.len(), self.reward.as_ref(), runner.dir.root())?;
        let expert_train = Metrics::of(&experts);
        let mut expert_sources: Vec<(String, Metrics)> = Vec::new();
        for source in &self.config.expert.sources {
            let mine: Vec<Trajectory> = experts.iter().filter(|t| t.provenance.as_deref() == Some(source.name.as_str())).cloned().collect();
            expert_sources.push((source.name.clone(), Metrics::of(&mine)));
        }
        let mut experts_by_task: ByTask = BTreeMap::new();
        for t in experts {
            experts_by_task.entry(t.task_id.clone()).or_default().push(t);
        }

        let sft_row = runner.sft_phase(&train, &experts_by_task).await?;
        let mut methods = Vec::new();
        for (m, selector) in self.config.methods.iter().zip(&method_selectors) {
            let mut rows = vec![sft_row.clone()];
            if m.selector != "sft" {
                // The budget of the run's method with that selector (its params and samples), or
                // of the selector at its defaults, once per start, when no method runs it.
                let budget_of: Option<Budget> = match &m.match_budget_of {
                    None => None,
                    Some(s) => match self.config.methods.iter().zip(&method_selectors).find(|(o, _)| &o.selector == s) {
                        Some((other, configured)) => Some((configured.clone(), other.samples)),
                        None => {
                            let registered = self.selectors[s].clone();
                            Some((registered.configure(&crate::selection::Params::absent(m.label()))?.unwrap_or(registered), 1))
                        }
                    },
                };
                let mine: ByTask = match &m.experts {
                    None => experts_by_task.clone(),
                    Some(names) => experts_by_task
                        .iter()
                        .map(|(k, v)| (k.clone(), v.iter().filter(|t| t.provenance.as_ref().is_some_and(|p| names.contains(p))).cloned().collect()))
                        .collect(),
                };
                rows.extend(runner.method(m, selector.as_ref(), budget_of.as_ref(), &train, &mine).await?);
            }
            methods.push(MethodReport { label: m.label(), selector: m.selector.clone(), iterations: rows });
        }

        let mut report = Report {
            environment: env_name,
            note: self.note.clone(),
            run_dir: runner.dir.root().display().to_string(),
            train_tasks: train.len(),
            eval_tasks: runner.eval_tasks.len(),
            dev_tasks: runner.dev_tasks.len(),
            expert_train,
            expert_sources,
            expert_eval,
            methods,
            loss_plot: false,
        };
        let plots = runner.dir.file("plots");
        let records = crate::live::read(&metrics_path).unwrap_or_default();
        match plots::write(&report, &records, &plots) {
            Ok(written) => report.loss_plot = written.iter().any(|p| p.ends_with("loss.svg")),
            Err(e) => tracing::warn!(error = %e, "the plots could not be written"),
        }
        let md = runner.dir.file("report.md");
        jsonl::write_atomic(&md, report.to_markdown().as_bytes()).map_err(|e| Error::io(&md, e))?;
        write_json(&runner.dir.file("report.json"), &report)?;
        console.line(&format!("report: {} (plots in {})", md.display(), plots.display()));
        Ok(report)
    }
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Setup(e.to_string()))?;
    jsonl::write_atomic(path, text.as_bytes()).map_err(|e| Error::io(path, e))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, Error> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Record { path: path.to_owned(), line: e.line(), message: e.to_string() })
}

/// Tells the console's run estimate which phases are still to run (those of iterations without
/// an `iteration.json`).
fn expect_phases(console: &Console, config: &ExperimentConfig, dir: &RunDir, dev: bool) {
    let evals = 1 + usize::from(dev);
    let mut eta = console.eta();
    if !dir.sft().join("iteration.json").exists() {
        eta.expect("SFT", PhaseKind::Train, usize::from(!dir.sft().join("checkpoint/trained.json").exists()));
        eta.expect("SFT", PhaseKind::Eval, evals);
    }
    for m in config.methods.iter().filter(|m| m.selector != "sft") {
        let label = m.label();
        let todo = (1..=m.iterations.unwrap_or(config.experiment.iterations)).filter(|&k| !dir.iteration(&label, k).join("iteration.json").exists()).count();
        eta.expect(&label, PhaseKind::Explore, todo);
        eta.expect(&label, PhaseKind::Train, todo);
        eta.expect(&label, PhaseKind::Eval, todo * evals);
    }
}

/// The exploration budget a method matches: the selector whose planned starts it counts, and the
/// episodes per start.
type Budget = (Arc<dyn Selector>, usize);

/// The state shared by the phases of one run.
struct Runner<'a> {
    config: &'a ExperimentConfig,
    rollouts: Rollouts,
    reward: Arc<dyn Reward>,
    cancel: CancellationToken,
    make_policy: PolicyMaker,
    dir: RunDir,
    eval_tasks: Vec<Task>,
    /// Tasks each method's best iteration is chosen on (possibly none).
    dev_tasks: Vec<Task>,
    /// `metrics.jsonl`: steps and phases as they happen.
    live: LiveMetrics,
}

impl Runner<'_> {
    fn seed(&self, key: &str) -> u64 {
        seed::derive(self.config.experiment.seed, key)
    }

    /// Runs `jobs`, skipping those already in `path` (a resumed run), appending new ones to it.
    async fn phase(&self, label: &str, live: &LiveMetrics, policy: Arc<dyn Policy>, jobs: Vec<EpisodeJob>, path: &Path) -> Result<Vec<Trajectory>, Error> {
        let started = std::time::Instant::now();
        let mut done: BTreeMap<String, Trajectory> =
            jsonl::read_if_exists::<Trajectory>(path)?.into_iter().map(|t| (t.id.clone(), t)).collect();
        let order: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
        let todo: Vec<EpisodeJob> = jobs.into_iter().filter(|j| !done.contains_key(&j.id)).collect();
        let simulated = todo.len();
        if !todo.is_empty() {
            if !done.is_empty() {
                tracing::info!(phase = label, resumed = done.len(), remaining = todo.len(), "resuming phase");
            }
            let mut out = jsonl::Appender::open(path)?;
            let new = self
                .rollouts
                .run(label, policy, self.reward.clone(), todo, self.cancel.clone(), |t| out.append(t))
                .await?;
            done.extend(new.into_iter().map(|t| (t.id.clone(), t)));
        }
        let ordered: Vec<Trajectory> = order
            .iter()
            .map(|id| done.remove(id).ok_or_else(|| Error::Setup(format!("episode {id} missing after rollout"))))
            .collect::<Result<_, _>>()?;
        // Episodes were appended as they finished (a kill loses none); once the phase is
        // complete the file is rewritten in job order (by task, then start, then sample), so
        // identical runs leave identical files whatever the concurrency.
        jsonl::write(path, &ordered)?;
        let m = Metrics::of(&ordered);
        if simulated > 0 {
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            live.phase(
                label,
                serde_json::json!({ "file": file, "episodes": m.episodes, "simulated": simulated, "win_rate": m.win_rate, "avg_reward": m.avg_reward, "broken": m.broken, "seconds": started.elapsed().as_secs_f64() }),
            );
        }
        checks::broken_share(label, &ordered, self.config.rollout.max_broken_share, path)?;
        Ok(ordered)
    }

    /// One episode per task and `[eval] samples` of `tasks` from their starts, recorded as
    /// `source`; ids `{prefix}/{kind}/{task}/{sample}`.
    fn jobs_on(&self, tasks: &[Task], prefix: &str, kind: &str, temperature: f32, source: Source) -> Vec<EpisodeJob> {
        let mut jobs = Vec::new();
        for task in tasks {
            for sample in 0..self.config.eval.samples.max(1) {
                let mut job = EpisodeJob::from_start(task.clone(), sample, self.seed(&format!("{kind}/{}/{sample}", task.id)), temperature, source.clone());
                job.id = format!("{prefix}/{kind}/{}/{sample}", task.id);
                jobs.push(job);
            }
        }
        jobs
    }

    /// Evaluates on the test split (`path`) and, when there is one, on the dev split
    /// (`dev-eval.jsonl` beside it).
    async fn evaluate(&self, label: &str, iteration: usize, policy: Arc<dyn Policy>, path: &Path) -> Result<(Metrics, Option<Metrics>), Error> {
        let temperature = self.config.rollout.eval_temperature;
        let source = Source::Evaluation { method: label.to_owned(), iteration };
        let jobs = self.jobs_on(&self.eval_tasks, label, "eval", temperature, source.clone());
        let live = self.live.scoped(label, iteration);
        let episodes = self.phase(&format!("{label} eval it{iteration}"), &live, policy.clone(), jobs, path).await?;
        let dev = if self.dev_tasks.is_empty() {
            None
        } else {
            let jobs = self.jobs_on(&self.dev_tasks, label, "dev", temperature, source);
            let dev_path = path.with_file_name("dev-eval.jsonl");
            Some(Metrics::of(&self.phase(&format!("{label} dev it{iteration}"), &live, policy, jobs, &dev_path).await?))
        };
        Ok((Metrics::of(&episodes), dev))
    }

    /// Expert trajectories on the training tasks, and the expert's metrics on the eval tasks.
    async fn expert_phase(&self, expert: Option<Arc<dyn Policy>>, train: &[Task]) -> Result<(Vec<Trajectory>, Metrics), Error> {
        let files: Vec<(Option<String>, &Path)> = match &self.config.expert.from_file {
            Some(path) => vec![(None, path.as_path())],
            None => self.config.expert.sources.iter().map(|s| (Some(s.name.clone()), s.from_file.as_path())).collect(),
        };
        if !files.is_empty() {
            let keep: HashSet<&TaskId> = train.iter().map(|t| &t.id).collect();
            let mut all = Vec::new();
            for (name, path) in files {
                let mut t: Vec<Trajectory> = jsonl::read(path)?;
                t.retain(|t| keep.contains(&t.task_id));
                for x in &mut t {
                    (x.reward, x.success) = crate::reward::score_checked(self.reward.as_ref(), x)?;
                    if name.is_some() {
                        x.provenance = name.clone();
                    }
                }
                all.extend(t);
            }
            // The run records the expert data it learnt from, tagged.
            jsonl::write(&self.dir.file("expert.jsonl"), &all)?;
            return Ok((all, Metrics::default()));
        }
        let expert = expert.ok_or_else(|| Error::Setup("no expert: call .expert(...) or set [expert] from_file".into()))?;
        let temperature = self.config.expert.temperature;
        let mut jobs = Vec::new();
        for task in train {
            for sample in 0..self.config.expert.samples.max(1) {
                let mut job = EpisodeJob::from_start(task.clone(), sample, self.seed(&format!("expert/{}/{sample}", task.id)), temperature, Source::Expert);
                job.id = format!("{}/expert/{sample}", task.id);
                jobs.push(job);
            }
        }
        let live = self.live.scoped("expert", 0);
        let experts = self.phase("expert", &live, expert.clone(), jobs, &self.dir.file("expert.jsonl")).await?;
        let eval_jobs = self.jobs_on(&self.eval_tasks, "expert", "eval", temperature, Source::Expert);
        let eval = self.phase("expert eval", &live, expert, eval_jobs, &self.dir.file("expert-eval.jsonl")).await?;
        Ok((experts, Metrics::of(&eval)))
    }

    /// Behaviour cloning on expert successes, then evaluation (iteration 0 of every method).
    async fn sft_phase(&self, train: &[Task], experts: &ByTask) -> Result<IterationReport, Error> {
        let dir = self.dir.sft();
        if let Some(row) = read_json::<IterationReport>(&dir.join("iteration.json"))? {
            return Ok(row);
        }
        let mut selection = Selection::default();
        for task in train {
            let group = TaskGroup { task, experts: experts.get(&task.id).map_or(&[], Vec::as_slice), explored: &[], iteration: 0 };
            selection.extend(Sft.select(&group));
        }
        let data: Vec<Trajectory> = selection.examples.iter().map(|e| e.trajectory.clone()).collect();
        let cfg = TrainConfig {
            seed: self.seed("train/sft"),
            checkpoint_dir: Some(dir.join("train-state")),
            live: self.live.scoped("SFT", 0),
            ..self.config.train.clone()
        };
        let (policy, trained) = self.train_once(&dir, None, Training::Supervised, &data, &[], &cfg)?;
        let policy: Arc<dyn Policy> = Arc::new(policy);
        let (eval, dev) = self.evaluate("SFT", 0, policy, &dir.join("eval.jsonl")).await?;
        let row = IterationReport {
            dev,
            iteration: 0,
            explore: None,
            recovery_states: 0,
            recovery_states_total: 0,
            tasks_solved: data.iter().filter(|t| t.success).map(|t| &t.task_id).collect::<HashSet<_>>().len(),
            harmful_segments: 0,
            probes_dropped: 0,
            training_examples: data.len(),
            trainable_turns: trained.trainable_turns,
            pairs: 0,
            eval,
        };
        write_json(&dir.join("iteration.json"), &row)?;
        self.live.scoped("SFT", 0).phase("iteration", serde_json::to_value(&row).unwrap_or_default());
        Ok(row)
    }

    /// Trains a policy (from `start_from`, or fresh) on `data` (and preference `pairs`) and saves
    /// it to `dir/checkpoint` with the report in `dir/checkpoint/trained.json`. When that report
    /// exists (a run killed after training), the saved policy is loaded instead of retrained; a
    /// run killed during training resumes from `cfg.checkpoint_dir`.
    #[allow(clippy::too_many_arguments)]
    fn train_once(&self, dir: &Path, start_from: Option<&Path>, training: Training, data: &[Trajectory], pairs: &[PreferencePair], cfg: &TrainConfig) -> Result<(SharedPolicy, TrainReport), Error> {
        let ckpt = dir.join("checkpoint");
        if let Some(report) = read_json::<TrainReport>(&ckpt.join("trained.json"))? {
            return Ok((self.load_policy(Some(&ckpt))?, report));
        }
        let policy = self.load_policy(start_from)?;
        let cfg = &TrainConfig { stop: crate::policy::StopSignal::new(self.cancel.clone()), ..cfg.clone() };
        let cancelled = |e: crate::policy::PolicyError| match e {
            crate::policy::PolicyError::Cancelled => Error::Cancelled,
            e => Error::from(e),
        };
        let mut trained = TrainReport::default();
        if training == Training::Supervised {
            cfg.live.train_begins("sft", &format!("{} trajectories", data.len()));
            let started = std::time::Instant::now();
            trained = policy.with_mut(|p| p.train(data, cfg)).map_err(cancelled)?;
            cfg.live.phase("train", serde_json::json!({ "objective": "sft", "trajectories": trained.trajectories, "trainable_turns": trained.trainable_turns, "loss": trained.loss, "sequences": trained.sequences, "seconds": started.elapsed().as_secs_f64() }));
        }
        if !pairs.is_empty() {
            // The DPO reference is the policy as this call finds it: after the supervised pass,
            // or, training by preference alone, the model it started from (the explorer).
            cfg.live.train_begins("dpo", &format!("{} preference pairs", pairs.len()));
            let started = std::time::Instant::now();
            let dpo = policy.with_mut(|p| p.train_preferences(pairs, cfg)).map_err(cancelled)?;
            cfg.live.phase("train", serde_json::json!({ "objective": "dpo", "pairs": pairs.len(), "loss": dpo.loss, "sequences": dpo.sequences, "seconds": started.elapsed().as_secs_f64() }));
            if training == Training::Preferences {
                trained = dpo;
            }
        } else if training == Training::Preferences {
            tracing::warn!(iteration = cfg.iteration, "no preference pairs this iteration: the model stays as it was (every exploration tied with the expert or was broken)");
        }
        std::fs::create_dir_all(&ckpt).map_err(|e| Error::io(&ckpt, e))?;
        policy.with(|p| p.save(&ckpt))?;
        write_json(&ckpt.join("trained.json"), &trained)?;
        Ok((policy, trained))
    }

    fn load_policy(&self, checkpoint: Option<&Path>) -> Result<SharedPolicy, Error> {
        let policy = SharedPolicy::new((self.make_policy)());
        if let Some(dir) = checkpoint {
            policy.with_mut(|p| p.load(dir))?;
        }
        Ok(policy)
    }

    /// Exploration jobs of one iteration, as the selector plans them: `samples` per planned
    /// start, or, when the method matches `budget_of`'s budget, as many episodes as that
    /// selector plans times its samples, spread evenly over this one's starts (the first starts
    /// take the remainder).
    #[allow(clippy::too_many_arguments)]
    fn plan(&self, label: &str, m: &MethodConfig, selector: &dyn Selector, budget_of: Option<&Budget>, iteration: usize, train: &[Task], experts: &ByTask) -> Vec<EpisodeJob> {
        let method = run_dir::slug(label);
        let count = |s: &dyn Selector| -> usize {
            train.iter().map(|task| s.plan(&PlanContext { task, experts: experts.get(&task.id).map_or(&[][..], Vec::as_slice) }).len()).sum()
        };
        let budget = budget_of.map(|(other, samples)| (count(other.as_ref()) * samples, count(selector).max(1)));
        let samples_at = |n: usize| -> usize {
            match budget {
                None => m.samples,
                Some((target, starts)) => target / starts + usize::from(n < target % starts),
            }
        };
        let temperature = m.temperature.or(selector.explore_temperature()).unwrap_or(self.config.rollout.temperature);
        let mut start_index = 0usize;
        let mut jobs = Vec::new();
        for task in train {
            let task_experts = experts.get(&task.id).map_or(&[][..], Vec::as_slice);
            for start in selector.plan(&PlanContext { task, experts: task_experts }) {
                let tag = match &start {
                    StartState::TaskStart => "s0".to_owned(),
                    StartState::Expert { trajectory, step } => format!("{trajectory}@s{step}"),
                };
                let samples = samples_at(start_index);
                start_index += 1;
                for sample in 0..samples {
                    let id = format!("{method}/it{iteration}/{}/{tag}/{sample}", task.id);
                    let seed = self.seed(&id);
                    let source = Source::Exploration { method: label.to_owned(), iteration };
                    // The prefix is replayed with the expert's own seed, as it was recorded.
                    match EpisodeJob::from_plan(id, task, &start, task_experts, sample, seed, temperature, source) {
                        Some(job) => jobs.push(job),
                        None => {
                            tracing::warn!(start = %tag, "planned start names an unknown expert trajectory; skipped");
                            break;
                        }
                    }
                }
            }
        }
        jobs
    }

    /// The iterations of one method.
    async fn method(&self, m: &MethodConfig, selector: &dyn Selector, budget_of: Option<&Budget>, train: &[Task], experts: &ByTask) -> Result<Vec<IterationReport>, Error> {
        let label = m.label();
        let iterations = m.iterations.unwrap_or(self.config.experiment.iterations);
        let sft_ckpt = self.dir.sft().join("checkpoint");
        let mut rows = Vec::new();
        let mut dataset = Dataset::default();
        let mut checkpoint = sft_ckpt.clone();
        for k in 1..=iterations {
            if self.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let dir = self.dir.iteration(&label, k);
            if let Some(row) = read_json::<IterationReport>(&dir.join("iteration.json"))? {
                dataset = Dataset::from_parts(
                    jsonl::read(&dir.join("dataset.jsonl"))?,
                    jsonl::read_if_exists(&dir.join("dataset-pairs.jsonl"))?,
                );
                checkpoint = dir.join("checkpoint");
                rows.push(row);
                continue;
            }
            let explorer: Arc<dyn Policy> = Arc::new(self.load_policy(Some(&checkpoint))?);
            let jobs = self.plan(&label, m, selector, budget_of, k, train, experts);
            let live = self.live.scoped(&label, k);
            let explored = self.phase(&format!("{label} explore it{k}"), &live, explorer, jobs, &dir.join("explore.jsonl")).await?;

            let mut by_task: BTreeMap<&TaskId, Vec<Trajectory>> = BTreeMap::new();
            for t in &explored {
                by_task.entry(&t.task_id).or_default().push(t.clone());
            }
            let mut selection = Selection::default();
            for task in train {
                let group = TaskGroup {
                    task,
                    experts: experts.get(&task.id).map_or(&[], Vec::as_slice),
                    explored: by_task.get(&task.id).map_or(&[], Vec::as_slice),
                    iteration: k,
                };
                selection.extend(selector.select(&group));
            }
            jsonl::write(&dir.join("selection.jsonl"), &selection.examples)?;
            jsonl::write(&dir.join("pairs.jsonl"), &selection.pairs)?;
            jsonl::write(&dir.join("segments.jsonl"), &selection.segments)?;
            jsonl::write(&dir.join("dropped-probes.jsonl"), &selection.dropped_probes)?;
            let training = selector.training();
            if !self.config.experiment.accumulate || training == Training::Preferences {
                dataset = Dataset::default();
            }
            dataset.add(&selection);
            let examples = dataset.examples();
            let pairs = dataset.pairs();
            live.phase(
                "selection",
                serde_json::json!({
                    "examples": selection.examples.len(),
                    "recovery_states": selection.examples.iter().filter(|e| matches!(e.reason, Reason::Recovery { .. })).count(),
                    "segments": selection.segments.len(),
                    "dropped_probes": selection.dropped_probes.len(),
                    "pairs": selection.pairs.len(),
                    "dataset_examples": examples.len(),
                    "dataset_pairs": pairs.len(),
                }),
            );
            jsonl::write(&dir.join("dataset.jsonl"), &examples)?;
            jsonl::write(&dir.join("dataset-pairs.jsonl"), &pairs)?;

            // Preference training continues from the explorer, which is also its reference.
            let start_from = match (training, self.config.experiment.train_from) {
                (Training::Preferences, _) | (_, TrainFrom::Previous) => Some(checkpoint.as_path()),
                (_, TrainFrom::Base) => None,
                (_, TrainFrom::Sft) => Some(sft_ckpt.as_path()),
            };
            let cfg = TrainConfig {
                epochs: self.config.train.iteration_epochs.unwrap_or(self.config.train.epochs),
                seed: self.seed(&format!("train/{label}/{k}")),
                checkpoint_dir: Some(dir.join("train-state")),
                iteration: k,
                live: live.clone(),
                ..self.config.train.clone()
            };
            let data: Vec<Trajectory> = examples.iter().map(|e| e.trajectory.clone()).collect();
            let (policy, trained) = self.train_once(&dir, start_from, training, &data, &pairs, &cfg)?;
            checkpoint = dir.join("checkpoint");

            let (eval, dev) = self.evaluate(&label, k, Arc::new(policy), &dir.join("eval.jsonl")).await?;
            let row = IterationReport {
                dev,
                iteration: k,
                explore: Some(ExploreStats::of(&explored)),
                recovery_states: selection.examples.iter().filter(|e| matches!(e.reason, Reason::Recovery { .. })).count(),
                recovery_states_total: examples.iter().filter(|e| matches!(e.reason, Reason::Recovery { .. })).count(),
                tasks_solved: examples.iter().filter(|e| e.trajectory.success).map(|e| &e.trajectory.task_id).collect::<HashSet<_>>().len(),
                harmful_segments: selection.segments.iter().filter(|x| x.kind == crate::selection::SegmentKind::Harmful).count(),
                probes_dropped: selection.dropped_probes.len(),
                training_examples: examples.len(),
                trainable_turns: trained.trainable_turns,
                pairs: pairs.len(),
                eval,
            };
            tracing::info!(method = %label, iteration = k, win_rate = row.eval.win_rate, reward = row.eval.avg_reward, "iteration done");
            write_json(&dir.join("iteration.json"), &row)?;
            live.phase("iteration", serde_json::to_value(&row).unwrap_or_default());
            rows.push(row);
        }
        Ok(rows)
    }
}
