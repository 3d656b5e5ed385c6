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
    /// Options to choose: (name, value), sorted by name, for synthetic goals; for human goals
    /// the name is empty (see [`OptionForm`]).
    pub goal_options: Vec<(String, String)>,
    /// How the options reach the option reward.
    pub option_form: OptionForm,
}

/// How `get_reward` sees a goal's options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionForm {
    /// Synthetic goals: a name → value dict, passed as `.items()` (each option a
    /// `(name, value)` tuple).
    Pairs,
    /// Human goals: `instruction_options`, a list of plain values.
    Values,
}

/// One human-written instruction of `items_human_ins.json` (ASIN → list of these).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct HumanInstruction {
    /// What the worker asked for.
    pub instruction: String,
    /// The attributes it asks for (goals without any are skipped, as the original does).
    #[serde(default)]
    pub instruction_attributes: Vec<String>,
    /// The option values it asks for.
    #[serde(default)]
    pub instruction_options: Vec<String>,
}

/// The goal order of the original: `random.seed(233); random.shuffle(goals)` (Python's generator).
pub fn shuffle_as_original(goals: &mut [Goal]) {
    super::py_random::PyRandom::new(233).shuffle(goals);
}

/// The price limit of a goal for `p` and its instruction text suffix (`get_*_goals`): the larger
/// of two picks among the first four multiples of 10 above the price, seeded per goal source.
fn price_limit(p: &Product, price_seed: u64, salt: &str) -> (f64, String) {
    let price = product_price(p, price_seed);
    let range: Vec<f64> = (1..100).map(|i| 10.0 * f64::from(i)).filter(|x| *x > price).take(4).collect();
    let mut rng = eef_runtime::seed::rng(eef_runtime::seed::derive(price_seed ^ 0x5EED, &format!("{}{salt}", p.asin)));
    if range.len() >= 2 {
        let two: Vec<f64> = range.choose_multiple(&mut rng, 2).copied().collect();
        let upper = two[0].max(two[1]);
        (upper, format!(", and price lower than {upper:.2} dollars"))
    } else {
        (1_000_000.0, String::new())
    }
}

/// The human goals (`get_human_goals`): for each product in catalog order, each of its
/// human instructions with at least one attribute; the instruction with trailing dots removed
/// plus the price text; options as plain values. Returned in the original's order
/// ([`shuffle_as_original`]), so WebShop's index splits (test 0..500, dev 500..1500, train
/// 1500..) select the same instructions.
pub fn human_goals(products: &[Product], human: &std::collections::HashMap<String, Vec<HumanInstruction>>, price_seed: u64) -> Vec<Goal> {
    let mut goals = Vec::new();
    for p in products {
        let Some(list) = human.get(&p.asin) else { continue };
        for (k, h) in list.iter().enumerate() {
            if h.instruction_attributes.is_empty() {
                continue;
            }
            let (price_upper, price_text) = price_limit(p, price_seed, &format!("#human{k}"));
            goals.push(Goal {
                asin: p.asin.clone(),
                category: p.category.clone(),
                query: p.query.clone(),
                name: p.title.clone(),
                product_category: p.product_category.clone(),
                instruction_text: format!("{}{price_text}", h.instruction.trim_matches('.')),
                attributes: h.instruction_attributes.clone(),
                price_upper,
                goal_options: h.instruction_options.iter().map(|v| (String::new(), v.clone())).collect(),
                option_form: OptionForm::Values,
            });
        }
    }
    shuffle_as_original(&mut goals);
    goals
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
        let (price_upper, price_text) = price_limit(p, price_seed, "");
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
                option_form: OptionForm::Pairs,
            });
        }
    }
    goals.shuffle(&mut eef_runtime::seed::rng(233));
    goals
}
