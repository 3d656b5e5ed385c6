//! Training sequences: how a trajectory becomes the token sequences the model trains on.
//!
//! - **Conversation** (the default): a trajectory that fits the context is **one** sequence, the
//!   template's rendering of the whole dialogue up to its last trainable answer, with loss on the
//!   trainable answers only (FastChat/ETO, AgentGym, LLaMA-Factory and TRL train multi-turn
//!   episodes this way). A trajectory of `T` turns then costs `T` turns of tokens instead of the
//!   `~T²/2` that one window per answer costs.
//! - **Pieces.** A longer trajectory is cut into consecutive pieces that each fit: every
//!   trainable answer is trained in exactly one piece, and each piece opens with the system prompt
//!   and the instruction (as acting's prompts do) plus as much earlier history, untrained, as
//!   `overlap` tokens allow.
//! - **Exactness.** A piece is used only when it is *prefix-stable*: for every answer it trains,
//!   the piece's tokens up to and including that answer are, token for token and mask for mask,
//!   the window acting would train for it (the prompt the template renders for the dialogue so
//!   far, then the answer). Then the one-sequence form computes the same per-token
//!   log-probabilities as the windows, in one forward pass. A template that rewrites earlier
//!   turns once later ones follow (or a tokenizer that merges across a turn boundary) fails the
//!   check, and that trajectory falls back to per-turn windows; [`SequenceStats::fallbacks`]
//!   counts them. The compact template renders message by message and is prefix-stable by
//!   construction.
//! - **Windows** (`[policy] sequences = "windows"`): one sequence per trainable answer, each the
//!   prompt acting saw at that turn followed by the answer ([`Chat::windows`]).

use serde::{Deserialize, Serialize};

use super::tokens::Tokens;
use super::{Chat, Style};
use crate::policy::Step;
use crate::trajectory::Trajectory;

/// How trajectories become training sequences (`[policy] sequences`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SequenceForm {
    /// The whole conversation as one sequence (pieces when it does not fit the context).
    #[default]
    Conversation,
    /// One window per trainable answer: the acting prompt, then the answer.
    Windows,
}

/// What [`Chat::sequences`] needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceSettings {
    /// The form.
    pub form: SequenceForm,
    /// Longest sequence (`[policy] max_context`).
    pub max_len: usize,
    /// Longest acting prompt (windows and the fallback cut their prompts to it, as acting does).
    pub prompt_budget: usize,
    /// Most tokens of earlier, untrained history a piece after the first opens with.
    pub overlap: usize,
}

/// How a set of trajectories became sequences.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceStats {
    /// Trajectories with at least one trainable answer.
    pub trajectories: usize,
    /// Sequences made.
    pub sequences: usize,
    /// Trajectories longer than the context, cut into several pieces.
    pub split: usize,
    /// Trajectories trained as per-turn windows because their rendering was not prefix-stable.
    pub fallbacks: usize,
    /// Answers whose prompt alone did not fit the context: trained in a window with the prompt
    /// cut as acting cuts it.
    pub cut: usize,
    /// Tokens in the sequences (what one epoch processes, before padding).
    pub tokens: usize,
    /// Tokens that carry loss.
    pub trained_tokens: usize,
    /// Training rows (sequences, or several packed into one; set by the trainer).
    #[serde(default)]
    pub rows: usize,
    /// Tokens the forward passes of one epoch process, padding included (set by the trainer).
    #[serde(default)]
    pub batch_tokens: usize,
}

impl SequenceStats {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &SequenceStats) {
        self.trajectories += other.trajectories;
        self.sequences += other.sequences;
        self.split += other.split;
        self.fallbacks += other.fallbacks;
        self.cut += other.cut;
        self.tokens += other.tokens;
        self.trained_tokens += other.trained_tokens;
        self.rows += other.rows;
        self.batch_tokens += other.batch_tokens;
    }

    fn count(&mut self, seqs: &[Tokens]) {
        self.sequences += seqs.len();
        self.tokens += seqs.iter().map(|s| s.ids.len()).sum::<usize>();
        self.trained_tokens += seqs.iter().map(|s| s.trainable.iter().filter(|&&t| t).count()).sum::<usize>();
    }
}

