//! How a dialogue becomes tokens, which tokens carry loss, and how the model's answer becomes an
//! action.
//!
//! - **Messages.** An episode is a chat: an optional system prompt, then a user message per
//!   observation (the first prefixed by the instruction) and an assistant message per action.
//!   With `answer = "react"` an assistant message is `Thought: …\nAction: …` (ETO's format; a
//!   turn without a thought is `Action: …`), else the action alone.
//! - **Templates.** A pretrained model's own chat template ([`jinja`], from its folder) renders
//!   the messages exactly as `transformers`' `apply_chat_template` does; models trained from
//!   scratch use this project's [`compact`] template.
//! - **What is trained.** A trajectory is one sequence, the whole conversation, with loss on the
//!   trainable answers only (each up to and including its end-of-turn token; with
//!   `loss = "action"`, only from `Action:` on); a trajectory longer than the context is cut into
//!   pieces; see [`sequences`]. `sequences = "windows"` trains one window per answer instead: the
//!   prompt acting sees at that turn, then the answer.
//! - **Acting.** The policy generates until a stop token (every eos id of
//!   `generation_config.json`), and [`Chat::parse`] reads the action from the text; an answer
//!   without a parsable action is sent as it is, so the environment answers it as it answers any
//!   invalid action.

pub mod compact;
pub mod folder;
pub mod jinja;
pub mod sequences;
pub mod tokens;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use compact::CompactIds;
pub use sequences::{SequenceForm, SequenceSettings, SequenceStats};
pub use tokens::Tokens;

use self::jinja::JinjaTemplate;
use super::tokenizer::Tok;
use crate::policy::{Act, Step};
use crate::sharegpt::{parse_action, render_action};
use crate::trajectory::Trajectory;

/// Which chat template renders dialogues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplateChoice {
    /// The model folder's own template when it has one; the compact template for a model
    /// trained from scratch (or a checkpoint that was); an error otherwise.
    #[default]
    Auto,
    /// The model folder's own template (an error if it has none).
    Model,
    /// This project's compact template (on a pretrained model, its five tokens are added to the
    /// vocabulary and the embedding grows).
    Compact,
}

/// What an assistant message holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerFormat {
    /// The action alone.
    #[default]
    Action,
    /// `Thought: …\nAction: …`, as ETO and the EEF paper prompt the model.
    React,
}

/// Which part of a ReAct answer carries loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossOn {
    /// Thought and action, as the paper trains (and the end-of-turn token).
    #[default]
    ThoughtAndAction,
    /// The `Action: …` part and the end-of-turn token only.
    Action,
}

/// `[policy.chat]`: the prompt format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatSettings {
    /// Which template.
    pub template: TemplateChoice,
    /// What an assistant message holds.
    pub answer: AnswerFormat,
    /// Which part of a ReAct answer is trained.
    pub loss: LossOn,
    /// A system message opening every dialogue (the task and the answer format, for an instruct
    /// model). Experiments default it to their environment's prompt for a pretrained model;
    /// `""` means none.
    pub system_prompt: Option<String>,
    /// The date templates that call `strftime_now` show (Llama-3.x's system header); fixed, so
    /// that prompts do not change from day to day. `YYYY-MM-DD`.
    pub date: String,
}

impl Default for ChatSettings {
    fn default() -> Self {
        ChatSettings { template: TemplateChoice::Auto, answer: AnswerFormat::Action, loss: LossOn::ThoughtAndAction, system_prompt: None, date: "2024-07-26".into() }
    }
}

impl ChatSettings {
    /// The configured date.
    pub fn date(&self) -> Result<chrono::NaiveDate, String> {
        chrono::NaiveDate::parse_from_str(&self.date, "%Y-%m-%d").map_err(|e| format!("[policy.chat] date = {:?}: {e} (expected YYYY-MM-DD)", self.date))
    }
}

/// A chat role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The system prompt.
    System,
    /// The environment: instruction and observations.
    User,
    /// The agent.
    Assistant,
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
    /// For assistant messages: whether the answer carries loss.
    #[serde(skip)]
    pub trainable: bool,
}

