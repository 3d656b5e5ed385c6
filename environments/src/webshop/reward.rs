//! WebShop's reward (`engine/goal.py::get_reward`), term by term.
//!
//! `reward = (matched attributes + matched options + price ok) / (attributes + goal options + 1)
//! × r_type`. The type reward compares the *nouns* of the goal's and the bought product's titles,
//! which WebShop takes from spaCy's `en_core_web_sm` tagger: see [`nouns`](super::nouns) for the
//! shipped table of spaCy's answers and the approximation used for titles outside it.

use std::collections::HashSet;

use super::data::Product;
use super::fuzz::token_set_ratio;
use super::goals::{Goal, OptionForm};
use super::normalize::{normalize_color, COLOR_SET};
pub use super::nouns::nouns;

/// The type reward and its parts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TypeReward {
    /// `r_type`.
    pub r_type: f64,
    /// Same scraping query.
    pub query_match: bool,
    /// At least two shared category parts.
    pub category_match: bool,
    /// Share of the goal title's nouns found in the bought title's nouns.
    pub title_score: f64,
}

/// `get_type_reward`, with `noun_fn` standing in for spaCy.
pub fn type_reward(bought: &Product, goal: &Goal, noun_fn: impl Fn(&str) -> Vec<String>) -> TypeReward {
    let query_match = bought.query == goal.query;
    let parts = |s: &str| s.split('›').map(|x| x.trim().to_owned()).collect::<HashSet<_>>();
    let category_match = parts(&bought.product_category).intersection(&parts(&goal.product_category)).count() >= 2;
    let bought_nouns: HashSet<String> = noun_fn(&bought.title).into_iter().collect();
    let desired: Vec<String> = noun_fn(&goal.name);
    let desired_set: HashSet<&String> = desired.iter().collect();
    let title_score = if desired.is_empty() {
        0.2
    } else {
        desired_set.iter().filter(|n| bought_nouns.contains(**n)).count() as f64 / desired.len() as f64
    };
    let mut r_type = 1.0;
    if !(query_match || category_match || title_score > 0.2) {
        r_type = 0.5;
    }
    if title_score < 0.1 {
        r_type = 0.1;
    }
    if title_score == 0.0 {
        r_type = 0.0;
    }
    TypeReward { r_type, query_match, category_match, title_score }
}

fn mentioned(p: &Product, needle: &str) -> bool {
    p.title.to_lowercase().contains(needle)
        || p.bullet_points.join(" ").to_lowercase().contains(needle)
        || p.description.to_lowercase().contains(needle)
}

/// `get_attribute_reward`: goal attributes matched (token_set_ratio > 85 with a product
/// attribute, else a substring of title, bullet points or description).
pub fn attribute_matches(p: &Product, goal: &Goal) -> usize {
    goal.attributes
        .iter()
        .filter(|g| p.attributes.iter().any(|a| token_set_ratio(a, g) > 85) || mentioned(p, g))
        .count()
}

/// How `normalize_color` and thefuzz see a synthetic goal's option: `get_reward` passes
/// `goal['goal_options'].items()`, so each goal option is a `(name, value)` tuple.
/// `normalize_color(tuple)` tests `color in tuple` (equality with the name or the value, colours
/// in `COLOR_SET` order) and returns that colour; otherwise the tuple, which `full_process` turns
/// into text through `str()`: `('size', '8 fl oz')`, matched as the words `size 8 fl oz`.
pub fn goal_option_text(name: &str, value: &str) -> String {
    if let Some(c) = COLOR_SET.iter().find(|c| **c == name || **c == value) {
        return (*c).to_owned();
    }
    format!("({}, {})", py_repr(name), py_repr(value))
}

/// Python's `repr` of a string (what `str()` of a tuple shows of it).
pub fn py_repr(s: &str) -> String {
    use unicode_general_category::{get_general_category, GeneralCategory as G};
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => {
                // Python's str.isprintable: not a control, format, surrogate, private-use,
                // unassigned or separator character (except the ASCII space).
                let printable = c == ' '
                    || !matches!(
                        get_general_category(c),
                        G::Control
                            | G::Format
                            | G::Surrogate
                            | G::PrivateUse
                            | G::Unassigned
                            | G::LineSeparator
                            | G::ParagraphSeparator
                            | G::SpaceSeparator
                    );
                let code = c as u32;
                if printable {
                    out.push(c);
                } else if code < 0x100 {
                    out.push_str(&format!("\\x{code:02x}"));
                } else if code < 0x10000 {
                    out.push_str(&format!("\\u{code:04x}"));
                } else {
                    out.push_str(&format!("\\U{code:08x}"));
                }
            }
        }
    }
    out.push(quote);
    out
}

