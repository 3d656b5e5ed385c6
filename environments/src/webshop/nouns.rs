//! The nouns of a product title, as WebShop's type reward takes them from spaCy
//! (`[t.text.lower() for t in nlp(title) if t.pos_ in ('PNOUN', 'NOUN', 'PROPN')]`).
//!
//! spaCy is not available at run time, so this module ships a table of its answers
//! (`environments/data/webshop-nouns.json`, written by `scripts/make_webshop_nouns.py` with
//! en_core_web_sm 3.8.0) for every product title of the default `webshop-synth` catalog, which
//! are also every goal's name: on that catalog the type reward is exact. Other titles (another
//! `synth_seed`, WebShop's own data) fall back to [`approximate_nouns`]; how often it disagrees
//! with spaCy on titles outside the table is measured in `tests/webshop.rs`
//! (`tests/data/webshop/nouns_held_out.json`) and reported in the book.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::normalize::COLOR_SET;

/// spaCy's nouns of the default catalog's titles.
fn table() -> &'static HashMap<String, Vec<String>> {
    static TABLE: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        #[derive(serde::Deserialize)]
        struct File {
            nouns: HashMap<String, Vec<String>>,
        }
        let text = include_str!("../../data/webshop-nouns.json");
        serde_json::from_str::<File>(text).map(|f| f.nouns).unwrap_or_else(|e| panic!("webshop-nouns.json is malformed: {e}"))
    })
}

/// spaCy's nouns of `title` when the table has them.
pub fn table_nouns(title: &str) -> Option<&'static [String]> {
    table().get(title).map(Vec::as_slice)
}

/// The nouns of `title`: spaCy's from the table, else the approximation.
pub fn nouns(title: &str) -> Vec<String> {
    table_nouns(title).map_or_else(|| approximate_nouns(title), <[String]>::to_vec)
}

/// Words never counted as nouns (function words, frequent adjectives, units, marketing words).
pub const NOT_NOUNS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it", "of", "on", "or", "the", "to",
    "with", "without", "your", "you", "our", "all", "any", "each", "per", "plus", "up", "new", "best", "premium",
    "quality", "high", "low", "free", "natural", "organic", "extra", "super", "ultra", "mini", "small", "medium", "large",
    "big", "long", "short", "soft", "hard", "light", "dark", "heavy", "easy", "portable", "waterproof", "professional",
    "compatible", "adjustable", "durable", "multi", "full", "half", "double", "single", "non", "slip", "anti", "fresh",
    "pure", "original", "classic", "modern", "vintage", "cute", "fashion", "casual", "comfortable", "lightweight",
    "everyday", "essentials", "value", "pack", "count", "set", "piece", "pieces", "pcs", "oz", "fl", "ounce", "ounces",
    "inch", "inches", "lb", "lbs", "ml", "g", "kg", "cm", "mm", "ft", "x", "xl", "xxl", "womens", "mens", "women", "men",
    "kids", "unisex", "s", "t", "de",
];

/// The approximation for titles outside the table: lower-cased alphabetic tokens that are not
/// in [`NOT_NOUNS`] or WebShop's `COLOR_SET`.
pub fn approximate_nouns(title: &str) -> Vec<String> {
    title
        .split(|c: char| !c.is_alphabetic())
        .filter(|t| t.len() > 1)
        .map(str::to_lowercase)
        .filter(|t| !NOT_NOUNS.contains(&t.as_str()) && !COLOR_SET.contains(&t.as_str()))
        .collect()
}

