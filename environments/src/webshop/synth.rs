//! `webshop-synth`: a catalog in WebShop's original schema built deterministically around the
//! real instructions and attributes of the 1000-product set (`items_ins_v2_1000.json`), for when
//! the product pages (`items_shuffle_1000.json`) are not available. Never report its numbers as
//! WebShop numbers.
//!
//! For every ASIN of the attribute file a product record is generated: a product type parsed from
//! its instruction ("Find me **refillable containers** with rose gold" -> `refillable
//! containers`), a department chosen from the type's words, a title and description that mention
//! its attributes, options by department, and a price. Each product with an instruction also gets
//! two *distractors* of the same type: one that lacks an instructed attribute, one whose option
//! values and price differ. The generated records go through the same loader as the real files.

use std::collections::HashMap;

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

use super::data::{products_from_raw, Product};

const BRANDS: [&str; 16] = [
    "Lumina", "Northwind", "Aster", "Brightway", "Cobalt & Co", "Daybreak", "Evergreen", "Fable", "Greystone", "Halcyon",
    "Ironbark", "Juniper", "Kestrel", "Lakeside", "Meridian", "Nimbus",
];
const COLORS: [&str; 12] =
    ["black", "white", "navy blue", "grey", "rose gold", "red", "green", "beige", "pink", "brown", "silver", "light blue"];
const SIZES: [&str; 7] = ["small", "medium", "large", "x-large", "xx-large", "one size", "queen"];
const PACKS: [&str; 6] = ["pack of 1", "pack of 2", "pack of 3", "pack of 6", "pack of 12", "2 count (pack of 4)"];
const VOLUMES: [&str; 5] = ["2 fl oz", "4 fl oz", "8 fl oz", "16 fl oz", "3.4 fl oz"];
const FLAVORS: [&str; 6] = ["original", "chocolate", "vanilla", "sea salt", "strawberry", "spicy"];

/// The departments: (category, department path, words of product types that belong to it).
const DEPARTMENTS: [(&str, &str, &[&str]); 5] = [
    ("fashion", "Clothing, Shoes & Jewelry › Women › Clothing", &[
        "shirt", "dress", "shoe", "shoes", "jean", "jeans", "pant", "pants", "jacket", "sweater", "boot", "boots", "sock",
        "socks", "top", "tops", "hoodie", "skirt", "sandal", "sandals", "sneaker", "sneakers", "bra", "legging", "leggings",
        "coat", "shorts", "swimsuit", "blouse", "watch", "jewelry", "necklace", "hat", "clothing", "slipper", "slippers",
    ]),
    ("furniture", "Home & Kitchen › Furniture › Living Room Furniture", &[
        "chair", "chairs", "table", "tables", "sofa", "bed", "shelf", "shelves", "desk", "stool", "stools", "cabinet",
        "ottoman", "bench", "rug", "rugs", "curtain", "curtains", "lamp", "mattress", "dresser", "nightstand", "furniture",
        "sheets", "bedspread", "pillow", "pillows", "mirror",
    ]),
    ("electronics", "Electronics › Accessories & Supplies › Audio & Video Accessories", &[
        "cable", "cables", "charger", "headphones", "earbuds", "speaker", "speakers", "camera", "tablet", "phone", "tv",
        "mount", "adapter", "keyboard", "mouse", "microphone", "router", "remote", "battery", "batteries", "projector",
        "electronics", "computer", "laptop", "case", "cases",
    ]),
    ("food", "Grocery & Gourmet Food › Snacks & Sweets", &[
        "snack", "snacks", "coffee", "tea", "chocolate", "sauce", "cookie", "cookies", "candy", "chips", "nuts", "bar",
        "bars", "food", "seasoning", "jerky", "crackers", "cereal", "drink", "drinks", "juice", "spices", "gum", "popcorn",
        "bread", "cheese", "oil", "honey", "syrup", "beverages",
    ]),
    ("beauty", "Beauty & Personal Care › Skin Care › Body", &[]),
];

fn department(kind: &str) -> (&'static str, &'static str) {
    let words: Vec<&str> = kind.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    for (cat, path, keys) in DEPARTMENTS.iter().take(4) {
        if words.iter().any(|w| keys.contains(w) || keys.contains(&w.trim_end_matches('s'))) {
            return (cat, path);
        }
    }
    ("beauty", DEPARTMENTS[4].1)
}

