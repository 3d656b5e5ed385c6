//! Data-parallel training with burn-collective (`[policy.train] devices`), on two CPU peers: one
//! optimizer step on 2 × (batch / 2) equals one step on the whole batch, whole training runs
//! (SFT and DPO) equal single-device ones, runs are reproducible and resumable, and a failing
//! peer ends training with an error instead of a hang; and across two machines (here two
//! processes on loopback: this one and an `eef train-node`), training equals one device's.
//!
//! Tolerance: the peers' gradients are summed in a different order than one device sums them,
//! so results agree to float32 rounding, not bit for bit. One AdamW step moves a weight by about
//! the learning rate (1e-2 here); the weights must agree to 1e-5 (0.1 % of a step) after one step
//! and after a whole run (measured: 4e-7 after one step, 4e-7 after SFT and DPO).

mod common;

use common::{model_weights, worst};
use eef_runtime::model::data_parallel::{self, shards, ClusterSettings, ModelShape};
use eef_runtime::model::{Batch, CpuTrain, Llama, LlamaConfig, LmPolicy, LmSettings, LoraSettings, Row, TrainSettings, Trainer};
use eef_runtime::policy::{DpoConfig, Policy, TrainConfig};
use eef_runtime::selection::PreferencePair;
use eef_runtime::{Actor, Trajectory, Turn};

/// The shape of a model without adapters.
fn plain(config: &LlamaConfig) -> ModelShape<'_> {
    ModelShape { config, lora: None }
}

fn config() -> LlamaConfig {
    LlamaConfig { vocab_size: 64, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: Some(2), ..LlamaConfig::tiny(64) }
}

/// Seven windows of different lengths and masks (an odd count: the peers' shards differ in size).
fn windows() -> Vec<Row> {
    (0..7u32)
        .map(|k| {
            let len = 4 + (k as usize * 3) % 7;
            let ids: Vec<u32> = (0..len as u32).map(|i| (k * 7 + i * 5) % 60 + 1).collect();
            let trained: Vec<bool> = (0..len).map(|i| i >= len / 2 || (k + i as u32).is_multiple_of(3)).collect();
            Row::single(ids, trained)
        })
        .collect()
}

#[test]
fn shards_split_a_batch_evenly() {
    assert_eq!(shards(7, 2), vec![0..4, 4..7]);
    assert_eq!(shards(1, 2), vec![0..1, 1..1]);
}

/// One micro-step on the seven windows, from the same seeded model, on one device and through a
/// group (`data_parallel::run` over `devices` local devices, and the nodes of `settings`'
/// cluster when it has one).
struct StepBothWays {
    /// The loss on one device.
    loss_one: f32,
    /// The loss through the group.
    loss_group: f32,
    /// Peers in the group.
    peers: usize,
    /// Optimizer steps taken: on one device, through the group.
    steps: (usize, usize),
    /// The largest weight change of the one-device step.
    moved: f32,
    /// The largest weight difference between the two results.
    diff: f32,
}

fn step_both_ways(settings: TrainSettings, devices: usize) -> StepBothWays {
    let device = Default::default();
    let model = Llama::<CpuTrain>::seeded(&config(), 5, &device);
    let seqs = windows();
    let mut one = Trainer::new(model.clone(), settings.clone());
    let loss_one = one.micro_step(Batch::rows(&seqs, 0, &device));
    let mut group = Trainer::new(model.clone(), settings);
    let (loss_group, peers) = data_parallel::run(&mut group, &vec![device; devices], 0, plain(&config()), |t, peers| {
        let peers = peers.expect("several devices or a cluster make a group");
        (peers.micro_step(t, &seqs), peers.len())
    })
    .unwrap();
    let (w0, w1, w2) = (model_weights(&model), model_weights(one.model()), model_weights(group.model()));
    StepBothWays { loss_one, loss_group: loss_group.unwrap(), peers, steps: (one.step, group.step), moved: worst(&w0, &w1), diff: worst(&w1, &w2) }
}