/// One piece of a trajectory: history from turn `context`, trained answers from turn `from`
/// through turn `to`.
#[derive(Clone, Copy, Debug)]
struct Piece {
    context: usize,
    from: usize,
    to: usize,
}

impl Chat {
    /// The training sequences of `t` in the settings' form, with their counts.
    pub fn sequences(&self, t: &Trajectory, s: &SequenceSettings) -> Result<(Vec<Tokens>, SequenceStats), String> {
        let steps: Vec<(Step, bool)> = t.turns.iter().map(|x| (Step::of(x), x.trainable)).collect();
        let trainable: Vec<usize> = (0..steps.len()).filter(|&k| steps[k].1).collect();
        let mut stats = SequenceStats::default();
        if trainable.is_empty() {
            return Ok((Vec::new(), stats));
        }
        stats.trajectories = 1;
        let out = match s.form {
            SequenceForm::Windows => self.windows(t, s.prompt_budget)?,
            SequenceForm::Conversation => match self.conversation(t, &steps, &trainable, s) {
                Ok(Some((seqs, split, cut))) => {
                    stats.split = usize::from(split);
                    stats.cut = cut;
                    seqs
                }
                // Not prefix-stable (or not renderable as one dialogue): the windows.
                Ok(None) | Err(_) => {
                    stats.fallbacks = 1;
                    self.windows(t, s.prompt_budget)?
                }
            },
        };
        stats.count(&out);
        Ok((out, stats))
    }

    /// The conversation form of a trajectory: its sequences in order, whether it was split, and
    /// how many answers were trained in a cut window; `None` when a piece is not prefix-stable.
    fn conversation(&self, t: &Trajectory, steps: &[(Step, bool)], trainable: &[usize], s: &SequenceSettings) -> Result<Option<(Vec<Tokens>, bool, usize)>, String> {
        let (pieces, cut) = self.plan(t, steps, trainable, s)?;
        let mut out = Vec::new();
        for p in &pieces {
            let tokens = self.piece(t, steps, *p)?;
            if !self.prefix_stable(t, steps, *p, &tokens)? {
                return Ok(None);
            }
            out.push((p.from, tokens));
        }
        for &k in &cut {
            out.push((k, self.window(t, steps, k, s.prompt_budget)?));
        }
        out.sort_by_key(|(k, _)| *k);
        Ok(Some((out.into_iter().map(|(_, tokens)| tokens).collect(), pieces.len() + cut.len() > 1, cut.len())))
    }

