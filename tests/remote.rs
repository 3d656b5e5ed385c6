//! Environments across hosts on loopback: this project's AgentGym-protocol server and the client
//! environment that drives it, against the same environment in process.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use eef_environments::vault::{ScriptedExpert, VaultConfig, VaultEnv, World};
use eef_runtime::policy::{Act, ActRequest, Policy, PolicyError};
use eef_runtime::remote::{AgentGymConfig, AgentGymFactory, EnvServer, ServerHandle};
use eef_runtime::reward::FinalReward;
use eef_runtime::rollout::{CancellationToken, EpisodeJob, RolloutConfig, Rollouts};
use eef_runtime::{EnvFactory, Source, Trajectory};

fn vault() -> VaultConfig {
    VaultConfig { train_tasks: 120, test_tasks: 8, hard_fraction: 0.5, ..VaultConfig::default() }
}

fn serve(config: &VaultConfig, addr: &str) -> ServerHandle {
    EnvServer::bind(addr, VaultEnv::factory(config)).unwrap().spawn(32)
}

/// `samples` episodes of every training task from its start, each with its own seed.
fn jobs(config: &VaultConfig, samples: usize) -> Vec<EpisodeJob> {
    common::train_tasks(config)
        .into_iter()
        .flat_map(|t| {
            (0..samples).map(move |s| {
                let mut j = EpisodeJob::from_start(t.clone(), s, 1000 + s as u64, 1.0, Source::Exploration { method: "remote".into(), iteration: 1 });
                j.id = format!("{}/{s}", t.id);
                j
            })
        })
        .collect()
}

fn run(factory: Arc<dyn EnvFactory>, policy: Arc<dyn Policy>, jobs: Vec<EpisodeJob>, concurrency: usize) -> Vec<Trajectory> {
    let rollouts = Rollouts::new(factory, RolloutConfig { concurrency, progress: false, max_env_restarts: 6, ..RolloutConfig::default() });
    common::runtime().block_on(rollouts.run("remote", policy, Arc::new(FinalReward), jobs, CancellationToken::new(), |_| Ok(()))).unwrap()
}

/// One episode as played: its id, every (observation, action, reward bits), and its outcome.
type Played = (String, Vec<(String, String, u64)>, bool);

/// What an episode is, for comparing runs: task, actions, observations, rewards, outcome.
fn played(t: &[Trajectory]) -> Vec<Played> {
    t.iter().map(|t| (t.id.clone(), t.turns.iter().map(|u| (u.observation.clone(), u.action.clone(), u.reward.to_bits())).collect(), t.success)).collect()
}

/// The protocol's answers, call by call, as AgentGym's client reads them.
#[test]
fn the_server_speaks_agentgyms_protocol() {
    let config = vault();
    let server = serve(&config, "127.0.0.1:0");
    let base = server.url();
    let agent = ureq::Agent::new_with_config(ureq::Agent::config_builder().http_status_as_error(false).build());
    let get = |path: &str| -> (u16, serde_json::Value) {
        let mut r = agent.get(&format!("{base}{path}")).call().unwrap();
        (r.status().as_u16(), serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap())
    };
    let post = |path: &str, body: serde_json::Value| -> (u16, serde_json::Value) {
        let mut r = agent.post(&format!("{base}{path}")).send_json(&body).unwrap();
        (r.status().as_u16(), serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap())
    };
    assert_eq!(get("/"), (200, serde_json::json!("ok")));
    let (status, idx) = post("/create", serde_json::json!({}));
    assert_eq!(status, 200);
    let idx = idx.as_u64().unwrap();
    let (status, reset) = post("/reset", serde_json::json!({ "env_idx": idx, "session_id": 3 }));
    assert_eq!(status, 200);
    assert!(reset[0].is_string() && reset[1].is_null(), "[observation, null]: {reset}");
    assert_eq!(get(&format!("/observation?env_idx={idx}")).1, reset[0]);
    let (_, actions) = get(&format!("/available_actions?env_idx={idx}"));
    assert!(actions["has_search_bar"].is_boolean() && actions["clickables"].is_array() && actions["valid_actions"].is_array(), "{actions}");
    let action = actions["valid_actions"][0].as_str().unwrap().to_owned();
    let (status, step) = post("/step", serde_json::json!({ "env_idx": idx, "action": action }));
    assert_eq!(status, 200);
    assert!(step["state"].is_string() && step["reward"].is_number() && step["done"].is_boolean() && step["info"].is_null(), "{step}");
    assert_eq!(get("/list_envs").1, serde_json::json!([idx]));
    assert_eq!(post("/step", serde_json::json!({ "env_idx": 99, "action": "x" })).0, 404, "an unknown env_idx");
    assert_eq!(post("/step", serde_json::json!({ "env_idx": idx })).0, 422, "a malformed body");
    assert_eq!(post("/close", serde_json::json!({ "env_idx": idx })).1, serde_json::json!({ "closed": true }));
    assert_eq!(get(&format!("/observation?env_idx={idx}")).0, 404);
}

