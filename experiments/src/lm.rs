//! The language-model policy of an experiment, from its `[policy]` section.

use eef_runtime::model::{lm_policy, LmSettings};
use eef_runtime::policy::{Policy, ServedPolicy};
use eef_runtime::{Error, ExperimentConfig};

/// Reads `[policy]` as [`LmSettings`] and returns a factory of fresh [`eef_runtime::model::LmPolicy`]s
/// on the backend it names. The backend is checked here, so a missing cargo feature (e.g.
/// `backend = "cuda"` without `--features cuda`) is reported before anything runs.
///
/// `system_prompt` is the environment's own prompt (its task, its actions and the ReAct answer
/// format). A policy that starts from a pretrained model (`[policy] init`) gets it as its system
/// message unless `[policy.chat] system_prompt` says otherwise (`""` for none); a model trained
/// from scratch gets none by default.
pub fn policy_factory(config: &ExperimentConfig, system_prompt: Option<&str>) -> Result<impl Fn() -> Box<dyn Policy> + Send + Sync + 'static, Error> {
    let mut settings: LmSettings = config.policy()?;
    settings.validate().map_err(|e| Error::Setup(format!("[policy]: {e}")))?;
    if settings.init.is_some() && settings.chat.system_prompt.is_none() {
        settings.chat.system_prompt = system_prompt.map(str::to_owned);
    }
    let check = lm_policy(settings.clone()).map_err(|e| Error::Setup(format!("[policy] backend: {e}")))?;
    drop(check);
    let system = system_prompt.unwrap_or_default().to_owned();
    Ok(move || {
        let policy = match lm_policy(settings.clone()) {
            Ok(p) => p,
            // The same settings were accepted above; the backend set cannot change in between.
            Err(e) => unreachable!("backend accepted at start-up: {e}"),
        };
        match &settings.server {
            // Rollouts on the inference server, training here.
            Some(server) => Box::new(ServedPolicy::new(policy, server.clone(), system.clone())) as Box<dyn Policy>,
            None => policy,
        }
    })
}
