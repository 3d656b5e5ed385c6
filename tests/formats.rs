//! Trajectory files: JSONL and the ShareGPT/ETO conversation format.

mod common;

use common::*;
use eef_runtime::{jsonl, sharegpt};

#[test]
fn jsonl_round_trips_trajectories() {
    let experts = runtime().block_on(expert_data(&small_vault(), 2));
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("expert.jsonl");
    jsonl::write(&path, &experts).unwrap();
    let back: Vec<eef_runtime::Trajectory> = jsonl::read(&path).unwrap();
    assert_eq!(back, experts);
}

#[test]
fn sharegpt_round_trips_observations_actions_and_thoughts() {
    let experts = runtime().block_on(expert_data(&small_vault(), 2));
    for t in &experts {
        let c = sharegpt::export(t);
        // Alternating, ending with the last action (the final observation is a field).
        assert_eq!(c.conversations.len(), 2 * t.turns.len());
        assert_eq!(c.conversations.last().unwrap().from, "gpt");
        assert_eq!(c.final_observation.as_deref(), (!t.final_observation.is_empty()).then_some(t.final_observation.as_str()));
        assert!(c.conversations[1].value.starts_with("Thought: "));
        let text = serde_json::to_string(&c).unwrap();
        let back = sharegpt::import(&serde_json::from_str(&text).unwrap(), t.task_id.as_str(), 1.0).unwrap();
        assert_eq!(back.instruction, t.instruction);
        assert_eq!(back.final_observation, t.final_observation);
        assert_eq!(back.success, t.success);
        for (a, b) in back.turns.iter().zip(&t.turns) {
            assert_eq!((&a.observation, &a.action, &a.thought), (&b.observation, &b.action, &b.thought));
        }
    }
}

#[test]
fn sharegpt_rejects_unknown_roles() {
    let c: sharegpt::Conversation = serde_json::from_str(
        r#"{"id": "x", "conversations": [{"from": "robot", "value": "hi"}]}"#,
    )
    .unwrap();
    let err = sharegpt::import(&c, "x", 1.0).unwrap_err().to_string();
    assert!(err.contains("unknown role \"robot\""), "{err}");
}

#[test]
fn a_selection_exports_to_sharegpt_with_its_masks() {
    use eef_runtime::selection::{Reason, TrainingExample};
    use eef_runtime::{Actor, Source, StartState, Termination, Trajectory, Turn};
    let turn = |o: &str, a: &str, trainable: bool| Turn { observation: o.into(), thought: Some("think".into()), action: a.into(), actor: Actor::Expert, reward: 0.0, trainable };
    let t = Trajectory {
        id: "t0".into(),
        task_id: "task-0".into(),
        instruction: "open it".into(),
        source: Source::Expert,
        start: StartState::TaskStart,
        sample: 0,
        seed: 0,
        turns: vec![turn("a door", "pull[red]", false), turn("a hall", "go[1]", true)],
        final_observation: "done".into(),
        termination: Termination::Done,
        reward: 1.0,
        success: true,
        provenance: None,
    };
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("selection.jsonl");
    eef_runtime::jsonl::write(&input, &[TrainingExample { trajectory: t.clone(), reason: Reason::ExpertSuccess }]).unwrap();
    let out = tmp.path().join("out.json");
    let summary = eef_experiments::export::to_sharegpt(&input, &out).unwrap();
    assert!(summary.contains("1 conversations from 1 trajectories") && summary.contains("1 of 1 trajectories have masked actions") && summary.contains("mask_history: true"), "{summary}");
    let conversations: Vec<eef_runtime::sharegpt::Conversation> = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    // One example per trained action: the masked pull is context, the go is its last answer.
    assert_eq!(conversations.len(), 1);
    assert_eq!(conversations[0].id, "t0#1");
    let info: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("dataset_info.json")).unwrap()).unwrap();
    assert_eq!(info["out"]["file_name"], "out.json");
    assert_eq!(info["out"]["formatting"], "sharegpt");
    let gpt: Vec<_> = conversations[0].conversations.iter().filter(|m| m.from == "gpt").collect();
    assert_eq!(gpt.iter().map(|m| m.weight).collect::<Vec<_>>(), [Some(0), Some(1)]);
    assert_eq!(gpt[0].value, "Thought: think\nAction: pull[red]");
    // And back: the masks survive the round trip.
    let back = eef_runtime::sharegpt::import(&conversations[0], "task-0", 1.0).unwrap();
    assert_eq!(back.turns.iter().map(|x| x.trainable).collect::<Vec<_>>(), [false, true]);
}

