//! The experiment configuration, read from TOML with defaults for everything.
//!
//! ```toml
//! [experiment]
//! name = "vault-eef"
//! seed = 7
//! iterations = 3
//!
//! [rollout]
//! concurrency = 8
//! temperature = 0.7
//!
//! [[methods]]
//! label = "EEF"
//! selector = "eef"
//!
//! [eef]
//! states = 5
//! ```
//!
//! Errors name the file, line and column, e.g.
//! `experiments/vault.toml:4:14: invalid type: string "three", expected usize`.

use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::policy::TrainConfig;
use crate::rollout::RolloutConfig;
use crate::selection::{Eef, Rft};
use crate::task::Split;

/// A configuration error with its position in the TOML source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", path.display(), if *line > 0 { format!(":{line}:{column}") } else { String::new() })]
pub struct ConfigError {
    /// The file (or `<string>`).
    pub path: PathBuf,
    /// 1-based line (0 if unknown).
    pub line: usize,
    /// 1-based column (0 if unknown).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    fn from_toml(path: &Path, source: &str, e: &toml::de::Error) -> Self {
        let (line, column) = e.span().map_or((0, 0), |s| line_column(source, s.start));
        ConfigError { path: path.to_owned(), line, column, message: e.message().trim().to_owned() }
    }

    /// An error not tied to a position.
    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        ConfigError { path: path.to_owned(), line: 0, column: 0, message: message.into() }
    }
}

/// 1-based line and column (in characters) of byte offset `offset` in `source`.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Where each iteration's training starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainFrom {
    /// A fresh base policy trained on the accumulated training set (STaR/RFT practice; default).
    #[default]
    Base,
    /// The SFT checkpoint.
    Sft,
    /// The previous iteration's policy.
    Previous,
}

/// `[experiment]`: the run as a whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Name of the run; its directory is `<run_dir>/<name>`.
    pub name: String,
    /// Master seed: every seed of the run derives from it.
    pub seed: u64,
    /// Parent directory of run directories.
    pub run_dir: PathBuf,
    /// Explore-select-train iterations per method (paper: 3).
    pub iterations: usize,
    /// Where each iteration's supervised training starts (a method that trains by preference
    /// alone, `eto`, always continues from the previous iteration's model:
    /// [`crate::selection::Training::Preferences`]).
    pub train_from: TrainFrom,
    /// Whether each iteration trains on everything selected so far (one solution per important
    /// state, the first found) rather than on this iteration's selection alone (`eto` always
    /// trains on its iteration's pairs alone, as ETO does).
    pub accumulate: bool,
    /// Use at most this many training tasks (all if absent).
    pub max_train_tasks: Option<usize>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            name: "experiment".into(),
            seed: 0,
            run_dir: PathBuf::from("runs"),
            iterations: 3,
            train_from: TrainFrom::Base,
            accumulate: true,
            max_train_tasks: None,
        }
    }
}

/// `[expert]`: collecting expert trajectories.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpertConfig {
    /// Expert trajectories per training task.
    pub samples: usize,
    /// The expert's sampling temperature.
    pub temperature: f32,
    /// Read expert trajectories from this JSONL file instead of running the expert.
    pub from_file: Option<PathBuf>,
    /// Several expert data sets in one run instead (e.g. GPT-4's and GPT-3.5's trajectories, as
    /// the paper's best row): each read from its file and tagged with its `name`
    /// (`Trajectory::provenance`); `[[methods]] experts` selects which a method learns from.
    pub sources: Vec<ExpertSource>,
}

/// One `[[expert.sources]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpertSource {
    /// The tag its trajectories carry, and the name methods select it by.
    pub name: String,
    /// A JSONL file of trajectories.
    pub from_file: PathBuf,
}

impl Default for ExpertConfig {
    fn default() -> Self {
        ExpertConfig { samples: 1, temperature: 0.0, from_file: None, sources: Vec::new() }
    }
}

