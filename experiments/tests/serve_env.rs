//! `eef serve-env` as separate processes: one is killed with SIGKILL mid-run and started again
//! on its port; the rollouts lose no episode and play every episode as in process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use eef_environments::vault::{ScriptedExpert, VaultConfig, VaultEnv, World};
use eef_runtime::policy::{Act, ActRequest, Policy, PolicyError};
use eef_runtime::remote::{AgentGymConfig, AgentGymFactory};
use eef_runtime::reward::FinalReward;
use eef_runtime::rollout::{CancellationToken, EpisodeJob, RolloutConfig, Rollouts};
use eef_runtime::{EnvFactory, Environment, Source, Split, Trajectory};

/// Starts `eef serve-env --env vault` on `addr`; returns the process and its URL.
fn server(addr: &str) -> Option<(Child, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eef"))
        .args(["serve-env", "--env", "vault", "--addr", addr, "--threads", "16"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    match line.trim().strip_prefix("listening on ") {
        Some(url) if read.is_ok() => Some((child, url.to_owned())),
        // It could not listen (the port is still taken): no server.
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

/// The scripted expert; after `at` decisions it SIGKILLs the victim server, and after `back_at`
/// starts it again on the same port.
struct Killer {
    inner: ScriptedExpert,
    seen: AtomicUsize,
    at: usize,
    back_at: usize,
    victim: Mutex<(Option<Child>, String, bool)>,
}

impl Policy for Killer {
    fn name(&self) -> String {
        "killer".into()
    }
    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        let n = self.seen.fetch_add(requests.len(), Ordering::SeqCst);
        let mut v = self.victim.lock().unwrap();
        if n >= self.at {
            if let Some(mut child) = v.0.take() {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
            }
        }
        if n >= self.back_at && !v.2 {
            v.2 = true;
            let addr = v.1.trim_start_matches("http://").to_owned();
            v.0 = server(&addr).map(|(c, _)| c);
        }
        drop(v);
        self.inner.act_batch(requests)
    }
}

#[test]
fn a_sigkilled_server_loses_no_episode() {
    let config = VaultConfig::default();
    let mut servers: Vec<(Child, String)> = (0..4).map(|_| server("127.0.0.1:0").expect("a server starts")).collect();
    let urls: Vec<String> = servers.iter().map(|s| s.1.clone()).collect();
    let (victim, victim_url) = servers.remove(1);
    let remote = AgentGymFactory::new(AgentGymConfig { servers: urls, ..AgentGymConfig::default() }).unwrap();
    let tasks: Vec<_> = VaultEnv::factory(&config)(0).unwrap().tasks().into_iter().filter(|t| t.split == Split::Train).collect();
    let jobs = |samples: usize| -> Vec<EpisodeJob> {
        tasks
            .iter()
            .flat_map(|t| {
                (0..samples).map(move |s| {
                    let mut j = EpisodeJob::from_start(t.clone(), s, 77 + s as u64, 1.0, Source::Exploration { method: "remote".into(), iteration: 1 });
                    j.id = format!("{}/{s}", t.id);
                    j
                })
            })
            .collect()
    };
    let run = |factory: Arc<dyn EnvFactory>, policy: Arc<dyn Policy>, concurrency: usize| -> Vec<Trajectory> {
        let rollouts = Rollouts::new(factory, RolloutConfig { concurrency, progress: false, max_env_restarts: 6, ..RolloutConfig::default() });
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(rollouts.run("remote", policy, Arc::new(FinalReward), jobs(2), CancellationToken::new(), |_| Ok(()))).unwrap()
    };
    let killer = Arc::new(Killer { inner: ScriptedExpert::new(&World::new(&config)), seen: AtomicUsize::new(0), at: 100, back_at: 300, victim: Mutex::new((Some(victim), victim_url, false)) });
    let served = run(Arc::new(remote), killer.clone(), 64);
    let local = run(Arc::new(VaultEnv::factory(&config)), Arc::new(ScriptedExpert::new(&World::new(&config))), 8);
    if let Some(mut c) = killer.victim.lock().unwrap().0.take() {
        let _ = c.kill();
    }
    for (mut c, _) in servers {
        let _ = c.kill();
    }
    assert!(killer.seen.load(Ordering::SeqCst) > 100, "the server was killed mid-run");
    assert_eq!(served.len(), local.len(), "no episode lost");
    type Played = (String, Vec<(String, String)>, bool);
    let played = |t: &[Trajectory]| -> Vec<Played> {
        t.iter().map(|t| (t.id.clone(), t.turns.iter().map(|u| (u.observation.clone(), u.action.clone())).collect(), t.success)).collect()
    };
    assert_eq!(played(&served), played(&local), "every episode as played in process");
}
