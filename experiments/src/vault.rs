//! SFT vs RFT vs EEF on the built-in Vault environment, with the tabular policy (`vault_eef`,
//! seconds) or the burn Llama (`vault_lm`).

use eef_environments::vault::{ScriptedExpert, VaultConfig, VaultEnv, World};
use eef_runtime::policy::TabularPolicy;
use eef_runtime::reward::FinalReward;
use eef_runtime::{Error, Experiment, ExperimentConfig};

/// The default configuration file of this experiment.
pub const DEFAULT_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/vault.toml");

/// Builds the Vault experiment: the environment from `[environment]`, the scripted expert, the
/// tabular policy (count-based, exact about the loss mask, so selection effects show in seconds)
/// and the final reward (success = 1).
pub fn experiment(config: ExperimentConfig) -> Result<Experiment, Error> {
    let vault: VaultConfig = config.environment()?;
    let expert = ScriptedExpert::new(&World::new(&vault));
    Ok(Experiment::new(config)
        .environment(VaultEnv::factory(&vault))
        .expert(expert)
        .policy(TabularPolicy::default)
        .reward(FinalReward))
}

/// The configuration of the Vault experiment with the language-model policy.
pub const LM_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/vault-lm.toml");

/// The Vault experiment with the burn Llama policy (`[policy] backend`, CPU by default), trained from scratch with a
/// BPE tokenizer learned from the expert data; `[policy]` holds its settings.
pub fn experiment_lm(config: ExperimentConfig) -> Result<Experiment, Error> {
    let vault: VaultConfig = config.environment()?;
    let policy = crate::lm::policy_factory(&config, None)?;
    let expert = ScriptedExpert::new(&World::new(&vault));
    Ok(Experiment::new(config)
        .environment(VaultEnv::factory(&vault))
        .expert(expert)
        .policy(policy)
        .reward(FinalReward))
}
