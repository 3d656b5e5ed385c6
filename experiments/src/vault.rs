//! SFT vs RFT vs EEF on the built-in Vault environment with the tabular policy.

use eef_environments::vault::{ScriptedExpert, VaultConfig, VaultEnv, World};
use eef_runtime::policy::TabularPolicy;
use eef_runtime::reward::FinalReward;
use eef_runtime::{Error, Experiment, ExperimentConfig};

/// The default configuration file of this experiment.
pub const DEFAULT_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/vault.toml");

/// Builds the Vault experiment: the environment from `[environment]`, the scripted expert, the
/// tabular policy (until the burn transformer lands) and the final reward (success = 1).
pub fn experiment(config: ExperimentConfig) -> Result<Experiment, Error> {
    let vault: VaultConfig = config.environment()?;
    let expert = ScriptedExpert::new(&World::new(&vault));
    Ok(Experiment::new(config)
        .environment(VaultEnv::factory(&vault))
        .expert(expert)
        .policy(TabularPolicy::default)
        .reward(FinalReward))
}