/// The issue's check: one optimizer step on two peers with half the batch each equals one step on
/// the whole batch, in loss and in every weight.
#[test]
fn one_step_on_two_peers_equals_one_step_on_the_whole_batch() {
    let r = step_both_ways(TrainSettings { learning_rate: 1e-2, warmup_steps: 1, ..TrainSettings::default() }, 2);
    let StepBothWays { loss_one, loss_group: loss_two, moved, diff, .. } = r;
    assert_eq!((r.peers, r.steps), (2, (1, 1)));
    assert!((loss_one - loss_two).abs() < 1e-5, "loss: one device {loss_one}, two peers {loss_two}");
    assert!(moved > 1e-3, "the step moved the weights ({moved})");
    eprintln!("one step: loss {loss_one} vs {loss_two}; max |Δw| = {diff:e} (step size up to {moved:e})");
    assert!(diff < 1e-5, "one device vs two peers after one step: max |Δw| = {diff} (the step moved weights by up to {moved})");
}

/// With gradient accumulation the peers' gradients are summed once per optimizer step, and the
/// result still equals one device's.
#[test]
fn accumulated_steps_on_two_peers_equal_one_device() {
    let device = Default::default();
    let model = Llama::<CpuTrain>::seeded(&config(), 9, &device);
    let settings = TrainSettings { learning_rate: 1e-2, warmup_steps: 2, total_steps: 6, accumulation: 2, ..TrainSettings::default() };
    let seqs = windows();
    let batches: Vec<&[Row]> = vec![&seqs[..3], &seqs[3..], &seqs[1..6], &seqs[..2], &seqs[2..], &seqs[5..]];

    let mut one = Trainer::new(model.clone(), settings.clone());
    let l1: Vec<f32> = batches.iter().map(|b| one.micro_step(Batch::rows(b, 0, &device))).collect();
    let mut two = Trainer::new(model, settings);
    let l2: Vec<f32> = data_parallel::run(&mut two, &[device, device], 0, plain(&config()), |t, peers| batches.iter().map(|b| peers.unwrap().micro_step(t, b).unwrap()).collect()).unwrap();
    assert_eq!((one.step, two.step), (3, 3));
    for (a, b) in l1.iter().zip(&l2) {
        assert!((a - b).abs() < 1e-5, "losses {l1:?} vs {l2:?}");
    }
    let diff = worst(&model_weights(one.model()), &model_weights(two.model()));
    assert!(diff < 1e-5, "max |Δw| = {diff}");
}

fn turn(observation: &str, action: &str) -> Turn {
    Turn { observation: observation.into(), thought: None, action: action.into(), actor: Actor::Expert, reward: 0.0, trainable: true }
}

fn trajectory(k: usize, turns: Vec<Turn>, success: bool) -> Trajectory {
    common::expert_trajectory(k, format!("open vault {k} of {}", k * 7 % 11), turns, success)
}

fn data() -> Vec<Trajectory> {
    (0..13).map(|k| trajectory(k, vec![turn(&format!("a hall with {} doors", k % 5), &format!("go[{}]", k % 5)), turn("a lever", &format!("pull[{}]", k % 3))], true)).collect()
}

fn settings(devices: Vec<usize>) -> LmSettings {
    let mut s = LmSettings { model: config(), vocab_size: 300, batch_size: 4, ..LmSettings::default() };
    s.train.learning_rate = 1e-2;
    s.train.devices = devices;
    s
}

/// The saved weights of a policy, as floats.
fn saved(p: &dyn Policy) -> Vec<f32> {
    saved_file(p, "model.safetensors")
}

/// The tensors of one file a policy saves (the model, or with LoRA the PEFT adapter), as floats.
fn saved_file(p: &dyn Policy, file: &str) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    p.save(dir.path()).unwrap();
    let bytes = std::fs::read(dir.path().join(file)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    names.iter().flat_map(|n| st.tensor(n).unwrap().data().chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<_>>()).collect()
}

