//! The burn Llama: cache and causality, safetensors round trip, the masked loss, training,
//! acting with the key-value cache of earlier turns.

mod common;

use burn::prelude::*;
use eef_runtime::model::{load_safetensors, masked_lm_loss, save_safetensors, Batch, Cpu, CpuTrain, Llama, LlamaConfig, TrainSettings, Trainer};

fn small(tied: bool) -> LlamaConfig {
    LlamaConfig {
        vocab_size: 64,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        tie_word_embeddings: tied,
        ..LlamaConfig::tiny(64)
    }
}

fn tokens(v: &[i64]) -> Tensor<Cpu, 2, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), [1, v.len()]), &Default::default())
}

fn values(t: Tensor<Cpu, 3>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

/// A successful expert trajectory `t{k}` on task `task-{k}`: `(observation, action, trainable)`
/// per turn.
fn expert_success(k: usize, instruction: String, turns: Vec<(String, String, bool)>) -> eef_runtime::Trajectory {
    use eef_runtime::{Actor, Turn};
    let turns = turns.into_iter().map(|(observation, action, trainable)| Turn { observation, thought: None, action, actor: Actor::Expert, reward: 0.0, trainable }).collect();
    common::expert_trajectory(k, instruction, turns, true)
}

#[test]
fn cached_decoding_equals_the_full_forward_and_is_causal() {
    let m = Llama::<Cpu>::new(&small(false), &Default::default());
    let seq = [3i64, 17, 5, 9, 60, 2, 44, 8, 31];
    let full = m.logits(tokens(&seq));
    let mut cache = m.new_cache();
    let head = m.forward(tokens(&seq[..5]), &mut cache);
    assert!(close(&values(head), &values(full.clone().narrow(1, 0, 5)), 1e-4));
    for i in 5..seq.len() {
        let step = m.forward(tokens(&seq[i..i + 1]), &mut cache);
        assert!(close(&values(step), &values(full.clone().narrow(1, i, 1)), 1e-4), "position {i}");
    }
    let mut changed = seq;
    changed[8] = 1;
    let other = m.logits(tokens(&changed));
    assert!(close(&values(other.clone().narrow(1, 0, 8)), &values(full.clone().narrow(1, 0, 8)), 1e-5), "earlier positions never see later tokens");
    assert!(!close(&values(other.narrow(1, 8, 1)), &values(full.narrow(1, 8, 1)), 1e-5));
}

#[test]
fn the_training_forward_with_fused_kernels_equals_the_inference_forward() {
    use burn::module::AutodiffModule;
    // Under autodiff each fused kernel is a graph node whose forward calls the inner backend's
    // kernel; without it the kernel runs directly. Same weights, same logits. Grouped-query
    // attention (4 heads, 2 key-value heads) included.
    let trained = Llama::<CpuTrain>::seeded(&small(false), 7, &Default::default());
    let seq = [3i64, 17, 5, 9, 60, 2, 44, 8, 31, 12, 50];
    let batch = Tensor::<CpuTrain, 2, Int>::from_data(TensorData::new(seq.to_vec(), [1, seq.len()]), &Default::default());
    let fused: Vec<f32> = trained.logits(batch).into_data().to_vec().unwrap();
    let plain = values(trained.valid().logits(tokens(&seq)));
    assert!(close(&fused, &plain, 1e-4), "fused training forward differs from the inference forward");
}

#[test]
fn safetensors_round_trip_in_hugging_face_layout() {
    for tied in [false, true] {
        let c = small(tied);
        let m = Llama::<Cpu>::new(&c, &Default::default());
        let dir = tempfile::tempdir().unwrap();
        save_safetensors(dir.path(), &c, &m).unwrap();
        let (c2, m2) = load_safetensors::<Cpu>(dir.path(), &Default::default()).unwrap();
        assert_eq!(c2, c);
        let seq = [1i64, 2, 3, 4, 5];
        assert!(close(&values(m.logits(tokens(&seq))), &values(m2.logits(tokens(&seq))), 1e-6));
        // Hugging Face names and [out, in] shapes.
        let bytes = std::fs::read(dir.path().join("model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("model.layers.1.self_attn.k_proj.weight").unwrap().shape(), &[16, 32]);
        assert_eq!(st.tensor("model.norm.weight").unwrap().shape(), &[32]);
        assert_eq!(st.tensor("lm_head.weight").is_ok(), !tied);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), serde_json::to_string(&small(false)).unwrap()).unwrap();
    let err = load_safetensors::<Cpu>(dir.path(), &Default::default()).unwrap_err().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn masked_positions_carry_no_loss() {
    let logits: Tensor<Cpu, 3> = Tensor::random([1, 3, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &Default::default());
    let mask = Tensor::<Cpu, 2>::from_data(TensorData::new(vec![1.0f32, 0.0, 1.0], [1, 3]), &Default::default());
    let a: f32 = masked_lm_loss(logits.clone(), tokens(&[1, 2, 3]), mask.clone()).into_scalar();
    let b: f32 = masked_lm_loss(logits, tokens(&[1, 7, 3]), mask).into_scalar();
    assert_eq!(a, b, "the target under a zero mask does not matter");
}

#[test]
fn training_learns_the_trainable_tokens() {
    let device = Default::default();
    let model = Llama::<CpuTrain>::new(&small(false), &device);
    let settings = TrainSettings { learning_rate: 1e-2, warmup_steps: 2, total_steps: 40, accumulation: 2, ..TrainSettings::default() };
    let mut trainer = Trainer::new(model, settings);
    // "observation" tokens 10.. are masked; the "action" token after 7 must be learned: 7 -> 42.
    let data: Vec<(Vec<u32>, Vec<bool>)> = (0..4).map(|k| (vec![10 + k, 11 + k, 7, 42], vec![false, false, false, true])).collect();
    let first = trainer.micro_step(Batch::new(&data, 0, &device));
    let mut last = first;
    for _ in 0..59 {
        last = trainer.micro_step(Batch::new(&data, 0, &device));
    }
    assert_eq!(trainer.step, 30, "one optimizer step per two micro-batches");
    assert!(last < first * 0.2, "loss {first} -> {last}");
    let m = trainer.into_model();
    let logits = m.logits(Tensor::from_data(TensorData::new(vec![10i64, 11, 7], [1, 3]), &device));
    let next: Vec<i64> = logits.narrow(1, 2, 1).argmax(2).into_data().convert::<i64>().to_vec().unwrap();
    assert_eq!(next, vec![42]);
}

#[test]
fn logits_match_hugging_face_transformers() {
    // tests/data/tiny-llama was written by transformers (scripts/make_tiny_llama.py).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tiny-llama");
    let (config, model) = load_safetensors::<Cpu>(&dir, &Default::default()).unwrap();
    assert_eq!((config.kv_heads(), config.num_attention_heads), (2, 4), "grouped-query attention is exercised");
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected_logits.json")).unwrap()).unwrap();
    let toks: Vec<i64> = expected["tokens"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap()).collect();
    let want: Vec<f32> = expected["logits"].as_array().unwrap().iter().flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32)).collect();
    let got = values(model.logits(tokens(&toks)));
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert_eq!(got.len(), want.len());
    assert!(worst < 1e-3, "largest difference from transformers: {worst}");
}

#[test]
fn the_lm_policy_trains_acts_and_reloads() {
    use eef_runtime::model::{LmPolicy, LmSettings};
    use eef_runtime::policy::{ActRequest, Policy, TrainConfig};
    use eef_runtime::Trajectory;
    let turn = |o: &str, a: &str, t: bool| (o.to_owned(), a.to_owned(), t);
    let traj = |k: usize| expert_success(k, "open the door".into(), vec![turn("a red door", "pull[red]", true), turn("a blue door", "pull[blue]", true), turn("a green door", "pull[yellow]", false)]);
    let data: Vec<Trajectory> = (0..6).map(traj).collect();
    let settings = LmSettings { model: small(false), vocab_size: 300, batch_size: 6, ..LmSettings::default() };
    let mut p = LmPolicy::<CpuTrain>::new(settings.clone(), Default::default());
    p.train(&data, &TrainConfig { epochs: 60, ..TrainConfig::default() }).unwrap();
    let req = |obs: &str, valid: Option<Vec<String>>| ActRequest {
        seed: 1,
        task: "task-0".into(),
        instruction: "open the door".into(),
        history: vec![eef_runtime::policy::Step::new("a red door", "pull[red]")],
        observation: obs.into(),
        valid_actions: valid,
        temperature: 0.0,
    };
    let valid = Some(vec!["pull[red]".to_string(), "pull[blue]".into(), "pull[yellow]".into()]);
    assert_eq!(p.act_batch(&[req("a blue door", valid.clone())]).remove(0).unwrap().action, "pull[blue]", "constrained");
    assert_eq!(p.act_batch(&[req("a blue door", None)]).remove(0).unwrap().action, "pull[blue]", "generated");
    let dir = tempfile::tempdir().unwrap();
    p.save(dir.path()).unwrap();
    let mut q = LmPolicy::<CpuTrain>::new(settings, Default::default());
    assert!(q.act_batch(&[req("a blue door", None)]).remove(0).is_err(), "no weights yet");
    q.load(dir.path()).unwrap();
    assert_eq!(q.act_batch(&[req("a blue door", valid)]).remove(0).unwrap().action, "pull[blue]");
}

#[test]
fn left_padded_rows_match_unpadded_and_do_not_depend_on_the_batch() {
    let m = Llama::<Cpu>::new(&small(false), &Default::default());
    let device = Default::default();
    let seqs: [&[i64]; 3] = [&[3, 17, 5, 9, 60, 2, 44], &[8, 31, 12], &[1, 2, 3, 4, 5]];
    let len = 8;
    let padded = |rows: &[&[i64]]| -> (Tensor<Cpu, 2, Int>, Vec<usize>) {
        let pads: Vec<usize> = rows.iter().map(|r| len - r.len()).collect();
        let ids: Vec<i64> = rows.iter().flat_map(|r| std::iter::repeat_n(0, len - r.len()).chain(r.iter().copied())).collect();
        (Tensor::from_data(TensorData::new(ids, [rows.len(), len]), &device), pads)
    };
    let last = |t: Tensor<Cpu, 3>, row: usize| values(t.narrow(0, row, 1).narrow(1, len - 1, 1));
    let (ids, pads) = padded(&seqs);
    let mut cache = m.new_cache();
    let batch = m.forward_padded(ids, &mut cache, &pads);
    // One decoding step continues every row from the padded cache.
    let step_ids = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(vec![7i64, 7, 7], [3, 1]), &device);
    let step = values(m.forward_padded(step_ids, &mut cache, &pads));
    let vocab = 64;
    for (r, seq) in seqs.iter().enumerate() {
        // Same as the row alone with the same padding: bit for bit.
        let (ids, pads) = padded(&[seq]);
        let alone = m.forward_padded(ids, &mut m.new_cache(), &pads);
        assert_eq!(last(batch.clone(), r), last(alone, 0), "row {r} depends on its batch");
        // Same as the unpadded sequence, up to rounding.
        let plain = values(m.logits(tokens(seq)));
        assert!(close(&last(batch.clone(), r), &plain[plain.len() - vocab..], 1e-4), "row {r}: padding changes the logits");
        let mut longer = seq.to_vec();
        longer.push(7);
        let plain = values(m.logits(tokens(&longer)));
        assert!(close(&step[r * vocab..(r + 1) * vocab], &plain[plain.len() - vocab..], 1e-4), "row {r}: cached step after padding");
    }
}

#[test]
fn batched_actions_equal_actions_taken_alone() {
    use eef_runtime::model::{LmPolicy, LmSettings};
    use eef_runtime::policy::{ActRequest, Policy, TrainConfig};
    use eef_runtime::Trajectory;
    let data: Vec<Trajectory> = (0..8)
        .map(|k| {
            let turns = vec![(format!("panel with {} buttons", k + 2), format!("press[{k}]"), true), ("a light".into(), "wait".into(), true)];
            expert_success(k, format!("press button {k}"), turns)
        })
        .collect();
    let settings = LmSettings { model: small(false), vocab_size: 200, pad_to: 8, ..LmSettings::default() };
    let mut p = LmPolicy::<CpuTrain>::new(settings, Default::default());
    p.train(&data, &TrainConfig { epochs: 3, ..TrainConfig::default() }).unwrap();
    let requests: Vec<ActRequest> = (0..12u64)
        .map(|i| ActRequest {
            seed: 100 + i,
            task: format!("task-{}", i % 8).into(),
            instruction: format!("press button {}", i % 8),
            history: (0..i % 3).map(|h| eef_runtime::policy::Step::new(format!("panel {h}"), format!("press[{h}]"))).collect(),
            observation: "panel with many buttons".into(),
            valid_actions: (i % 2 == 0).then(|| (0..5).map(|b| format!("press[{b}]")).chain(["wait".to_string()]).collect()),
            temperature: 1.0,
        })
        .collect();
    let together: Vec<String> = p.act_batch(&requests).into_iter().map(|a| a.unwrap().action).collect();
    let alone: Vec<String> = requests.iter().map(|r| p.act_batch(std::slice::from_ref(r)).remove(0).unwrap().action).collect();
    let reversed: Vec<String> = {
        let mut r = requests.clone();
        r.reverse();
        let mut out: Vec<String> = p.act_batch(&r).into_iter().map(|a| a.unwrap().action).collect();
        out.reverse();
        out
    };
    assert_eq!(together, alone);
    assert_eq!(together, reversed);
    for (r, a) in requests.iter().zip(&together) {
        if let Some(valid) = &r.valid_actions {
            assert!(valid.contains(a), "{a} is not among the valid actions");
        }
    }
}

/// The training run of the kill-and-resume tests: 32 short trajectories, batch 2, 20 epochs (160
/// optimizer steps), a checkpoint after every step when `ckpt` is given; with `lora`, only LoRA
/// adapters train (and only they are checkpointed).
fn resumable_run(ckpt: Option<&std::path::Path>, lora: bool) -> eef_runtime::model::LmPolicy<CpuTrain> {
    use eef_runtime::policy::{Policy, TrainConfig};
    let (data, settings) = resumable_setup(lora);
    let mut p = eef_runtime::model::LmPolicy::<CpuTrain>::new(settings, Default::default());
    let cfg = TrainConfig { epochs: 20, seed: 11, checkpoint_dir: ckpt.map(|d| d.to_path_buf()), ..TrainConfig::default() };
    p.train(&data, &cfg).unwrap();
    p
}

/// The data and settings of [`resumable_run`].
fn resumable_setup(lora: bool) -> (Vec<eef_runtime::Trajectory>, eef_runtime::model::LmSettings) {
    use eef_runtime::model::{LmSettings, LoraSettings};
    let data: Vec<eef_runtime::Trajectory> = (0..32)
        .map(|k| {
            let turns = vec![(format!("a hall with {} doors", k % 5), format!("go[{}]", k % 5), true), ("a lever".into(), format!("pull[{}]", k % 3), true)];
            expert_success(k, format!("open vault {k} of {}", k * 7 % 11), turns)
        })
        .collect();
    // One row per trajectory (no packing): enough optimizer steps to kill a run in the middle.
    let mut settings = LmSettings { model: small(false), vocab_size: 300, batch_size: 2, pack: false, ..LmSettings::default() };
    settings.train.checkpoint_every = 1;
    settings.train.accumulation = 2;
    if lora {
        settings.lora = Some(LoraSettings { rank: 4, alpha: 8.0, ..LoraSettings::default() });
    }
    (data, settings)
}

/// Ctrl-C during training: the stop signal ends it at the next optimizer step with its
/// checkpoint saved (not after the remaining epochs), and training again resumes from that step
/// to the uninterrupted result.
#[test]
fn a_stop_signal_ends_training_at_the_next_step_and_the_run_resumes_from_it() {
    use eef_runtime::policy::{Policy, PolicyError, StopSignal, TrainConfig};
    use eef_runtime::rollout::CancellationToken;
    let (data, settings) = resumable_setup(false);
    let ckpt = tempfile::tempdir().unwrap();
    let token = CancellationToken::new();
    let cfg = TrainConfig { epochs: 20, seed: 11, checkpoint_dir: Some(ckpt.path().to_owned()), ..TrainConfig::default() };
    let mut p = eef_runtime::model::LmPolicy::<CpuTrain>::new(settings.clone(), Default::default());
    let canceller = {
        let token = token.clone();
        let dir = ckpt.path().to_owned();
        // Cancel once training has checkpointed a few steps (however slow the machine is).
        std::thread::spawn(move || {
            while std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) == 0 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            token.cancel();
        })
    };
    let err = p.train(&data, &TrainConfig { stop: StopSignal::new(token), ..cfg.clone() }).unwrap_err();
    canceller.join().unwrap();
    assert!(matches!(err, PolicyError::Cancelled), "{err}");
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(ckpt.path().join("progress.json")).unwrap()).unwrap();
    let step = saved["step"].as_u64().unwrap();
    assert!(step > 0 && step < 320, "stopped at step {step} of 320");
    // Training again resumes from the checkpoint and ends where an uninterrupted run ends.
    let mut resumed = eef_runtime::model::LmPolicy::<CpuTrain>::new(settings, Default::default());
    resumed.train(&data, &cfg).unwrap();
    let weights = |p: &dyn Policy| {
        let dir = tempfile::tempdir().unwrap();
        p.save(dir.path()).unwrap();
        std::fs::read(dir.path().join("model.safetensors")).unwrap()
    };
    assert!(weights(&resumed) == weights(&resumable_run(None, false)), "the resumed training ends as an uninterrupted one");
}

