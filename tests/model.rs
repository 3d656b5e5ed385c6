//! The burn Llama: cache and causality, safetensors round trip, the masked loss, training.

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
    let next: Vec<i64> = logits.narrow(1, 2, 1).argmax(2).into_data().to_vec().unwrap();
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
    use eef_runtime::{Actor, Source, StartState, Termination, Trajectory, Turn};
    let turn = |o: &str, a: &str, t: bool| Turn { observation: o.into(), thought: None, action: a.into(), actor: Actor::Expert, reward: 0.0, trainable: t };
    let traj = |k: usize| Trajectory {
        id: format!("t{k}"),
        task_id: format!("task-{k}").into(),
        instruction: "open the door".into(),
        source: Source::Expert,
        start: StartState::TaskStart,
        sample: 0,
        seed: 0,
        turns: vec![turn("a red door", "pull[red]", true), turn("a blue door", "pull[blue]", true), turn("a green door", "pull[yellow]", false)],
        final_observation: String::new(),
        termination: Termination::Done,
        reward: 1.0,
        success: true,
    };
    let data: Vec<Trajectory> = (0..6).map(traj).collect();
    let settings = LmSettings { model: small(false), vocab_size: 300, batch_size: 6, ..LmSettings::default() };
    let mut p = LmPolicy::<CpuTrain>::new(settings.clone(), Default::default());
    p.train(&data, &TrainConfig { epochs: 60, ..TrainConfig::default() }).unwrap();
    let req = |obs: &str, valid: Option<Vec<String>>| ActRequest {
        seed: 1,
        task: "task-0".into(),
        instruction: "open the door".into(),
        history: vec![("a red door".into(), "pull[red]".into())],
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