/// `[policy.train] devices = [0, 1]` through the policy: SFT over several epochs (13
/// trajectories, batch 4: every epoch ends on a batch the two peers split unevenly), then DPO;
/// each ends within tolerance of the one-device run, and a second two-peer run repeats the first
/// bit for bit.
#[test]
fn sft_and_dpo_on_two_peers_equal_one_device_and_repeat_exactly() {
    let data = data();
    let cfg = TrainConfig { epochs: 4, seed: 3, ..TrainConfig::default() };
    let pairs: Vec<PreferencePair> = data
        .iter()
        .take(6)
        .map(|c| {
            let mut rejected = c.clone();
            rejected.id = format!("{}-r", c.id);
            rejected.turns[1].action = "pull[9]".into();
            rejected.success = false;
            rejected.reward = 0.0;
            PreferencePair { task_id: c.task_id.clone(), chosen: c.clone(), rejected }
        })
        .collect();
    let dpo = TrainConfig { dpo: DpoConfig { epochs: 2, pairs_per_step: 4, ..DpoConfig::default() }, iteration: 1, seed: 3, ..TrainConfig::default() };
    let run = |devices: Vec<usize>| {
        let mut p = LmPolicy::<CpuTrain>::new(settings(devices), Default::default());
        let sft = p.train(&data, &cfg).unwrap();
        let after_sft = saved(&p);
        let dpo = p.train_preferences(&pairs, &dpo).unwrap();
        (sft.loss.unwrap(), after_sft, dpo.loss.unwrap(), saved(&p))
    };
    let one = run(vec![]);
    let two = run(vec![0, 1]);
    assert!((one.0 - two.0).abs() < 1e-4, "SFT loss {} vs {}", one.0, two.0);
    let diff_sft = worst(&one.1, &two.1);
    assert!(diff_sft < 1e-5, "after SFT: max |Δw| = {diff_sft}");
    assert!((one.2 - two.2).abs() < 1e-4, "DPO loss {} vs {}", one.2, two.2);
    let diff = worst(&one.3, &two.3);
    eprintln!("whole run: SFT loss {} vs {}, max |Δw| {diff_sft:e}; DPO loss {} vs {}, max |Δw| {diff:e}", one.0, two.0, one.2, two.2);
    assert!(diff < 1e-5, "after DPO: max |Δw| = {diff}");
    let again = run(vec![0, 1]);
    assert!(again.1 == two.1 && again.3 == two.3, "two-peer training is reproducible");
}

/// A data-parallel run stopped at a step resumes from its checkpoint (peer 0's state, given to
/// every peer) and ends exactly where the uninterrupted data-parallel run ends.
#[test]
fn a_stopped_two_peer_run_resumes_to_the_same_weights() {
    use eef_runtime::policy::{PolicyError, StopSignal};
    use eef_runtime::rollout::CancellationToken;
    let data = data();
    let mut s = settings(vec![0, 1]);
    s.train.checkpoint_every = 1;
    let ckpt = tempfile::tempdir().unwrap();
    let cfg = TrainConfig { epochs: 60, seed: 4, checkpoint_dir: Some(ckpt.path().to_owned()), ..TrainConfig::default() };
    let uninterrupted = {
        let mut p = LmPolicy::<CpuTrain>::new(s.clone(), Default::default());
        p.train(&data, &TrainConfig { checkpoint_dir: None, ..cfg.clone() }).unwrap();
        saved(&p)
    };
    let token = CancellationToken::new();
    let canceller = {
        let (token, dir) = (token.clone(), ckpt.path().to_owned());
        std::thread::spawn(move || {
            while !dir.join("progress.json").exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            token.cancel();
        })
    };
    let mut p = LmPolicy::<CpuTrain>::new(s.clone(), Default::default());
    let err = p.train(&data, &TrainConfig { stop: StopSignal::new(token), ..cfg.clone() }).unwrap_err();
    canceller.join().unwrap();
    assert!(matches!(err, PolicyError::Cancelled), "{err}");
    let progress: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(ckpt.path().join("progress.json")).unwrap()).unwrap();
    let step = progress["step"].as_u64().unwrap();
    assert!(step > 0 && step < 240, "stopped at step {step} of 240");
    let mut resumed = LmPolicy::<CpuTrain>::new(s, Default::default());
    resumed.train(&data, &cfg).unwrap();
    assert!(saved(&resumed) == uninterrupted, "resumed from step {step}: the weights differ from the uninterrupted two-peer run");
}

