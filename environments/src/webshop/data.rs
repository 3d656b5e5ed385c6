//! Products in WebShop's schema, and the loader of WebShop's original data files
//! (`items_shuffle*.json` + `items_ins_v2*.json`), following `engine.load_products`.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

/// A product as the engine sees it (after `load_products`).
#[derive(Clone, Debug, PartialEq)]
pub struct Product {
    /// The ASIN (upper case, at most 10 characters).
    pub asin: String,
    /// `Title` (= the raw `name`).
    pub title: String,
    /// Top-level category (`beauty`, `food`, ...).
    pub category: String,
    /// The search query the product was scraped with (lower-cased, trimmed).
    pub query: String,
    /// `product_category`, parts joined by `›`.
    pub product_category: String,
    /// `Description` (= `full_description`).
    pub description: String,
    /// `BulletPoints` (= `small_description`).
    pub bullet_points: Vec<String>,
    /// One price, or a range `[low, high]`.
    pub pricing: Vec<f64>,
    /// `Price` as shown: `$x` or `$x to $y`.
    pub price_tag: String,
    /// Options in page order: name (lower case) -> values (lower case, `/` as ` | `).
    pub options: Vec<(String, Vec<String>)>,
    /// `Attributes` (`["DUMMY_ATTR"]` when unknown).
    pub attributes: Vec<String>,
    /// The synthetic instruction, when the product has one.
    pub instruction_text: Option<String>,
    /// The attributes the instruction asks for.
    pub instruction_attributes: Vec<String>,
}

/// Formats a float as Python's `str(float)` does for prices (`10.99`, `100.0`).
pub fn py_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// Parses a raw `pricing` string like `$12.99` or `$5.99$15.00` as `load_products` does.
pub fn parse_pricing(raw: Option<&str>) -> (Vec<f64>, String) {
    let parsed: Vec<f64> = raw
        .unwrap_or("")
        .split('$')
        .skip(1)
        .filter_map(|p| {
            let digits: String = p.chars().filter(|c| c.is_ascii_digit() || *c == '.').collect();
            digits.parse::<f64>().ok()
        })
        .collect();
    match parsed.len() {
        0 => (vec![100.0], "$100.0".into()),
        1 => (parsed.clone(), format!("${}", py_float(parsed[0]))),
        _ => (parsed[..2].to_vec(), format!("${} to ${}", py_float(parsed[0]), py_float(parsed[1]))),
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

/// Builds the engine's products from raw product records and the attribute file (ASIN ->
/// `{attributes, instruction, instruction_attributes}`), skipping bad and duplicate ASINs.
pub fn products_from_raw(raw: &[Value], attributes: &HashMap<String, Value>) -> Vec<Product> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for p in raw {
        let asin = text(p, "asin");
        if asin == "nan" || asin.len() > 10 || asin.is_empty() || !seen.insert(asin.clone()) {
            continue;
        }
        let bullet_points = match p.get("small_description") {
            Some(Value::Array(a)) => a.iter().map(|x| x.as_str().unwrap_or("").to_owned()).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => vec![String::new()],
        };
        let (pricing, price_tag) = parse_pricing(p.get("pricing").and_then(Value::as_str));
        let mut options = Vec::new();
        if let Some(Value::Object(custom)) = p.get("customization_options") {
            for (name, contents) in custom {
                let Some(contents) = contents.as_array() else { continue };
                let values = contents
                    .iter()
                    .map(|c| text(c, "value").trim().replace('/', " | ").to_lowercase())
                    .collect();
                options.push((name.to_lowercase(), values));
            }
        }
        let attr = attributes.get(&asin);
        let product_attributes: Vec<String> = attr
            .and_then(|a| a.get("attributes"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
            .unwrap_or_else(|| vec!["DUMMY_ATTR".to_owned()]);
        out.push(Product {
            title: text(p, "name"),
            category: text(p, "category"),
            query: text(p, "query").to_lowercase().trim().to_owned(),
            product_category: text(p, "product_category"),
            description: text(p, "full_description"),
            bullet_points,
            pricing,
            price_tag,
            options,
            attributes: product_attributes,
            instruction_text: attr.and_then(|a| a.get("instruction")).and_then(Value::as_str).map(str::to_owned),
            instruction_attributes: attr
                .and_then(|a| a.get("instruction_attributes"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            asin,
        });
    }
    out
}

/// Reads WebShop's original files from `dir`: the first of `items_shuffle_1000.json` /
/// `items_shuffle.json` and of `items_ins_v2_1000.json` / `items_ins_v2.json` that exist.
pub fn load_original(dir: &Path) -> Result<Vec<Product>, String> {
    let pick = |names: &[&str]| names.iter().map(|n| dir.join(n)).find(|p| p.is_file());
    let items = pick(&["items_shuffle_1000.json", "items_shuffle.json"])
        .ok_or_else(|| format!("{}: no items_shuffle_1000.json or items_shuffle.json", dir.display()))?;
    let attrs = pick(&["items_ins_v2_1000.json", "items_ins_v2.json"])
        .ok_or_else(|| format!("{}: no items_ins_v2_1000.json or items_ins_v2.json", dir.display()))?;
    let read = |p: &Path| -> Result<Value, String> {
        let t = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&t).map_err(|e| format!("{}: {e}", p.display()))
    };
    let raw = read(&items)?;
    let raw = raw.as_array().ok_or_else(|| format!("{}: expected a list of products", items.display()))?;
    let attributes: HashMap<String, Value> = match read(&attrs)? {
        Value::Object(m) => m.into_iter().collect(),
        _ => return Err(format!("{}: expected an object keyed by ASIN", attrs.display())),
    };
    Ok(products_from_raw(raw, &attributes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_render_as_python() {
        assert_eq!(parse_pricing(Some("$12.99")), (vec![12.99], "$12.99".into()));
        assert_eq!(parse_pricing(Some("$5$15.50")), (vec![5.0, 15.5], "$5.0 to $15.5".into()));
        assert_eq!(parse_pricing(None), (vec![100.0], "$100.0".into()));
        assert_eq!(parse_pricing(Some("$1,299.00")), (vec![1299.0], "$1299.0".into()));
    }
}
