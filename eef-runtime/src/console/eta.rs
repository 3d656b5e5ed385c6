//! The run's remaining time: the phases still to run, each estimated from the phases of its
//! kind seen so far (the same method's first, else any method's but SFT's).

use std::collections::BTreeMap;

/// What a phase does (phases of a kind take comparable time within a method).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PhaseKind {
    /// Rollouts of an iteration's exploration.
    Explore,
    /// Training (supervised or preference).
    Train,
    /// Evaluation rollouts (test or dev split).
    Eval,
}

impl PhaseKind {
    /// The kind of a rollout phase from its label (`"EEF explore it1"`, `"SFT eval it0"`,
    /// `"SFT dev it0"`); `None` for the expert's phases.
    pub fn of_rollout(label: &str) -> Option<Self> {
        let words: Vec<&str> = label.split_whitespace().collect();
        if words.first() == Some(&"expert") {
            return None;
        }
        if words.contains(&"explore") {
            Some(PhaseKind::Explore)
        } else if words.contains(&"eval") || words.contains(&"dev") {
            Some(PhaseKind::Eval)
        } else {
            None
        }
    }
}

/// Phases still to run and the durations of those that ran.
#[derive(Debug, Default)]
pub struct RunEta {
    remaining: BTreeMap<(String, PhaseKind), usize>,
    seen: BTreeMap<(String, PhaseKind), Vec<f64>>,
}

impl RunEta {
    /// `n` more phases of `kind` will run for `method`.
    pub fn expect(&mut self, method: &str, kind: PhaseKind, n: usize) {
        *self.remaining.entry((method.to_owned(), kind)).or_default() += n;
    }

    /// A phase of `kind` for `method` finished after `seconds`.
    pub fn done(&mut self, method: &str, kind: PhaseKind, seconds: f64) {
        let key = (method.to_owned(), kind);
        if let Some(n) = self.remaining.get_mut(&key) {
            *n = n.saturating_sub(1);
        }
        self.seen.entry(key).or_default().push(seconds);
    }

    fn mean(xs: &[f64]) -> Option<f64> {
        (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
    }

    /// Seconds left, when phases remain and every one can be estimated.
    pub fn seconds_left(&self) -> Option<f64> {
        if self.remaining.values().all(|&n| n == 0) {
            return None;
        }
        let mut total = 0.0;
        for ((method, kind), &n) in &self.remaining {
            if n == 0 {
                continue;
            }
            let own = self.seen.get(&(method.clone(), *kind)).and_then(|v| Self::mean(v));
            let others: Vec<f64> = self.seen.iter().filter(|((m, k), _)| k == kind && m != "SFT").flat_map(|(_, v)| v.iter().copied()).collect();
            total += n as f64 * own.or_else(|| Self::mean(&others))?;
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_only_when_every_remaining_kind_was_seen() {
        let mut eta = RunEta::default();
        eta.expect("SFT", PhaseKind::Train, 1);
        eta.expect("RFT", PhaseKind::Explore, 2);
        eta.expect("RFT", PhaseKind::Train, 2);
        eta.expect("EEF", PhaseKind::Train, 1);
        eta.done("SFT", PhaseKind::Train, 100.0);
        // RFT's exploration and any non-SFT training have not been seen.
        assert_eq!(eta.seconds_left(), None);
        eta.done("RFT", PhaseKind::Explore, 10.0);
        assert_eq!(eta.seconds_left(), None);
        eta.done("RFT", PhaseKind::Train, 30.0);
        // One RFT exploration (10) and training (30) left, EEF's training from RFT's (30).
        assert_eq!(eta.seconds_left(), Some(70.0));
        eta.done("RFT", PhaseKind::Explore, 10.0);
        eta.done("RFT", PhaseKind::Train, 30.0);
        eta.done("EEF", PhaseKind::Train, 30.0);
        assert_eq!(eta.seconds_left(), None, "nothing left to estimate");
    }

    #[test]
    fn rollout_labels_name_their_kind() {
        assert_eq!(PhaseKind::of_rollout("EEF explore it2"), Some(PhaseKind::Explore));
        assert_eq!(PhaseKind::of_rollout("SFT eval it0"), Some(PhaseKind::Eval));
        assert_eq!(PhaseKind::of_rollout("SFT dev it0"), Some(PhaseKind::Eval));
        assert_eq!(PhaseKind::of_rollout("expert eval"), None);
    }
}
