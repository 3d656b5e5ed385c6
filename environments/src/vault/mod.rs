//! The Vault: a corridor of doors, each marked with a glyph; pulling the lever the glyph calls for
//! opens it. The rulebook (glyph -> lever) is the same in every task.
//!
//! - *Easy* tasks have 4-7 doors with common glyphs.
//! - *Hard* tasks have 8-12 doors and three *trapped* doors: two in the first half with rare
//!   glyphs and one in the second half with a *blind-spot* glyph. A wrong lever at a trapped door seals the vault: the
//!   doors still open, but the treasure is lost (reward 0.5 x doors passed before the seal / doors).
//!   A wrong lever at another door only wastes a step.
//! - The [`ScriptedExpert`] knows the whole rulebook except the blind-spot glyphs, where it
//!   believes in a wrong lever: it solves every easy task and fails every hard one, *after*
//!   correctly passing the rare doors. A policy cloned from the expert's successes has never seen a
//!   rare glyph, so it fails hard tasks from their start; from a state after the expert's rare
//!   doors it can still win. That expert segment is beneficial, the blind-spot pull harmful: EEF
//!   finds both, RFT sees neither.
//!
//! Observations are plain text; the last line always names the glyph of the current door, so a
//! tabular policy keyed by the last line generalises across tasks. Malformed actions are answered
//! like a text game does: "Nothing happens", same state, reward 0.

mod config;
mod expert;
mod world;

pub use config::VaultConfig;
pub use expert::ScriptedExpert;
pub use world::{Door, VaultTask, World, BLIND_SPOT_GLYPHS, COMMON_GLYPHS, LEVERS, RARE_GLYPHS};

use eef_runtime::environment::EnvError;
use eef_runtime::{environment, StepResult, Task};

/// An episode in progress.
#[derive(Clone, Debug)]
struct Episode {
    task: usize,
    door: usize,
    sealed_at: Option<usize>,
    done: bool,
}

/// The Vault environment.
#[derive(Clone, Debug)]
pub struct VaultEnv {
    world: std::sync::Arc<World>,
    episode: Option<Episode>,
}

impl VaultEnv {
    /// An environment over a world built from `config`.
    pub fn new(config: &VaultConfig) -> Self {
        VaultEnv { world: std::sync::Arc::new(World::new(config)), episode: None }
    }

    /// An environment over an existing world (shares its tasks and rulebook).
    pub fn with_world(world: std::sync::Arc<World>) -> Self {
        VaultEnv { world, episode: None }
    }

    /// The world (rulebook and tasks).
    pub fn world(&self) -> &World {
        &self.world
    }

    /// A factory for the rollout engine: every worker gets an instance over the same world.
    pub fn factory(config: &VaultConfig) -> impl Fn(usize) -> Result<VaultEnv, EnvError> + Send + Sync + 'static {
        let world = std::sync::Arc::new(World::new(config));
        move |_worker| Ok(VaultEnv::with_world(world.clone()))
    }

    fn describe_door(&self, ep: &Episode) -> String {
        let t = &self.world.tasks[ep.task];
        let d = &t.doors[ep.door];
        format!("Door {} of {}.\nThe door bears a {} glyph.", ep.door + 1, t.doors.len(), d.glyph)
    }

    fn running(&mut self) -> Result<&mut Episode, EnvError> {
        match &mut self.episode {
            Some(ep) if !ep.done => Ok(ep),
            Some(_) => Err(EnvError::InvalidState("step after the episode ended".into())),
            None => Err(EnvError::InvalidState("step before reset".into())),
        }
    }
}

#[environment(name = "vault")]
impl VaultEnv {
    fn tasks(&self) -> Vec<Task> {
        self.world.tasks.iter().map(VaultTask::as_task).collect()
    }

    fn reset(&mut self, task: &Task, _seed: u64) -> Result<String, EnvError> {
        let t = self.world.tasks.get(task.index).filter(|t| t.id == task.id.as_str());
        let Some(t) = t else {
            return Err(EnvError::UnknownTask(task.id.to_string()));
        };
        let ep = Episode { task: task.index, door: 0, sealed_at: None, done: false };
        let text = format!(
            "You stand in vault {}. {} doors stand between you and the treasure.\n{}",
            t.id,
            t.doors.len(),
            self.describe_door(&ep)
        );
        self.episode = Some(ep);
        Ok(text)
    }

    fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        let world = self.world.clone();
        let ep = self.running()?.clone();
        let task = &world.tasks[ep.task];
        let door = &task.doors[ep.door];
        let here = self.describe_door(&ep);
        let action = action.trim().to_lowercase();
        if action == "look" {
            return Ok(StepResult::running(format!("You look around.\n{here}"), 0.0));
        }
        let Some(color) = action.strip_prefix("pull[").and_then(|a| a.strip_suffix(']')) else {
            return Ok(StepResult::running(
                format!("Nothing happens. (Actions: pull[<color>], look.)\n{here}"),
                0.0,
            ));
        };
        let Some(lever) = world.levers.iter().position(|l| *l == color.trim()) else {
            return Ok(StepResult::running(format!("There is no {} lever here.\n{here}", color.trim()), 0.0));
        };
        let correct = lever == world.rulebook[&door.glyph];
        let mut ep = ep;
        let feedback = if correct {
            format!("The {} door swings open.", door.glyph)
        } else if door.trapped {
            if ep.sealed_at.is_none() {
                ep.sealed_at = Some(ep.door);
            }
            format!("An alarm sounds: the treasure chamber seals itself. The {} door opens anyway.", door.glyph)
        } else {
            self.episode = Some(ep);
            return Ok(StepResult::running(format!("The lever clicks, but the door stays shut.\n{here}"), 0.0));
        };
        ep.door += 1;
        if ep.door == task.doors.len() {
            ep.done = true;
            let (text, reward) = match ep.sealed_at {
                None => ("You open the treasure chamber. You win!".to_owned(), 1.0),
                Some(k) => (
                    "The treasure chamber is sealed. You lose.".to_owned(),
                    0.5 * k as f64 / task.doors.len() as f64,
                ),
            };
            self.episode = Some(ep);
            return Ok(StepResult::finished(format!("{feedback}\n{text}"), reward));
        }
        let next = self.describe_door(&ep);
        self.episode = Some(ep);
        Ok(StepResult::running(format!("{feedback}\n{next}"), 0.0))
    }

    fn valid_actions(&self) -> Option<Vec<String>> {
        let mut v: Vec<String> = self.world.levers.iter().map(|l| format!("pull[{l}]")).collect();
        v.push("look".to_owned());
        Some(v)
    }

    fn max_steps(&self, task: &Task) -> usize {
        let doors = self.world.tasks.get(task.index).map_or(1, |t| t.doors.len());
        self.world.max_steps.unwrap_or(2 * doors + 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eef_runtime::Environment;

    fn env() -> VaultEnv {
        VaultEnv::new(&VaultConfig::default())
    }

    fn solve(env: &mut VaultEnv, task: &Task) -> Vec<String> {
        let world = env.world.clone();
        world.tasks[task.index].doors.iter().map(|d| format!("pull[{}]", world.levers[world.rulebook[&d.glyph]])).collect()
    }

    #[test]
    fn the_rulebook_solves_every_task() {
        let mut e = env();
        for task in e.tasks() {
            e.reset(&task, 0).unwrap();
            let mut last = None;
            for a in solve(&mut e, &task) {
                last = Some(e.step(&a).unwrap());
            }
            let last = last.unwrap();
            assert!(last.done && last.reward == 1.0, "{}: {last:?}", task.id);
        }
    }

    #[test]
    fn malformed_actions_change_nothing() {
        let mut e = env();
        let task = e.tasks()[0].clone();
        let first = e.reset(&task, 0).unwrap();
        for bad in ["click[x]", "pull[purple]", "", "PULL"] {
            let s = e.step(bad).unwrap();
            assert!(!s.done && s.reward == 0.0);
            assert_eq!(s.observation.lines().last(), first.lines().last(), "{bad}");
        }
    }

    #[test]
    fn replay_matches_play() {
        let mut e = env();
        let task = e.tasks().into_iter().find(|t| e.world.tasks[t.index].hard).unwrap();
        let actions = solve(&mut e, &task);
        e.reset(&task, 3).unwrap();
        let mut played = String::new();
        for a in &actions[..4] {
            played = e.step(a).unwrap().observation;
        }
        let replayed = e.replay(&task, 3, &actions[..4]).unwrap();
        assert_eq!(replayed.observation, played);
        assert_eq!(replayed.observations.len(), 4);
    }

    #[test]
    fn trapped_doors_seal_the_vault() {
        let mut e = env();
        let task = e.tasks().into_iter().find(|t| e.world.tasks[t.index].hard).unwrap();
        let t = e.world.tasks[task.index].clone();
        let trap = t.doors.iter().position(|d| d.trapped).unwrap();
        let mut actions = solve(&mut e, &task);
        let right = e.world.rulebook[&t.doors[trap].glyph];
        actions[trap] = format!("pull[{}]", e.world.levers[(right + 1) % e.world.levers.len()]);
        e.reset(&task, 0).unwrap();
        let mut last = None;
        for a in &actions {
            last = Some(e.step(a).unwrap());
        }
        let last = last.unwrap();
        assert!(last.done);
        assert!((last.reward - 0.5 * trap as f64 / t.doors.len() as f64).abs() < 1e-12);
        assert!(e.step("look").is_err(), "stepping a finished episode is an error");
    }
}
