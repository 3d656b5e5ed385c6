//! The language-model policy of an experiment, from its `[policy]` section.

use eef_runtime::model::{lm_policy, LmSettings};
use eef_runtime::policy::Policy;
use eef_runtime::{Error, ExperimentConfig};

/// Reads `[policy]` as [`LmSettings`] and returns a factory of fresh [`eef_runtime::model::LmPolicy`]s
/// on the backend it names. The backend is checked here, so a missing cargo feature (e.g.
/// `backend = "cuda"` without `--features cuda`) is reported before anything runs.
pub fn policy_factory(config: &ExperimentConfig) -> Result<impl Fn() -> Box<dyn Policy> + Send + Sync + 'static, Error> {
    let settings: LmSettings = config.policy()?;
    settings.validate().map_err(|e| Error::Setup(format!("[policy]: {e}")))?;
    let check = lm_policy(settings.clone()).map_err(|e| Error::Setup(format!("[policy] backend: {e}")))?;
    drop(check);
    Ok(move || match lm_policy(settings.clone()) {
        Ok(p) => p,
        // The same settings were accepted above; the backend set cannot change in between.
        Err(e) => unreachable!("backend accepted at start-up: {e}"),
    })
}
