//! WebShop (Yao et al., 2022) as a text environment, ported from the original's text mode:
//! the same pages (`[SEP]`-joined), the same `search[...]` / `click[...]` parsing, BM25 search
//! with pyserini's parameters, and the original reward term by term.
//!
//! Data: with `[environment] data_dir` pointing at WebShop's own files it runs the real
//! benchmark; otherwise it builds the **`webshop-synth`** catalog from the real instructions and
//! attributes of the 1000-product set ([`synth`]). Reports carry the label; `webshop-synth`
//! numbers are not WebShop numbers.

mod catalog;
mod config;
pub mod data;
mod done_page;
mod env;
pub mod export;
mod expert;
mod prompt;
pub mod fuzz;
pub mod goals;
pub mod normalize;
pub mod py_random;
pub mod nouns;
pub mod porter;
pub mod reward;
pub mod search;
pub mod synth;

pub use catalog::{default_attributes_file, Catalog, Source};
pub use config::{GoalSet, WebShopConfig, HUMAN_INSTRUCTIONS_FILE};
pub use env::{parse_action, WebShopEnv, PRODUCT_WINDOW, SEARCH_RETURN_N};
pub use expert::{understand, Shopper, ShopperConfig, Wish};
pub use prompt::SYSTEM_PROMPT;
