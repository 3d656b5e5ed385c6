//! A count-based tabular policy: a fast, exact baseline for tests and the Vault experiments (the language-model policy is `model::LmPolicy`).
//!
//! It maps a *state key* derived from the observation (by default its last line) to counts of the
//! actions trained on in that state. Acting samples from the counts (sharpened by temperature;
//! greedy at 0); in a state never trained on it picks uniformly among the valid actions. It honours
//! the loss mask exactly: masked turns add nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{Act, ActRequest, Policy, PolicyError, TrainConfig, TrainReport};
use crate::trajectory::Trajectory;

/// Turns an observation into the key the tabular policy indexes by.
pub trait StateKey: Send + Sync + 'static {
    /// The key of `observation`.
    fn key(&self, observation: &str) -> String;
}

/// The default [`StateKey`]: the observation's last non-empty line, trimmed.
#[derive(Clone, Copy, Debug, Default)]
pub struct LastLineKey;

impl StateKey for LastLineKey {
    fn key(&self, observation: &str) -> String {
        observation.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_owned()
    }
}

impl<F: Fn(&str) -> String + Send + Sync + 'static> StateKey for F {
    fn key(&self, observation: &str) -> String {
        self(observation)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Table {
    /// state key -> action -> count
    counts: BTreeMap<String, BTreeMap<String, f64>>,
}

/// A count-based policy over state keys.
#[derive(Clone)]
pub struct TabularPolicy {
    key: Arc<dyn StateKey>,
    table: Table,
    fallback: String,
}

impl std::fmt::Debug for TabularPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TabularPolicy").field("states", &self.table.counts.len()).finish()
    }
}

impl Default for TabularPolicy {
    fn default() -> Self {
        Self::new(LastLineKey)
    }
}

impl TabularPolicy {
    /// An empty policy keyed by `key`.
    pub fn new(key: impl StateKey) -> Self {
        TabularPolicy { key: Arc::new(key), table: Table::default(), fallback: "look".to_owned() }
    }

    /// The action used in an unknown state when the environment lists no valid actions.
    pub fn with_fallback(mut self, action: impl Into<String>) -> Self {
        self.fallback = action.into();
        self
    }

    /// Number of distinct states seen in training.
    pub fn known_states(&self) -> usize {
        self.table.counts.len()
    }

    /// The most trained action in the state of `observation`, if any.
    pub fn best_action(&self, observation: &str) -> Option<&str> {
        let row = self.table.counts.get(&self.key.key(observation))?;
        argmax(row)
    }

    fn act_one(&self, req: &ActRequest) -> Act {
        let mut rng = crate::seed::rng(req.seed);
        let row = self.table.counts.get(&self.key.key(&req.observation));
        let allowed = |a: &str| req.valid_actions.as_ref().is_none_or(|v| v.iter().any(|x| x == a));
        if let Some(row) = row {
            let row: BTreeMap<&str, f64> =
                row.iter().filter(|(a, c)| **c > 0.0 && allowed(a)).map(|(a, c)| (a.as_str(), *c)).collect();
            if !row.is_empty() {
                if req.temperature <= 0.0 {
                    let best = row.iter().fold(None::<(&str, f64)>, |acc, (a, c)| match acc {
                        Some((_, bc)) if bc >= *c => acc,
                        _ => Some((a, *c)),
                    });
                    return Act::new(best.map(|(a, _)| a).unwrap_or_default());
                }
                let inv_t = 1.0 / f64::from(req.temperature);
                let weights: Vec<(&str, f64)> = row.iter().map(|(a, c)| (*a, c.powf(inv_t))).collect();
                let total: f64 = weights.iter().map(|(_, w)| w).sum();
                let mut x = rng.gen::<f64>() * total;
                for (a, w) in &weights {
                    if x < *w {
                        return Act::new(*a);
                    }
                    x -= w;
                }
                return Act::new(weights[weights.len() - 1].0);
            }
        }
        match &req.valid_actions {
            Some(v) if !v.is_empty() => Act::new(v[rng.gen_range(0..v.len())].clone()),
            _ => Act::new(self.fallback.clone()),
        }
    }
}

fn argmax(row: &BTreeMap<String, f64>) -> Option<&str> {
    row.iter()
        .filter(|(_, c)| **c > 0.0)
        .fold(None::<(&str, f64)>, |acc, (a, c)| match acc {
            Some((_, bc)) if bc >= *c => acc,
            _ => Some((a.as_str(), *c)),
        })
        .map(|(a, _)| a)
}