impl Message {
    fn new(role: Role, content: impl Into<String>, trainable: bool) -> Self {
        Message { role, content: content.into(), trainable }
    }
}

/// A pretrained model's template with the special tokens it refers to.
struct JinjaChat {
    template: JinjaTemplate,
    specials: Vec<(String, String)>,
    /// What the template writes between the end of the generation prompt and an answer's text,
    /// and after it (e.g. `""` and `"<|eot_id|>"`).
    around: (String, String),
}

enum Style {
    Compact(CompactIds),
    Jinja(Box<JinjaChat>),
}

/// A tokenizer with a chat template: renders dialogues, marks what is trained, parses answers.
pub struct Chat {
    tok: Tok,
    style: Style,
    settings: ChatSettings,
    stop: Vec<u32>,
    pad: u32,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let style = match self.style {
            Style::Compact(_) => "compact",
            Style::Jinja(_) => "model's chat template",
        };
        f.debug_struct("Chat").field("style", &style).field("stop", &self.stop).field("settings", &self.settings).finish()
    }
}

const PROBE: &str = "EEF-ANSWER-PROBE";

impl Chat {
    /// The compact template on `tok` (its five tokens are added if missing: check
    /// [`Tok::vocab_size`] afterwards).
    pub fn compact(mut tok: Tok, settings: ChatSettings) -> Result<Self, String> {
        settings.date()?;
        let ids = CompactIds::ensure(&mut tok);
        Ok(Chat { tok, style: Style::Compact(ids), settings, stop: vec![ids.end], pad: ids.pad })
    }

    /// A pretrained model's template `source`, with its special tokens and the ids generation
    /// stops at (`generation_config.json`'s eos ids).
    pub fn jinja(tok: Tok, source: &str, specials: Vec<(String, String)>, eos: &[u32], settings: ChatSettings) -> Result<Self, String> {
        let template = JinjaTemplate::new(source, settings.date()?)?;
        let mut chat = Chat { tok, style: Style::Jinja(Box::new(JinjaChat { template, specials, around: Default::default() })), settings, stop: eos.to_vec(), pad: 0 };
        // Where an answer sits: render a probe answer and compare with the generation prompt.
        let probe = [Message::new(Role::User, "Hello.", false), Message::new(Role::Assistant, PROBE, true)];
        let prompt = chat.render_text(&probe[..1], true)?;
        let full = chat.render_text(&probe, false)?;
        let rest = full.strip_prefix(&prompt).ok_or_else(|| {
            "the chat template renders a dialogue with an answer so that it does not begin with the same dialogue's generation prompt; \
             eef cannot tell which tokens are the answer's"
                .to_owned()
        })?;
        let (before, after) = rest.split_once(PROBE).ok_or_else(|| "the chat template does not render the assistant's message text".to_owned())?;
        // The end-of-turn token stops generation too (a folder may name only <|end_of_text|>):
        // the first *special* token after the answer. Not merely the first token, nor one that
        // decodes to nothing: Mistral v0.3 ends an answer with `' ' + eos_token`, whose first
        // token is the plain space `▁`.
        if let Some(&end) = chat.tok.encode(after).iter().find(|&&id| chat.tok.is_special(id)) {
            if !chat.stop.contains(&end) {
                chat.stop.push(end);
            }
        }
        if chat.stop.is_empty() {
            return Err("no token stops generation: generation_config.json names no eos_token_id and the template ends an answer with no special token".into());
        }
        if let Style::Jinja(j) = &mut chat.style {
            j.around = (before.to_owned(), after.to_owned());
        }
        chat.pad = chat.special_id("pad_token").unwrap_or(chat.stop[0]);
        Ok(chat)
    }

