//! Goals as WebShop builds them on the 1000-product set (`get_synthetic_goals`): each product
//! instruction × every combination of the product's options, with a price limit; shuffled with
//! seed 233.
//!
//! WebShop draws product prices (`random.uniform` over a price range) and price limits
//! (`random.sample` of the first four multiples of 10 above the price) from Python's unseeded
//! global generator; here they come from an explicit seed (`price_seed`), and the shuffle uses
//! seed 233 with this project's generator, so goal order is reproducible but not Python's.

use rand::seq::SliceRandom;
use rand::Rng;

use super::data::Product;

/// A goal.
#[derive(Clone, Debug, PartialEq)]
pub struct Goal {
    /// The target product.
    pub asin: String,
    /// The target's category.
    pub category: String,
    /// The target's query.
    pub query: String,
    /// The target's title (`goal['name']`).
    pub name: String,
    /// The target's product category.
    pub product_category: String,
    /// What the agent is told.
    pub instruction_text: String,
    /// Attributes to match.
    pub attributes: Vec<String>,
    /// The price limit.
    pub price_upper: f64,
    /// Options to choose: (name, value), sorted by name.
    pub goal_options: Vec<(String, String)>,
}

/// The price each product sells at: its single price, or uniform in its range (seeded per ASIN).
pub fn product_price(p: &Product, price_seed: u64) -> f64 {
    match p.pricing.as_slice() {
        [] => 100.0,
        [x] => *x,
        [lo, hi, ..] => {
            let mut rng = eef_runtime::seed::rng(eef_runtime::seed::derive(price_seed, &p.asin));
            if hi > lo {
                rng.gen_range(*lo..*hi)
            } else {
                *lo
            }
        }
    }
}

/// Builds the goals of `products`, shuffled with seed 233.
pub fn synthetic_goals(products: &[Product], price_seed: u64) -> Vec<Goal> {
    let mut goals = Vec::new();
    for p in products {
        let Some(instruction) = &p.instruction_text else { continue };
        if p.instruction_attributes.is_empty() {
            continue;
        }
        let price = product_price(p, price_seed);
        let range: Vec<f64> = (1..100).map(|i| 10.0 * f64::from(i)).filter(|x| *x > price).take(4).collect();
        let mut rng = eef_runtime::seed::rng(eef_runtime::seed::derive(price_seed ^ 0x5EED, &p.asin));
        let (price_upper, price_text) = if range.len() >= 2 {
            let two: Vec<f64> = range.choose_multiple(&mut rng, 2).copied().collect();
            let upper = two[0].max(two[1]);
            (upper, format!(", and price lower than {upper:.2} dollars"))
        } else {
            (1_000_000.0, String::new())
        };
        let mut names: Vec<&(String, Vec<String>)> = p.options.iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for (name, values) in &names {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push((name.clone(), v.clone()));
                        c
                    })
                })
                .collect();
        }
        for combo in combos {
            let options = combo.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", and ");
            let option_text = if options.is_empty() { String::new() } else { format!(" with {options}") };
            goals.push(Goal {
                asin: p.asin.clone(),
                category: p.category.clone(),
                query: p.query.clone(),
                name: p.title.clone(),
                product_category: p.product_category.clone(),
                instruction_text: format!("{instruction}{option_text}{price_text}"),
                attributes: p.instruction_attributes.clone(),
                price_upper,
                goal_options: combo,
            });
        }
    }
    goals.shuffle(&mut eef_runtime::seed::rng(233));
    goals
}
