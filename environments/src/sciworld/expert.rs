//! An offline expert for ScienceWorld: the simulator's gold action sequences, some of them
//! corrupted on purpose (seeded) so that the expert fails on those tasks *after* correct early
//! steps: the situation EEF exploits.
//!
//! A corrupted plan keeps its first half intact and, at a position `j` drawn from the second
//! half, suffers one of:
//! - **wrong step**: the gold action is replaced by `focus on agent`, a wrong focus that fails the
//!   task at once (score -100): a harmful action;
//! - **detour**: 3-6 wasted actions (`look around`, `inventory`) are inserted, which can exhaust
//!   ETO's step limit;
//! - **early stop**: the plan ends at `j`; the expert then only looks around.
//!
//! Past the end of its plan the expert says `look around`. Gold sequences come from the simulator
//! (`load(..., generateGoldPath = true)`) and are cached next to the jar, one file per
//! simplification and JVM setting ([`gold_cache_file`]).

use std::collections::BTreeMap;
use std::path::Path;

use eef_runtime::policy::{Act, ActRequest, Policy, PolicyError};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::client::ScienceWorld;
use super::config::{CorruptionConfig, SciWorldConfig};
use super::install::Install;
use super::tasks::SciTask;

/// How a plan was corrupted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Corruption {
    /// Gold as is.
    None,
    /// The action at `at` replaced by a wrong focus.
    WrongStep {
        /// Position.
        at: usize,
    },
    /// `len` wasted actions inserted at `at`.
    Detour {
        /// Position.
        at: usize,
        /// Inserted actions.
        len: usize,
    },
    /// The plan stops at `at`.
    EarlyStop {
        /// Position.
        at: usize,
    },
}

/// Applies a seeded corruption to `gold`; returns the plan and what was done.
pub fn corrupt(gold: &[String], config: &CorruptionConfig, task_id: &str) -> (Vec<String>, Corruption) {
    let mut rng = eef_runtime::seed::rng(eef_runtime::seed::derive(config.seed, task_id));
    let mut plan = gold.to_vec();
    if gold.len() < 2 || !rng.gen_bool(config.rate.clamp(0.0, 1.0)) {
        return (plan, Corruption::None);
    }
    let at = rng.gen_range(gold.len() / 2..gold.len());
    let how = match rng.gen_range(0..3) {
        0 => {
            plan[at] = "focus on agent".to_owned();
            Corruption::WrongStep { at }
        }
        1 => {
            let len = rng.gen_range(3..=6);
            let waste = ["look around", "inventory"];
            for k in 0..len {
                plan.insert(at, waste[k % 2].to_owned());
            }
            Corruption::Detour { at, len }
        }
        _ => {
            plan.truncate(at);
            Corruption::EarlyStop { at }
        }
    };
    (plan, how)
}

/// The cache file of gold sequences for `config`'s simplifications and JVM options: the
/// simulator's gold agent takes other paths when the JVM's identity hashes differ.
pub fn gold_cache_file(install: &Install, config: &SciWorldConfig) -> std::path::PathBuf {
    let simplifications = if config.simplifications.is_empty() { "none" } else { config.simplifications.as_str() };
    let jvm = if config.deterministic_jvm { "deterministic" } else { "jvm-default" };
    install.dir.join(format!("gold-paths-{}-{jvm}.json", simplifications.replace(',', "+")))
}

/// The gold sequences of `tasks`, from the cache file in the installation folder
/// ([`gold_cache_file`]), computing (and caching) those missing with one JVM started as `config`
/// says.
pub fn gold_paths(install: &Install, config: &SciWorldConfig, tasks: &[SciTask]) -> Result<BTreeMap<String, Vec<String>>, String> {
    let cache = gold_cache_file(install, config);
    let simplifications = config.simplifications.as_str();
    let mut known: BTreeMap<String, Vec<String>> = read_cache(&cache);
    let missing: Vec<&SciTask> = tasks.iter().filter(|t| !known.contains_key(&t.id())).collect();
    if !missing.is_empty() {
        let timeout = std::time::Duration::from_secs(60);
        let mut sim = ScienceWorld::start(install, config.jvm_options(), timeout, timeout).map_err(|e| e.to_string())?;
        for (i, t) in missing.iter().enumerate() {
            sim.load(&t.simulator_name, t.variation, simplifications, true).map_err(|e| format!("{}: {e}", t.id()))?;
            let gold = sim.gold_actions().map_err(|e| format!("{}: {e}", t.id()))?;
            known.insert(t.id(), gold);
            if i % 20 == 19 || i + 1 == missing.len() {
                write_cache(&cache, &known)?;
            }
        }
    }
    Ok(tasks.iter().filter_map(|t| known.get(&t.id()).map(|g| (t.id(), g.clone()))).collect())
}

fn read_cache(path: &Path) -> BTreeMap<String, Vec<String>> {
    std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

fn write_cache(path: &Path, map: &BTreeMap<String, Vec<String>>) -> Result<(), String> {
    let text = serde_json::to_string(map).map_err(|e| e.to_string())?;
    eef_runtime::jsonl::write_atomic(path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// The offline expert: follows a (possibly corrupted) plan per task.
#[derive(Clone, Debug, Default)]
pub struct GoldExpert {
    plans: BTreeMap<String, Vec<String>>,
    corruptions: BTreeMap<String, Corruption>,
}

impl GoldExpert {
    /// An expert over `gold` sequences (task id -> actions), corrupted as `config` says.
    pub fn new(gold: &BTreeMap<String, Vec<String>>, config: &CorruptionConfig) -> Self {
        let mut e = GoldExpert::default();
        for (id, g) in gold {
            let (plan, how) = corrupt(g, config, id);
            e.plans.insert(id.clone(), plan);
            e.corruptions.insert(id.clone(), how);
        }
        e
    }

    /// How each task's plan was corrupted.
    pub fn corruptions(&self) -> &BTreeMap<String, Corruption> {
        &self.corruptions
    }

    /// The plan of a task.
    pub fn plan(&self, task_id: &str) -> Option<&[String]> {
        self.plans.get(task_id).map(Vec::as_slice)
    }
}

impl Policy for GoldExpert {
    fn name(&self) -> String {
        "sciworld-gold-expert".into()
    }

    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        requests
            .iter()
            .map(|r| {
                let plan = self
                    .plans
                    .get(r.task.as_str())
                    .ok_or_else(|| PolicyError::Other(format!("the expert has no plan for {}", r.task)))?;
                Ok(Act::new(plan.get(r.history.len()).map_or("look around", String::as_str)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruption_keeps_the_first_half_and_is_seeded() {
        let gold: Vec<String> = (0..20).map(|i| format!("a{i}")).collect();
        let cfg = CorruptionConfig { rate: 1.0, seed: 3 };
        let mut kinds = std::collections::HashSet::new();
        for t in 0..60 {
            let id = format!("task-{t}/0");
            let (plan, how) = corrupt(&gold, &cfg, &id);
            assert_eq!((plan.clone(), how.clone()), corrupt(&gold, &cfg, &id), "seeded");
            assert_eq!(&plan[..10], &gold[..10], "{how:?}");
            assert_ne!(plan, gold);
            kinds.insert(std::mem::discriminant(&how));
        }
        assert_eq!(kinds.len(), 3, "all three corruptions occur");
        let (plan, how) = corrupt(&gold, &CorruptionConfig { rate: 0.0, seed: 3 }, "x");
        assert_eq!((plan, how), (gold, Corruption::None));
    }
}