/// The product type of a synthetic instruction: what remains after "Find me", the instructed
/// attributes and the joining words.
pub fn product_type(instruction: &str, attributes: &[String]) -> String {
    let mut s = instruction.trim().trim_end_matches('.').to_lowercase();
    for p in ["find me ", "i need ", "i want "] {
        if let Some(rest) = s.strip_prefix(p) {
            s = rest.to_owned();
        }
    }
    let mut attrs: Vec<&String> = attributes.iter().collect();
    attrs.sort_by_key(|a| std::cmp::Reverse(a.len()));
    for a in attrs {
        s = s.replace(&a.to_lowercase(), " ");
    }
    let words: Vec<&str> = s.split_whitespace().filter(|w| *w != ",").collect();
    let mut kept: Vec<String> = words.iter().map(|w| w.trim_matches(',').to_owned()).filter(|w| !w.is_empty()).collect();
    while kept.last().is_some_and(|w| ["with", "for", "and", "of", "in"].contains(&w.as_str())) {
        kept.pop();
    }
    while kept.first().is_some_and(|w| ["with", "for", "and", "of", "in", "a", "an"].contains(&w.as_str())) {
        kept.remove(0);
    }
    // Drop a dangling joining word inside ("... containers with" -> handled above; "x with y" kept).
    let t = kept.join(" ");
    let t = t.split(" with ").next().unwrap_or(&t).split(" for ").next().unwrap_or(&t).trim().to_owned();
    if t.is_empty() {
        "product".into()
    } else {
        t
    }
}

fn title_case(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn options_for(category: &str, rng: &mut impl Rng) -> Vec<(String, Vec<String>)> {
    let mut pick = |pool: &[&str], lo: usize, hi: usize| -> Vec<String> {
        let n = rng.gen_range(lo..=hi.min(pool.len()));
        pool.choose_multiple(rng, n).map(|s| (*s).to_owned()).collect()
    };
    match category {
        "fashion" => vec![("color".into(), pick(&COLORS, 2, 4)), ("size".into(), pick(&SIZES, 2, 4))],
        "furniture" => vec![("color".into(), pick(&COLORS, 2, 4))],
        "electronics" => vec![("color".into(), pick(&COLORS, 1, 3))],
        "food" => vec![("flavor name".into(), pick(&FLAVORS, 2, 3)), ("size".into(), pick(&PACKS, 1, 3))],
        _ => vec![("size".into(), pick(&VOLUMES, 1, 3))],
    }
}

struct Spec<'a> {
    asin: String,
    kind: String,
    attributes: Vec<String>,
    options: Vec<(String, Vec<String>)>,
    price: f64,
    brand: &'a str,
}

fn record(s: &Spec<'_>, rng: &mut impl Rng) -> Value {
    let (category, path) = department(&s.kind);
    let shown: Vec<String> = s.attributes.iter().filter(|a| *a != "DUMMY_ATTR").cloned().collect();
    let title = format!(
        "{} {} {}{}",
        s.brand,
        title_case(&shown.iter().take(3).cloned().collect::<Vec<_>>().join(" ")),
        title_case(&s.kind),
        ["", ", Premium Quality", " - Everyday Essentials", ", Value Pack"][rng.gen_range(0..4)]
    )
    .split_whitespace()
    .collect::<Vec<_>>()
    .join(" ");
    let features: Vec<String> = shown
        .iter()
        .map(|a| format!("{}: designed with {a} in mind.", title_case(a)))
        .chain(std::iter::once(format!("Satisfaction guaranteed from {}.", s.brand)))
        .collect();
    let description = format!(
        "{title}. This {} is made for people who care about {}. Ships in recyclable packaging.",
        s.kind,
        if shown.is_empty() { "quality".to_owned() } else { shown.join(", ") }
    );
    let custom: serde_json::Map<String, Value> = s
        .options
        .iter()
        .map(|(n, vs)| (n.clone(), Value::Array(vs.iter().map(|v| json!({ "value": v })).collect())))
        .collect();
    json!({
        "asin": s.asin,
        "name": title,
        "category": category,
        "query": s.kind,
        "product_category": format!("{path} › {}", title_case(&s.kind)),
        "full_description": description,
        "small_description": features,
        "pricing": format!("${:.2}", s.price),
        "customization_options": custom,
        "images": [""],
    })
}