/// `get_option_reward` as the original computes it: the goal options matched by some purchased
/// option value (both through `normalize_color`) with `token_set_ratio > 85`, each goal option
/// counted once. Synthetic goals' options are `(name, value)` pairs ([`goal_option_text`]);
/// human goals' are plain values, normalised as the purchased ones.
pub fn option_matches(goal: &Goal, chosen: &[(String, String)]) -> usize {
    let purchased: Vec<String> = chosen.iter().map(|(_, v)| normalize_color(v)).collect();
    goal.goal_options
        .iter()
        .filter(|(name, value)| {
            let g = match goal.option_form {
                OptionForm::Pairs => goal_option_text(name, value),
                OptionForm::Values => normalize_color(value),
            };
            purchased.iter().any(|p| token_set_ratio(p, &g) > 85)
        })
        .count()
}

/// The reward of buying `p` at `price` with `chosen` options for `goal`.
pub fn reward(p: &Product, goal: &Goal, price: f64, chosen: &[(String, String)], noun_fn: impl Fn(&str) -> Vec<String>) -> f64 {
    let t = type_reward(p, goal, noun_fn);
    let r_price = if price <= goal.price_upper { 1.0 } else { 0.0 };
    let matched = attribute_matches(p, goal) + option_matches(goal, chosen);
    (matched as f64 + r_price) / (goal.attributes.len() + goal.goal_options.len() + 1) as f64 * t.r_type
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product() -> Product {
        Product {
            asin: "B000000001".into(),
            title: "Lumina Tea Tree Natural Ingredients Scrubs & Body Treatments".into(),
            category: "beauty".into(),
            query: "scrubs & body treatments".into(),
            product_category: "Beauty & Personal Care › Skin Care › Body".into(),
            description: "Made with tea tree.".into(),
            bullet_points: vec!["Natural ingredients.".into()],
            pricing: vec![12.5],
            price_tag: "$12.5".into(),
            options: vec![("size".into(), vec!["4 fl oz".into(), "8 fl oz".into()])],
            attributes: vec!["tea tree".into(), "natural ingredients".into()],
            instruction_text: None,
            instruction_attributes: vec![],
        }
    }

    fn goal() -> Goal {
        Goal {
            asin: "B000000001".into(),
            category: "beauty".into(),
            query: "scrubs & body treatments".into(),
            name: "Lumina Tea Tree Natural Ingredients Scrubs & Body Treatments".into(),
            product_category: "Beauty & Personal Care › Skin Care › Body".into(),
            instruction_text: String::new(),
            attributes: vec!["tea tree".into(), "natural ingredients".into()],
            price_upper: 20.0,
            goal_options: vec![("size".into(), "8 fl oz".into())],
            option_form: OptionForm::Pairs,
        }
    }

    #[test]
    fn human_goal_options_are_plain_values() {
        let pairs = goal();
        let values = Goal { goal_options: vec![(String::new(), "8 fl oz".into())], option_form: OptionForm::Values, ..goal() };
        let chosen = [("size".to_owned(), "8 fl oz".to_owned())];
        assert_eq!(option_matches(&values, &chosen), 1);
        assert_eq!(option_matches(&pairs, &chosen), 1);
        // The pair's text carries the name: "size 8 fl oz" still matches "8 fl oz" by token set;
        // a plain value with another name's words does not gain them.
        let only_value = [("size".to_owned(), "size 8 fl oz".to_owned())];
        assert_eq!(option_matches(&values, &only_value), 1);
        // thefuzz: token_set_ratio("4 fl oz", "8 fl oz") = 86 (a match, as in the original);
        // token_set_ratio("16 ounce", "8 fl oz") = 27.
        assert_eq!(option_matches(&values, &[("size".to_owned(), "4 fl oz".to_owned())]), 1);
        assert_eq!(option_matches(&values, &[("size".to_owned(), "16 ounce".to_owned())]), 0);
    }

    #[test]
    fn the_right_product_with_the_right_option_scores_one() {
        let r = reward(&product(), &goal(), 12.5, &[("size".into(), "8 fl oz".into())], nouns);
        assert!((r - 1.0).abs() < 1e-12, "{r}");
    }

    #[test]
    fn terms_are_counted_as_the_original_does() {
        // Wrong size ("4 fl oz" against the pair "size 8 fl oz" scores 83): 3 of 4.
        let r = reward(&product(), &goal(), 12.5, &[("size".into(), "4 fl oz".into())], nouns);
        assert!((r - 0.75).abs() < 1e-12, "{r}");
        // Too expensive and no option chosen: 2 of 4.
        let r = reward(&product(), &goal(), 25.0, &[], nouns);
        assert!((r - 0.5).abs() < 1e-12, "{r}");
        // A product of another type: r_type 0.
        let mut other = product();
        other.title = "Kestrel Wireless Headphones".into();
        other.query = "headphones".into();
        other.product_category = "Electronics › Audio".into();
        assert_eq!(reward(&other, &goal(), 12.5, &[], nouns), 0.0);
    }
}
