//! The checks that stop a run whose result would be meaningless — no tasks to train or test on,
//! duplicate task ids, an expert with no successes, a phase of mostly broken episodes — with an
//! error that names the cause and the fix ([`Error::Meaningless`]), instead of a report of
//! zeros.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::config::ExperimentConfig;
use crate::error::Error;
use crate::reward::Reward;
use crate::task::{Split, Task};
use crate::trajectory::{Termination, Trajectory};

/// `tasks by split: train 10, test 0` for error messages.
fn by_split(tasks: &[Task]) -> String {
    let mut counts: BTreeMap<Split, usize> = [(Split::Train, 0), (Split::Test, 0), (Split::Dev, 0)].into();
    for t in tasks {
        *counts.entry(t.split).or_default() += 1;
    }
    counts.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", ")
}

/// Every task id names one task (ids name episodes and run files).
pub(super) fn unique_task_ids(env: &str, tasks: &[Task]) -> Result<(), Error> {
    let mut seen: HashMap<&str, &Task> = HashMap::new();
    for t in tasks {
        if let Some(first) = seen.insert(t.id.as_str(), t) {
            return Err(Error::meaningless(
                format!("the environment {env:?} lists the task id {:?} twice (a {} task and a {} task): ids name episodes and run files, so one would overwrite the other", t.id.as_str(), first.split, t.split),
                "make the ids that tasks() returns unique, e.g. by prefixing the split or the data file",
            ));
        }
    }
    Ok(())
}

/// There is something to train on and something to test on.
pub(super) fn tasks(config: &ExperimentConfig, env: &str, all: &[Task], train: usize, eval: usize) -> Result<(), Error> {
    if all.is_empty() {
        return Err(Error::meaningless(
            format!("the environment {env:?} lists no tasks: its tasks() returned an empty list"),
            "make tasks() return the benchmark's tasks (check the path of the data it reads)",
        ));
    }
    if train == 0 {
        let (cause, fix) = if config.experiment.max_train_tasks == Some(0) {
            ("[experiment] max_train_tasks = 0 leaves no training tasks".to_owned(), "raise [experiment] max_train_tasks, or remove it to use every training task")
        } else if all.iter().any(|t| t.split == Split::Train) {
            ("[eval] dev_tasks holds out every training task".to_owned(), "lower [eval] dev_tasks")
        } else {
            (format!("the environment {env:?} has no training tasks ({})", by_split(all)), "give the tasks to learn from Split::Train in tasks()")
        };
        return Err(Error::meaningless(format!("no training tasks: {cause}; there is nothing to collect expert data on or to explore"), fix));
    }
    if eval == 0 {
        let split = config.eval.split;
        let (cause, fix) = if config.eval.max_tasks == Some(0) {
            ("[eval] max_tasks = 0".to_owned(), "raise [eval] max_tasks, or remove it to test on every task of the split".to_owned())
        } else {
            (
                format!("the environment {env:?} has no {split} tasks ({})", by_split(all)),
                format!("set [eval] split to a split the environment has, or give it {split} tasks in tasks()"),
            )
        };
        return Err(Error::meaningless(format!("no test tasks: {cause}; every method would score 0 on nothing"), fix));
    }
    Ok(())
}

/// How the episodes of `episodes` that are not evidence ended, most common first:
/// `policy_failed 173, env_failed 2`.
fn failure_counts(episodes: &[&Trajectory]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in episodes {
        *counts.entry(kind(&t.termination)).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

/// The termination's name as the trajectory files write it (its serde tag).
fn kind(t: &Termination) -> String {
    serde_json::to_value(t).ok().and_then(|v| v.get("kind").and_then(serde_json::Value::as_str).map(str::to_owned)).unwrap_or_default()
}

fn detail(t: &Termination) -> String {
    match t {
        Termination::EnvFailed(m) | Termination::PolicyFailed(m) => format!("{}: {}", kind(t), m.chars().take(300).collect::<String>()),
        Termination::ReplayDiverged { step } => format!("replay_diverged at turn {step}"),
        other => kind(other),
    }
}

/// At most `max_share` of a phase's episodes are broken (not evidence).
pub(super) fn broken_share(phase: &str, episodes: &[Trajectory], max_share: f64, file: &Path) -> Result<(), Error> {
    let broken: Vec<&Trajectory> = episodes.iter().filter(|t| !t.termination.is_evidence()).collect();
    if episodes.is_empty() || broken.is_empty() || broken.len() as f64 <= max_share * episodes.len() as f64 {
        return Ok(());
    }
    let first = broken[0];
    let fix = match first.termination {
        Termination::PolicyFailed(_) => "fix the policy's act_batch (one answer per request, no errors)",
        Termination::EnvFailed(_) => "fix the environment's reset/step (see the error above)",
        _ => "make the environment's replay deterministic (same actions, same observations), or set [rollout] verify_replay = false if the recorded observations are known to be rendered differently",
    };
    Err(Error::meaningless(
        format!(
            "{} of {} episodes of the phase {phase:?} broke ({}); the first, {}, ended with {}. Its numbers would describe the failures, not the method",
            broken.len(),
            episodes.len(),
            failure_counts(&broken),
            first.id,
            detail(&first.termination)
        ),
        format!(
            "{fix}; the episodes are in {}: remove it (or run with --fresh) after the fix so they run again. To accept more broken episodes, raise [rollout] max_broken_share (now {max_share})",
            file.display()
        ),
    ))
}

/// The expert succeeded somewhere: SFT, RFT's seed data and EEF's golden trajectories all come
/// from its successes.
pub(super) fn expert_successes(experts: &[Trajectory], train_tasks: usize, reward: &dyn Reward, dir: &Path) -> Result<(), Error> {
    if experts.iter().any(|t| t.success) {
        return Ok(());
    }
    let broken: Vec<&Trajectory> = experts.iter().filter(|t| !t.termination.is_evidence()).collect();
    let how = if experts.is_empty() {
        "there are no expert trajectories of the training tasks (a recorded file's task ids may not match the environment's)".to_owned()
    } else if broken.is_empty() {
        let best = experts.iter().map(|t| t.reward).fold(f64::NEG_INFINITY, f64::max);
        format!("its best score was {best:.3}, below the reward {:?}'s success threshold {}", reward.name(), reward.threshold())
    } else {
        format!("{} of its {} episodes broke ({})", broken.len(), experts.len(), failure_counts(&broken))
    };
    Err(Error::meaningless(
        format!("the expert succeeded on none of the {train_tasks} training tasks: {how}; SFT would train on nothing and every method would start from the untrained policy"),
        format!("check the expert (its episodes are in {}) and the reward's success threshold", dir.join("expert.jsonl").display()),
    ))
}
