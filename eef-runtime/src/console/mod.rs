//! What a run shows on stderr while it goes: a bar per phase (rollouts and training), a line per
//! finished phase, and the run's remaining time once it can be estimated.
//!
//! Three modes ([`Console::auto`] picks one):
//! - on a terminal, live bars ([`indicatif`]) with each finished phase's line printed above them;
//! - elsewhere (a batch job's log, a pipe), plain lines: a phase's progress at most every
//!   `EEF_PROGRESS_EVERY` seconds (default 30) and a line per finished phase;
//! - quiet (`--quiet`, `[rollout] progress = false`): nothing.
//!
//! Lines start with the time since the run started, e.g.
//! `[  2m05s] SFT train 120/300 (40%) epoch 2/3, loss 0.532, 1234 tok/s, eta 3m12s`.
//! The console only shows what the run's live metrics ([`crate::live`]) record; it never
//! changes a result.

mod bar;
mod eta;
pub(crate) mod summary;

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressDrawTarget};

pub use bar::Bar;
pub use eta::{PhaseKind, RunEta};
pub use summary::{duration, TrainTally};

/// Where a console's output goes.
enum Sink {
    Quiet,
    Terminal(MultiProgress),
    /// `None`: the process's stderr (through `eprint!`, so a test harness captures it).
    Lines { out: Option<Mutex<Box<dyn Write + Send>>>, every: Duration },
}

struct Inner {
    sink: Sink,
    started: Instant,
    eta: Mutex<RunEta>,
}

/// A run's progress display (cheap to clone: clones share the display).
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.inner.sink {
            Sink::Quiet => "quiet",
            Sink::Terminal(_) => "terminal",
            Sink::Lines { .. } => "lines",
        };
        f.debug_struct("Console").field("mode", &mode).finish()
    }
}

impl Default for Console {
    fn default() -> Self {
        Console::quiet()
    }
}

/// The interval between a phase's progress lines when stderr is not a terminal:
/// `EEF_PROGRESS_EVERY` seconds, 30 when unset or not a number.
pub fn lines_interval() -> Duration {
    let secs = std::env::var("EEF_PROGRESS_EVERY").ok().and_then(|s| s.trim().parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0);
    Duration::from_secs_f64(secs.unwrap_or(30.0))
}

impl Console {
    fn with(sink: Sink) -> Self {
        Console { inner: Arc::new(Inner { sink, started: Instant::now(), eta: Mutex::new(RunEta::default()) }) }
    }

    /// Bars on a terminal, plain lines every [`lines_interval`] elsewhere; nothing when
    /// `enabled` is false.
    pub fn auto(enabled: bool) -> Self {
        if !enabled {
            Console::quiet()
        } else if std::io::stderr().is_terminal() {
            Console::with(Sink::Terminal(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())))
        } else {
            Console::with(Sink::Lines { out: None, every: lines_interval() })
        }
    }

    /// Shows nothing.
    pub fn quiet() -> Self {
        Console::with(Sink::Quiet)
    }

    /// Plain lines written to `out`: a phase's progress at most every `every` (zero: at every
    /// update) and a line per finished phase. What [`Console::auto`] does off a terminal, with
    /// stderr.
    pub fn lines(out: impl Write + Send + 'static, every: Duration) -> Self {
        Console::with(Sink::Lines { out: Some(Mutex::new(Box::new(out))), every })
    }

    /// Whether anything is shown.
    pub fn is_quiet(&self) -> bool {
        matches!(self.inner.sink, Sink::Quiet)
    }

    /// A bar for a phase of `total` units (`None`: not known yet, see [`Bar::set_total`]).
    pub fn bar(&self, label: &str, total: Option<u64>) -> Bar {
        Bar::new(self.clone(), label, total)
    }

    /// Prints one line (above the bars on a terminal), prefixed with the run's elapsed time.
    pub fn line(&self, text: &str) {
        let line = format!("[{:>7}] {text}", duration(self.elapsed().as_secs_f64()));
        match &self.inner.sink {
            Sink::Quiet => {}
            Sink::Terminal(multi) => {
                let _ = multi.println(&line);
            }
            Sink::Lines { out: None, .. } => eprintln!("{line}"),
            Sink::Lines { out: Some(out), .. } => {
                if let Ok(mut out) = out.lock() {
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
        }
    }

    /// Time since the console was made (the run's start).
    pub fn elapsed(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// The run's remaining-time estimate: phases still to run and the durations seen so far.
    pub fn eta(&self) -> std::sync::MutexGuard<'_, RunEta> {
        self.inner.eta.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn multi(&self) -> Option<&MultiProgress> {
        match &self.inner.sink {
            Sink::Terminal(m) => Some(m),
            _ => None,
        }
    }

    fn lines_every(&self) -> Option<Duration> {
        match &self.inner.sink {
            Sink::Lines { every, .. } => Some(*every),
            _ => None,
        }
    }
}
