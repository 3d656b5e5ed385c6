// Open every door of a house with the right key; the scripted expert breaks a key in the
// middle lock of the hard houses. (The book's "A new experiment" chapter.)

use eef_runtime::policy::TabularPolicy;
use eef_runtime::prelude::*;
use eef_runtime::reward::FinalReward;
use serde::Deserialize;

/// The default configuration of this experiment.
pub const DEFAULT_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/keys.toml");

/// `[environment]`: how many houses, and which are hard.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// Houses (tasks); every fourth is a test house.
    pub houses: usize,
    /// Every `hard_every`-th house is one where the expert breaks a key in a lock.
    pub hard_every: usize,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig { houses: 40, hard_every: 3 }
    }
}

const KEYS: [&str; 5] = ["red", "blue", "green", "gold", "black"];

/// A house: doors to open in order, each with the colour of its lock. The black key breaks in
/// any lock and ends the episode, failed.
#[derive(Default)]
pub struct KeysEnv {
    config: KeysConfig,
    doors: Vec<&'static str>,
    at: usize,
}

impl KeysEnv {
    /// An environment serving `config`'s houses.
    pub fn new(config: KeysConfig) -> Self {
        KeysEnv { config, ..KeysEnv::default() }
    }

    /// The lock colours of house `index`: 2 to 4 doors.
    pub fn doors_of(index: usize) -> Vec<&'static str> {
        (0..2 + index % 3).map(|d| KEYS[(index * 7 + d * 3) % 4]).collect()
    }

    fn observation(&self) -> String {
        format!("door {} of {} has a {} lock", self.at + 1, self.doors.len(), self.doors[self.at])
    }
}

#[environment(name = "keys", max_steps = 10)]
impl KeysEnv {
    fn tasks(&self) -> Vec<Task> {
        (0..self.config.houses)
            .map(|i| {
                let split = if i % 4 == 3 { Split::Test } else { Split::Train };
                Task::new(format!("house-{i}"), "open every door", split, i)
            })
            .collect()
    }

    fn reset(&mut self, task: &Task, _seed: u64) -> Result<String, EnvError> {
        self.doors = Self::doors_of(task.index);
        self.at = 0;
        Ok(self.observation())
    }

    fn step(&mut self, action: &str) -> StepResult {
        let Some(key) = action.strip_prefix("use ").and_then(|a| a.strip_suffix(" key")) else {
            return StepResult::running(format!("nothing happens. {}", self.observation()), 0.0);
        };
        if key == "black" {
            return StepResult::finished("the black key breaks in the lock: this door stays shut", 0.0);
        }
        if key != self.doors[self.at] {
            return StepResult::running(format!("the {key} key does not fit. {}", self.observation()), 0.0);
        }
        self.at += 1;
        if self.at == self.doors.len() {
            StepResult::finished("the last door opens", 1.0)
        } else {
            StepResult::running(self.observation(), 0.0)
        }
    }

    fn valid_actions(&self) -> Option<Vec<String>> {
        Some(KEYS.iter().map(|k| format!("use {k} key")).collect())
    }
}

/// The scripted expert: uses the key the lock asks for, but in hard houses it tries the black
/// key at the middle door (and fails the house).
pub struct KeysExpert {
    hard_every: usize,
}

impl KeysExpert {
    /// The expert of houses where every `hard_every`-th is hard.
    pub fn new(hard_every: usize) -> Self {
        KeysExpert { hard_every }
    }

    fn act(&self, r: &ActRequest) -> Result<Act, PolicyError> {
        let index: usize = r.task.as_str().trim_start_matches("house-").parse().map_err(|_| PolicyError::Other(format!("not a house: {}", r.task)))?;
        let lock = r.observation.split(" has a ").nth(1).and_then(|s| s.split(' ').next()).unwrap_or("red");
        let hard = self.hard_every > 0 && index.is_multiple_of(self.hard_every);
        let middle = KeysEnv::doors_of(index).len() / 2;
        let key = if hard && r.history.len() == middle { "black" } else { lock };
        Ok(Act::new(format!("use {key} key")))
    }
}

impl Policy for KeysExpert {
    fn name(&self) -> String {
        "keys-expert".into()
    }

    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        requests.iter().map(|r| self.act(r)).collect()
    }
}

/// Builds the experiment from a configuration: what `keys_eef` runs and the tests use.
pub fn experiment(config: ExperimentConfig) -> Result<Experiment, eef_runtime::Error> {
    let keys: KeysConfig = config.environment()?;
    let expert = KeysExpert::new(keys.hard_every);
    Ok(Experiment::new(config)
        .environment(move |_worker| Ok::<_, EnvError>(KeysEnv::new(keys.clone())))
        .expert(expert)
        .policy(TabularPolicy::default)
        .reward(FinalReward))
}
