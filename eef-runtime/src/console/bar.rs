//! One phase's bar: a live bar on a terminal, periodic lines elsewhere.

use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::{duration, Console};

struct State {
    pos: u64,
    total: Option<u64>,
    message: String,
    /// When the first unit finished: the ETA counts from there (a resumed or warming-up phase
    /// spends its first seconds elsewhere).
    first: Option<(Instant, u64)>,
    last_line: Option<Instant>,
    /// Whether a line with units done was printed (the first one is printed at once).
    shown_progress: bool,
}

/// Progress of one phase (episodes of a rollout, optimizer steps of training). Dropping it
/// clears it from the terminal.
pub struct Bar {
    console: Console,
    label: String,
    state: Mutex<State>,
    bar: Option<ProgressBar>,
}

impl std::fmt::Debug for Bar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bar").field("label", &self.label).finish_non_exhaustive()
    }
}

const TEMPLATE: &str = "{prefix:>22} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})";
const SPINNER: &str = "{prefix:>22} {spinner} {msg} ({elapsed})";

impl Bar {
    pub(super) fn new(console: Console, label: &str, total: Option<u64>) -> Self {
        let bar = console.multi().map(|multi| {
            let bar = multi.add(ProgressBar::no_length());
            bar.set_prefix(label.to_owned());
            bar.enable_steady_tick(std::time::Duration::from_millis(250));
            bar
        });
        let this = Bar {
            console,
            label: label.to_owned(),
            state: Mutex::new(State { pos: 0, total: None, message: String::new(), first: None, last_line: None, shown_progress: false }),
            bar,
        };
        this.set_total(total);
        this
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the number of units (`None`: a spinner until it is known).
    pub fn set_total(&self, total: Option<u64>) {
        let mut s = self.state();
        if s.total == total && s.pos > 0 {
            return;
        }
        s.total = total;
        if let Some(bar) = &self.bar {
            let template = if total.is_some() { TEMPLATE } else { SPINNER };
            bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "));
            if let Some(t) = total {
                bar.set_length(t);
            }
        }
    }

    /// `pos` units done; `message` says how it goes (success rate, loss, ...).
    pub fn update(&self, pos: u64, message: String) {
        let mut s = self.state();
        let now = Instant::now();
        if s.first.is_none() && pos > 0 {
            s.first = Some((now, pos));
        }
        s.pos = pos;
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
            bar.set_message(message.clone());
        }
        s.message = message;
        if let Some(every) = self.console.lines_every() {
            let first_progress = pos > 0 && !s.shown_progress;
            let due = first_progress || s.last_line.is_none_or(|t| now.duration_since(t) >= every) || s.total == Some(pos);
            if due {
                s.last_line = Some(now);
                s.shown_progress |= pos > 0;
                let line = self.progress_line(&s, now);
                drop(s);
                self.console.line(&line);
            }
        }
    }

    /// The bar's current line, as the lines mode prints it.
    fn progress_line(&self, s: &State, now: Instant) -> String {
        let mut line = self.label.clone();
        match s.total {
            Some(t) if t > 0 => line.push_str(&format!(" {}/{} ({:.0}%)", s.pos, t, 100.0 * s.pos as f64 / t as f64)),
            _ => line.push_str(&format!(" {}", s.pos)),
        }
        if !s.message.is_empty() {
            line.push(' ');
            line.push_str(&s.message);
        }
        if let (Some(t), Some((at, from))) = (s.total, s.first) {
            let (done, spent) = (s.pos.saturating_sub(from), now.duration_since(at).as_secs_f64());
            if done > 0 && s.pos < t {
                line.push_str(&format!(", eta {}", duration(spent / done as f64 * (t - s.pos) as f64)));
            }
        }
        line
    }

    /// The units done so far.
    pub fn position(&self) -> u64 {
        self.state().pos
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            if let Some(multi) = self.console.multi() {
                multi.remove(bar);
            }
        }
    }
}