/// Kills a training child process (SIGKILL) after a few checkpointed steps, resumes in this
/// process, and checks the result equals an uninterrupted run's, byte for byte.
fn kill_and_resume(test: &str, lora: bool) {
    use eef_runtime::policy::Policy;
    // In the child process: train with checkpoints until killed.
    if let Ok(dir) = std::env::var("EEF_TRAIN_CHILD") {
        resumable_run(Some(std::path::Path::new(&dir)), lora);
        return;
    }
    // The saved weights: the model, or with LoRA the PEFT adapter.
    let weights = |p: &dyn Policy| {
        let dir = tempfile::tempdir().unwrap();
        p.save(dir.path()).unwrap();
        std::fs::read(dir.path().join(if lora { "adapter_model.safetensors" } else { "model.safetensors" })).unwrap()
    };
    let uninterrupted = weights(&resumable_run(None, lora));

    let ckpt = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads", "1"])
        .env("EEF_TRAIN_CHILD", ckpt.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let progress = ckpt.path().join("progress.json");
    let step = || -> usize {
        std::fs::read_to_string(&progress).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()).and_then(|v| v["step"].as_u64()).unwrap_or(0) as usize
    };
    let started = std::time::Instant::now();
    while step() < 5 {
        assert!(child.try_wait().unwrap().is_none(), "the child finished before it could be killed");
        assert!(started.elapsed().as_secs() < 300, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed_at = step();
    assert!((5..160).contains(&killed_at), "killed mid-run (step {killed_at} of 160)");
    if lora {
        let files: Vec<String> = std::fs::read_dir(ckpt.path()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        assert!(files.iter().any(|f| f.starts_with("adapters-")) && !files.iter().any(|f| f.starts_with("model-")), "only the adapters are checkpointed: {files:?}");
    }

    // A fresh policy given the same data and folder resumes and ends with the same weights.
    let resumed = weights(&resumable_run(Some(ckpt.path()), lora));
    assert!(!progress.exists(), "the spent training state is removed");
    assert!(resumed == uninterrupted, "resumed from step {killed_at}, the weights differ from an uninterrupted run");
}

#[test]
fn killed_training_resumes_to_the_same_weights() {
    kill_and_resume("killed_training_resumes_to_the_same_weights", false);
}

#[test]
fn killed_lora_training_resumes_to_the_same_adapters_from_an_adapter_only_checkpoint() {
    kill_and_resume("killed_lora_training_resumes_to_the_same_adapters_from_an_adapter_only_checkpoint", true);
}

#[test]
fn lora_trains_only_the_adapters_and_merges_into_the_same_function() {
    use eef_runtime::model::LoraSettings;
    let device = Default::default();
    let c = small(false);
    let base = Llama::<CpuTrain>::seeded(&c, 3, &device);
    let all = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"].map(String::from).to_vec();
    let s = LoraSettings { rank: 4, alpha: 8.0, targets: all, ..LoraSettings::default() };
    let adapted = base.clone().with_lora(&s, 5);
    let seq = Tensor::<CpuTrain, 2, Int>::from_data(TensorData::new(vec![10i64, 11, 7, 42], [1, 4]), &device);
    let logits = |m: &Llama<CpuTrain>| m.logits(seq.clone()).into_data().to_vec::<f32>().unwrap();
    assert!(close(&logits(&base), &logits(&adapted), 1e-6), "fresh adapters (B = 0) change nothing");
    let (h, i, kv) = (c.hidden_size, c.intermediate_size, c.kv_heads() * c.head_dim());
    // rank x (in + out) per adapted projection: q, o; k, v; gate, up, down.
    let per_layer = s.rank * (2 * (h + h) + 2 * (h + kv) + 3 * (h + i));
    assert_eq!(adapted.trainable_parameters(), c.num_hidden_layers * per_layer, "only A and B train");

    let settings = TrainSettings { learning_rate: 1e-2, warmup_steps: 2, total_steps: 30, ..TrainSettings::default() };
    let mut trainer = Trainer::new(adapted, settings);
    let data: Vec<(Vec<u32>, Vec<bool>)> = (0..4).map(|k| (vec![10 + k, 11 + k, 7, 42], vec![false, false, false, true])).collect();
    let first = trainer.micro_step(Batch::new(&data, 0, &device));
    let mut last = first;
    for _ in 0..29 {
        last = trainer.micro_step(Batch::new(&data, 0, &device));
    }
    // The frozen output head of a random model caps how far the loss can fall (logits stay
    // small); what matters is that it falls with only the adapters training.
    assert!(last < first - 0.3, "the adapters learn: loss {first} -> {last}");
    let trained = trainer.into_model();
    let w = |m: &Llama<CpuTrain>| m.layers[0].self_attn.q_proj.base.weight.val().into_data().to_vec::<f32>().unwrap();
    assert_eq!(w(&trained), w(&base), "the base weights are frozen");
    let merged = trained.clone().merge_lora();
    assert!(merged.layers.iter().all(|b| b.self_attn.q_proj.lora.is_none() && b.mlp.down_proj.lora.is_none()));
    assert!(close(&logits(&merged), &logits(&trained), 1e-4), "merging keeps the function");
    assert_eq!(merged.trainable_parameters(), c.parameter_count(), "after merging every weight trains again");
}

#[test]
fn a_pretrained_checkpoint_starts_a_policy_even_when_its_tokenizer_lacks_the_template_tokens() {
    use eef_runtime::model::{LmPolicy, LmSettings, Tok};
    use eef_runtime::policy::{ActRequest, Policy};
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tiny-llama");
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture.join(f), dir.path().join(f)).unwrap();
    }
    // A tokenizer as large as the model's vocabulary: the template's five tokens do not fit.
    let (config, _) = load_safetensors::<Cpu>(&fixture, &Default::default()).unwrap();
    let corpus: Vec<String> = (0..200).map(|i| format!("open door {i} then press the {} button", i % 7)).collect();
    let tok = Tok::train_bpe(&corpus, config.vocab_size).unwrap();
    assert!(tok.vocab_size() > config.vocab_size - 5, "{} tokens", tok.vocab_size());
    tok.save(&dir.path().join("tokenizer.json")).unwrap();

    // The folder has no chat template: the compact template is asked for.
    let chat = eef_runtime::model::chat::ChatSettings { template: eef_runtime::model::chat::TemplateChoice::Compact, ..Default::default() };
    let settings = LmSettings { init: Some(dir.path().to_owned()), chat, ..LmSettings::default() };
    let mut p = LmPolicy::<CpuTrain>::new(settings, Default::default());
    p.load(dir.path()).unwrap();
    let req = ActRequest {
        seed: 1,
        task: "t".into(),
        instruction: "open door 3".into(),
        history: vec![],
        observation: "a hall".into(),
        valid_actions: Some(vec!["open[3]".into(), "press[red]".into()]),
        temperature: 0.0,
    };
    let act = p.act_batch(&[req]).remove(0).unwrap().action;
    assert!(act == "open[3]" || act == "press[red]", "{act}");
    // Saved back with the grown vocabulary, in the same layout.
    let out = tempfile::tempdir().unwrap();
    p.save(out.path()).unwrap();
    let (saved, model) = load_safetensors::<Cpu>(out.path(), &Default::default()).unwrap();
    assert_eq!(saved.vocab_size, Tok::from_file(&out.path().join("tokenizer.json")).unwrap().vocab_size());
    assert!(saved.vocab_size > config.vocab_size);
    // Old rows are kept; new rows start at the mean of the old ones.
    let (_, original) = load_safetensors::<Cpu>(&fixture, &Default::default()).unwrap();
    let rows = |m: &Llama<Cpu>, from: usize, n: usize| m.embed_tokens.weight.val().narrow(0, from, n).into_data().to_vec::<f32>().unwrap();
    assert_eq!(rows(&model, 0, config.vocab_size), rows(&original, 0, config.vocab_size));
    let mean: Vec<f32> = original.embed_tokens.weight.val().mean_dim(0).into_data().to_vec().unwrap();
    assert!(close(&rows(&model, config.vocab_size, 1), &mean, 1e-6));
}

/// `n` preference pairs over the first `kinds` of three doors: the chosen trajectory pulls the
/// door's lever, the rejected one a wrong lever.
fn door_pairs(n: usize, kinds: usize) -> Vec<eef_runtime::selection::PreferencePair> {
    let turn = |o: &str, a: &str| (o.to_owned(), a.to_owned(), true);
    let doors = [("a red door", "pull[red]", "pull[blue]"), ("a blue door", "pull[blue]", "pull[green]"), ("a green door", "pull[green]", "pull[red]")];
    (0..n)
        .map(|k| {
            let (obs, good, bad) = doors[k % kinds];
            let chosen = expert_success(k, "open the door".into(), vec![turn("a hall", "walk"), turn(obs, good)]);
            let mut rejected = expert_success(100 + k, "open the door".into(), vec![turn("a hall", "walk"), turn(obs, bad)]);
            rejected.success = false;
            rejected.reward = 0.0;
            eef_runtime::selection::PreferencePair { task_id: chosen.task_id.clone(), chosen, rejected }
        })
        .collect()
}

/// DPO on a fixed pair set: the chosen-minus-rejected log-likelihood margin of every pair rises
/// (each pair's rejected trajectory takes a wrong action where the chosen one is right), the loss
/// starts at ln 2 (the policy is its own reference), and training without pairs is refused.
#[test]
fn dpo_raises_the_chosen_minus_rejected_margin() {
    use eef_runtime::model::{LmPolicy, LmSettings};
    use eef_runtime::policy::{DpoConfig, Policy, TrainConfig};
    let pairs = door_pairs(6, 3);
    let settings = LmSettings { model: small(false), vocab_size: 300, batch_size: 4, ..LmSettings::default() };
    let mut p = LmPolicy::<CpuTrain>::new(settings, Default::default());
    let refused = p.train_preferences(&pairs, &TrainConfig::default()).unwrap_err();
    assert!(refused.to_string().contains("starts from a trained policy"), "{refused}");
    // SFT on both sides equally: the policy has no preference between them yet.
    let both: Vec<_> = pairs.iter().flat_map(|p| [p.chosen.clone(), p.rejected.clone()]).collect();
    p.train(&both, &TrainConfig { epochs: 10, ..TrainConfig::default() }).unwrap();
    let margins = |p: &LmPolicy<CpuTrain>| -> Vec<f64> {
        let ll = p.log_likelihoods(&both).unwrap();
        ll.chunks(2).map(|c| c[0] - c[1]).collect()
    };
    let before = margins(&p);
    let dir = tempfile::tempdir().unwrap();
    let live_path = dir.path().join("metrics.jsonl");
    let live = eef_runtime::live::LiveMetrics::open(&live_path).unwrap().scoped("ETO", 1);
    let cfg = TrainConfig { dpo: DpoConfig { epochs: 20, learning_rate_ratio: 1.0, pairs_per_step: 2, ..DpoConfig::default() }, iteration: 1, live, ..TrainConfig::default() };
    let report = p.train_preferences(&pairs, &cfg).unwrap();
    assert_eq!(report.trajectories, 12);
    // The reference is the policy as DPO starts: every margin starts at 0, so the first step's
    // loss is ln 2 exactly (another reference would give another loss).
    let steps: Vec<_> = eef_runtime::live::read(&live_path).unwrap().into_iter().filter(|r| r.event == "train_step").collect();
    assert_eq!(steps.len(), 20 * 3, "20 epochs of 6 pairs, 2 per step");
    let first = steps[0].loss.unwrap();
    assert!((first - std::f64::consts::LN_2).abs() < 1e-4, "first DPO step's loss {first} is not ln 2");
    let after = margins(&p);
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(a > b, "pair {i}: margin {b:.3} -> {a:.3}");
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean(&after) > mean(&before) + 1.0, "mean margin {:.3} -> {:.3}", mean(&before), mean(&after));
    assert!(report.loss.unwrap() < std::f64::consts::LN_2, "final DPO loss {:?} below ln 2", report.loss);
}