    /// The chat set up from a model folder: its own template ([`TemplateChoice::Model`] or
    /// `Auto` when the folder has one), else the compact template (`Compact`, or `Auto` on a
    /// folder whose tokenizer has the compact tokens: a checkpoint of a model trained from
    /// scratch).
    pub fn from_folder(dir: &Path, tok: Tok, settings: ChatSettings) -> Result<Self, String> {
        let chat = folder::read(dir)?;
        let eos = super::hf::generation::eos_ids(dir).map_err(|e| e.to_string())?;
        match (settings.template, chat.template) {
            (TemplateChoice::Compact, _) => Self::compact(tok, settings),
            (TemplateChoice::Model | TemplateChoice::Auto, Some(source)) => Self::jinja(tok, &source, chat.special_tokens, &eos, settings),
            (TemplateChoice::Auto, None) if CompactIds::find(&tok).is_some() => Self::compact(tok, settings),
            (_, None) => Err(format!(
                "{}: the model folder has no chat template (no chat_template.jinja, no chat_template in tokenizer_config.json); \
                 set [policy.chat] template = \"compact\" to use eef's own (it adds five tokens to the vocabulary)",
                dir.display()
            )),
        }
    }

    /// The tokenizer.
    pub fn tok(&self) -> &Tok {
        &self.tok
    }

    /// The settings.
    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// Whether this is the compact template.
    pub fn is_compact(&self) -> bool {
        matches!(self.style, Style::Compact(_))
    }

