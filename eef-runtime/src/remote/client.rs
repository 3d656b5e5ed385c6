//! [`AgentGymEnv`]: an environment behind an AgentGym-protocol server, on this host or another.
//!
//! Every transport failure (refused or reset connection, timeout, 5xx, an `env_idx` the server
//! no longer knows because it was restarted) is an [`EnvError::Crashed`]: the rollout engine
//! makes a fresh instance (on the next server that answers) and replays the episode to where it
//! was, so a killed server loses no episode.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::protocol::{AvailableActions, ResetQuery, StepQuery, StepResponse, TaskInfo};
use crate::environment::{EnvError, EnvFactory, Environment, StepResult};
use crate::task::Task;

/// Settings of [`AgentGymEnv`] (e.g. `[environment]` of a remote experiment).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentGymConfig {
    /// The servers' base URLs (`http://host:port`). Worker `w`'s instance goes to server
    /// `(w + made / n) mod n`, where `made` counts the instances made so far: the workers spread
    /// over the servers, and an instance made again (after a failure) starts one server further
    /// on. A server that does not answer is skipped for the next.
    pub servers: Vec<String>,
    /// The environment's name in reports.
    pub name: String,
    /// The tasks; when empty, read from the first server's `GET /tasks` (this project's
    /// servers). AgentGym's own servers have no task list: give it here.
    pub tasks: Vec<Task>,
    /// The step limit of tasks not listed by a server.
    pub max_steps: usize,
    /// Timeout of one call, in seconds.
    pub timeout_secs: f64,
    /// When a server lists no `valid_actions` but has a search bar: offer
    /// `search[<instruction>]` (as this project's WebShop does) next to the clickables.
    pub search_with_instruction: bool,
}

impl Default for AgentGymConfig {
    fn default() -> Self {
        AgentGymConfig {
            servers: vec!["http://127.0.0.1:36001".into()],
            name: "agentgym".into(),
            tasks: Vec::new(),
            max_steps: 10,
            timeout_secs: 120.0,
            search_with_instruction: true,
        }
    }
}

fn crashed(url: &str, what: impl std::fmt::Display) -> EnvError {
    EnvError::Crashed(format!("{url}: {what}"))
}

/// A connection to the servers: an HTTP agent and the base URLs.
#[derive(Clone)]
struct Link {
    agent: ureq::Agent,
    servers: Arc<Vec<String>>,
}

impl Link {
    fn new(config: &AgentGymConfig) -> Self {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs_f64(config.timeout_secs.max(0.1))))
                .http_status_as_error(false)
                .build(),
        );
        Link { agent, servers: Arc::new(config.servers.clone()) }
    }

    fn answer<T: serde::de::DeserializeOwned>(url: &str, result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<T, EnvError> {
        let mut resp = result.map_err(|e| crashed(url, e))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().map_err(|e| crashed(url, e))?;
        match status {
            200 => serde_json::from_str(&text).map_err(|e| EnvError::Other(format!("{url}: unexpected answer ({e}): {}", text.chars().take(200).collect::<String>()))),
            // A server that lost the instance (restarted), or is failing: start over elsewhere.
            404 | 500..=599 => Err(crashed(url, format!("HTTP {status}: {}", text.chars().take(200).collect::<String>()))),
            _ => Err(EnvError::Other(format!("{url}: HTTP {status}: {}", text.chars().take(200).collect::<String>()))),
        }
    }

    fn post<T: serde::de::DeserializeOwned>(&self, base: &str, path: &str, body: &impl Serialize) -> Result<T, EnvError> {
        let url = format!("{base}{path}");
        Self::answer(&url, self.agent.post(&url).send_json(body))
    }

    fn get<T: serde::de::DeserializeOwned>(&self, base: &str, path: &str) -> Result<T, EnvError> {
        let url = format!("{base}{path}");
        Self::answer(&url, self.agent.get(&url).call())
    }
}

/// Makes [`AgentGymEnv`]s, spreading workers over the servers.
#[derive(Clone)]
pub struct AgentGymFactory {
    config: AgentGymConfig,
    link: Link,
    tasks: Arc<std::sync::OnceLock<Arc<Vec<TaskInfo>>>>,
    /// Instances made so far (each failure moves a worker on to the next server).
    made: Arc<AtomicUsize>,
}

impl AgentGymFactory {
    /// A factory for `config`. Nothing is contacted yet: the task list (when `config.tasks` is
    /// empty) is read from the first server an instance is made on.
    pub fn new(config: AgentGymConfig) -> Result<Self, EnvError> {
        if config.servers.is_empty() {
            return Err(EnvError::Other("list at least one server in `servers`".into()));
        }
        let link = Link::new(&config);
        let tasks = Arc::new(std::sync::OnceLock::new());
        if !config.tasks.is_empty() {
            let _ = tasks.set(Arc::new(config.tasks.iter().map(|t| TaskInfo { task: t.clone(), max_steps: config.max_steps }).collect()));
        }
        Ok(AgentGymFactory { config, link, tasks, made: Arc::new(AtomicUsize::new(0)) })
    }

