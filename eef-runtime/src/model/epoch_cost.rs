//! What one epoch of training on a data set costs in each sequence form ([`epoch_costs`], behind
//! `eef tokens`): sequences, rows, the tokens they hold and the tokens the forward passes
//! process, padding included.

use super::chat::{Chat, SequenceForm, SequenceStats};
use super::row;
use super::settings::LmSettings;
use crate::trajectory::Trajectory;

/// One form's cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochCost {
    /// The form: `windows`, `conversation` (one row per sequence) or `conversation, packed`.
    pub form: &'static str,
    /// Its counts (`rows`, `batch_tokens` included).
    pub stats: SequenceStats,
}

/// The cost of one epoch on `data` with `chat`, micro-batches of `settings.batch_size` rows
/// (shuffled from `seed` as training shuffles them), in each form: per-turn windows, whole
/// conversations one per row, and whole conversations packed into rows of `max_context`.
pub fn epoch_costs(chat: &Chat, settings: &LmSettings, data: &[Trajectory], seed: u64) -> Result<Vec<EpochCost>, String> {
    let mut out = Vec::new();
    for (form, sequences, pack) in [("windows", SequenceForm::Windows, false), ("conversation", SequenceForm::Conversation, false), ("conversation, packed", SequenceForm::Conversation, true)] {
        let s = super::chat::SequenceSettings { form: sequences, ..settings.sequence_settings() };
        let mut stats = SequenceStats::default();
        let mut seqs = Vec::new();
        for t in data {
            let (tokens, counts) = chat.sequences(t, &s).map_err(|e| format!("trajectory {}: {e}", t.id))?;
            stats.add(&counts);
            seqs.extend(tokens);
        }
        let rows = if pack { row::pack(&seqs, settings.max_context) } else { row::unpacked(seqs) };
        stats.rows = rows.len();
        stats.batch_tokens = row::batch_tokens(&rows, settings.batch_size, seed);
        out.push(EpochCost { form, stats });
    }
    Ok(out)
}
