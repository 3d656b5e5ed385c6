//! The chat template: how a dialogue becomes tokens, and which tokens are the agent's actions.
//!
//! ```text
//! <bos><|user|>{instruction}\n{observation 0}<|end|><|assistant|>{action 0}<|end|><|user|>{observation 1}<|end|>...
//! ```
//! The action text and its closing `<|end|>` are the action tokens: only they carry loss, and
//! only for turns the selection marked trainable.

use super::tokenizer::Tok;
use crate::trajectory::Trajectory;

/// Tokens with a per-token flag: whether predicting this token carries loss.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Loss mask per token.
    pub trainable: Vec<bool>,
}

impl Tokens {
    fn push(&mut self, ids: &[u32], trainable: bool) {
        self.ids.extend_from_slice(ids);
        self.trainable.extend(std::iter::repeat_n(trainable, ids.len()));
    }

    /// Keeps the last `max` tokens (a dialogue too long for the context loses its beginning).
    pub fn keep_last(mut self, max: usize) -> Self {
        if self.ids.len() > max {
            let cut = self.ids.len() - max;
            self.ids.drain(..cut);
            self.trainable.drain(..cut);
        }
        self
    }
}

fn user(tok: &Tok, out: &mut Tokens, text: &str) {
    out.push(&[tok.user], false);
    out.push(&tok.encode(text), false);
    out.push(&[tok.end], false);
}

/// A dialogue's prompt: everything up to the `<|assistant|>` that precedes the next action.
pub fn prompt(tok: &Tok, instruction: &str, history: &[(String, String)], observation: &str) -> Tokens {
    let mut out = Tokens::default();
    out.push(&[tok.bos], false);
    for (i, (obs, action)) in history.iter().enumerate() {
        user(tok, &mut out, &if i == 0 { format!("{instruction}\n{obs}") } else { obs.clone() });
        out.push(&[tok.assistant], false);
        out.push(&tok.encode(action), false);
        out.push(&[tok.end], false);
    }
    user(tok, &mut out, &if history.is_empty() { format!("{instruction}\n{observation}") } else { observation.to_owned() });
    out.push(&[tok.assistant], false);
    out
}

/// The tokens of an action and its closing `<|end|>`.
pub fn action(tok: &Tok, text: &str) -> Vec<u32> {
    let mut ids = tok.encode(text);
    ids.push(tok.end);
    ids
}

/// A trajectory as training tokens: action tokens of trainable turns carry loss.
pub fn trajectory(tok: &Tok, t: &Trajectory) -> Tokens {
    let mut out = Tokens::default();
    out.push(&[tok.bos], false);
    for (i, turn) in t.turns.iter().enumerate() {
        user(tok, &mut out, &if i == 0 { format!("{}\n{}", t.instruction, turn.observation) } else { turn.observation.clone() });
        out.push(&[tok.assistant], false);
        out.push(&action(tok, &turn.action), turn.trainable);
    }
    out
}

/// A trajectory as training windows, one per trainable action: the tokens the policy would see
/// as its prompt at that turn (the last `prompt_budget` tokens before the action, exactly as
/// [`prompt`] cut to that budget gives at acting time), followed by the action, the only tokens
/// with loss. Training on what acting sees matters when dialogues outgrow the context: a single
/// left-truncated sequence would drop the early actions and show the late ones more context than
/// they get when acting.
pub fn action_windows(tok: &Tok, t: &Trajectory, prompt_budget: usize) -> Vec<Tokens> {
    let mut ids = vec![tok.bos];
    let mut windows = Vec::new();
    for (i, turn) in t.turns.iter().enumerate() {
        let mut u = Tokens::default();
        user(tok, &mut u, &if i == 0 { format!("{}\n{}", t.instruction, turn.observation) } else { turn.observation.clone() });
        ids.extend_from_slice(&u.ids);
        ids.push(tok.assistant);
        let act = action(tok, &turn.action);
        if turn.trainable {
            let start = ids.len().saturating_sub(prompt_budget);
            let mut w = Tokens::default();
            w.push(&ids[start..], false);
            w.push(&act, true);
            windows.push(w);
        }
        ids.extend_from_slice(&act);
    }
    windows
}

/// Every text of a trajectory, for training a tokenizer.
pub fn corpus(t: &Trajectory) -> Vec<String> {
    std::iter::once(t.instruction.clone()).chain(t.turns.iter().flat_map(|x| [x.observation.clone(), x.action.clone()])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, Source, StartState, Termination, Turn};

    fn traj() -> Trajectory {
        let turn = |o: &str, a: &str, trainable| Turn { observation: o.into(), thought: None, action: a.into(), actor: Actor::Expert, reward: 0.0, trainable };
        Trajectory {
            id: "t".into(),
            task_id: "task".into(),
            instruction: "buy a red mug".into(),
            source: Source::Expert,
            start: StartState::TaskStart,
            sample: 0,
            seed: 0,
            turns: vec![turn("search page", "search[red mug]", false), turn("results: mug a, mug b", "click[mug b]", true), turn("mug b page", "click[buy]", true)],
            final_observation: String::new(),
            termination: Termination::Done,
            reward: 1.0,
            success: true,
        }
    }

    #[test]
    fn windows_are_the_acting_prompt_plus_one_trained_action() {
        let t = traj();
        let tok = Tok::train_bpe(&corpus(&t), 300).unwrap();
        let windows = action_windows(&tok, &t, 10_000);
        assert_eq!(windows.len(), 2, "one window per trainable action");
        // The last window is the whole dialogue, trained only on its last action.
        let full = trajectory(&tok, &t);
        assert_eq!(windows[1].ids, full.ids);
        let last = action(&tok, "click[buy]");
        let trained: Vec<u32> = windows[1].ids.iter().zip(&windows[1].trainable).filter(|(_, t)| **t).map(|(i, _)| *i).collect();
        assert_eq!(trained, last);
        // Each window's prompt is what acting sees at that turn, cut to the same budget.
        for budget in [12, 10_000] {
            let w = action_windows(&tok, &t, budget);
            let history = vec![(t.turns[0].observation.clone(), t.turns[0].action.clone())];
            let p = prompt(&tok, &t.instruction, &history, &t.turns[1].observation).keep_last(budget);
            let n = p.ids.len();
            assert_eq!(w[0].ids[..n], p.ids[..], "budget {budget}");
            assert_eq!(w[0].ids[n..], action(&tok, "click[mug b]")[..]);
        }
    }
}
