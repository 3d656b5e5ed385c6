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
        assert_eq!(c.conversations.len(), 2 * t.turns.len() + 1);
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
    assert!(summary.contains("1 conversations (1 with masked actions)"), "{summary}");
    let conversations: Vec<eef_runtime::sharegpt::Conversation> = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let gpt: Vec<_> = conversations[0].conversations.iter().filter(|m| m.from == "gpt").collect();
    assert_eq!(gpt.iter().map(|m| m.weight).collect::<Vec<_>>(), [Some(0), Some(1)]);
    assert_eq!(gpt[0].value, "Thought: think\nAction: pull[red]");
    // And back: the masks survive the round trip.
    let back = eef_runtime::sharegpt::import(&conversations[0], "task-0", 1.0).unwrap();
    assert_eq!(back.turns.iter().map(|x| x.trainable).collect::<Vec<_>>(), [false, true]);
}
