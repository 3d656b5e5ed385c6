//! `eef train-node`: this machine's devices join the data-parallel training of a driver on
//! another machine (`[policy.train.cluster]`; see [`eef_runtime::model::data_parallel::cluster`]).

use std::path::Path;

use eef_runtime::model::LmSettings;
use eef_runtime::{Error, ExperimentConfig};

/// Serves training phases on `listen` with the `[policy]` backend of `config`, on `devices`
/// (empty: `[policy.train] devices`), the tensor-data service at `address`, until the process
/// ends.
pub fn run(config: &Path, listen: &str, address: &str, devices: &[usize]) -> Result<String, Error> {
    let config = ExperimentConfig::from_file(config)?;
    let settings: LmSettings = config.policy()?;
    eef_runtime::model::data_parallel::node::run_node(&settings, devices, listen, address).map_err(|e| Error::Policy(eef_runtime::policy::PolicyError::Other(format!("eef train-node: {e}"))))?;
    Ok(String::new())
}
