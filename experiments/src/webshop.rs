//! SFT vs RFT vs EEF on WebShop: the real data when `[environment] data_dir` names it, the
//! `webshop-synth` catalog otherwise, with the heuristic shopper as expert.

use eef_environments::webshop::{Shopper, ShopperConfig, WebShopConfig, WebShopEnv, SYSTEM_PROMPT};
use eef_runtime::policy::{ChatConfig, ChatPolicy, Policy, TabularPolicy};
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
}

/// The tabular policy's state: the page without the instruction (which differs per goal).
pub fn page_key(observation: &str) -> String {
    let parts: Vec<&str> = observation.split(" [SEP] ").collect();
    // Start page: WebShop, Instruction:, <instruction>, Search. Other pages: Instruction:, <instruction>, ...
    let instruction = match parts.first() {
        Some(&"WebShop") => 1..3,
        Some(&"Instruction:") => 0..2,
        _ => 0..0,
    };
    parts.iter().enumerate().filter(|(i, _)| !instruction.contains(i)).map(|(_, p)| *p).collect::<Vec<_>>().join(" [SEP] ")
}

/// Builds the WebShop experiment. WebShop's reward is the final reward; a win is reward 1.
pub fn experiment(config: ExperimentConfig) -> Result<Experiment, Error> {
    let settings: Settings = config.environment()?;
    let factory = WebShopEnv::factory(&settings.env)?;
    let label = if settings.env.data_dir.is_some() { "webshop" } else { "webshop-synth" };
    let note = match label {
        "webshop" => "WebShop, original data.".to_owned(),
        _ => "webshop-synth: a synthetic catalog built around WebShop's real instructions and attributes \
              (the 1000 product pages are not available here). These are not WebShop numbers."
            .to_owned(),
    };
    let expert: Box<dyn Policy> = match settings.chat {
        Some(chat) => Box::new(ChatPolicy::new(chat, SYSTEM_PROMPT)),
        None => Box::new(Shopper::new(settings.expert)),
    };
    Ok(Experiment::new(config)
        .environment(factory)
        .expert(expert)
        .policy(|| TabularPolicy::new(page_key).with_fallback("click[back to search]"))
        .reward(FinalReward)
        .note(note))
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_keys_drop_the_instruction() {
        assert_eq!(super::page_key("WebShop [SEP] Instruction: [SEP] buy socks [SEP] Search"), "WebShop [SEP] Search");
        assert_eq!(super::page_key("Instruction: [SEP] buy socks [SEP] Back to Search [SEP] < Prev"), "Back to Search [SEP] < Prev");
        assert_eq!(super::page_key("Thank you for shopping with us!"), "Thank you for shopping with us!");
    }
}
