//! This project's compact chat template, the default for models trained from scratch (a system
//! message, when there is one, opens the first user turn):
//!
//! ```text
//! <bos><|user|>{user 0}<|end|><|assistant|>{assistant 0}<|end|><|user|>{user 1}<|end|>...
//! ```
//! An answer is its text and the closing `<|end|>`; the generation prompt is `<|assistant|>`.

use super::tokens::Tokens;
use super::{Message, Role};
use crate::model::tokenizer::{Tok, SPECIAL_TOKENS};

/// The ids of the compact template's special tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactIds {
    /// Padding.
    pub pad: u32,
    /// Start of a dialogue.
    pub bos: u32,
    /// Start of a user (environment) turn.
    pub user: u32,
    /// Start of an assistant (agent) turn.
    pub assistant: u32,
    /// End of a turn; the agent's answer ends with it.
    pub end: u32,
}

impl CompactIds {
    /// The ids in `tok`, or `None` when it lacks one of [`SPECIAL_TOKENS`].
    pub fn find(tok: &Tok) -> Option<Self> {
        let [pad, bos, user, assistant, end] = SPECIAL_TOKENS.map(|s| tok.token_id(s));
        Some(CompactIds { pad: pad?, bos: bos?, user: user?, assistant: assistant?, end: end? })
    }

    /// The ids in `tok`, adding the tokens it lacks.
    pub fn ensure(tok: &mut Tok) -> Self {
        if let Some(ids) = Self::find(tok) {
            return ids;
        }
        tok.add_special_tokens(&SPECIAL_TOKENS);
        Self::find(tok).expect("the special tokens were just added")
    }
}

/// Renders `messages` (an optional system message first, then alternating user and assistant
/// messages); `generation` appends the generation prompt.
pub fn render(tok: &Tok, ids: CompactIds, messages: &[Message], generation: bool) -> Tokens {
    let mut out = Tokens::default();
    out.push(&[ids.bos], false);
    let mut system: Option<&str> = None;
    for m in messages {
        match m.role {
            Role::System => system = Some(&m.content),
            Role::User => {
                let text = match system.take() {
                    Some(s) => format!("{s}\n{}", m.content),
                    None => m.content.clone(),
                };
                out.push(&[ids.user], false);
                out.push(&tok.encode(&text), false);
                out.push(&[ids.end], false);
            }
            Role::Assistant => {
                out.push(&[ids.assistant], false);
                out.push(&answer(tok, ids, &m.content), false);
            }
        }
    }
    if generation {
        out.push(&[ids.assistant], false);
    }
    out
}

/// The tokens of an answer and its closing `<|end|>`.
pub fn answer(tok: &Tok, ids: CompactIds, text: &str) -> Vec<u32> {
    let mut out = tok.encode(text);
    out.push(ids.end);
    out
}
