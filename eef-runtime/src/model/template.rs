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

/// Every text of a trajectory, for training a tokenizer.
pub fn corpus(t: &Trajectory) -> Vec<String> {
    std::iter::once(t.instruction.clone()).chain(t.turns.iter().flat_map(|x| [x.observation.clone(), x.action.clone()])).collect()
}