/// A peer that fails (here: a token outside the vocabulary in its shard, which panics in the
/// embedding lookup) ends the step with an error naming it; peer 0 does not wait forever in the
/// all-reduce, and a later group on the same process works.
#[test]
fn a_failing_peer_ends_training_with_an_error_not_a_hang() {
    let device = Default::default();
    let model = Llama::<CpuTrain>::seeded(&config(), 5, &device);
    let mut seqs = windows();
    seqs[6].ids[1] = 10_000; // in peer 1's shard (windows 4..7)
    let mut t = Trainer::new(model.clone(), TrainSettings::default());
    let err = data_parallel::run(&mut t, &[device, device], 0, plain(&config()), |t, peers| peers.unwrap().micro_step(t, &seqs)).unwrap().unwrap_err();
    assert!(err.contains("peer 1") && err.contains("panicked"), "{err}");
    let mut t = Trainer::new(model, TrainSettings::default());
    let ok = data_parallel::run(&mut t, &[device, device], 0, plain(&config()), |t, peers| peers.unwrap().micro_step(t, &windows())).unwrap();
    assert!(ok.is_ok(), "{ok:?}");
    // After the group, the trainer trains alone again.
    t.micro_step(Batch::rows(&windows(), 0, &device));
    assert_eq!(t.step, 2);
}

/// Misconfigured devices are refused before anything trains.
#[test]
fn devices_are_validated() {
    let mut s = settings(vec![0, 0]);
    assert!(s.validate().unwrap_err().contains("lists device 0 twice"));
    s.train.devices = vec![0, 1, 2];
    s.batch_size = 2;
    let err = s.validate().unwrap_err();
    assert!(err.contains("batch_size = 2") && err.contains("at least 3"), "{err}");
    s.train.devices = vec![1, 2];
    s.batch_size = 4;
    s.device = 3;
    assert!(s.validate().unwrap_err().contains("starts with 1"));
    s.device = 1;
    s.validate().unwrap();
}

/// A free TCP port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills the child process when the test ends, passed or not.
struct Child(std::process::Child);