/// `[eval]`: evaluation after SFT and after every iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// The split evaluated.
    pub split: Split,
    /// Evaluate at most this many tasks (all if absent).
    pub max_tasks: Option<usize>,
    /// Episodes per task.
    pub samples: usize,
    /// The dev split each method's best iteration is chosen on (never the test split):
    /// absent, the environment's own dev tasks when it has them (WebShop's human goals
    /// 500..1500), else none (the final iteration is reported); `n`, at most `n` of the
    /// environment's dev tasks, or, when it has none, the last `n` training tasks, held out from
    /// training.
    pub dev_tasks: Option<usize>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig { split: Split::Test, max_tasks: None, samples: 1, dev_tasks: None }
    }
}

/// One entry of `[[methods]]`: a tuning method to run and compare.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodConfig {
    /// Label in reports (defaults to the selector's name in upper case).
    #[serde(default)]
    pub label: Option<String>,
    /// Selector name: `sft`, `rft`, `eef`, `eto`, or one registered with
    /// [`crate::Experiment::selector`].
    pub selector: String,
    /// Explorations per planned start state (RFT x6: 6).
    #[serde(default = "one")]
    pub samples: usize,
    /// Sampling temperature of this method's explorations (defaults to the selector's own, e.g.
    /// 0 for `eto`, else `[rollout] temperature`).
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Iterations for this method (defaults to `[experiment] iterations`; `sft` always has 0).
    #[serde(default)]
    pub iterations: Option<usize>,
    /// Explore exactly as many episodes per iteration as this run's method with the named
    /// selector does (its `params` and `samples`; the selector at its defaults, once per start,
    /// when no method runs it), e.g. `"eef"`: budget-matched RFT, spread over this method's own
    /// start states instead of `samples` each.
    #[serde(default)]
    pub match_budget_of: Option<String>,
    /// The expert sources (`[[expert.sources]]` names) this method selects from (all when
    /// absent). SFT, shared by every method, learns from all.
    #[serde(default)]
    pub experts: Option<Vec<String>>,
    /// The selector's parameters (`params = { max_turns = 10 }`), read into its own type by
    /// [`crate::Selector::configure`] with positioned errors; for `eef` and `rft`, overrides of
    /// their `[eef]` / `[rft]` sections.
    #[serde(default)]
    pub params: Option<toml::Spanned<toml::Value>>,
}

fn one() -> usize {
    1
}

impl MethodConfig {
    /// A method with default settings.
    pub fn new(selector: &str) -> Self {
        MethodConfig { label: None, selector: selector.into(), samples: 1, temperature: None, iterations: None, match_budget_of: None, experts: None, params: None }
    }

    /// The label used in reports and directory names.
    pub fn label(&self) -> String {
        match &self.label {
            Some(l) => l.clone(),
            None if self.match_budget_of.is_some() => {
                format!("{} ({} budget)", self.selector.to_uppercase(), self.match_budget_of.as_deref().unwrap_or_default().to_uppercase())
            }
            None if self.samples > 1 => format!("{} x{}", self.selector.to_uppercase(), self.samples),
            None => self.selector.to_uppercase(),
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentConfig {
    /// `[experiment]`
    pub experiment: RunConfig,
    /// `[expert]`
    pub expert: ExpertConfig,
    /// `[rollout]`
    pub rollout: RolloutConfig,
    /// `[train]`
    pub train: TrainConfig,
    /// `[eval]`
    pub eval: EvalConfig,
    /// `[rft]`: settings of the built-in `rft` selector.
    pub rft: Rft,
    /// `[eef]`: settings of the built-in `eef` selector.
    pub eef: Eef,
    /// `[[methods]]`: the methods compared (default: SFT, RFT, EEF, ETO).
    pub methods: Vec<MethodConfig>,
    /// `[environment]`: free-form settings for the environment, read with
    /// [`ExperimentConfig::environment`].
    pub environment: toml::Table,
    /// `[policy]`: free-form settings for the policy (e.g. the language model), read with
    /// [`ExperimentConfig::policy`].
    pub policy: toml::Table,
    /// The TOML source this was read from (for positioned errors in sections read later).
    #[serde(skip)]
    source: Option<(PathBuf, String)>,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        ExperimentConfig {
            experiment: RunConfig::default(),
            expert: ExpertConfig::default(),
            rollout: RolloutConfig::default(),
            train: TrainConfig::default(),
            eval: EvalConfig::default(),
            rft: Rft::default(),
            eef: Eef::default(),
            methods: vec![MethodConfig::new("sft"), MethodConfig::new("rft"), MethodConfig::new("eef"), MethodConfig::new("eto")],
            environment: toml::Table::new(),
            policy: toml::Table::new(),
            source: None,
        }
    }
}

#[derive(Deserialize)]
struct EnvironmentSection<T> {
    environment: Option<T>,
}

#[derive(Deserialize)]
struct PolicySection<T> {
    policy: Option<T>,
}

impl ExperimentConfig {
    /// Reads a configuration file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::invalid(path, format!("cannot read the configuration: {e}")))?;
        Self::from_toml(path, &text)
    }

    /// Parses configuration text; `path` is only used in error messages.
    pub fn from_toml(path: impl AsRef<Path>, text: &str) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let mut config: ExperimentConfig =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
        config.source = Some((path.to_owned(), text.to_owned()));
        config.validate()?;
        Ok(config)
    }

