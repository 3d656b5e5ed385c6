//! SFT vs RFT vs EEF on WebShop: the real data when `[environment] data_dir` names it, the
//! `webshop-synth` catalog otherwise, with the heuristic shopper (or a chat model) as expert and
//! the burn Llama as the policy being tuned.

use eef_environments::webshop::{Shopper, ShopperConfig, WebShopConfig, WebShopEnv, SYSTEM_PROMPT};
use eef_runtime::policy::{ChatConfig, ChatPolicy, Policy};
use eef_runtime::remote::{AgentGymConfig, AgentGymFactory};
use eef_runtime::reward::FinalReward;
use eef_runtime::{Error, Experiment, ExperimentConfig};

/// The default (small, 2-core) configuration.
pub const DEFAULT_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/webshop.toml");

/// `[environment]` of a WebShop experiment: the environment's settings plus the expert's.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The environment.
    #[serde(flatten)]
    pub env: WebShopConfig,
    /// `[environment.expert]`: the heuristic shopper's imperfections.
    #[serde(default)]
    pub expert: ShopperConfig,
    /// `[environment.chat]`: use an OpenAI-compatible chat endpoint as the expert instead of the
    /// heuristic shopper (key from the environment variable it names).
    #[serde(default)]
    pub chat: Option<ChatConfig>,
    /// `[environment.remote]`: play on AgentGym-protocol servers (`eef serve-env --env webshop`
    /// on other hosts, or AgentGym's own WebShop server) instead of in process.
    #[serde(default)]
    pub remote: Option<AgentGymConfig>,
}

/// Builds the WebShop experiment: the environment, the expert (heuristic shopper or a chat
/// model), the burn Llama policy from `[policy]`, and WebShop's final reward (a win is reward 1).
pub fn experiment(config: ExperimentConfig) -> Result<Experiment, Error> {
    let settings: Settings = config.environment()?;
    let policy = crate::lm::policy_factory(&config, Some(SYSTEM_PROMPT))?;
    let label = if settings.env.data_dir.is_some() { "webshop" } else { "webshop-synth" };
    let mut note = match label {
        "webshop" => "WebShop, original data.".to_owned(),
        _ => "webshop-synth: a synthetic catalog built around WebShop's real instructions and attributes \
              (the 1000 product pages are not available here). These are not WebShop numbers."
            .to_owned(),
    };
    let expert: Box<dyn Policy> = match settings.chat {
        Some(chat) => Box::new(ChatPolicy::new(chat, SYSTEM_PROMPT)),
        None => Box::new(Shopper::new(settings.expert)),
    };
    let experiment = match settings.remote {
        Some(remote) => {
            let hosts = remote.servers.len();
            note = format!("{note} Played on {hosts} AgentGym-protocol environment server(s).");
            Experiment::new(config).environment(AgentGymFactory::new(AgentGymConfig { name: label.into(), ..remote })?)
        }
        None => Experiment::new(config).environment(WebShopEnv::factory(&settings.env)?),
    };
    Ok(experiment
        .expert(expert)
        .policy(policy)
        .reward(FinalReward)
        .note(note))
}