/// Episodes played through two servers equal the same episodes played in process.
#[test]
fn served_episodes_equal_in_process_episodes() {
    let config = vault();
    let servers = [serve(&config, "127.0.0.1:0"), serve(&config, "127.0.0.1:0")];
    let remote = AgentGymFactory::new(AgentGymConfig { servers: servers.iter().map(ServerHandle::url).collect(), ..AgentGymConfig::default() }).unwrap();
    let expert: Arc<dyn Policy> = Arc::new(ScriptedExpert::new(&World::new(&config)));
    let local = run(Arc::new(VaultEnv::factory(&config)), expert.clone(), jobs(&config, 1), 8);
    let served = run(Arc::new(remote), expert, jobs(&config, 1), 8);
    assert_eq!(local.len(), 120);
    assert_eq!(played(&served), played(&local));
}

/// The scripted expert, crashing one server after `at` decisions (its instances are lost, its
/// calls fail) and bringing it back, empty, after `back_at` (a restarted process).
struct CrashesAServer {
    inner: ScriptedExpert,
    seen: AtomicUsize,
    at: usize,
    back_at: usize,
    victim: ServerHandle,
    lost: AtomicUsize,
}

impl Policy for CrashesAServer {
    fn name(&self) -> String {
        "crashes-a-server".into()
    }
    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        let n = self.seen.fetch_add(requests.len(), Ordering::SeqCst);
        if (self.at..self.at + requests.len()).contains(&n) || (n < self.at && n + requests.len() > self.at) {
            self.lost.fetch_add(self.victim.crash(), Ordering::SeqCst);
        }
        if n <= self.back_at && n + requests.len() > self.back_at {
            self.victim.recover();
        }
        self.inner.act_batch(requests)
    }
}

/// 8 servers, 240 episodes with 200 in flight; one server crashes mid-run (its instances lost)
/// and comes back later, empty. No episode is lost, and every episode is the one played in process:
/// the engine made a fresh instance on another server and replayed the episode to where it was.
#[test]
fn eight_servers_two_hundred_concurrent_episodes_and_a_crashed_server_lose_nothing() {
    let config = vault();
    let mut servers: Vec<ServerHandle> = (0..8).map(|_| serve(&config, "127.0.0.1:0")).collect();
    let urls: Vec<String> = servers.iter().map(ServerHandle::url).collect();
    let victim = servers.remove(3);
    let remote = AgentGymFactory::new(AgentGymConfig { servers: urls, ..AgentGymConfig::default() }).unwrap();
    let expert = ScriptedExpert::new(&World::new(&config));
    let policy = CrashesAServer { inner: ScriptedExpert::new(&World::new(&config)), seen: AtomicUsize::new(0), at: 300, back_at: 600, victim, lost: AtomicUsize::new(0) };
    let policy = Arc::new(policy);
    let served = run(Arc::new(remote), policy.clone(), jobs(&config, 2), 200);
    assert!(policy.lost.load(Ordering::SeqCst) > 0 && policy.victim.refused() > 0, "the crash hit episodes in flight");
    let local = run(Arc::new(VaultEnv::factory(&config)), Arc::new(expert), jobs(&config, 2), 8);
    assert_eq!(served.len(), 240, "no episode lost");
    assert_eq!(played(&served), played(&local), "every episode as played in process");
}

