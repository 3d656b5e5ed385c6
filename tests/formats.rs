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
