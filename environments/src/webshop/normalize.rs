//! WebShop's `normalize_color` (engine/normalize.py): the first entry of `COLOR_SET` contained in
//! the string, else the string itself.

/// WebShop's colour list, in its order (the first contained entry wins).
pub const COLOR_SET: &[&str] = &[
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure", "banana", "beige", "black", "blue", "blush", "bordeaux",
    "bronze", "brown", "burgundy", "camel", "camo", "caramel", "champagne", "charcoal", "cheetah", "chestnut",
    "chocolate", "christmas", "coffee", "cognac", "copper", "coral", "cranberry", "cream", "crystal", "dark", "denim",
    "eggplant", "elephant", "espresso", "fuchsia", "gold", "granite", "grape", "graphite", "grass", "gray", "green",
    "grey", "heather", "indigo", "ivory", "ivy", "khaki", "lavender", "lemon", "leopard", "light", "lilac", "lime",
    "magenta", "maroon", "mauve", "merlot", "midnight", "mint", "mocha", "multicolor", "mushroom", "mustard",
    "natural", "navy", "nude", "olive", "orange", "peach", "pewter", "pink", "plum", "purple", "rainbow", "red", "rose",
    "royal", "rust", "sand", "sapphire", "seashell", "silver", "skull", "slate", "steel", "stone", "stonewash",
    "sunflower", "tan", "taupe", "teal", "tiger", "turquoise", "violet", "walnut", "wheat", "white", "wine", "yellow",
];

/// `normalize_color(s)`.
pub fn normalize_color(s: &str) -> String {
    COLOR_SET.iter().find(|c| s.contains(**c)).map_or_else(|| s.to_owned(), |c| (*c).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_test_suite() {
        for (input, expected) in
            [("", ""), ("black forest", "black"), ("violet lavender", "lavender"), ("steelivy fuchsia", "fuchsia"), ("123alabaster", "alabaster"), ("webshop", "webshop")]
        {
            assert_eq!(normalize_color(input), expected);
        }
    }
}
