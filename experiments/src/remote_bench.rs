//! Environments across hosts, measured: the same WebShop episodes (the heuristic shopper on the
//! test goals, `concurrency` in flight) played in process and through `servers` AgentGym-protocol
//! servers on loopback; episodes per second and p50 / p99 latency of one `step` as the rollout
//! worker sees it (for HTTP: the call and the server's work).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use eef_environments::webshop::{Shopper, ShopperConfig, WebShopConfig, WebShopEnv};
use eef_runtime::remote::{AgentGymConfig, AgentGymFactory, EnvServer, ServerHandle};
use eef_runtime::reward::FinalReward;
use eef_runtime::rollout::{CancellationToken, EpisodeJob, RolloutConfig, Rollouts};
use eef_runtime::{EnvError, EnvFactory, Environment, Error, Source, Split, StepResult, Task};

/// An environment whose `step` calls are timed.
struct Timed {
    inner: Box<dyn Environment>,
    times: Arc<Mutex<Vec<f64>>>,
}

impl Environment for Timed {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn tasks(&self) -> Vec<Task> {
        self.inner.tasks()
    }
    fn reset(&mut self, task: &Task, seed: u64) -> Result<String, EnvError> {
        self.inner.reset(task, seed)
    }
    fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        let t = Instant::now();
        let r = self.inner.step(action);
        if let Ok(mut times) = self.times.lock() {
            times.push(t.elapsed().as_secs_f64());
        }
        r
    }
    fn valid_actions(&self) -> Option<Vec<String>> {
        self.inner.valid_actions()
    }
    fn max_steps(&self, task: &Task) -> usize {
        self.inner.max_steps(task)
    }
}

struct TimedFactory {
    inner: Arc<dyn EnvFactory>,
    times: Arc<Mutex<Vec<f64>>>,
}

impl EnvFactory for TimedFactory {
    fn make(&self, worker: usize) -> Result<Box<dyn Environment>, EnvError> {
        Ok(Box::new(Timed { inner: self.inner.make(worker)?, times: self.times.clone() }))
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Plays `episodes` shopper episodes through `factory`; returns (episodes/s, p50 ms, p99 ms, steps).
fn measure(factory: Arc<dyn EnvFactory>, tasks: &[Task], episodes: usize, concurrency: usize) -> Result<(f64, f64, f64, usize), Error> {
    let times = Arc::new(Mutex::new(Vec::new()));
    let timed: Arc<dyn EnvFactory> = Arc::new(TimedFactory { inner: factory, times: times.clone() });
    let rollouts = Rollouts::new(timed, RolloutConfig { concurrency, progress: false, ..RolloutConfig::default() });
    let jobs: Vec<EpisodeJob> = (0..episodes)
        .map(|k| {
            let task = tasks[k % tasks.len()].clone();
            let mut j = EpisodeJob::from_start(task, k / tasks.len(), k as u64, 0.0, Source::Evaluation { method: "bench".into(), iteration: 0 });
            j.id = format!("bench/{k}");
            j
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| Error::Setup(e.to_string()))?;
    let expert = Arc::new(Shopper::new(ShopperConfig::default()));
    let t = Instant::now();
    runtime.block_on(rollouts.run("bench", expert, Arc::new(FinalReward), jobs, CancellationToken::new(), |_| Ok(())))?;
    let secs = t.elapsed().as_secs_f64();
    let mut v = times.lock().map(|v| v.clone()).unwrap_or_default();
    v.sort_by(f64::total_cmp);
    Ok((episodes as f64 / secs, 1e3 * quantile(&v, 0.5), 1e3 * quantile(&v, 0.99), v.len()))
}

/// Runs both measurements; returns the report (Markdown).
pub fn run(config: &WebShopConfig, episodes: usize, servers: usize, concurrency: usize) -> Result<String, Error> {
    let local: Arc<dyn EnvFactory> = Arc::new(WebShopEnv::factory(config)?);
    let tasks: Vec<Task> = local.make(0)?.tasks().into_iter().filter(|t| t.split == Split::Test).collect();
    let handles: Vec<ServerHandle> = (0..servers.max(1))
        .map(|_| EnvServer::bind("127.0.0.1:0", WebShopEnv::factory(config)?).map(|s| s.spawn(concurrency.max(8))))
        .collect::<Result<_, EnvError>>()?;
    let remote: Arc<dyn EnvFactory> = Arc::new(AgentGymFactory::new(AgentGymConfig { servers: handles.iter().map(ServerHandle::url).collect(), ..AgentGymConfig::default() })?);
    let (l_eps, l_p50, l_p99, l_steps) = measure(local, &tasks, episodes, concurrency)?;
    let (r_eps, r_p50, r_p99, r_steps) = measure(remote, &tasks, episodes, concurrency)?;
    drop(handles);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(format!(
        "# Environments over HTTP (AgentGym protocol) vs in process\n\n\
         WebShop, the heuristic shopper, {episodes} episodes of the test goals, {concurrency} in flight, {servers} servers on loopback, {cores} cores.\n\n\
         | | episodes/s | step p50 | step p99 | steps |\n|---|---:|---:|---:|---:|\n\
         | in process | {l_eps:.1} | {l_p50:.2} ms | {l_p99:.2} ms | {l_steps} |\n\
         | HTTP, {servers} servers | {r_eps:.1} | {r_p50:.2} ms | {r_p99:.2} ms | {r_steps} |\n"
    ))
}
