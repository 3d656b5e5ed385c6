//! SFT vs RFT vs EEF on ScienceWorld (the real simulator) with the offline gold expert.

use eef_environments::sciworld::{gold_paths, GoldExpert, Install, SciWorldConfig, SciWorldEnv};
use eef_runtime::reward::BestScore;
use eef_runtime::{Error, Experiment, ExperimentConfig};

/// The default configuration file of this experiment.
pub const DEFAULT_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/sciworld.toml");

/// ETO's SciWorld metric: the best score reached, 0-100, reported as 0-1; a win is 100.
pub const REWARD: BestScore = BestScore { scale: 100.0, threshold: 1.0 };

/// Builds the SciWorld experiment: the simulator from `[environment]`, the gold expert with
/// seeded corruption (gold sequences computed once and cached next to the jar), and the burn
/// Llama policy from `[policy]`.
pub fn experiment(config: ExperimentConfig) -> Result<Experiment, Error> {
    let sw: SciWorldConfig = config.environment()?;
    let probe = SciWorldEnv::new(&sw)?;
    let tasks: Vec<_> = probe.task_list().tasks.iter().map(|(t, _)| t.clone()).collect();
    let install = Install::at(&sw.home.clone().unwrap_or_else(eef_environments::sciworld::install::default_dir))
        .map_err(|e| Error::Setup(e.to_string()))?;
    eprintln!("ScienceWorld: gold action sequences for {} tasks (cached after the first run)...", tasks.len());
    let gold = gold_paths(&install, &sw, &tasks).map_err(Error::Setup)?;
    let expert = GoldExpert::new(&gold, &sw.expert);
    let policy = crate::lm::policy_factory(&config, Some(eef_environments::sciworld::SYSTEM_PROMPT))?;
    Ok(Experiment::new(config)
        .environment(SciWorldEnv::factory(&sw)?)
        .expert(expert)
        .policy(policy)
        .reward(REWARD))
}