    /// Token ids that end an answer.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop
    }

    /// The padding id (masked everywhere it is used).
    pub fn pad(&self) -> u32 {
        self.pad
    }

    /// The beginning-of-sequence id, when the template has one.
    pub fn bos(&self) -> Option<u32> {
        match &self.style {
            Style::Compact(ids) => Some(ids.bos),
            Style::Jinja(_) => self.special_id("bos_token"),
        }
    }

    fn special_id(&self, key: &str) -> Option<u32> {
        match &self.style {
            Style::Jinja(j) => j.specials.iter().find(|(k, _)| k == key).and_then(|(_, t)| self.tok.token_id(t)),
            Style::Compact(_) => None,
        }
    }

    /// An assistant message's text for an action (and thought).
    pub fn content(&self, thought: Option<&str>, action: &str) -> String {
        match self.settings.answer {
            AnswerFormat::Action => action.trim().to_owned(),
            AnswerFormat::React => render_action(thought.map(str::trim).filter(|t| !t.is_empty()), action.trim()),
        }
    }

    /// The messages of an episode: the system prompt, the instruction with the first observation,
    /// then each step's answer and the next observation; `next` is the observation the next
    /// action answers (none for a finished trajectory).
    pub fn messages(&self, instruction: &str, steps: &[(Step, bool)], next: Option<&str>) -> Vec<Message> {
        let mut m = Vec::with_capacity(steps.len() * 2 + 2);
        if let Some(s) = self.settings.system_prompt.as_ref().filter(|s| !s.is_empty()) {
            m.push(Message::new(Role::System, s.clone(), false));
        }
        let user = |i: usize, obs: &str| if i == 0 { format!("{instruction}\n{obs}") } else { obs.to_owned() };
        for (i, (s, trainable)) in steps.iter().enumerate() {
            m.push(Message::new(Role::User, user(i, &s.observation), false));
            m.push(Message::new(Role::Assistant, self.content(s.thought.as_deref(), &s.action), *trainable));
        }
        if let Some(obs) = next {
            m.push(Message::new(Role::User, user(steps.len(), obs), false));
        }
        m
    }

    /// The template's text for `messages` (pretrained templates only).
    pub fn render_text(&self, messages: &[Message], generation: bool) -> Result<String, String> {
        let Style::Jinja(j) = &self.style else { return Err("the compact template renders tokens, not text".into()) };
        let msgs: Vec<minijinja::Value> = messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                minijinja::context! { role => role, content => m.content.clone() }
            })
            .collect();
        let mut ctx: Vec<(String, minijinja::Value)> = vec![
            ("messages".into(), minijinja::Value::from(msgs)),
            ("add_generation_prompt".into(), minijinja::Value::from(generation)),
            ("tools".into(), minijinja::Value::from(())),
            ("documents".into(), minijinja::Value::from(())),
        ];
        ctx.extend(j.specials.iter().map(|(k, v)| (k.clone(), minijinja::Value::from(v.clone()))));
        j.template.render(minijinja::Value::from_iter(ctx))
    }

    /// `messages` as tokens, with the answers of trainable assistant messages marked (the whole
    /// answer up to and including its end-of-turn token, or from `Action:` on with
    /// `loss = "action"`); `generation` appends the generation prompt.
    pub fn render(&self, messages: &[Message], generation: bool) -> Result<Tokens, String> {
        match &self.style {
            Style::Compact(ids) => {
                // Render message by message so each answer's tokens can be marked.
                let mut out = Tokens::default();
                let mut done = 0;
                for (k, m) in messages.iter().enumerate() {
                    if m.role == Role::Assistant {
                        let before = compact::render(&self.tok, *ids, &messages[..k], true);
                        out.push(&before.ids[done..], false);
                        let answer = self.mark_answer(&m.content, &m.content, m.trainable)?;
                        done = before.ids.len() + answer.ids.len();
                        out.extend(answer);
                    }
                }
                let all = compact::render(&self.tok, *ids, messages, generation);
                out.push(&all.ids[done..], false);
                Ok(out)
            }
            Style::Jinja(_) => {
                let full = self.render_text(messages, generation)?;
                let (ids, offsets) = self.tok.encode_with_offsets(&full)?;
                let mut trainable = vec![false; ids.len()];
                for (k, m) in messages.iter().enumerate() {
                    if m.role != Role::Assistant || !m.trainable {
                        continue;
                    }
                    let (prompt, answer) = self.answer_span(messages, k)?;
                    if !full[prompt.len()..].starts_with(&answer) {
                        return Err("the chat template renders earlier messages differently once later ones follow; eef cannot tell which tokens are an answer's".into());
                    }
                    let from = prompt.len() + self.trained_from(&answer, &m.content);
                    let mut end = prompt.len() + answer.len();
                    for (t, &(a, b)) in offsets.iter().enumerate() {
                        if a >= from && a < end {
                            trainable[t] = true;
                            if self.stop.contains(&ids[t]) {
                                end = b; // nothing after the end-of-turn token is trained
                            }
                        }
                    }
                }
                Ok(Tokens { ids, trainable })
            }
        }
    }

    /// For assistant message `k`: the text of the prompt before it (with the generation prompt)
    /// and the text the template renders for the answer.
    fn answer_span(&self, messages: &[Message], k: usize) -> Result<(String, String), String> {
        let prompt = self.render_text(&messages[..k], true)?;
        let with = self.render_text(&messages[..=k], false)?;
        let answer = with.strip_prefix(&prompt).ok_or_else(|| "the chat template renders an answer so that the dialogue does not begin with its generation prompt".to_owned())?;
        Ok((prompt, answer.to_owned()))
    }

    /// Byte offset in `answer` (the rendered answer text) where loss starts.
    fn trained_from(&self, answer: &str, content: &str) -> usize {
        match (self.settings.answer, self.settings.loss) {
            (AnswerFormat::React, LossOn::Action) => match (answer.find(content), content.rfind("Action:")) {
                (Some(at), Some(action)) => at + action,
                _ => 0,
            },
            _ => 0,
        }
    }

    /// The tokens of an answer whose rendered text is `answer` (holding `content`), marked: when
    /// `trainable`, the tokens from the loss start on, up to and including the first stop token
    /// (anything after it is cut).
    fn mark_answer(&self, answer: &str, content: &str, trainable: bool) -> Result<Tokens, String> {
        let (mut ids, offsets) = self.tok.encode_with_offsets(answer)?;
        if let Style::Compact(c) = &self.style {
            ids.push(c.end);
        }
        let from = self.trained_from(answer, content);
        let mut out = Tokens::default();
        for (i, id) in ids.into_iter().enumerate() {
            let start = offsets.get(i).map_or(usize::MAX, |o| o.0);
            out.push(&[id], trainable && start >= from);
            if self.stop.contains(&id) {
                break;
            }
        }
        Ok(out)
    }

    /// The prompt tokens of the messages for `steps` followed by `observation`.
    fn prompt_ids(&self, instruction: &str, steps: &[(Step, bool)], observation: &str) -> Result<Vec<u32>, String> {
        let messages = self.messages(instruction, steps, Some(observation));
        Ok(match &self.style {
            Style::Compact(ids) => compact::render(&self.tok, *ids, &messages, true).ids,
            Style::Jinja(_) => self.tok.encode(&self.render_text(&messages, true)?),
        })
    }

    /// The prompt for the next action, within `budget` tokens: when the whole episode does not
    /// fit, the oldest steps are dropped (whole turns; the system prompt and the instruction stay,
    /// the instruction then opening the first kept turn), and if the last observation alone is
    /// too long the prompt keeps its last `budget` tokens. Returns how many steps were dropped.
    fn fitted(&self, instruction: &str, steps: &[(Step, bool)], observation: &str, budget: usize) -> Result<(usize, Vec<u32>), String> {
        let all = self.prompt_ids(instruction, steps, observation)?;
        if all.len() <= budget {
            return Ok((0, all));
        }
        // The prompt only shrinks as more steps are dropped: find the fewest that fit.
        let (mut lo, mut hi) = (1, steps.len());
        let mut best: Option<Vec<u32>> = None;
        while lo <= hi {
            let mid = (lo + hi) / 2;
            let ids = self.prompt_ids(instruction, &steps[mid..], observation)?;
            if ids.len() <= budget {
                best = Some(ids);
                hi = mid - 1;
            } else {
                lo = mid + 1;
            }
        }
        match best {
            Some(ids) => Ok((lo, ids)),
            None => {
                let ids = self.prompt_ids(instruction, &[], observation)?;
                Ok((steps.len(), ids[ids.len().saturating_sub(budget)..].to_vec()))
            }
        }
    }

    /// The prompt tokens for the next action of an episode, within `budget` tokens (see
    /// [`Chat::windows`] for how a long episode is cut).
    pub fn prompt(&self, instruction: &str, steps: &[Step], observation: &str, budget: usize) -> Result<Vec<u32>, String> {
        let steps: Vec<(Step, bool)> = steps.iter().map(|s| (s.clone(), false)).collect();
        Ok(self.fitted(instruction, &steps, observation, budget)?.1)
    }

    /// The tokens of an answer with text `content`, through its end-of-turn token: what
    /// generation produces when it writes `content` (used to constrain decoding to valid actions).
    pub fn answer(&self, content: &str) -> Vec<u32> {
        match &self.style {
            Style::Compact(ids) => compact::answer(&self.tok, *ids, content),
            Style::Jinja(j) => {
                let ids = self.tok.encode(&format!("{}{content}{}", j.around.0, j.around.1));
                let end = ids.iter().position(|i| self.stop.contains(i)).map_or(ids.len(), |p| p + 1);
                ids[..end].to_vec()
            }
        }
    }

    /// A trajectory as training windows, one per trainable action: the prompt acting saw at that
    /// turn ([`Chat::prompt`] with the same budget: when the episode so far does not fit, its
    /// oldest turns are dropped and the instruction and system prompt kept), followed by the answer
    /// as the template renders it, marked as [`Chat::render`] marks it. (Training uses
    /// [`Chat::sequences`], which makes these only for `sequences = "windows"` or as a fallback.)
    pub fn windows(&self, t: &Trajectory, prompt_budget: usize) -> Result<Vec<Tokens>, String> {
        let steps: Vec<(Step, bool)> = t.turns.iter().map(|x| (Step::of(x), x.trainable)).collect();
        (0..steps.len()).filter(|&k| steps[k].1).map(|k| self.window(t, &steps, k, prompt_budget)).collect()
    }

    /// The action in a generated answer (token ids, stop token excluded).
    pub fn parse(&self, generated: &[u32]) -> Act {
        let text = self.tok.decode(generated);
        match self.settings.answer {
            AnswerFormat::Action => Act::new(text.trim()),
            AnswerFormat::React => match parse_action(&text) {
                Some((thought, action)) => Act { action, thought },
                // No `Action:` line: sent as it is, and the environment answers it as it answers
                // any invalid action.
                None => Act::new(text.trim()),
            },
        }
    }
}

/// Every text of a trajectory, for training a tokenizer.
pub fn corpus(t: &Trajectory) -> Vec<String> {
    std::iter::once(t.instruction.clone())
        .chain(t.turns.iter().flat_map(|x| [Some(x.observation.clone()), x.thought.clone(), Some(x.action.clone())].into_iter().flatten()))
        .chain(["Thought: ".to_owned(), "Action: ".to_owned()])
        .collect()
}