/// The β the policy trains with is the iteration's (`[train.dpo] beta`, then `beta_later`): the
/// second step's logged loss equals the DPO loss recomputed, at that β, from the margins the first
/// step left (a run of one step from the same start, read back through the log-likelihoods).
#[test]
fn dpo_trains_at_the_iterations_beta() {
    use eef_runtime::model::{LmPolicy, LmSettings};
    use eef_runtime::policy::{DpoConfig, Policy, TrainConfig};
    let pairs = door_pairs(4, 2);
    let both: Vec<_> = pairs.iter().flat_map(|p| [p.chosen.clone(), p.rejected.clone()]).collect();
    let settings = LmSettings { model: small(false), vocab_size: 300, batch_size: 4, ..LmSettings::default() };
    let mut sft = LmPolicy::<CpuTrain>::new(settings.clone(), Default::default());
    sft.train(&both, &TrainConfig { epochs: 5, ..TrainConfig::default() }).unwrap();
    let start = tempfile::tempdir().unwrap();
    sft.save(start.path()).unwrap();
    let margins = |p: &LmPolicy<CpuTrain>| -> Vec<f64> { p.log_likelihoods(&both).unwrap().chunks(2).map(|c| c[0] - c[1]).collect() };
    let reference = margins(&sft);
    for (iteration, beta) in [(1, 0.1), (2, 0.5)] {
        let dpo = |steps: usize, live| TrainConfig {
            dpo: DpoConfig { epochs: steps, learning_rate_ratio: 1.0, learning_rate_ratio_later: 1.0, pairs_per_step: 4, ..DpoConfig::default() },
            iteration,
            seed: 5,
            live,
            ..TrainConfig::default()
        };
        let mut one = LmPolicy::<CpuTrain>::new(settings.clone(), Default::default());
        one.load(start.path()).unwrap();
        one.train_preferences(&pairs, &dpo(1, Default::default())).unwrap();
        let moved: Vec<f64> = margins(&one).iter().zip(&reference).map(|(m, r)| m - r).collect();
        assert!(moved.iter().all(|m| m.abs() > 1e-3), "the first step moved every margin: {moved:?}");
        let expected = moved.iter().map(|m| -(1.0 / (1.0 + (-beta * m).exp())).ln()).sum::<f64>() / moved.len() as f64;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut two = LmPolicy::<CpuTrain>::new(settings.clone(), Default::default());
        two.load(start.path()).unwrap();
        two.train_preferences(&pairs, &dpo(2, eef_runtime::live::LiveMetrics::open(&path).unwrap())).unwrap();
        let steps: Vec<f64> = eef_runtime::live::read(&path).unwrap().into_iter().filter(|r| r.event == "train_step").map(|r| r.loss.unwrap()).collect();
        assert_eq!(steps.len(), 2);
        assert!((steps[1] - expected).abs() < 1e-4, "iteration {iteration}: step 2's loss {} vs the loss at β = {beta}: {expected}", steps[1]);
    }
}

