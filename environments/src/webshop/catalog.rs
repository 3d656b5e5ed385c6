//! A loaded catalog: products, prices, goals and the search index, shared by all instances.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

use super::config::{GoalSet, WebShopConfig, HUMAN_INSTRUCTIONS_FILE};
use super::data::{load_original, Product};
use super::goals::{human_goals, product_price, synthetic_goals, Goal, HumanInstruction};
use super::search::SearchIndex;

/// Where the data came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// WebShop's original files.
    Original(PathBuf),
    /// The synthetic catalog built around the real instructions.
    Synth,
}

/// Products, prices, goals and the index.
#[derive(Debug)]
pub struct Catalog {
    /// Products in catalog order.
    pub products: Vec<Product>,
    /// ASIN -> index into `products`.
    pub by_asin: HashMap<String, usize>,
    /// The price each product sells at.
    pub prices: Vec<f64>,
    /// All goals, shuffled (test goals first).
    pub goals: Vec<Goal>,
    /// The search index.
    pub index: SearchIndex,
    /// Where the data came from.
    pub source: Source,
}

/// The default attribute file: `$EEF_SHARED/data/webshop/items_ins_v2_1000.json`, else the
/// `shared/` folder beside the repository.
pub fn default_attributes_file() -> PathBuf {
    crate::shared_dir().join("data").join("webshop").join("items_ins_v2_1000.json")
}

impl Catalog {
    /// Loads the catalog `config` names.
    pub fn load(config: &WebShopConfig) -> Result<Self, String> {
        let (products, source) = match &config.data_dir {
            Some(dir) => (load_original(dir)?, Source::Original(dir.clone())),
            None => {
                let path = config.attributes_file.clone().unwrap_or_else(default_attributes_file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    format!("{}: {e} (the webshop-synth catalog is built from shared/data/webshop beside the repository; set EEF_SHARED or [environment] attributes_file)", path.display())
                })?;
                let attrs: HashMap<String, Value> = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
                (super::synth::build(&attrs, config.synth_seed), Source::Synth)
            }
        };
        let mut catalog = Self::from_products(products, source, config.price_seed);
        if config.goal_set() == GoalSet::Human {
            let dir = config.data_dir.as_ref().ok_or_else(|| {
                format!("[environment] goals = \"human\" needs data_dir: a WebShop data folder with {HUMAN_INSTRUCTIONS_FILE} (the webshop-synth catalog has no human instructions)")
            })?;
            let path = dir.join(HUMAN_INSTRUCTIONS_FILE);
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let human: HashMap<String, Vec<HumanInstruction>> = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            catalog.goals = human_goals(&catalog.products, &human, config.price_seed);
            if catalog.goals.is_empty() {
                return Err(format!("{}: no human instruction with attributes matches a product of the catalog", path.display()));
            }
        }
        Ok(catalog)
    }

    /// A catalog over given products.
    pub fn from_products(products: Vec<Product>, source: Source, price_seed: u64) -> Self {
        let by_asin = products.iter().enumerate().map(|(i, p)| (p.asin.clone(), i)).collect();
        let prices = products.iter().map(|p| product_price(p, price_seed)).collect();
        let goals = synthetic_goals(&products, price_seed);
        let index = SearchIndex::build(&products);
        Catalog { products, by_asin, prices, goals, index, source }
    }

    /// `webshop` for the original data, `webshop-synth` for the synthetic catalog.
    pub fn label(&self) -> &'static str {
        match self.source {
            Source::Original(_) => "webshop",
            Source::Synth => "webshop-synth",
        }
    }

    /// A product by ASIN (case-insensitive).
    pub fn product(&self, asin: &str) -> Option<(usize, &Product)> {
        let i = *self.by_asin.get(&asin.to_uppercase())?;
        Some((i, &self.products[i]))
    }
}
