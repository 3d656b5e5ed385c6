//! The rule that picks one solution per important state.

use serde::{Deserialize, Serialize};

use crate::trajectory::Trajectory;

/// How one solution is chosen among several successful explorations of the same state.
///
/// The paper keeps one solution per important state without saying which; every rule here is
/// deterministic (ties fall to the lower sample index, then the id).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SolutionChoice {
    /// Fewest turns, then highest reward (default).
    #[default]
    Shortest,
    /// Highest reward, then fewest turns.
    HighestReward,
    /// The lowest sample index.
    First,
}

impl SolutionChoice {
    /// Picks one of `candidates` (which should all be successes).
    pub fn pick<'a>(self, candidates: impl IntoIterator<Item = &'a Trajectory>) -> Option<&'a Trajectory> {
        let key_tail = |t: &'a Trajectory| (t.sample, t.id.clone());
        candidates.into_iter().min_by(|a, b| {
            let primary = match self {
                SolutionChoice::Shortest => a
                    .turns
                    .len()
                    .cmp(&b.turns.len())
                    .then(b.reward.total_cmp(&a.reward)),
                SolutionChoice::HighestReward => {
                    b.reward.total_cmp(&a.reward).then(a.turns.len().cmp(&b.turns.len()))
                }
                SolutionChoice::First => std::cmp::Ordering::Equal,
            };
            primary.then_with(|| key_tail(a).cmp(&key_tail(b)))
        })
    }
}
