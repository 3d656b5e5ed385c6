//! Which simulator calls one environment step makes.
//!
//! The simulator's state after an action depends on the calls made, not only on the actions:
//! computing the valid actions draws from its global random generator whenever object names are
//! ambiguous (`InputParser.chooseUniqueReferents`), so the same actions with and without
//! valid-action fetches diverge on growing, pollinating and breeding tasks. Every step of an
//! episode, and of its replay, therefore makes the same calls, fixed by [`Calls`] and never by
//! whether the policy looks at the valid actions.

use serde::{Deserialize, Serialize};

use super::client::ScienceWorld;
use super::py4j::Py4jError;

/// The calls each step makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calls {
    /// Exactly the calls of the Python package's `env.step` (and of `env.reset`, which steps
    /// `look around`): `step`, `getScore`, `getCompleted`, `getNumMoves`, `freeActionLook`,
    /// `freeActionInventory`, `freeActionTaskDesc`, `getValidActionObjectCombinations`. Episodes
    /// follow the benchmark's own dynamics, as ETO and AgentGym ran it (default).
    #[default]
    Package,
    /// Only `step`, `getScore` and `getCompleted`: about 95 ms less per step, but a different
    /// simulator trajectory from the package's on tasks where valid-action fetches draw random
    /// numbers; the valid actions cannot be offered to the policy.
    Minimal,
}

/// What one step returned.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The step's observation.
    pub observation: String,
    /// The score, 0-100 (negative when the task failed).
    pub score: i64,
    /// Whether the simulator reports the task completed.
    pub completed: bool,
    /// Moves taken so far (with [`Calls::Package`]).
    pub moves: Option<i64>,
    /// The valid actions after the step, sorted (with [`Calls::Package`]).
    pub valid: Option<Vec<String>>,
}

impl Calls {
    /// Applies `action` with this step's calls.
    pub fn step(self, sim: &mut ScienceWorld, action: &str) -> Result<Observed, Py4jError> {
        let observation = sim.step(action)?;
        let score = sim.score()?;
        let completed = sim.completed()?;
        let (moves, valid) = match self {
            Calls::Package => {
                let moves = sim.num_moves()?;
                sim.free_look()?;
                sim.free_inventory()?;
                sim.free_task_description()?;
                (Some(moves), Some(sim.valid_actions()?))
            }
            Calls::Minimal => (None, None),
        };
        Ok(Observed { observation, score, completed, moves, valid })
    }
}