/// The whole loop with its environment on two servers: expert, SFT, exploration from task starts
/// and expert states, selection, training and evaluation for one EEF iteration give the same
/// report as the same run in process.
#[test]
fn one_eef_iteration_over_two_env_servers_equals_the_in_process_run() {
    use eef_runtime::policy::TabularPolicy;
    use eef_runtime::{Experiment, ExperimentConfig};
    let config = common::small_vault();
    let servers = [serve(&config, "127.0.0.1:0"), serve(&config, "127.0.0.1:0")];
    let text = "[experiment]\nname = \"loop\"\niterations = 1\n[rollout]\nprogress = false\nconcurrency = 8\n[[methods]]\nselector = \"sft\"\n[[methods]]\nselector = \"eef\"\n";
    let run_with = |factory: Arc<dyn Fn() -> Experiment>| {
        let report = common::runtime().block_on(factory().run()).unwrap();
        report.methods
    };
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let experiment = |dir: &std::path::Path| {
        let mut c = ExperimentConfig::from_toml("loop.toml", text).unwrap();
        c.experiment.run_dir = dir.to_owned();
        Experiment::new(c).expert(ScriptedExpert::new(&World::new(&config))).policy(TabularPolicy::default)
    };
    let (d0, d1) = (dirs[0].path().to_owned(), dirs[1].path().to_owned());
    let cfg = config.clone();
    let local = run_with(Arc::new(move || experiment(&d0).environment(VaultEnv::factory(&cfg))));
    let urls: Vec<String> = servers.iter().map(ServerHandle::url).collect();
    let remote = run_with(Arc::new(move || experiment(&d1).environment(AgentGymFactory::new(AgentGymConfig { servers: urls.clone(), ..AgentGymConfig::default() }).unwrap())));
    assert_eq!(remote, local);
    let eef = &remote[1].iterations[1];
    assert!(eef.explore.as_ref().unwrap().episodes > 0 && eef.recovery_states > 0, "EEF explored from expert states over HTTP");
}

/// One line of the mock inference server's log.
#[derive(Clone, Debug, PartialEq)]
enum Call {
    Load(String),
    Complete { model: String, seed: bool, stop: bool },
}

/// The JSON body of a request to a mock server (null when it has none).
fn json_body(request: &mut tiny_http::Request) -> serde_json::Value {
    let mut body = String::new();
    request.as_reader().read_to_string(&mut body).unwrap();
    serde_json::from_str(&body).unwrap_or_default()
}

/// An OpenAI chat-completion answer with one choice.
fn chat_completion(content: &str) -> String {
    serde_json::json!({ "choices": [{ "message": { "role": "assistant", "content": content } }] }).to_string()
}

/// A loopback OpenAI-compatible server with vLLM's runtime LoRA endpoint: it logs every call,
/// fails the first load of each adapter with 503 and every fifth completion with 500 (the policy
/// retries), and answers `Action: <the first valid action>` for the Vault.
fn mock_inference_server(log: Arc<std::sync::Mutex<Vec<Call>>>) -> (String, std::thread::JoinHandle<()>, Arc<tiny_http::Server>) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let url = format!("http://{}/v1", server.server_addr().to_ip().unwrap());
    let s = server.clone();
    let handle = std::thread::spawn(move || {
        let mut completions = 0usize;
        while let Ok(mut request) = s.recv() {
            let json = json_body(&mut request);
            let (status, answer) = match request.url() {
                "/v1/load_lora_adapter" => {
                    let name = json["lora_name"].as_str().unwrap().to_owned();
                    let mut log = log.lock().unwrap();
                    let first = !log.contains(&Call::Load(name.clone())) && !log.iter().any(|c| c == &Call::Load(format!("failed:{name}")));
                    if first {
                        log.push(Call::Load(format!("failed:{name}")));
                        (503, "busy".to_owned())
                    } else {
                        log.push(Call::Load(name));
                        (200, "Success".to_owned())
                    }
                }
                "/v1/chat/completions" => {
                    completions += 1;
                    if completions.is_multiple_of(5) {
                        (500, "overloaded".to_owned())
                    } else {
                        log.lock().unwrap().push(Call::Complete { model: json["model"].as_str().unwrap().to_owned(), seed: json["seed"].is_u64(), stop: json["stop"].is_array() });
                        let content = "Thought: the first lever.\nAction: pull[1]";
                        (200, chat_completion(content))
                    }
                }
                other => (404, format!("no route {other}")),
            };
            let _ = request.respond(tiny_http::Response::from_string(answer).with_status_code(status));
        }
    });
    (url, handle, server)
}

