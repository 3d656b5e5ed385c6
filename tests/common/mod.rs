//! Helpers shared by the integration tests: a small Vault world, its expert, rollouts, and a
//! model's weights for comparing training runs.
#![allow(dead_code)]

use std::sync::Arc;

use eef_environments::vault::{ScriptedExpert, VaultConfig, VaultEnv, World};
use eef_runtime::policy::{Policy, TabularPolicy, TrainConfig};
use eef_runtime::reward::FinalReward;
use eef_runtime::rollout::{CancellationToken, EpisodeJob, RolloutConfig, Rollouts};
use eef_runtime::selection::{PlanContext, Selector, Sft, TaskGroup};
use eef_runtime::{Source, Split, StartState, Task, Termination, Trajectory, Turn};

/// A small Vault: 16 training tasks, 8 test tasks, half of them hard.
pub fn small_vault() -> VaultConfig {
    VaultConfig { train_tasks: 16, test_tasks: 8, hard_fraction: 0.5, ..VaultConfig::default() }
}

pub fn rollouts(config: &VaultConfig, concurrency: usize) -> Rollouts {
    Rollouts::new(
        Arc::new(VaultEnv::factory(config)),
        RolloutConfig { concurrency, progress: false, ..RolloutConfig::default() },
    )
}

pub fn train_tasks(config: &VaultConfig) -> Vec<Task> {
    VaultEnv::new(config).world().tasks.iter().map(|t| t.as_task()).filter(|t| t.split == Split::Train).collect()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The expert's trajectories of every training task.
pub async fn expert_data(config: &VaultConfig, concurrency: usize) -> Vec<Trajectory> {
    let expert = ScriptedExpert::new(&World::new(config));
    let jobs = train_tasks(config)
        .into_iter()
        .map(|t| {
            let mut j = EpisodeJob::from_start(t.clone(), 0, 11, 0.0, Source::Expert);
            j.id = format!("{}/expert/0", t.id);
            j
        })
        .collect();
    rollouts(config, concurrency)
        .run("expert", Arc::new(expert), Arc::new(FinalReward), jobs, CancellationToken::new(), |_| Ok(()))
        .await
        .unwrap()
}

/// A tabular policy cloned from the expert's successes.
pub fn sft_policy(experts: &[Trajectory]) -> TabularPolicy {
    let mut p = TabularPolicy::default();
    let tasks: Vec<Task> = experts
        .iter()
        .map(|t| Task::new(t.task_id.clone(), t.instruction.clone(), Split::Train, 0))
        .collect();
    let mut data = Vec::new();
    for (task, t) in tasks.iter().zip(experts) {
        let group = TaskGroup { task, experts: std::slice::from_ref(t), explored: &[], iteration: 0 };
        data.extend(Sft.select(&group).examples.into_iter().map(|e| e.trajectory));
    }
    p.train(&data, &TrainConfig::default()).unwrap();
    p
}

/// Explores every training task as `selector` plans it, `samples` times per start.
pub async fn explore(
    config: &VaultConfig,
    selector: &dyn Selector,
    policy: Arc<dyn Policy>,
    experts: &[Trajectory],
    samples: usize,
    concurrency: usize,
) -> Vec<Trajectory> {
    let mut jobs = Vec::new();
    for task in train_tasks(config) {
        let mine: Vec<Trajectory> = experts.iter().filter(|e| e.task_id == task.id).cloned().collect();
        for start in selector.plan(&PlanContext { task: &task, experts: &mine }) {
            for sample in 0..samples {
                let id = format!("{}/{}/{start}/{sample}", selector.name(), task.id);
                let seed = eef_runtime::seed::derive(5, &id);
                let source = Source::Exploration { method: selector.name().into(), iteration: 1 };
                jobs.push(EpisodeJob::from_plan(id, &task, &start, &mine, sample, seed, 1.0, source).expect("the plan names this task's expert"));
            }
        }
    }
    rollouts(config, concurrency)
        .run("explore", policy, Arc::new(FinalReward), jobs, CancellationToken::new(), |_| Ok(()))
        .await
        .unwrap()
}

/// Every parameter of `m`, flattened in the model's order (to compare two training runs).
pub fn model_weights<B: eef_runtime::model::LmAutodiffBackend>(m: &eef_runtime::model::Llama<B>) -> Vec<f32> {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::{backend::Backend, Tensor};
    struct Collect<'a>(&'a mut Vec<f32>);
    impl<B: Backend> ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.extend(param.val().into_data().convert::<f32>().to_vec::<f32>().unwrap());
        }
    }
    let mut out = Vec::new();
    m.visit(&mut Collect(&mut out));
    out
}

/// The largest element-wise difference of two equally long vectors.
pub fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// An expert trajectory `t{k}` on task `task-{k}` from the task's start, ended by the
/// environment: a success (reward 1) or a failure (reward 0).
pub fn expert_trajectory(k: usize, instruction: String, turns: Vec<Turn>, success: bool) -> Trajectory {
    Trajectory {
        id: format!("t{k}"),
        task_id: format!("task-{k}").into(),
        instruction,
        source: Source::Expert,
        start: StartState::TaskStart,
        sample: 0,
        seed: 0,
        turns,
        final_observation: String::new(),
        termination: Termination::Done,
        reward: if success { 1.0 } else { 0.0 },
        success,
        provenance: None,
    }
}

/// A writer whose bytes the test reads back (what a console printed).
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuf {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
