//! The run directory: where every phase writes its trajectories, selections, checkpoints and
//! metrics, and what a resumed run reads back.
//!
//! ```text
//! <run_dir>/<name>/
//!   config.toml                 the configuration the run was started with
//!   expert.jsonl                expert trajectories on the training tasks
//!   expert-eval.jsonl           expert episodes on the evaluation tasks
//!   sft/checkpoint/             the policy after SFT
//!   sft/eval.jsonl, sft/iteration.json
//!   <method>/iter-<k>/explore.jsonl     every exploration episode (appended as they finish)
//!   <method>/iter-<k>/selection.jsonl   this iteration's selected examples, with loss masks
//!   <method>/iter-<k>/pairs.jsonl       preference pairs (ETO)
//!   <method>/iter-<k>/segments.jsonl    EEF's judged expert segments
//!   <method>/iter-<k>/dropped-probes.jsonl  EEF probes none of whose runs was evidence
//!   <method>/iter-<k>/dataset.jsonl     the training set used (accumulated)
//!   <method>/iter-<k>/checkpoint/       the policy after this iteration
//!   <method>/iter-<k>/eval.jsonl, iteration.json (written last: the iteration is complete)
//!   report.md, report.json
//! ```

use std::path::{Path, PathBuf};

use crate::config::ExperimentConfig;
use crate::error::Error;

/// Paths inside a run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

/// A label as a directory name: lower case, runs of other characters as `-`.
pub fn slug(label: &str) -> String {
    let mut s = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_owned()
}

fn comparable(config: &ExperimentConfig) -> Result<String, Error> {
    // Settings that do not change results may differ between a run and its resumption.
    // The iteration count only extends (or shortens) a run: finished iterations are kept.
    let mut c = config.clone();
    c.rollout.concurrency = 1;
    c.rollout.max_batch = 1;
    c.rollout.progress = false;
    c.experiment.iterations = 0;
    for m in &mut c.methods {
        m.iterations = None;
    }
    toml::to_string(&c).map_err(|e| Error::Setup(format!("cannot serialise the configuration: {e}")))
}

impl RunDir {
    /// Opens (creating if needed) the run directory for `config`. An existing directory must have
    /// been started with an equivalent configuration; `fresh` deletes it first.
    pub fn open(config: &ExperimentConfig, fresh: bool) -> Result<Self, Error> {
        let root = config.run_path();
        if fresh && root.exists() {
            std::fs::remove_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        }
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        let dir = RunDir { root };
        let path = dir.root.join("config.toml");
        let ours = comparable(config)?;
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let theirs = ExperimentConfig::from_toml(&path, &text).map_err(Error::Config)?;
            let theirs_c = comparable(&theirs)?;
            if theirs_c != ours {
                let was: Vec<&str> = theirs_c.lines().filter(|l| !ours.lines().any(|o| o == *l)).take(6).collect();
                let now: Vec<&str> = ours.lines().filter(|l| !theirs_c.lines().any(|o| o == *l)).take(6).collect();
                return Err(Error::Setup(format!(
                    "{} holds a run started with a different configuration (it had: {}; now: {}); resume it with that \
                     configuration, choose another [experiment] name, or start afresh (--fresh). Only the number of \
                     iterations may change between runs (it extends the run)",
                    dir.root.display(),
                    was.join(" | "),
                    now.join(" | ")
                )));
            }
            if theirs != *config {
                // Only the iteration counts changed: record the configuration now in force.
                let text = toml::to_string(config).map_err(|e| Error::Setup(e.to_string()))?;
                crate::jsonl::write_atomic(&path, text.as_bytes()).map_err(|e| Error::io(&path, e))?;
            }
        } else {
            let text = toml::to_string(config).map_err(|e| Error::Setup(e.to_string()))?;
            crate::jsonl::write_atomic(&path, text.as_bytes()).map_err(|e| Error::io(&path, e))?;
        }
        Ok(dir)
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A file or directory directly under the root.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The SFT phase's directory.
    pub fn sft(&self) -> PathBuf {
        self.root.join("sft")
    }

    /// An iteration's directory.
    pub fn iteration(&self, method_label: &str, iteration: usize) -> PathBuf {
        self.root.join(slug(method_label)).join(format!("iter-{iteration}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("RFT x6"), "rft-x6");
        assert_eq!(slug("EEF (GPT-4 data)"), "eef-gpt-4-data");
    }

    #[test]
    fn refuses_a_different_configuration_but_allows_other_concurrency() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = ExperimentConfig::default();
        c.experiment.run_dir = tmp.path().to_owned();
        RunDir::open(&c, false).unwrap();
        c.rollout.concurrency = 3;
        RunDir::open(&c, false).unwrap();
        c.experiment.seed = 99;
        let err = RunDir::open(&c, false).unwrap_err().to_string();
        assert!(err.contains("different configuration"), "{err}");
        RunDir::open(&c, true).unwrap();
    }
}
