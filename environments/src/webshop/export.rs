//! A catalog written back in WebShop's own file formats, so that the **original** Python code can
//! run on exactly the data the port serves (`scripts/make_webshop_episode_reference.py` loads these
//! files through the original `load_products` and replays episodes against them).
//!
//! - [`raw_products`]: `items_shuffle*.json` records (`asin`, `name`, `full_description`,
//!   `small_description`, `pricing`, `customization_options`, `category`, `query`,
//!   `product_category`, `images`), which `load_products` turns back into the same products.
//! - [`raw_attributes`]: `items_ins_v2*.json` (ASIN → attributes, instruction, instruction
//!   attributes).
//! - [`goals_json`]: the goals in the original's dictionary form (`goal_options` as a name → value
//!   map in the goal's order), with the price the port sells each product at ([`prices_json`]).

use serde_json::{json, Map, Value};

use super::catalog::Catalog;
use super::data::{py_float, Product};

/// The raw `pricing` string `load_products` parses back into `p.pricing`.
fn raw_pricing(p: &Product) -> String {
    p.pricing.iter().map(|x| format!("${}", py_float(*x))).collect::<Vec<_>>().join(" - ")
}

/// One product as a record of `items_shuffle*.json`.
pub fn raw_product(p: &Product) -> Value {
    let options: Map<String, Value> = p
        .options
        .iter()
        .map(|(name, values)| (name.clone(), Value::Array(values.iter().map(|v| json!({ "value": v, "image": null })).collect())))
        .collect();
    json!({
        "asin": p.asin,
        "name": p.title,
        "full_description": p.description,
        "small_description": p.bullet_points,
        "pricing": raw_pricing(p),
        "customization_options": options,
        "category": p.category,
        "query": p.query,
        "product_category": p.product_category,
        "images": [""],
    })
}

/// Every product of `catalog` as `items_shuffle*.json` records, in catalog order.
pub fn raw_products(catalog: &Catalog) -> Value {
    Value::Array(catalog.products.iter().map(raw_product).collect())
}

/// The attribute file (`items_ins_v2*.json`) of `catalog`: products without known attributes
/// (`["DUMMY_ATTR"]`) carry no `attributes` key, as in the original file.
pub fn raw_attributes(catalog: &Catalog) -> Value {
    let mut out = Map::new();
    for p in &catalog.products {
        let mut entry = Map::new();
        if p.attributes != ["DUMMY_ATTR"] {
            entry.insert("attributes".into(), json!(p.attributes));
        }
        if let Some(instruction) = &p.instruction_text {
            entry.insert("instruction".into(), json!(instruction));
        }
        entry.insert("instruction_attributes".into(), json!(p.instruction_attributes));
        out.insert(p.asin.clone(), Value::Object(entry));
    }
    Value::Object(out)
}

/// The goals of `catalog` in the original's form (the dictionaries `get_goals` builds), in the
/// order the port serves them (task index = position).
pub fn goals_json(catalog: &Catalog) -> Value {
    Value::Array(
        catalog
            .goals
            .iter()
            .map(|g| {
                let options: Map<String, Value> = g.goal_options.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                json!({
                    "asin": g.asin,
                    "category": g.category,
                    "query": g.query,
                    "name": g.name,
                    "product_category": g.product_category,
                    "instruction_text": g.instruction_text,
                    "attributes": g.attributes,
                    "price_upper": g.price_upper,
                    "goal_options": options,
                    "weight": 1,
                })
            })
            .collect(),
    )
}

/// ASIN → the price the port sells the product at (`product_prices` of the original).
pub fn prices_json(catalog: &Catalog) -> Value {
    Value::Object(catalog.products.iter().zip(&catalog.prices).map(|(p, price)| (p.asin.clone(), json!(price))).collect())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::data::products_from_raw;
    use super::*;

    #[test]
    fn exported_records_load_back_into_the_same_products() {
        let config = super::super::WebShopConfig::default();
        let catalog = Catalog::load(&config).expect("the webshop-synth catalog (shared/data/webshop)");
        let raw = raw_products(&catalog);
        let attrs: HashMap<String, Value> = serde_json::from_value(raw_attributes(&catalog)).unwrap();
        let back = products_from_raw(raw.as_array().unwrap(), &attrs);
        assert_eq!(back.len(), catalog.products.len());
        for (a, b) in back.iter().zip(&catalog.products) {
            assert_eq!(a, b);
        }
    }
}
