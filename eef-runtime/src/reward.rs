//! Rewards: how a finished trajectory is scored, and what counts as a success.
//!
//! Declare one from a plain function with [`#[reward]`](macro@crate::reward):
//!
//! ```
//! use eef_runtime::{reward, Trajectory};
//!
//! /// WebShop's final reward; a win is a reward of 1.
//! #[reward(success = 1.0)]
//! fn final_reward(t: &Trajectory) -> f64 {
//!     t.last_step_reward()
//! }
//!
//! use eef_runtime::Reward;
//! assert_eq!(final_reward.name(), "final_reward");
//! assert_eq!(final_reward.threshold(), 1.0);
//! ```

use crate::trajectory::Trajectory;

/// Scores finished trajectories.
pub trait Reward: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> &str;
    /// The score of a finished trajectory.
    fn score(&self, trajectory: &Trajectory) -> f64;
    /// The lowest score that counts as a success (default 1.0).
    fn threshold(&self) -> f64 {
        1.0
    }
    /// Whether `score` counts as a success (`score >= threshold - 1e-9`).
    fn is_success(&self, score: f64) -> bool {
        score >= self.threshold() - 1e-9
    }
}

/// The environment's last step reward; success at 1.0. WebShop's reward.
#[derive(Clone, Copy, Debug, Default)]
pub struct FinalReward;

impl Reward for FinalReward {
    fn name(&self) -> &str {
        "final_reward"
    }
    fn score(&self, t: &Trajectory) -> f64 {
        t.last_step_reward()
    }
}

/// The best step reward reached, divided by `scale`; success at `threshold`.
/// ScienceWorld's evaluation: `BestScore { scale: 100.0, threshold: 1.0 }`.
#[derive(Clone, Copy, Debug)]
pub struct BestScore {
    /// Divisor that brings the environment's score to 0-1.
    pub scale: f64,
    /// Success threshold on the scaled score.
    pub threshold: f64,
}

impl Reward for BestScore {
    fn name(&self) -> &str {
        "best_score"
    }
    fn score(&self, t: &Trajectory) -> f64 {
        t.best_step_reward() / self.scale
    }
    fn threshold(&self) -> f64 {
        self.threshold
    }
}

impl<R: Reward + ?Sized> Reward for std::sync::Arc<R> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn score(&self, t: &Trajectory) -> f64 {
        (**self).score(t)
    }
    fn threshold(&self) -> f64 {
        (**self).threshold()
    }
}

/// What a `#[reward]` function may return: a number, converted to `f64`. (Used by the macro's
/// generated code; not needed by hand.)
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a #[reward] function returns `{Self}`, which is not a score",
    label = "this return type",
    note = "return the reward as a number: `f64` (or `f32`, a small integer type, or `bool` for 1.0 / 0.0), where a success scores at least the `success` threshold (default 1.0)"
)]
pub trait IntoScore {
    /// The score as `f64`.
    fn into_score(self) -> f64;
}

macro_rules! into_score {
    ($($t:ty),*) => {$(
        impl IntoScore for $t {
            fn into_score(self) -> f64 {
                f64::from(self)
            }
        }
    )*};
}

into_score!(f64, f32, i8, i16, i32, u8, u16, u32, bool);

/// Scores `t` with `reward` and decides its success, turning a panic in the reward into
/// [`Error::Reward`](crate::Error::Reward) (naming the reward and the episode's task) instead of
/// a crashed worker.
pub fn score_checked(reward: &dyn Reward, t: &Trajectory) -> Result<(f64, bool), crate::Error> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let score = reward.score(t);
        (score, reward.is_success(score))
    }));
    outcome.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(a panic without a message)".to_owned());
        crate::Error::Reward { reward: reward.name().to_owned(), task: t.task_id.to_string(), message }
    })
}
