//! ScienceWorld tasks: ETO's split, task names and per-task step limits.

use std::path::{Path, PathBuf};

/// One task variation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SciTask {
    /// ETO's name, e.g. `task-10-measure-melting-point-(known-substance)`.
    pub name: String,
    /// The simulator's name, e.g. `measure-melting-point-known-substance`.
    pub simulator_name: String,
    /// The variation index.
    pub variation: usize,
}

impl SciTask {
    /// A task from ETO's name and a variation.
    pub fn new(name: &str, variation: usize) -> Self {
        SciTask { name: name.to_owned(), simulator_name: simulator_name(name), variation }
    }

    /// The runtime's id: `<name>/<variation>`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.name, self.variation)
    }
}

/// The simulator's name for ETO's task name: drops the `task-<n>-` prefix and parentheses, and
/// fixes the old `mendellian` spelling (as the Python package's `infer_task` does).
pub fn simulator_name(eto: &str) -> String {
    let mut s = eto;
    if let Some(rest) = s.strip_prefix("task-") {
        let end = rest.find('-').unwrap_or(0);
        if end > 0 && rest[..end].chars().all(|c| c.is_ascii_digit() || c == 'a' || c == 'b') {
            s = &rest[end + 1..];
        }
    }
    s.replace(['(', ')'], "").replace("mendellian", "mendelian")
}

/// ETO's step limit for a task type (by simulator name); `None` for unknown names.
pub fn step_limit(simulator_name: &str) -> Option<usize> {
    Some(match simulator_name {
        "boil" => 100,
        "change-the-state-of-matter-of" | "freeze" | "melt" => 80,
        "measure-melting-point-known-substance" | "measure-melting-point-unknown-substance" => 120,
        "use-thermometer" => 30,
        "power-component" => 20,
        "power-component-renewable-vs-nonrenewable-energy" => 30,
        "test-conductivity" | "test-conductivity-of-unknown-substances" => 30,
        "find-animal" | "find-living-thing" | "find-non-living-thing" | "find-plant" => 15,
        "grow-fruit" => 60,
        "grow-plant" => 30,
        "chemistry-mix" => 60,
        "chemistry-mix-paint-secondary-color" => 15,
        "chemistry-mix-paint-tertiary-color" => 30,
        "lifespan-longest-lived" | "lifespan-shortest-lived" => 10,
        "lifespan-longest-lived-then-shortest-lived" => 12,
        "identify-life-stages-1" | "identify-life-stages-2" => 30,
        "inclined-plane-determine-angle" | "inclined-plane-friction-named-surfaces" | "inclined-plane-friction-unnamed-surfaces" => 40,
        "mendelian-genetics-known-plant" | "mendelian-genetics-unknown-plant" => 50,
        _ => return None,
    })
}

/// Reads one of ETO's split files: a JSON list of `[task name, variation]`.
pub fn read_split(path: &Path) -> Result<Vec<SciTask>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: {e} (ETO's split files live in shared/data/sciworld beside the repository; set EEF_SHARED or [environment] split_dir)", path.display()))?;
    let pairs: Vec<(String, usize)> = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(pairs.iter().map(|(n, v)| SciTask::new(n, *v)).collect())
}

/// Where ETO's split files are by default: `$EEF_SHARED/data/sciworld`, else the `shared/`
/// folder beside the repository.
pub fn default_split_dir() -> PathBuf {
    crate::shared_dir().join("data").join("sciworld")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulator_names() {
        assert_eq!(simulator_name("task-1-boil"), "boil");
        assert_eq!(simulator_name("task-2a-test-conductivity"), "test-conductivity");
        assert_eq!(simulator_name("task-10-measure-melting-point-(known-substance)"), "measure-melting-point-known-substance");
        assert_eq!(simulator_name("task-6-lifespan-(longest-lived-then-shortest-lived)"), "lifespan-longest-lived-then-shortest-lived");
        assert_eq!(simulator_name("boil"), "boil");
    }

    #[test]
    fn every_task_of_etos_split_has_a_step_limit() {
        let dir = default_split_dir();
        let mut n = 0;
        for f in ["eto_train_indices.json", "eto_dev_seen_indices.json", "eto_test_unseen_indices.json"] {
            let tasks = read_split(&dir.join(f)).unwrap();
            n += tasks.len();
            for t in tasks {
                let limit = step_limit(&t.simulator_name);
                assert!(matches!(limit, Some(10..=120)), "{} -> {:?}", t.name, limit);
            }
        }
        assert_eq!(n, 1483 + 194 + 211);
    }
}
