//! Import and export of the ShareGPT/ETO conversation format:
//! `{"id": ..., "conversations": [{"from": "human"|"gpt", "value": ...}, ...]}`.
//!
//! Export writes the instruction and first observation as the first `human` message, every action
//! as a `gpt` message in ReAct form (`Thought: ...\nAction: ...`, or `Action: ...` without a
//! thought), and every later observation as a `human` message, so the messages alternate and end
//! with the last action, as LLaMA-Factory's ShareGPT loader requires (it drops a conversation
//! that ends with a `human` message). The observation after the last action carries no loss and
//! is kept in the conversation's own `final_observation` field, which trainers ignore.
//!
//! Masks: `gpt` messages carry `weight` (axolotl's per-message switch: 0 = masked) when some
//! action of the conversation is masked. LLaMA-Factory has no per-message switch; for it,
//! [`export_for_training`] splits a conversation with masked actions into one example per trained
//! action, ending with it, to be trained with `mask_history: true` (loss on each example's last
//! answer only).
//!
//! Import reads the same layout and also ETO's files, whose first messages are a task prompt and
//! an `OK` acknowledgement: a `gpt` message without an `Action:` line is kept as context, not as
//! an action.

use serde::{Deserialize, Serialize};

use crate::trajectory::{Actor, Source, StartState, Termination, Trajectory, Turn};

/// One message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `human` or `gpt`.
    pub from: String,
    /// The text.
    pub value: String,
    /// Whether a `gpt` message carries loss (axolotl's per-message `weight`: 0 = masked, as EEF
    /// masks harmful expert actions and the replayed prefix); written only when some action of
    /// the conversation is masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u8>,
}

/// One conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Identifier (ETO uses the task index).
    pub id: serde_json::Value,
    /// The messages.
    pub conversations: Vec<Message>,
    /// Reward, when the file records one (ETO's exploration files do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<f64>,
    /// The observation after the last action (not a message: it carries no loss, and a
    /// conversation must end with the assistant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_observation: Option<String>,
}

/// Why a conversation could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The conversation has no `gpt` message with an action.
    #[error("conversation {0} has no action")]
    NoActions(String),
    /// A role other than `human`/`gpt`/`system`.
    #[error("conversation {id}: unknown role {role:?} (expected \"human\" or \"gpt\")")]
    UnknownRole {
        /// Conversation id.
        id: String,
        /// The role found.
        role: String,
    },
}

/// Renders an action (with its thought) in ReAct form.
pub fn render_action(thought: Option<&str>, action: &str) -> String {
    match thought {
        Some(t) => format!("Thought: {t}\nAction: {action}"),
        None => format!("Action: {action}"),
    }
}

/// Splits a ReAct answer into `(thought, action)`; `None` if it has no `Action:` line.
pub fn parse_action(text: &str) -> Option<(Option<String>, String)> {
    let pos = text.rfind("Action:")?;
    let action = text[pos + "Action:".len()..].trim().to_owned();
    let before = text[..pos].trim();
    let thought = before.strip_prefix("Thought:").map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    Some((thought, action))
}

/// Exports a trajectory.
pub fn export(t: &Trajectory) -> Conversation {
    let mut msgs = Vec::with_capacity(t.turns.len() * 2 + 1);
    let masked = t.turns.iter().any(|x| !x.trainable);
    for (i, turn) in t.turns.iter().enumerate() {
        let value = if i == 0 {
            format!("Instruction: {}\n{}", t.instruction, turn.observation)
        } else {
            turn.observation.clone()
        };
        msgs.push(Message { from: "human".into(), value, weight: None });
        let weight = masked.then_some(u8::from(turn.trainable));
        msgs.push(Message { from: "gpt".into(), value: render_action(turn.thought.as_deref(), &turn.action), weight });
    }
    let final_observation = (!t.final_observation.is_empty()).then(|| t.final_observation.clone());
    Conversation { id: serde_json::Value::String(t.id.clone()), conversations: msgs, reward: Some(t.reward), final_observation }
}

/// The examples a trainer without per-message masks (LLaMA-Factory) needs for `t`: the whole
/// conversation when every action is trained, else one example per trained action — the
/// conversation up to and including it, id `{id}#{turn}` — each to be trained on its last answer
/// only (LLaMA-Factory's `mask_history: true`). No masked action is then ever a training target.
pub fn export_for_training(t: &Trajectory) -> Vec<Conversation> {
    if t.turns.iter().all(|x| x.trainable) {
        return vec![export(t)];
    }
    export_per_action(t)
}