    /// The pieces of a trajectory (and the trainable turns too long for any piece).
    fn plan(&self, t: &Trajectory, steps: &[(Step, bool)], trainable: &[usize], s: &SequenceSettings) -> Result<(Vec<Piece>, Vec<usize>), String> {
        let last = *trainable.last().expect("a trainable turn");
        let whole = Piece { context: 0, from: 0, to: last };
        if self.piece(t, steps, whole)?.ids.len() <= s.max_len {
            return Ok((vec![whole], Vec::new()));
        }
        let (mut pieces, mut cut) = (Vec::new(), Vec::new());
        let mut next = 0;
        while next < trainable.len() {
            let from = trainable[next];
            let obs = &steps[from].0.observation;
            // History: the earliest turn whose inclusion adds at most `overlap` prompt tokens.
            let base = self.prompt_ids(&t.instruction, &steps[from..from], obs)?.len();
            let mut context = from;
            while context > 0 && self.prompt_ids(&t.instruction, &steps[context - 1..from], obs)?.len().saturating_sub(base) <= s.overlap {
                context -= 1;
            }
            let fits = |p: Piece| -> Result<bool, String> { Ok(self.piece(t, steps, p)?.ids.len() <= s.max_len) };
            if !fits(Piece { context, from, to: from })? {
                if context < from && fits(Piece { context: from, from, to: from })? {
                    context = from;
                } else {
                    cut.push(from);
                    next += 1;
                    continue;
                }
            }
            // The last trainable turn the piece can reach (lengths only grow with more turns).
            let (mut lo, mut hi) = (next, trainable.len() - 1);
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                if fits(Piece { context, from, to: trainable[mid] })? {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            pieces.push(Piece { context, from, to: trainable[lo] });
            next = lo + 1;
        }
        Ok((pieces, cut))
    }

    /// The tokens of a piece: the dialogue of turns `context..=to` (the instruction opening its
    /// first user message), answers from turn `from` on trained where the trajectory trains them,
    /// cut after the last trained token.
    fn piece(&self, t: &Trajectory, steps: &[(Step, bool)], p: Piece) -> Result<Tokens, String> {
        let marked: Vec<(Step, bool)> = steps[p.context..=p.to].iter().enumerate().map(|(i, (st, tr))| (st.clone(), *tr && p.context + i >= p.from)).collect();
        let mut tokens = self.render(&self.messages(&t.instruction, &marked, None), false)?;
        let end = tokens.trainable.iter().rposition(|&x| x).map_or(0, |i| i + 1);
        tokens.ids.truncate(end);
        tokens.trainable.truncate(end);
        Ok(tokens)
    }

    /// Whether every answer a piece trains sits in it exactly as in its window: the prompt of the
    /// dialogue so far (from the piece's first turn) followed by the answer, the same ids and the
    /// same loss marks.
    fn prefix_stable(&self, t: &Trajectory, steps: &[(Step, bool)], p: Piece, tokens: &Tokens) -> Result<bool, String> {
        if matches!(self.style, Style::Compact(_)) {
            // Rendered message by message: every prefix is the same tokens.
            return Ok(true);
        }
        for k in p.from..=p.to {
            if !steps[k].1 {
                continue;
            }
            let w = self.window_from(t, steps, p.context, k)?;
            let n = w.ids.len();
            if n > tokens.ids.len() || w.ids[..] != tokens.ids[..n] || w.trainable[..] != tokens.trainable[..n].iter().enumerate().map(|(i, &x)| x && i >= n - w.answer_len).collect::<Vec<_>>()[..] {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The window of trainable turn `k` with the dialogue from turn `context` (not cut): the
    /// generation prompt, then the answer as the template renders it, marked.
    fn window_from(&self, t: &Trajectory, steps: &[(Step, bool)], context: usize, k: usize) -> Result<Window, String> {
        let prompt = self.prompt_ids(&t.instruction, &steps[context..k], &steps[k].0.observation)?;
        self.answer_window(t, steps, context, k, prompt)
    }

    /// Trainable turn `k`'s window with the prompt acting sees (cut to `budget` as
    /// [`Chat::prompt`] cuts it).
    pub(super) fn window(&self, t: &Trajectory, steps: &[(Step, bool)], k: usize, budget: usize) -> Result<Tokens, String> {
        let (dropped, prompt) = self.fitted(&t.instruction, &steps[..k], &steps[k].0.observation, budget)?;
        Ok(self.answer_window(t, steps, dropped, k, prompt)?.tokens())
    }

    fn answer_window(&self, t: &Trajectory, steps: &[(Step, bool)], context: usize, k: usize, prompt: Vec<u32>) -> Result<Window, String> {
        let step = &steps[k].0;
        let content = self.content(step.thought.as_deref(), &step.action);
        let answer = match &self.style {
            Style::Compact(_) => content.clone(),
            Style::Jinja(j) => {
                let messages = self.messages(&t.instruction, &steps[context..=k], None);
                match self.answer_span(&messages, messages.len() - 1) {
                    Ok((_, answer)) => answer,
                    // A template that shows a message only at generation time (Mistral v0.3
                    // puts the system prompt in the last user message only when that message
                    // ends the dialogue): the answer as generation writes it after this
                    // prompt, between the surroundings the template gives every answer.
                    Err(_) => format!("{}{content}{}", j.around.0, j.around.1),
                }
            }
        };
        let marked = self.mark_answer(&answer, &content, true)?;
        let answer_len = marked.ids.len();
        let mut ids = prompt;
        let mut trainable = vec![false; ids.len()];
        ids.extend(marked.ids);
        trainable.extend(marked.trainable);
        Ok(Window { ids, trainable, answer_len })
    }
}

/// A window and the length of its answer part.
struct Window {
    ids: Vec<u32>,
    trainable: Vec<bool>,
    answer_len: usize,
}

impl Window {
    fn tokens(self) -> Tokens {
        Tokens { ids: self.ids, trainable: self.trainable }
    }
}