/// What LLaMA-Factory's `SharegptDatasetConverter` requires of a conversation
/// (`src/llamafactory/data/converter.py`): roles alternate, `human` at even positions and `gpt`
/// at odd ones, and the count is even (it ends with the assistant); otherwise it logs "Invalid
/// role tag" / "Invalid message count" and drops the example.
fn llamafactory_accepts(c: &sharegpt::Conversation) -> bool {
    let m = &c.conversations;
    !m.is_empty() && m.len().is_multiple_of(2) && m.iter().enumerate().all(|(i, x)| x.from == if i % 2 == 0 { "human" } else { "gpt" })
}

/// A data set mixing fully trained trajectories with masked ones: every exported example is
/// accepted by LLaMA-Factory's rules, each trained action is the last answer of exactly one
/// example, and no masked action ever is.
#[test]
fn every_exported_example_is_one_llamafactory_accepts_and_masked_actions_are_never_targets() {
    let mut experts = runtime().block_on(expert_data(&small_vault(), 2));
    experts.retain(|t| t.turns.len() >= 2);
    // Mask the first action of every other trajectory (as EEF masks a harmful expert action).
    for t in experts.iter_mut().step_by(2) {
        t.turns[0].trainable = false;
    }
    let (examples, per_action) = eef_experiments::export::conversations(&experts);
    assert!(per_action);
    assert!(examples.iter().all(llamafactory_accepts));
    let trained: usize = experts.iter().map(|t| t.turns.iter().filter(|x| x.trainable).count()).sum();
    assert_eq!(examples.len(), trained, "one example per trained action");
    for e in &examples {
        assert_ne!(e.conversations.last().unwrap().weight, Some(0), "{}: a masked action is a target", e.id);
    }
    // Without masks: one conversation per trajectory, each accepted.
    let plain: Vec<_> = experts.iter().cloned().map(|mut t| { t.turns.iter_mut().for_each(|x| x.trainable = true); t }).collect();
    let (examples, per_action) = eef_experiments::export::conversations(&plain);
    assert!(!per_action && examples.len() == plain.len() && examples.iter().all(llamafactory_accepts));
}

/// Replays LLaMA-Factory's verdict (`scripts/llamafactory_check.py`, run by hand with
/// LLaMA-Factory 0.9.5): the export of a real EEF data set (16 WebShop trajectories, 10 with
/// masked actions) is, example for example, the data LLaMA-Factory's own ShareGPT converter
/// accepted — every one of them, with the roles it assigned. A change to the export fails here
/// until the script is run again on it.
#[test]
fn the_export_is_what_llamafactorys_converter_accepted() {
    use sha2::Digest;
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/llamafactory");
    let transcript: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(data.join("transcript.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("eef.json");
    eef_experiments::export::to_sharegpt(&data.join("eef-dataset.jsonl"), &out).unwrap();
    let exported: Vec<sharegpt::Conversation> = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let records = transcript["records"].as_array().unwrap();
    assert_eq!(transcript["accepted"], transcript["examples"], "LLaMA-Factory rejected some of the recorded export");
    assert_eq!(exported.len(), records.len());
    assert!(records.len() > 16, "masked trajectories were split into one example per trained action");
    for (c, r) in exported.iter().zip(records) {
        assert_eq!(c.id, r["id"]);
        assert_eq!(r["accepted"], true);
        let role = |from: &str| if from == "human" { "user" } else { "assistant" };
        let roles: Vec<&str> = c.conversations.iter().map(|m| role(&m.from)).collect();
        assert_eq!(serde_json::json!(roles), r["roles"], "{}", c.id);
        let canonical: String = c.conversations.iter().map(|m| format!("{}\0{}\u{1}", role(&m.from), m.value)).collect();
        let digest = format!("{:x}", sha2::Sha256::digest(canonical.as_bytes()));
        assert_eq!(digest, r["sha256"].as_str().unwrap(), "{}: the exported messages differ from what LLaMA-Factory converted", c.id);
    }
}