/// Rollouts through an inference server: every checkpoint the loop saves is loaded into the
/// server as a LoRA adapter (vLLM's runtime endpoint), and each phase's requests name the
/// adapter it should: exploration of iteration k the checkpoint of k − 1, evaluation of k its
/// own. 5xx answers are retried: no episode breaks.
#[test]
fn rollouts_go_through_the_inference_server_serving_the_adapter_just_trained() {
    use eef_runtime::policy::{ChatConfig, ServedConfig, ServedPolicy, TabularPolicy};
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (url, handle, server) = mock_inference_server(log.clone());
    let tmp = tempfile::tempdir().unwrap();
    let text = "[experiment]\nname = \"served\"\niterations = 2\n[rollout]\nprogress = false\nconcurrency = 4\n[[methods]]\nselector = \"sft\"\n[[methods]]\nselector = \"eef\"\n[environment]\ntrain_tasks = 6\ntest_tasks = 3\n";
    let mut config = eef_runtime::ExperimentConfig::from_toml("served.toml", text).unwrap();
    config.experiment.run_dir = tmp.path().to_owned();
    let served = ServedConfig { chat: ChatConfig { base_url: url, model: "base".into(), backoff_ms: 1, stop: vec!["\nObservation".into()], ..ChatConfig::default() }, ..ServedConfig::default() };
    let exp = eef_experiments::vault::experiment(config).unwrap().policy(move || ServedPolicy::new(Box::new(TabularPolicy::default()), served.clone(), "You open vaults."));
    let report = common::runtime().block_on(exp.run()).unwrap();
    server.unblock();
    handle.join().unwrap();
    let log = log.lock().unwrap().clone();
    let loaded: Vec<&String> = log.iter().filter_map(|c| match c { Call::Load(n) if !n.starts_with("failed:") => Some(n), _ => None }).collect();
    let names: Vec<String> = ["served-sft", "eef-iter-1", "eef-iter-2"].iter().map(|s| s.to_string()).collect();
    for n in &names {
        assert!(loaded.iter().any(|l| l.ends_with(n.as_str())), "adapter {n} loaded: {loaded:?}");
    }
    // Each completion names an adapter already loaded at that point.
    let mut seen = Vec::new();
    for c in &log {
        match c {
            Call::Load(n) => seen.push(n.clone()),
            Call::Complete { model, seed, stop } => {
                assert!(seen.contains(model), "{model} named before it was loaded");
                assert!(*seed && *stop, "requests carry the seed and the stop strings");
            }
        }
    }
    let models: std::collections::BTreeSet<&String> = log.iter().filter_map(|c| match c { Call::Complete { model, .. } => Some(model), _ => None }).collect();
    assert!(models.iter().any(|m| m.ends_with("served-sft")) && models.iter().any(|m| m.ends_with("eef-iter-2")), "{models:?}");
    // The evaluation of iteration 2 used the adapter of iteration 2.
    let eval2: Vec<Trajectory> = eef_runtime::jsonl::read(&tmp.path().join("served/eef/iter-2/eval.jsonl")).unwrap();
    assert!(!eval2.is_empty());
    let broken: usize = report.methods.iter().flat_map(|m| &m.iterations).map(|it| it.eval.broken).sum();
    assert_eq!(broken, 0, "the 5xx answers were retried");
}