/// Live metrics: training appends one line per optimizer step, as it goes, with the step's mean
/// loss, the scheduled learning rate and its throughput; a step trained again after a resume is
/// logged again.
#[test]
fn training_logs_every_optimizer_step_to_the_live_metrics_file() {
    use eef_runtime::live::{read, LiveMetrics};
    use eef_runtime::policy::{Policy, TrainConfig};
    let (data, mut settings) = resumable_setup(false);
    settings.train.checkpoint_every = 0;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    // What a batch job's log shows: a line at every step (interval 0), off a terminal.
    let shown = common::SharedBuf::default();
    let console = eef_runtime::console::Console::lines(shown.clone(), std::time::Duration::ZERO);
    let live = LiveMetrics::open(&path).unwrap().with_console(console).scoped("EEF", 2);
    let mut p = eef_runtime::model::LmPolicy::<CpuTrain>::new(settings.clone(), Default::default());
    let cfg = TrainConfig { epochs: 3, seed: 11, live: live.clone(), ..TrainConfig::default() };
    live.train_begins("sft", &format!("{} trajectories", data.len()));
    let report = p.train(&data, &cfg).unwrap();
    live.phase("train", serde_json::json!({ "objective": "sft", "trajectories": data.len(), "loss": report.loss, "seconds": 1.5 }));
    let steps: Vec<_> = read(&path).unwrap().into_iter().filter(|r| r.event == "train_step").collect();
    let text = std::fs::read_to_string(&path).unwrap();
    let first_line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let expected = first_line["total_steps"].as_u64().unwrap() as usize;
    // One row per trajectory; batches of 2, two micro-batches per step.
    assert!(expected >= 3 * 32 / 2 / 2, "{expected} steps");
    assert_eq!(steps.len(), expected, "one line per optimizer step");
    assert!(steps.iter().enumerate().all(|(i, r)| r.step == Some(i + 1) && r.method == "EEF" && r.iteration == 2 && r.objective.as_deref() == Some("sft")));
    let first = steps[0].loss.unwrap();
    let last = steps[expected - 1].loss.unwrap();
    assert!(last < first, "the logged loss falls: {first} -> {last}");
    assert!((last - report.loss.unwrap()).abs() < 2.0, "the last step's loss is near the final micro-batch's");
    let line: serde_json::Value = serde_json::from_str(text.lines().nth(3).unwrap()).unwrap();
    let lr = line["learning_rate"].as_f64().unwrap();
    let sched = eef_runtime::model::learning_rate(&TrainSettings { total_steps: expected, ..settings.train.clone() }, 3);
    assert!((lr - sched).abs() < 1e-12, "step 4 logs the rate it applied: {lr} vs {sched}");
    assert!(line["tokens"].as_u64().unwrap() > 0 && line["tokens_per_s"].as_f64().unwrap() > 0.0 && line["time"].as_f64().unwrap() > 1.7e9);
    // The console showed the same steps: a line per step with its epoch, loss and throughput,
    // an ETA until the last, then the phase's summary.
    let shown = shown.text();
    let lines: Vec<&str> = shown.lines().collect();
    assert!(lines[0].ends_with(&format!("] EEF it2 train 0 preparing {} trajectories", data.len())), "{shown}");
    let progress: Vec<&str> = lines.iter().copied().filter(|l| l.contains("EEF it2 train ") && l.contains(" tok/s")).collect();
    assert_eq!(progress.len(), expected, "{shown}");
    for (i, l) in progress.iter().enumerate() {
        let step = format!("EEF it2 train {}/{expected} (", i + 1);
        assert!(l.contains(&step) && l.contains(", loss ") && l.contains("epoch "), "{l}");
        assert_eq!(l.contains(", eta "), i + 1 < expected && i > 0, "{l}");
    }
    assert!(progress[0].contains("epoch 1/3") && progress[expected - 1].contains("epoch 3/3"), "{shown}");
    let summary = lines.last().unwrap();
    assert!(summary.contains(&format!("EEF it2 train: {} trajectories, {expected} steps (3 epochs), loss ", data.len())) && summary.contains(" tok/s, 2s"), "{summary}");
}

