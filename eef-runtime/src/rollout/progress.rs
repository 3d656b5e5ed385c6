//! A progress bar for rollouts (drawn only on a terminal).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress of one rollout phase: episodes done and the success rate so far.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar labelled `label` over `total` episodes; hidden when `enabled` is false or stderr is
    /// not a terminal.
    pub fn new(label: &str, total: u64, enabled: bool) -> Self {
        let target = if enabled && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_owned());
        Progress { bar }
    }

    /// One more episode done; `successes` so far.
    pub fn advance(&self, successes: u64) {
        self.bar.inc(1);
        let done = self.bar.position().max(1);
        self.bar.set_message(format!("success {:.1}%", 100.0 * successes as f64 / done as f64));
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