/// An OpenAI-compatible server that really serves the adapters it is told to load, as vLLM does:
/// `load_lora_adapter` reads the PEFT folder at `lora_path` over the base model (with eef's
/// loader, so a folder vLLM could not read fails here too), and a chat completion decodes the
/// answer with the adapter the request names, from the messages turned back into the dialogue.
/// Two handler threads; every call is logged.
fn adapter_serving_server(settings: eef_runtime::model::LmSettings, log: Arc<std::sync::Mutex<Vec<Call>>>) -> (String, Vec<std::thread::JoinHandle<()>>, Arc<tiny_http::Server>) {
    use eef_runtime::model::{CpuTrain, LmPolicy};
    use eef_runtime::policy::Step;
    use std::collections::HashMap;
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let url = format!("http://{}/v1", server.server_addr().to_ip().unwrap());
    let adapters: Arc<std::sync::RwLock<HashMap<String, Arc<LmPolicy<CpuTrain>>>>> = Arc::default();
    let handlers = (0..2)
        .map(|_| {
            let (s, log, adapters, settings) = (server.clone(), log.clone(), adapters.clone(), settings.clone());
            std::thread::spawn(move || {
                while let Ok(mut request) = s.recv() {
                    let json = json_body(&mut request);
                    let (status, answer) = match request.url() {
                        "/v1/load_lora_adapter" => {
                            let name = json["lora_name"].as_str().unwrap().to_owned();
                            let mut policy = LmPolicy::<CpuTrain>::new(settings.clone(), Default::default());
                            match policy.load(std::path::Path::new(json["lora_path"].as_str().unwrap())) {
                                Ok(()) => {
                                    adapters.write().unwrap().insert(name.clone(), Arc::new(policy));
                                    log.lock().unwrap().push(Call::Load(name));
                                    (200, "Success".to_owned())
                                }
                                Err(e) => (400, format!("cannot load adapter {name}: {e}")),
                            }
                        }
                        "/v1/chat/completions" => {
                            let model = json["model"].as_str().unwrap().to_owned();
                            let Some(policy) = adapters.read().unwrap().get(&model).cloned() else {
                                let _ = request.respond(tiny_http::Response::from_string(format!("The model `{model}` does not exist.")).with_status_code(404));
                                continue;
                            };
                            log.lock().unwrap().push(Call::Complete { model, seed: json["seed"].is_u64(), stop: json["stop"].is_array() });
                            // The dialogue ChatPolicy sent: system, "Instruction: …\nObservation: …",
                            // then (assistant action, "Observation: …") pairs.
                            let texts: Vec<&str> = json["messages"].as_array().unwrap().iter().skip(1).map(|m| m["content"].as_str().unwrap()).collect();
                            let (instruction, first) = texts[0].strip_prefix("Instruction: ").unwrap().split_once("\nObservation: ").unwrap();
                            let mut observations = vec![first.to_owned()];
                            let mut history = Vec::new();
                            for pair in texts[1..].chunks(2) {
                                let (thought, action) = eef_runtime::sharegpt::parse_action(pair[0]).unwrap();
                                history.push(Step { observation: observations.pop().unwrap(), thought, action });
                                observations.push(pair[1].strip_prefix("Observation: ").unwrap().to_owned());
                            }
                            let r = ActRequest {
                                seed: json["seed"].as_u64().unwrap(),
                                task: "served".into(),
                                instruction: instruction.to_owned(),
                                history,
                                observation: observations.pop().unwrap(),
                                valid_actions: None,
                                temperature: json["temperature"].as_f64().unwrap() as f32,
                            };
                            match policy.act_batch(&[r]).remove(0) {
                                Ok(act) => (200, chat_completion(&eef_runtime::sharegpt::render_action(act.thought.as_deref(), &act.action))),
                                Err(e) => (500, e.to_string()),
                            }
                        }
                        other => (404, format!("no route {other}")),
                    };
                    let _ = request.respond(tiny_http::Response::from_string(answer).with_status_code(status));
                }
            })
        })
        .collect();
    (url, handlers, server)
}