impl Child {
    /// This test binary again, running only `test` with `env` (which makes it play its child's
    /// part), once it accepts connections on `listen` (`what` names it if it never does).
    fn spawn_listening(test: &str, env: &[(&str, String)], listen: &str, what: &str) -> Child {
        let child = Child(
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([test, "--exact", "--test-threads", "1"])
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        // Up when it accepts a connection (one that sends nothing is dropped).
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(listen).is_err() {
            assert!(started.elapsed().as_secs() < 300, "{what} did not start listening");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `[policy.train.cluster]`: this process is the driver (node 0, one device, and burn-collective's
/// orchestrator); a second process is an `eef train-node` with two devices, reached over
/// loopback. Five training phases run in a row against the same node: one optimizer step through
/// `data_parallel::run`, then SFT through the policy (the whole model, then LoRA adapters), each
/// within tolerance of one device; then a phase in which one of the node's devices fails (an
/// error naming it), and one more step that shows the node recovered.
#[test]
fn training_across_two_machines_equals_one_device() {
    const TEST: &str = "training_across_two_machines_equals_one_device";
    // In the child: what `eef train-node` runs (the CPU backend, two peers) until killed, or
    // until the test process is gone.
    if let (Ok(listen), Ok(address)) = (std::env::var("EEF_TEST_NODE_LISTEN"), std::env::var("EEF_TEST_NODE_ADDRESS")) {
        let parent = std::os::unix::process::parent_id();
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_millis(200));
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(0);
            }
        });
        data_parallel::node::run_node(&LmSettings::default(), &[0, 1], &listen, &address).unwrap();
        return;
    }
    // A hang (a peer waiting in an all-reduce that never completes) fails the test binary
    // instead of stalling CI; a run takes about a second.
    static PHASE: std::sync::Mutex<&str> = std::sync::Mutex::new("starting the node");
    // Straight to stderr: the harness captures `eprintln!` (and drops it if the watchdog ends
    // the process), so CI's log says where a hang happened.
    use std::io::Write;
    let phase = |name: &'static str| {
        let _ = writeln!(std::io::stderr(), "{TEST}: phase {name}");
        *PHASE.lock().unwrap() = name;
    };
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(1200));
        let _ = writeln!(std::io::stderr(), "{TEST}: no result after 20 minutes in phase {}; the group hangs", PHASE.lock().unwrap());
        std::process::exit(101);
    });
    let (node_port, node_data, orchestrator, driver_data) = (free_port(), free_port(), free_port(), free_port());
    let listen = format!("127.0.0.1:{node_port}");
    let env = [("EEF_TEST_NODE_LISTEN", listen.clone()), ("EEF_TEST_NODE_ADDRESS", format!("ws://127.0.0.1:{node_data}"))];
    let _node = Child::spawn_listening(TEST, &env, &listen, "the training node");
    let cluster = ClusterSettings { orchestrator: format!("ws://127.0.0.1:{orchestrator}"), address: format!("ws://127.0.0.1:{driver_data}"), nodes: vec![listen.clone()] };

    // Phase 1: one step, split 3 / 2 / 2 over the driver's device and the node's two.
    phase("1: one step");
    let r = step_both_ways(TrainSettings { learning_rate: 1e-2, warmup_steps: 1, cluster: Some(cluster.clone()), ..TrainSettings::default() }, 1);
    let StepBothWays { loss_one, loss_group: loss_across, moved, diff, .. } = r;
    assert_eq!(r.peers, 3, "the driver's device and the node's two");
    assert_eq!(r.steps.1, 1);
    assert!((loss_one - loss_across).abs() < 1e-5, "loss: one device {loss_one}, across machines {loss_across}");
    eprintln!("across two machines, one step: loss {loss_one} vs {loss_across}; max |Δw| = {diff:e} (step size up to {moved:e})");
    assert!(diff < 1e-5, "one device vs across machines after one step: max |Δw| = {diff}");

    // Phase 2, the same node again: SFT over four epochs through the policy.
    let data = data();
    let cfg = TrainConfig { epochs: 4, seed: 3, ..TrainConfig::default() };
    let sft = |cluster: Option<ClusterSettings>, lora: Option<LoraSettings>| {
        let mut s = settings(vec![]);
        s.train.cluster = cluster;
        let file = if lora.is_some() { "adapter_model.safetensors" } else { "model.safetensors" };
        s.lora = lora;
        let mut p = LmPolicy::<CpuTrain>::new(s, Default::default());
        let loss = p.train(&data, &cfg).unwrap().loss.unwrap();
        (loss, saved_file(&p, file))
    };
    phase("2: SFT");
    let (l1, w1) = sft(None, None);
    let (l2, w2) = sft(Some(cluster.clone()), None);
    let diff = worst(&w1, &w2);
    eprintln!("across two machines, SFT: loss {l1} vs {l2}; max |Δw| = {diff:e}");
    assert!((l1 - l2).abs() < 1e-4, "SFT loss {l1} vs {l2}");
    assert!(diff < 1e-5, "after SFT across machines: max |Δw| = {diff}");
    // With LoRA the node rebuilds the adapters from the shape and loads their values: the
    // adapters trained across machines equal one device's.
    let lora = LoraSettings { rank: 4, alpha: 8.0, targets: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()], ..LoraSettings::default() };
    phase("3: LoRA SFT");
    let (l1, w1) = sft(None, Some(lora.clone()));
    let (l2, w2) = sft(Some(cluster.clone()), Some(lora));
    let diff = worst(&w1, &w2);
    eprintln!("across two machines, LoRA SFT: loss {l1} vs {l2}; max |Δadapter| = {diff:e}");
    assert!((l1 - l2).abs() < 1e-4 && diff < 1e-5, "LoRA SFT across machines: loss {l1} vs {l2}, max |Δadapter| = {diff}");

    // Phase 4: a device of the node fails (a token outside the vocabulary in its shard panics in
    // the embedding lookup): the driver's step ends with an error naming the node and the peer.
    phase("4: a failing device");
    let mut bad = windows();
    bad[6].ids[1] = 10_000; // the node's second device's shard (windows 5..7)
    let device = Default::default();
    let mut t = Trainer::new(Llama::<CpuTrain>::seeded(&config(), 5, &device), TrainSettings { cluster: Some(cluster.clone()), ..TrainSettings::default() });
    let err = data_parallel::run(&mut t, &[device], 0, plain(&config()), |t, peers| peers.unwrap().micro_step(t, &bad)).unwrap().unwrap_err();
    assert!(err.contains(&format!("training node {listen}")) && err.contains("peer 1") && err.contains("panicked"), "{err}");

    // Phase 5: the node serves the next phase as if nothing happened.
    phase("5: one step after the failure");
    let r = step_both_ways(TrainSettings { cluster: Some(cluster), ..TrainSettings::default() }, 1);
    let StepBothWays { loss_one: l1, loss_group: l, diff, .. } = r;
    assert!((l - l1).abs() < 1e-5 && diff < 1e-5, "after a failed phase: loss {l} vs {l1}, max |Δw| = {diff}");
}