/// Greedy and sampled rollouts on the Vault through the rollout engine (four episodes at a time),
/// with the keys and values of earlier turns reused and without: the same trajectories, action
/// for action, and the cache was used.
#[test]
fn reusing_earlier_turns_keys_and_values_changes_no_rollout() {
    use eef_runtime::model::{LmPolicy, LmSettings};
    use eef_runtime::policy::{Policy, TrainConfig};
    use eef_runtime::reward::FinalReward;
    use eef_runtime::rollout::{CancellationToken, EpisodeJob};
    use eef_runtime::Source;
    use std::sync::Arc;
    let config = common::small_vault();
    let rt = common::runtime();
    let experts = rt.block_on(common::expert_data(&config, 4));
    let wins: Vec<_> = experts.iter().filter(|t| t.success).cloned().collect();
    assert!(wins.len() >= 4);
    let settings = |kv_reuse| LmSettings { model: small(false), vocab_size: 300, max_context: 384, kv_reuse, pad_to: 16, ..LmSettings::default() };
    let mut trained = LmPolicy::<CpuTrain>::new(settings(true), Default::default());
    trained.train(&wins, &TrainConfig { epochs: 4, ..TrainConfig::default() }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    trained.save(dir.path()).unwrap();
    let play = |kv_reuse: bool| {
        let mut p = LmPolicy::<CpuTrain>::new(settings(kv_reuse), Default::default());
        p.load(dir.path()).unwrap();
        let p = Arc::new(p);
        let jobs: Vec<EpisodeJob> = common::train_tasks(&config)
            .into_iter()
            .flat_map(|t| [0.0f32, 1.0].map(|temperature| EpisodeJob::from_start(t.clone(), 0, 40 + (temperature as u64), temperature, Source::Imported)))
            .enumerate()
            .map(|(i, mut j)| {
                j.id = format!("{}/{i}", j.id);
                j
            })
            .collect();
        let played = rt.block_on(common::rollouts(&config, 4).run("reuse", p.clone(), Arc::new(FinalReward), jobs, CancellationToken::new(), |_| Ok(()))).unwrap();
        let actions: Vec<Vec<String>> = played.iter().map(|t| t.turns.iter().map(|x| x.action.clone()).collect()).collect();
        (actions, p.cache_stats())
    };
    let (with, stats) = play(true);
    let (without, off) = play(false);
    assert_eq!(with, without, "the cache changed a rollout");
    assert!(with.iter().map(Vec::len).sum::<usize>() > 2 * with.len(), "multi-turn episodes");
    assert!(stats.hits > with.len() && stats.reused_tokens > stats.prefilled_tokens / 2, "the cache was used: {stats:?}");
    assert_eq!(off.hits, 0, "{off:?}");
}
