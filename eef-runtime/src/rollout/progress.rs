//! A rollout phase's progress on the run's [`Console`]: episodes done and the success rate.

use crate::console::{Bar, Console};

/// Progress of one rollout phase: episodes done and the success rate so far.
#[derive(Debug)]
pub struct Progress {
    bar: Bar,
}

impl Progress {
    /// A bar labelled `label` over `total` episodes on `console`.
    pub fn new(console: &Console, label: &str, total: u64) -> Self {
        Progress { bar: console.bar(label, Some(total)) }
    }

    /// One more episode done; `successes` so far.
    pub fn advance(&self, successes: u64) {
        let done = self.bar.position() + 1;
        self.bar.update(done, format!("success {:.1}%", 100.0 * successes as f64 / done as f64));
    }
}