/// One example per trained action of `t` (the conversation up to and including it, id
/// `{id}#{turn}`), for training on each example's last answer only; what
/// [`export_for_training`] gives for a conversation with masked actions, and what a file mixing
/// such conversations with fully trained ones needs for all of them (LLaMA-Factory's
/// `mask_history` holds for a whole data set).
pub fn export_per_action(t: &Trajectory) -> Vec<Conversation> {
    let whole = export(t);
    t.turns
        .iter()
        .enumerate()
        .filter(|(_, x)| x.trainable)
        .map(|(k, _)| Conversation {
            id: serde_json::Value::String(format!("{}#{k}", t.id)),
            conversations: whole.conversations[..2 * k + 2].to_vec(),
            reward: whole.reward,
            final_observation: None,
        })
        .collect()
}

/// Imports a conversation as an expert trajectory of `task_id`. Step rewards are unknown and set
/// to 0 except the last, which takes the recorded reward; every action turn is trainable unless
/// its message has `weight: 0`.
pub fn import(c: &Conversation, task_id: &str, success_threshold: f64) -> Result<Trajectory, ImportError> {
    let id = match &c.id {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let mut turns: Vec<Turn> = Vec::new();
    let mut context = String::new();
    let mut pending: Option<String> = None;
    let recorded_final = c.final_observation.clone();
    for m in &c.conversations {
        match m.from.as_str() {
            "human" | "system" | "user" => {
                let obs = pending.take().map_or(m.value.clone(), |p| format!("{p}\n{}", m.value));
                pending = Some(obs);
            }
            "gpt" | "assistant" => match parse_action(&m.value) {
                Some((thought, action)) => turns.push(Turn {
                    observation: pending.take().unwrap_or_default(),
                    thought,
                    action,
                    actor: Actor::Expert,
                    reward: 0.0,
                    trainable: m.weight != Some(0),
                }),
                None => {
                    // Context such as ETO's "OK" acknowledgement of the task prompt.
                    let p = pending.take().unwrap_or_default();
                    context = format!("{context}{p}\n{}\n", m.value);
                }
            },
            other => return Err(ImportError::UnknownRole { id, role: other.to_owned() }),
        }
    }
    if turns.is_empty() {
        return Err(ImportError::NoActions(id));
    }
    let mut instruction = String::new();
    if let Some(first) = turns.first_mut() {
        let full = format!("{context}{}", first.observation);
        if let Some(rest) = full.trim_start().strip_prefix("Instruction: ") {
            let (ins, obs) = rest.split_once('\n').unwrap_or((rest, ""));
            instruction = ins.to_owned();
            first.observation = obs.to_owned();
        } else {
            first.observation = full.trim().to_owned();
        }
    }
    let reward = c.reward.unwrap_or(0.0);
    if let Some(last) = turns.last_mut() {
        last.reward = reward;
    }
    Ok(Trajectory {
        id,
        task_id: task_id.into(),
        instruction,
        source: Source::Imported,
        start: StartState::TaskStart,
        sample: 0,
        seed: 0,
        turns,
        final_observation: pending.or(recorded_final).unwrap_or_default(),
        termination: Termination::Done,
        reward,
        success: reward >= success_threshold - 1e-9,
        provenance: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn react_parsing() {
        assert_eq!(parse_action("Thought: hmm\nAction: search[x]"), Some((Some("hmm".into()), "search[x]".into())));
        assert_eq!(parse_action("Action: click[buy now]"), Some((None, "click[buy now]".into())));
        assert_eq!(parse_action("OK"), None);
    }

    #[test]
    fn eto_layout_imports() {
        let c: Conversation = serde_json::from_str(
            r#"{"id": 12, "conversations": [
                {"from":"human","value":"You are web shopping. ..."},
                {"from":"gpt","value":"OK"},
                {"from":"human","value":"Observation:\nWebShop [SEP] Instruction: [SEP] buy socks [SEP] Search"},
                {"from":"gpt","value":"Thought: search first\nAction: search[socks]"},
                {"from":"human","value":"Observation:\n[SEP] results"},
                {"from":"gpt","value":"Action: click[b01]"}
            ], "reward": 1.0}"#,
        )
        .unwrap();
        let t = import(&c, "webshop-12", 1.0).unwrap();
        assert_eq!(t.id, "12");
        assert_eq!(t.turns.len(), 2);
        assert_eq!(t.turns[0].action, "search[socks]");
        assert_eq!(t.turns[0].thought.as_deref(), Some("search first"));
        assert!(t.turns[0].observation.contains("OK") && t.turns[0].observation.contains("buy socks"));
        assert!(t.success);
    }
}
