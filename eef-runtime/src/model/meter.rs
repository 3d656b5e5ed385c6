//! Per-optimizer-step numbers for the live-metrics log ([`crate::live`]): the mean loss of the
//! step's micro-batches, the tokens they processed and the step's wall time.

use std::time::Instant;

use super::train::{learning_rate, TrainSettings};
use crate::live::{LiveMetrics, TrainStep};

/// Sums micro-batches until an optimizer step, then writes the step and starts over.
#[derive(Debug)]
pub struct StepMeter {
    since: Instant,
    loss: f64,
    micro: usize,
    tokens: usize,
}

impl Default for StepMeter {
    fn default() -> Self {
        StepMeter { since: Instant::now(), loss: 0.0, micro: 0, tokens: 0 }
    }
}

impl StepMeter {
    /// Counts one micro-batch: its loss and the tokens its forward pass processed.
    pub fn micro(&mut self, loss: f32, tokens: usize) {
        self.loss += f64::from(loss);
        self.micro += 1;
        self.tokens += tokens;
    }

    /// Counts tokens processed outside a micro-batch's loss (DPO's two passes).
    pub fn micro_tokens(&mut self, tokens: usize) {
        self.tokens += tokens;
    }

    /// Writes optimizer step `step` (1-based, just taken with `settings`' schedule) of `epoch` of
    /// `epochs` to `live` and starts the next step's count.
    pub fn step(&mut self, live: &LiveMetrics, objective: &'static str, step: usize, settings: &TrainSettings, (epoch, epochs): (usize, usize)) {
        let seconds = self.since.elapsed().as_secs_f64().max(1e-9);
        live.train_step(&TrainStep {
            objective,
            step,
            total_steps: settings.total_steps,
            epoch,
            epochs,
            loss: self.loss / self.micro.max(1) as f64,
            learning_rate: learning_rate(settings, step.saturating_sub(1)),
            tokens: self.tokens,
            tokens_per_s: self.tokens as f64 / seconds,
        });
        *self = StepMeter::default();
    }
}
