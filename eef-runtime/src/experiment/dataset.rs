//! The training set accumulated across iterations: one example per important state.

use std::collections::BTreeMap;

use crate::selection::{PreferencePair, Reason, Selection, TrainingExample};

/// Training examples keyed by the important state they solve, and preference pairs.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    examples: BTreeMap<String, TrainingExample>,
    pairs: BTreeMap<String, PreferencePair>,
}

/// The important state an example stands for: expert successes by trajectory, task-start
/// solutions by task, recovery solutions by expert trajectory and state.
fn state_key(e: &TrainingExample) -> String {
    let t = &e.trajectory;
    match &e.reason {
        Reason::ExpertSuccess => format!("expert/{}", t.id),
        Reason::TaskStart => format!("start/{}", t.task_id),
        Reason::Recovery { beneficial_to, .. } => {
            let expert = match &t.start {
                crate::trajectory::StartState::Expert { trajectory, .. } => trajectory.as_str(),
                crate::trajectory::StartState::TaskStart => "",
            };
            format!("recovery/{expert}/{beneficial_to}")
        }
        Reason::Custom(tag) => format!("custom/{tag}/{}", t.id),
    }
}

impl Dataset {
    /// Adds a selection; an important state already present keeps its first solution.
    pub fn add(&mut self, selection: &Selection) {
        for e in &selection.examples {
            self.examples.entry(state_key(e)).or_insert_with(|| e.clone());
        }
        for p in &selection.pairs {
            self.pairs.entry(format!("{}/{}", p.chosen.id, p.rejected.id)).or_insert_with(|| p.clone());
        }
    }

    /// The examples, in key order.
    pub fn examples(&self) -> Vec<TrainingExample> {
        self.examples.values().cloned().collect()
    }

    /// The preference pairs, in key order.
    pub fn pairs(&self) -> Vec<PreferencePair> {
        self.pairs.values().cloned().collect()
    }

    /// Rebuilds a dataset from saved examples and pairs.
    pub fn from_parts(examples: Vec<TrainingExample>, pairs: Vec<PreferencePair>) -> Self {
        let mut d = Dataset::default();
        d.add(&Selection { examples, pairs, ..Selection::default() });
        d
    }
}