/// The driver runs burn-collective's orchestrator, which listens for SIGTERM to shut itself
/// down: the process must still end on SIGTERM (a scheduler ending the job, `kill`), not go on
/// without its orchestrator.
#[test]
fn a_driver_running_the_orchestrator_still_ends_on_sigterm() {
    const TEST: &str = "a_driver_running_the_orchestrator_still_ends_on_sigterm";
    if let Ok(port) = std::env::var("EEF_TEST_ORCHESTRATOR_PORT") {
        data_parallel::cluster::ensure_orchestrator(port.parse().unwrap()).unwrap();
        // Until SIGTERM ends the process; or 10 minutes (the parent has failed by then).
        std::thread::sleep(std::time::Duration::from_secs(600));
        return;
    }
    let port = free_port();
    let mut child = Child::spawn_listening(TEST, &[("EEF_TEST_ORCHESTRATOR_PORT", port.to_string())], &format!("127.0.0.1:{port}"), "the orchestrator");
    let killed = std::process::Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed().as_secs() < 120, "a process running the orchestrator did not end on SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(143), "{status}");
}

/// A node that is not there, and a misconfigured cluster, are clear errors before training.
#[test]
fn cluster_errors_are_clear() {
    let device = Default::default();
    let model = Llama::<CpuTrain>::seeded(&config(), 5, &device);
    let cluster = ClusterSettings { orchestrator: format!("ws://127.0.0.1:{}", free_port()), address: format!("ws://127.0.0.1:{}", free_port()), nodes: vec![format!("127.0.0.1:{}", free_port())] };
    let mut t = Trainer::new(model, TrainSettings { cluster: Some(cluster.clone()), ..TrainSettings::default() });
    let err = data_parallel::run(&mut t, &[device], 0, plain(&config()), |_, _| ()).unwrap_err();
    assert!(err.contains("training node 127.0.0.1:") && err.contains("eef train-node --listen"), "{err}");
    let mut s = settings(vec![]);
    s.train.cluster = Some(ClusterSettings { nodes: vec![], ..cluster });
    assert!(s.validate().unwrap_err().contains("nodes is empty"));
}
