//! An offline WebShop expert: a heuristic shopper that reads only what an agent sees (the
//! instruction and the page), with seeded imperfections.
//!
//! It searches with the instruction (product part, without options and price), opens the result
//! whose title shares the most words with the instruction, selects every option the instruction
//! names, and buys. Per task, seeded draws make it (with `wrong_item`) open the second-best result
//! instead, (with `skip_option`) forget the last option, or (with `vague_search`) search with only
//! the first three words. Its first actions (the search, often the right item) are right more often
//! than its last ones, so failed trajectories still hold useful early steps.

use std::collections::HashSet;

use eef_runtime::policy::{Act, ActRequest, Policy, PolicyError};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The expert's imperfections (probabilities per task).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShopperConfig {
    /// Open the second-best result.
    pub wrong_item: f64,
    /// Forget the last option.
    pub skip_option: f64,
    /// Search with the first three words only.
    pub vague_search: f64,
    /// Seed of the draws.
    pub seed: u64,
}

impl Default for ShopperConfig {
    fn default() -> Self {
        ShopperConfig { wrong_item: 0.25, skip_option: 0.25, vague_search: 0.15, seed: 0 }
    }
}

/// What the shopper understands of an instruction.
#[derive(Clone, Debug, PartialEq)]
pub struct Wish {
    /// The product part (without options and price), lower case, without "find me".
    pub product: String,
    /// Option values asked for.
    pub options: Vec<String>,
    /// The price limit, if any.
    pub max_price: Option<f64>,
}

/// Reads a synthetic WebShop instruction (`… with name: value, and name: value, and price lower
/// than X dollars`).
pub fn understand(instruction: &str) -> Wish {
    let mut s = instruction.to_lowercase();
    let mut max_price = None;
    if let Some(i) = s.find(", and price lower than ") {
        max_price = s[i + ", and price lower than ".len()..].split_whitespace().next().and_then(|x| x.parse().ok());
        s.truncate(i);
    }
    let mut options = Vec::new();
    // The option list starts at the last " with " followed by "name: value".
    let starts: Vec<usize> = s.match_indices(" with ").map(|(i, _)| i).collect();
    if let Some(&i) = starts.iter().rev().find(|&&i| s[i + 6..].split(", and ").all(|kv| kv.contains(": "))) {
        options = s[i + 6..].split(", and ").filter_map(|kv| kv.split_once(": ").map(|(_, v)| v.trim().to_owned())).collect();
        s.truncate(i);
    }
    let product = s.trim().trim_start_matches("find me").trim().to_owned();
    Wish { product, options, max_price }
}

fn words(s: &str) -> HashSet<String> {
    s.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 1).map(str::to_owned).collect()
}

/// The heuristic shopper.
#[derive(Clone, Debug, Default)]
pub struct Shopper {
    config: ShopperConfig,
}

impl Shopper {
    /// A shopper with these imperfections.
    pub fn new(config: ShopperConfig) -> Self {
        Shopper { config }
    }

    fn act_one(&self, r: &ActRequest) -> Act {
        let mut rng = eef_runtime::seed::rng(eef_runtime::seed::derive(self.config.seed, r.task.as_str()));
        let wrong_item = rng.gen_bool(self.config.wrong_item.clamp(0.0, 1.0));
        let skip_option = rng.gen_bool(self.config.skip_option.clamp(0.0, 1.0));
        let vague = rng.gen_bool(self.config.vague_search.clamp(0.0, 1.0));
        let wish = understand(&r.instruction);
        let parts: Vec<&str> = r.observation.split(" [SEP] ").collect();
        let act = |a: String, why: &str| Act { action: a, thought: Some(why.to_owned()) };

        if parts.first() == Some(&"WebShop") {
            let q: Vec<&str> = wish.product.split_whitespace().collect();
            let q = if vague { q[..q.len().min(3)].join(" ") } else { q.join(" ") };
            return act(format!("search[{q}]"), "I search for the product the instruction describes.");
        }
        if parts.iter().any(|p| p.starts_with("Page ") && p.contains("(Total results:")) {
            let visited: HashSet<String> = r.history.iter().filter_map(|s| s.action.strip_prefix("click[").map(|x| x.trim_end_matches(']').to_lowercase())).collect();
            let want = words(&wish.product);
            let start = parts.iter().position(|p| p.starts_with("Page ")).unwrap_or(0) + 1;
            let mut items: Vec<(usize, &str)> = Vec::new();
            let mut i = start;
            while i + 2 < parts.len() + 1 && i < parts.len() {
                let p = parts[i];
                if p == "< Prev" || p == "Next >" {
                    i += 1;
                    continue;
                }
                if i + 1 < parts.len() && !visited.contains(&p.to_lowercase()) {
                    let score = words(parts[i + 1]).intersection(&want).count();
                    items.push((score, p));
                }
                i += 3;
            }
            items.sort_by_key(|item| std::cmp::Reverse(item.0));
            let pick = if wrong_item && items.len() > 1 { items.get(1) } else { items.first() };
            return match pick {
                Some((_, asin)) => act(format!("click[{}]", asin.to_lowercase()), "This result matches the instruction best."),
                None if parts.contains(&"Next >") => act("click[Next >]".into(), "Nothing fits here; next page."),
                None => act("click[Back to Search]".into(), "No fitting result; search again."),
            };
        }
        if parts.last() == Some(&"Buy Now") {
            // Options clicked since the product was opened.
            let opened = r.history.iter().rposition(|s| s.observation.contains("(Total results:")).unwrap_or(0);
            let clicked: HashSet<String> = r.history[opened..].iter().filter_map(|s| s.action.strip_prefix("click[").map(|x| x.trim_end_matches(']').to_lowercase())).collect();
            let on_page: HashSet<&str> = parts.iter().copied().collect();
            let mut wanted: Vec<&String> = wish.options.iter().filter(|o| on_page.contains(o.as_str())).collect();
            if skip_option {
                wanted.pop();
            }
            if let Some(o) = wanted.into_iter().find(|o| !clicked.contains(o.as_str())) {
                return act(format!("click[{o}]"), "I choose the option the instruction asks for.");
            }
            // Spelled as WebShop's list of clickables spells it (lower case), so a policy that
            // learns from these actions finds them among the valid actions.
            return act("click[buy now]".into(), "Everything is selected; buy it.");
        }
        act("click[< Prev]".into(), "Back to the product.")
    }
}

impl Policy for Shopper {
    fn name(&self) -> String {
        "webshop-heuristic-shopper".into()
    }

    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        requests.iter().map(|r| Ok(self.act_one(r))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_are_understood() {
        let w = understand("Find me easy carry refillable containers with rose gold with size: 2 fl oz, and color: black, and price lower than 40.00 dollars");
        assert_eq!(w.product, "easy carry refillable containers with rose gold");
        assert_eq!(w.options, vec!["2 fl oz", "black"]);
        assert_eq!(w.max_price, Some(40.0));
        let w = understand("Find me gluten free snacks");
        assert_eq!((w.product.as_str(), w.options.len(), w.max_price), ("gluten free snacks", 0, None));
    }
}