/// Builds the `webshop-synth` products from the attribute file (ASIN -> `{attributes,
/// instruction?, instruction_attributes?}`), deterministically from `seed`.
pub fn build(attribute_file: &HashMap<String, Value>, seed: u64) -> Vec<Product> {
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array).map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    let mut asins: Vec<&String> = attribute_file.keys().collect();
    asins.sort();
    let kinds: Vec<String> = asins
        .iter()
        .filter_map(|a| {
            let v = &attribute_file[*a];
            v.get("instruction").and_then(Value::as_str).map(|i| product_type(i, &strs(v.get("instruction_attributes"))))
        })
        .collect();
    let all_attrs: Vec<String> = {
        let mut v: Vec<String> = asins.iter().flat_map(|a| strs(attribute_file[*a].get("attributes"))).collect();
        v.sort();
        v.dedup();
        v
    };
    let mut raw = Vec::new();
    let mut attrs_out: HashMap<String, Value> = HashMap::new();
    for asin in asins {
        let v = &attribute_file[asin];
        let mut rng = eef_runtime::seed::rng(eef_runtime::seed::derive(seed, asin));
        let attributes = strs(v.get("attributes"));
        let instruction = v.get("instruction").and_then(Value::as_str);
        let ins_attrs = strs(v.get("instruction_attributes"));
        let kind = match instruction {
            Some(i) => product_type(i, &ins_attrs),
            None => kinds.choose(&mut rng).cloned().unwrap_or_else(|| "product".into()),
        };
        let (category, _) = department(&kind);
        let spec = Spec {
            asin: asin.clone(),
            kind: kind.clone(),
            attributes: if attributes.is_empty() { ins_attrs.clone() } else { attributes.clone() },
            options: options_for(category, &mut rng),
            price: (rng.gen_range(5.0..80.0_f64) * 100.0).round() / 100.0,
            brand: BRANDS[rng.gen_range(0..BRANDS.len())],
        };
        raw.push(record(&spec, &mut rng));
        attrs_out.insert(asin.clone(), v.clone());
        if instruction.is_none() || ins_attrs.is_empty() {
            continue;
        }
        // Distractor 1: misses one instructed attribute.
        let missing = &ins_attrs[rng.gen_range(0..ins_attrs.len())];
        let mut d1_attrs: Vec<String> = spec.attributes.iter().filter(|a| *a != missing).cloned().collect();
        if let Some(other) = all_attrs.choose(&mut rng) {
            if !ins_attrs.contains(other) {
                d1_attrs.push(other.clone());
            }
        }
        // Distractor 2: other option values, a higher price.
        let d2_options: Vec<(String, Vec<String>)> = options_for(category, &mut rng)
            .into_iter()
            .map(|(n, vs)| {
                let orig = spec.options.iter().find(|(on, _)| *on == n).map(|(_, v)| v.clone()).unwrap_or_default();
                let fresh: Vec<String> = vs.into_iter().filter(|v| !orig.contains(v)).collect();
                (n, if fresh.is_empty() { vec!["assorted".to_owned()] } else { fresh })
            })
            .collect();
        for (k, (attributes, options, price)) in [
            (d1_attrs, spec.options.clone(), spec.price),
            (spec.attributes.clone(), d2_options, (spec.price * 1.6 + 10.0).round()),
        ]
        .into_iter()
        .enumerate()
        {
            let d_asin = format!("BS{:08X}", (eef_runtime::seed::derive(seed, &format!("{asin}/{k}")) >> 32) as u32);
            let d = Spec { asin: d_asin.clone(), kind: kind.clone(), attributes: attributes.clone(), options, price, brand: BRANDS[rng.gen_range(0..BRANDS.len())] };
            raw.push(record(&d, &mut rng));
            attrs_out.insert(d_asin, json!({ "attributes": attributes }));
        }
    }
    products_from_raw(&raw, &attrs_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_types_from_instructions() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            product_type("Find me easy carry, high quality refillable containers with rose gold", &a(&["easy carry", "high quality", "rose gold"])),
            "refillable containers"
        );
        assert_eq!(
            product_type("Find me scrubs & body treatments with tea tree, natural ingredients", &a(&["tea tree", "natural ingredients"])),
            "scrubs & body treatments"
        );
        assert_eq!(department("men's shirts").0, "fashion");
        assert_eq!(department("wireless earbuds").0, "electronics");
        assert_eq!(product_type("Find me eco friendly cotton balls & swabs for sensitive skin", &a(&["eco friendly", "sensitive skin"])), "cotton balls & swabs");
    }
}