    /// An error positioned at the first occurrence of `needle` in the configuration's source
    /// (line and column 0 when the configuration was not read from text).
    pub fn error_at(&self, needle: &str, message: String) -> ConfigError {
        let path = self.source.as_ref().map_or_else(|| PathBuf::from("<config>"), |(p, _)| p.clone());
        let (line, column) = self.source.as_ref().and_then(|(_, s)| s.find(needle).map(|o| line_column(s, o))).unwrap_or((0, 0));
        ConfigError { path, line, column, message }
    }

    /// Method `m`'s `params` as its selector reads them, positioned in the configuration file.
    pub fn method_params<'a>(&'a self, m: &'a MethodConfig) -> crate::selection::Params<'a> {
        use crate::selection::Params;
        let Some(p) = &m.params else { return Params::absent(m.label()) };
        match &self.source {
            // An inline table (`params = { .. }`) is re-read from its text, so an error names
            // the offending key's line and column; a `[methods.params]` table points at itself.
            Some((path, text)) if text.get(p.span()).is_some_and(|t| t.trim_start().starts_with('{')) => {
                Params::from_text(m.label(), path, text, p.span())
            }
            Some((path, text)) => Params::from_value(m.label(), path, p.get_ref(), Some((text, p.span().start))),
            None => Params::from_value(m.label(), Path::new("<config>"), p.get_ref(), None),
        }
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at = |needle: &str, message: String| self.error_at(needle, message);
        if self.rollout.concurrency == 0 {
            return Err(at("concurrency", "rollout.concurrency must be at least 1".into()));
        }
        let share = self.rollout.max_broken_share;
        if !(0.0..=1.0).contains(&share) {
            return Err(at("max_broken_share", format!("rollout.max_broken_share is a share of a phase's episodes, between 0 and 1, not {share}")));
        }
        if self.train.iteration_epochs == Some(0) {
            return Err(at("iteration_epochs", "train.iteration_epochs must be at least 1 (leave it out to train the iterations for `epochs`)".into()));
        }
        if self.methods.is_empty() {
            return Err(at("methods", "list at least one method in [[methods]]".into()));
        }
        for m in &self.methods {
            if m.samples == 0 {
                return Err(at("samples", format!("method {:?}: samples must be at least 1", m.label())));
            }
            if let Some(t) = m.temperature.filter(|t| !(t.is_finite() && *t >= 0.0)) {
                return Err(at("temperature", format!("method {:?}: temperature must be a finite number of at least 0 (0 = greedy), not {t}", m.label())));
            }
        }
        let mut names: Vec<&str> = self.expert.sources.iter().map(|s| s.name.as_str()).collect();
        if self.expert.from_file.is_some() && !names.is_empty() {
            return Err(at("sources", "[expert] from_file and [[expert.sources]] both name expert data; list the file as one of the sources".into()));
        }
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(at("sources", format!("two expert sources are named {:?}", w[0])));
        }
        for m in &self.methods {
            for e in m.experts.iter().flatten() {
                if !names.contains(&e.as_str()) {
                    return Err(at(
                        &format!("\"{e}\""),
                        format!("method {:?} selects the expert source {e:?}, which [[expert.sources]] does not name (known: {})", m.label(), names.join(", ")),
                    ));
                }
            }
        }
        let mut labels: Vec<String> = self.methods.iter().map(MethodConfig::label).collect();
        labels.sort();
        if let Some(w) = labels.windows(2).find(|w| w[0] == w[1]) {
            return Err(at("methods", format!("two methods are labelled {:?}; give one a distinct `label`", w[0])));
        }
        Ok(())
    }

    /// Reads the `[environment]` section as `T` (all-default if the section is absent), with
    /// positioned errors.
    pub fn environment<T: DeserializeOwned + Default>(&self) -> Result<T, ConfigError> {
        self.section(&self.environment, |s: EnvironmentSection<T>| s.environment)
    }

    /// Reads the `[policy]` section as `T` (all-default if absent), with positioned errors.
    pub fn policy<T: DeserializeOwned + Default>(&self) -> Result<T, ConfigError> {
        self.section(&self.policy, |s: PolicySection<T>| s.policy)
    }

    /// Reads a free-form section as `T`: from the TOML source when there is one (so errors carry
    /// line and column), else from the parsed `table`.
    fn section<W: DeserializeOwned, T: DeserializeOwned + Default>(&self, table: &toml::Table, pick: impl FnOnce(W) -> Option<T>) -> Result<T, ConfigError> {
        match &self.source {
            Some((path, text)) => {
                let wrapper: W = toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
                Ok(pick(wrapper).unwrap_or_default())
            }
            None => T::deserialize(toml::Value::Table(table.clone())).map_err(|e| ConfigError::invalid(Path::new("<config>"), e.to_string())),
        }
    }

    /// The run directory: `<run_dir>/<name>`.
    pub fn run_path(&self) -> PathBuf {
        self.experiment.run_dir.join(&self.experiment.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply() {
        let c = ExperimentConfig::from_toml("x.toml", "[experiment]\nname = \"a\"\n").unwrap();
        assert_eq!(c.experiment.name, "a");
        assert_eq!(c.eef.states, 5);
        let selectors: Vec<&str> = c.methods.iter().map(|m| m.selector.as_str()).collect();
        assert_eq!(selectors, ["sft", "rft", "eef", "eto"]);
    }

    #[test]
    fn type_errors_have_line_and_column() {
        let err = ExperimentConfig::from_toml("x.toml", "[experiment]\nname = \"a\"\niterations = \"three\"\n")
            .unwrap_err();
        assert_eq!((err.line, err.column), (3, 14), "{err}");
        assert!(err.to_string().starts_with("x.toml:3:14:"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_position() {
        let err = ExperimentConfig::from_toml("x.toml", "[eef]\nstate = 5\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.message.contains("unknown field `state`"), "{err}");
        assert!(err.message.contains("states"), "lists the expected fields: {err}");
    }

    #[test]
    fn syntax_errors_have_position() {
        let err = ExperimentConfig::from_toml("x.toml", "[experiment\nname = 1\n").unwrap_err();
        assert_eq!(err.line, 1, "{err}");
    }

    #[test]
    fn semantic_errors() {
        let err = ExperimentConfig::from_toml("x.toml", "[rollout]\nconcurrency = 0\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err = ExperimentConfig::from_toml(
            "x.toml",
            "[[methods]]\nselector = \"rft\"\n[[methods]]\nselector = \"rft\"\n",
        )
        .unwrap_err();
        assert!(err.message.contains("distinct `label`"), "{err}");
    }

    #[test]
    fn environment_section_is_typed_and_positioned() {
        #[derive(Deserialize, Default, Debug)]
        #[serde(deny_unknown_fields)]
        struct Env {
            #[serde(default)]
            tasks: usize,
        }
        let c = ExperimentConfig::from_toml("x.toml", "[environment]\ntasks = 4\n").unwrap();
        assert_eq!(c.environment::<Env>().unwrap().tasks, 4);
        let c = ExperimentConfig::from_toml("x.toml", "[environment]\ntask = 4\n").unwrap();
        let err = c.environment::<Env>().unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn method_labels() {
        assert_eq!(MethodConfig::new("eef").label(), "EEF");
        assert_eq!(MethodConfig { samples: 6, ..MethodConfig::new("rft") }.label(), "RFT x6");
    }
}
