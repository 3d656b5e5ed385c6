//! A port of thefuzz's `fuzz.token_set_ratio` (thefuzz 0.22 on rapidfuzz 3), which WebShop's
//! reward uses to match attributes and options. Checked against Python's values on the pairs in
//! `environments/tests/data/token_set_ratio.tsv` (made by `scripts/make_fuzz_table.py`).
//!
//! Preprocessing (`full_process` with `force_ascii=True`: `ascii_only` then rapidfuzz's
//! `default_process`): characters U+0080..U+00FF are removed; every character that is not a
//! letter or a number (general categories L* and N*, as Python's `str.isalnum`; so combining
//! marks, as in Devanagari, and `_` become spaces) becomes a space; each character is lower-cased
//! on its own (Unicode's simple mapping: `İ` to `i`, `Σ` always to `σ`, no final-sigma rule);
//! whitespace is trimmed.
//! The score is the best normalized Indel similarity among the sorted token intersection and the
//! intersection extended by each side's remaining tokens, rounded half to even as Python's
//! `round` does.

use std::collections::BTreeSet;

/// Whether rapidfuzz's `default_process` keeps `c`: a letter or a number.
fn is_alnum(c: char) -> bool {
    use unicode_general_category::{get_general_category, GeneralCategory as G};
    matches!(
        get_general_category(c),
        G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter
            | G::DecimalNumber
            | G::LetterNumber
            | G::OtherNumber
    )
}

/// Unicode's simple lower-case mapping of one character (one character out).
fn simple_lower(c: char) -> char {
    if c == '\u{130}' {
        return 'i'; // the only character whose full mapping has two: İ -> i + U+0307
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// thefuzz's `full_process(s, force_ascii=True)`.
pub fn full_process(s: &str) -> String {
    let kept: String = s
        .chars()
        .filter(|c| !(0x80..=0xFF).contains(&(*c as u32)))
        .map(|c| if is_alnum(c) { simple_lower(c) } else { ' ' })
        .collect();
    kept.trim().to_owned()
}

/// Indel distance (insertions and deletions only) between two char sequences.
fn indel(a: &[char], b: &[char]) -> usize {
    if a.is_empty() || b.is_empty() {
        return a.len() + b.len();
    }
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for ca in a {
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = if ca == cb { prev[j] + 1 } else { cur[j].max(prev[j + 1]) };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    a.len() + b.len() - 2 * prev[b.len()]
}

fn norm_similarity(distance: usize, total: usize) -> f64 {
    if total == 0 {
        100.0
    } else {
        100.0 * (1.0 - distance as f64 / total as f64)
    }
}

/// rapidfuzz's `token_set_ratio` on already processed strings, unrounded.
pub fn token_set_ratio_raw(a: &str, b: &str) -> f64 {
    let ta: BTreeSet<&str> = a.split_whitespace().collect();
    let tb: BTreeSet<&str> = b.split_whitespace().collect();
    if ta.is_empty() || tb.is_empty() {
        return 0.0;
    }
    let sect: Vec<&str> = ta.intersection(&tb).copied().collect();
    let ab: Vec<&str> = ta.difference(&tb).copied().collect();
    let ba: Vec<&str> = tb.difference(&ta).copied().collect();
    if !sect.is_empty() && (ab.is_empty() || ba.is_empty()) {
        return 100.0;
    }
    let ab: Vec<char> = ab.join(" ").chars().collect();
    let ba: Vec<char> = ba.join(" ").chars().collect();
    let sect_len = sect.join(" ").chars().count();
    let sep = usize::from(sect_len != 0);
    let sect_ab_len = sect_len + sep + ab.len();
    let sect_ba_len = sect_len + sep + ba.len();
    let mut result = norm_similarity(indel(&ab, &ba), sect_ab_len + sect_ba_len);
    if sect_len != 0 {
        result = result
            .max(norm_similarity(sep + ab.len(), sect_len + sect_ab_len))
            .max(norm_similarity(sep + ba.len(), sect_len + sect_ba_len));
    }
    result
}

/// Python's `round`: to the nearest integer, halves to even.
fn round_half_even(x: f64) -> i64 {
    let f = x.floor();
    let diff = x - f;
    // Up above a half, and at exactly a half when the floor is odd (so the result is even).
    let up = diff > 0.5 || (diff == 0.5 && (f as i64) % 2 != 0);
    let r = if up { f + 1.0 } else { f };
    r as i64
}

/// `thefuzz.fuzz.token_set_ratio(a, b)`: 0-100.
pub fn token_set_ratio(a: &str, b: &str) -> i64 {
    round_half_even(token_set_ratio_raw(&full_process(a), &full_process(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_thefuzz_on_the_reference_table() {
        let table = include_str!("../../tests/data/token_set_ratio.tsv");
        let mut n = 0;
        let mut wrong = Vec::new();
        for line in table.lines().filter(|l| !l.starts_with('#')) {
            let cols: Vec<&str> = line.split('\t').collect();
            let expected: i64 = cols[2].parse().unwrap();
            let got = token_set_ratio(cols[0], cols[1]);
            if got != expected {
                wrong.push(format!("{:?} vs {:?}: python {expected}, rust {got}", cols[0], cols[1]));
            }
            n += 1;
        }
        assert!(n >= 1000, "{n} pairs");
        assert!(wrong.is_empty(), "{} of {n} differ:\n{}", wrong.len(), wrong.join("\n"));
    }

    #[test]
    fn rounding_is_pythons() {
        assert_eq!(round_half_even(85.5), 86);
        assert_eq!(round_half_even(86.5), 86);
        assert_eq!(round_half_even(85.49), 85);
    }
}
