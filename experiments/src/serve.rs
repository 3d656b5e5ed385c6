//! `eef serve-env`: one of this project's environments behind AgentGym's environment-server
//! protocol ([`eef_runtime::remote`]), for rollouts from other hosts.

use std::path::Path;

use eef_environments::sciworld::{SciWorldConfig, SciWorldEnv};
use eef_environments::vault::{VaultConfig, VaultEnv};
use eef_environments::webshop::WebShopEnv;
use eef_runtime::remote::EnvServer;
use eef_runtime::{Error, ExperimentConfig};

/// The environments `eef serve-env` serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ServedEnv {
    /// The built-in Vault world.
    Vault,
    /// WebShop (webshop-synth, or WebShop's own data via `[environment] data_dir`).
    Webshop,
    /// ScienceWorld (the real simulator; scripts/setup-scienceworld.sh first).
    Sciworld,
}

/// Serves `env`, configured by `config`'s `[environment]` (defaults without a file), on `addr`
/// with `threads` handler threads, until the process ends. Prints `listening on http://ADDR`
/// first (with `addr` port 0, the port picked).
pub fn run(env: ServedEnv, config: Option<&Path>, addr: &str, threads: usize) -> Result<String, Error> {
    let config = match config {
        Some(p) => ExperimentConfig::from_file(p)?,
        None => ExperimentConfig::default(),
    };
    let server = match env {
        ServedEnv::Vault => {
            let c: VaultConfig = config.environment()?;
            EnvServer::bind(addr, VaultEnv::factory(&c))?
        }
        ServedEnv::Webshop => {
            let s: crate::webshop::Settings = config.environment()?;
            EnvServer::bind(addr, WebShopEnv::factory(&s.env)?)?
        }
        ServedEnv::Sciworld => {
            let c: SciWorldConfig = config.environment()?;
            EnvServer::bind(addr, SciWorldEnv::factory(&c)?)?
        }
    };
    println!("listening on http://{}", server.addr());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    server.run(threads);
    Ok(String::new())
}