    fn tasks_from(&self, base: &str) -> Result<Arc<Vec<TaskInfo>>, EnvError> {
        if let Some(t) = self.tasks.get() {
            return Ok(t.clone());
        }
        let list: Vec<TaskInfo> = self.link.get(base, "/tasks").map_err(|e| match e {
            EnvError::Other(m) => EnvError::Other(format!("{m} (a server without `GET /tasks`, such as AgentGym's own: list the tasks in the config)")),
            e => e,
        })?;
        Ok(self.tasks.get_or_init(|| Arc::new(list)).clone())
    }
}

impl EnvFactory for AgentGymFactory {
    fn make(&self, worker: usize) -> Result<Box<dyn Environment>, EnvError> {
        let n = self.link.servers.len();
        // The first n instances go to `worker mod n`; each further round of n shifts the start by
        // one (an instance remade after a failure tries another server first), and a server that
        // does not answer is skipped.
        let attempt = self.made.fetch_add(1, Ordering::Relaxed);
        let first = (worker + attempt / n.max(1)) % n;
        let mut last = None;
        for k in 0..n {
            let base = &self.link.servers[(first + k) % n];
            match self.link.post::<u64>(base, "/create", &serde_json::json!({})).and_then(|idx| Ok((idx, self.tasks_from(base)?))) {
                Ok((env_idx, tasks)) => {
                    return Ok(Box::new(AgentGymEnv {
                        config: self.config.clone(),
                        link: self.link.clone(),
                        base: base.clone(),
                        env_idx,
                        tasks,
                        available: None,
                        instruction: String::new(),
                    }))
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| EnvError::Other("no server".into())))
    }
}

/// One environment instance on a server.
pub struct AgentGymEnv {
    config: AgentGymConfig,
    link: Link,
    base: String,
    env_idx: u64,
    tasks: Arc<Vec<TaskInfo>>,
    available: Option<Vec<String>>,
    instruction: String,
}

impl AgentGymEnv {
    /// The server this instance lives on.
    pub fn server(&self) -> &str {
        &self.base
    }

    fn refresh_actions(&mut self) -> Result<(), EnvError> {
        let a: AvailableActions = self.link.get(&self.base, &format!("/available_actions?env_idx={}", self.env_idx))?;
        self.available = Some(match a.valid_actions {
            Some(list) => list,
            None => {
                let mut list = Vec::new();
                if a.has_search_bar && self.config.search_with_instruction {
                    list.push(format!("search[{}]", self.instruction));
                }
                list.extend(a.clickables.iter().filter(|c| c.as_str() != "search").map(|c| format!("click[{c}]")));
                list
            }
        });
        Ok(())
    }
}

impl Drop for AgentGymEnv {
    fn drop(&mut self) {
        // Best effort: a dead server has nothing to close.
        let _ = self.link.post::<serde_json::Value>(&self.base, "/close", &serde_json::json!({ "env_idx": self.env_idx }));
    }
}

impl Environment for AgentGymEnv {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn tasks(&self) -> Vec<Task> {
        self.tasks.iter().map(|t| t.task.clone()).collect()
    }

    fn reset(&mut self, task: &Task, seed: u64) -> Result<String, EnvError> {
        let q = ResetQuery { env_idx: self.env_idx, session_id: Some(task.index), seed: Some(seed) };
        let _: serde_json::Value = self.link.post(&self.base, "/reset", &q)?;
        // As AgentGym's client does: the observation is read after the reset.
        let observation: String = self.link.get(&self.base, &format!("/observation?env_idx={}", self.env_idx))?;
        self.instruction = task.instruction.trim_start_matches("Instruction:").trim().to_owned();
        self.refresh_actions()?;
        Ok(observation)
    }

    fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        let q = StepQuery { env_idx: self.env_idx, action: action.to_owned() };
        let r: StepResponse = self.link.post(&self.base, "/step", &q)?;
        if !r.done {
            self.refresh_actions()?;
        }
        Ok(StepResult { observation: r.state, reward: r.reward, done: r.done })
    }

    fn valid_actions(&self) -> Option<Vec<String>> {
        self.available.clone()
    }

    fn max_steps(&self, task: &Task) -> usize {
        self.tasks.iter().find(|t| t.task.id == task.id).map_or(self.config.max_steps, |t| t.max_steps)
    }
}