impl Policy for TabularPolicy {
    fn name(&self) -> String {
        "tabular".to_owned()
    }

    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        requests.iter().map(|r| Ok(self.act_one(r))).collect()
    }

    fn train(&mut self, data: &[Trajectory], config: &TrainConfig) -> Result<TrainReport, PolicyError> {
        let mut report = TrainReport { trajectories: data.len(), ..TrainReport::default() };
        let epochs = config.epochs.max(1) as f64;
        for t in data {
            for turn in t.turns.iter().filter(|t| t.trainable) {
                *self
                    .table
                    .counts
                    .entry(self.key.key(&turn.observation))
                    .or_default()
                    .entry(turn.action.clone())
                    .or_default() += epochs;
                report.trainable_turns += 1;
            }
        }
        Ok(report)
    }

    fn supports_preferences(&self) -> bool {
        true
    }

    /// A count-based analogue of DPO (not DPO: the table has no likelihoods to compare; the
    /// language-model policy trains with DPO proper): at the first turn where chosen and
    /// rejected differ, the chosen action gains one count and the rejected action loses one
    /// (never below zero).
    fn train_preferences(
        &mut self,
        pairs: &[crate::selection::PreferencePair],
        _config: &TrainConfig,
    ) -> Result<TrainReport, PolicyError> {
        let mut report = TrainReport { trajectories: pairs.len() * 2, ..TrainReport::default() };
        for p in pairs {
            let diverge = p.chosen.turns.iter().zip(&p.rejected.turns).find(|(a, b)| a.action != b.action);
            if let Some((good, bad)) = diverge {
                let row = self.table.counts.entry(self.key.key(&good.observation)).or_default();
                *row.entry(good.action.clone()).or_default() += 1.0;
                let row = self.table.counts.entry(self.key.key(&bad.observation)).or_default();
                let c = row.entry(bad.action.clone()).or_default();
                *c = (*c - 1.0).max(0.0);
                report.trainable_turns += 2;
            }
        }
        Ok(report)
    }

    fn save(&self, dir: &Path) -> Result<(), PolicyError> {
        let path = dir.join("tabular.json");
        let err = |e: String| PolicyError::Checkpoint { path: path.display().to_string(), message: e };
        let text = serde_json::to_string_pretty(&self.table).map_err(|e| err(e.to_string()))?;
        crate::jsonl::write_atomic(&path, text.as_bytes()).map_err(|e| err(e.to_string()))
    }

    fn load(&mut self, dir: &Path) -> Result<(), PolicyError> {
        let path = dir.join("tabular.json");
        let err = |e: String| PolicyError::Checkpoint { path: path.display().to_string(), message: e };
        let text = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
        self.table = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trajectory::{Actor, Source, StartState, Termination, Turn};

    fn traj(turns: Vec<(&str, &str, bool)>) -> Trajectory {
        Trajectory {
            id: "t".into(),
            task_id: "t".into(),
            instruction: String::new(),
            source: Source::Imported,
            start: StartState::TaskStart,
            sample: 0,
            seed: 0,
            turns: turns
                .into_iter()
                .map(|(o, a, m)| Turn {
                    observation: o.into(),
                    thought: None,
                    action: a.into(),
                    actor: Actor::Expert,
                    reward: 0.0,
                    trainable: m,
                })
                .collect(),
            final_observation: String::new(),
            termination: Termination::Done,
            reward: 1.0,
            success: true,
            provenance: None,
        }
    }

    fn req(obs: &str, seed: u64, t: f32) -> ActRequest {
        ActRequest {
            seed,
            task: "t".into(),
            instruction: String::new(),
            history: vec![],
            observation: obs.into(),
            valid_actions: Some(vec!["a".into(), "b".into(), "c".into()]),
            temperature: t,
        }
    }

    #[test]
    fn masked_turns_teach_nothing() {
        let mut p = TabularPolicy::default();
        p.train(&[traj(vec![("x", "a", true), ("y", "b", false)])], &TrainConfig::default()).unwrap();
        assert_eq!(p.best_action("x"), Some("a"));
        assert_eq!(p.best_action("y"), None);
    }

    #[test]
    fn greedy_picks_the_trained_action_and_sampling_is_seeded() {
        let mut p = TabularPolicy::default();
        p.train(&[traj(vec![("x", "b", true)])], &TrainConfig::default()).unwrap();
        assert_eq!(p.act_one(&req("x", 1, 0.0)).action, "b");
        let unknown: Vec<String> = (0..20).map(|s| p.act_one(&req("zz", s, 0.0)).action).collect();
        let again: Vec<String> = (0..20).map(|s| p.act_one(&req("zz", s, 0.0)).action).collect();
        assert_eq!(unknown, again);
        assert!(unknown.iter().any(|a| a != &unknown[0]), "unknown states explore: {unknown:?}");
    }

    #[test]
    fn checkpoint_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = TabularPolicy::default();
        p.train(&[traj(vec![("x", "c", true)])], &TrainConfig::default()).unwrap();
        p.save(dir.path()).unwrap();
        let mut q = TabularPolicy::default();
        q.load(dir.path()).unwrap();
        assert_eq!(q.best_action("x"), Some("c"));
    }
}