/// The whole picture on loopback, one EEF iteration: a driver (the experiment), two environment
/// servers, an inference server serving the adapters the run trains, and LoRA training of the
/// pretrained tiny Llama on two data-parallel CPU peers (`[policy.train] devices = [0, 1]`).
/// Every rollout goes over HTTP to both kinds of server; every adapter is published and loaded
/// from its folder before a request names it; no episode breaks.
#[test]
fn driver_env_servers_inference_server_and_data_parallel_training_run_one_eef_iteration() {
    let hf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/hf/tiny-llama3.2-instruct");
    let vault = VaultConfig { train_tasks: 8, test_tasks: 4, ..VaultConfig::default() };
    let envs = [serve(&vault, "127.0.0.1:0"), serve(&vault, "127.0.0.1:0")];
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tmp = tempfile::tempdir().unwrap();
    let policy = format!(
        "[policy]\ninit = {hf:?}\nmax_context = 512\nmax_new_tokens = 16\nbatch_size = 4\n[policy.lora]\nrank = 4\nalpha = 8.0\n\
         [policy.train]\nlearning_rate = 0.01\nwarmup_steps = 2\ndevices = [0, 1]\n"
    );
    let text = format!(
        "[experiment]\nname = \"whole\"\niterations = 1\n[train]\nepochs = 2\n[rollout]\nprogress = false\nconcurrency = 4\n\
         [[methods]]\nselector = \"sft\"\n[[methods]]\nselector = \"eef\"\n[environment]\ntrain_tasks = 8\ntest_tasks = 4\n{policy}"
    );
    // The inference server reads the adapters with the same base model and LoRA settings.
    let server_settings: eef_runtime::model::LmSettings = eef_runtime::ExperimentConfig::from_toml("whole.toml", &text).unwrap().policy().unwrap();
    let (url, handlers, server) = adapter_serving_server(server_settings, log.clone());
    let text = format!("{text}[policy.server.chat]\nbase_url = \"{url}\"\nmodel = \"base\"\nbackoff_ms = 1\nstop = [\"\\nObservation\"]\n");
    let mut config = eef_runtime::ExperimentConfig::from_toml("whole.toml", &text).unwrap();
    config.experiment.run_dir = tmp.path().to_owned();
    let urls: Vec<String> = envs.iter().map(ServerHandle::url).collect();
    let exp = eef_experiments::vault::experiment_lm(config).unwrap().environment(AgentGymFactory::new(AgentGymConfig { servers: urls, ..AgentGymConfig::default() }).unwrap());
    let report = common::runtime().block_on(exp.run()).unwrap();
    // Each call unblocks one handler (whichever is waiting), so all of them first, then join.
    for _ in &handlers {
        server.unblock();
    }
    for h in handlers {
        h.join().unwrap();
    }
    let log = log.lock().unwrap().clone();
    let loaded: Vec<&String> = log.iter().filter_map(|c| match c { Call::Load(n) => Some(n), _ => None }).collect();
    for n in ["whole-sft", "eef-iter-1"] {
        assert!(loaded.iter().any(|l| l.ends_with(n)), "adapter {n} was published and loaded from its folder: {loaded:?}");
    }
    let mut seen = Vec::new();
    for c in &log {
        match c {
            Call::Load(n) => seen.push(n.clone()),
            Call::Complete { model, seed, stop } => assert!(seen.contains(model) && *seed && *stop, "{model}: named before it was loaded, or without seed / stop"),
        }
    }
    let completions = log.iter().filter(|c| matches!(c, Call::Complete { .. })).count();
    let eef = &report.methods[1].iterations[1];
    let explored = eef.explore.as_ref().map_or(0, |e| e.episodes);
    assert!(explored > 0, "EEF explored from the expert's states through both servers");
    let broken: usize = report.methods.iter().flat_map(|m| &m.iterations).map(|it| it.eval.broken).sum();
    assert_eq!(broken, 0, "no episode broke");
    eprintln!("{completions} completions, {} adapters loaded, {explored} explorations, {} recovery states", loaded.len(), eef.recovery_states);
    assert!(completions > explored, "{completions} completions for {explored} explorations and the evaluations");
    // What the server loaded is the PEFT adapter the two peers trained.
    let adapter = tmp.path().join("whole/eef/iter-1/checkpoint");
    assert!(adapter.join("adapter_config.json").exists() && adapter.join("adapter_model.safetensors").exists(), "{}", adapter.display());
}
