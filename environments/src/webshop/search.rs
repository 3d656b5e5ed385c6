//! Product search: BM25 with Lucene's formula and pyserini's parameters (k1 = 0.9, b = 0.4) over
//! the text WebShop indexes for each product (title, description, first bullet point, option
//! text), analysed as Lucene's English analyzer does: lower case, split on non-alphanumerics,
//! possessive `'s` dropped, English stop words removed, stemmed.
//!
//! Differences from pyserini, documented: the stemmer is Snowball English (Porter2, from
//! `rust-stemmers`) where Lucene uses Porter; document lengths are exact where Lucene stores
//! them with a lossy one-byte encoding. Ties are broken by catalog order, as Lucene breaks them
//! by document id.

use std::collections::HashMap;

use rust_stemmers::{Algorithm, Stemmer};

use super::data::Product;

/// Lucene's `EnglishAnalyzer` stop words.
pub const STOP_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
];

/// pyserini's BM25 `k1`.
pub const K1: f32 = 0.9;
/// pyserini's BM25 `b`.
pub const B: f32 = 0.4;

/// The text WebShop indexes for a product.
pub fn indexed_text(p: &Product) -> String {
    let options = p
        .options
        .iter()
        .map(|(name, values)| format!("{name}: {}", values.join(", ")))
        .collect::<Vec<_>>()
        .join(", and ");
    format!("{} {} {} {}", p.title, p.description, p.bullet_points.first().map_or("", String::as_str), options).to_lowercase()
}

/// The analyser: tokens of `text` as indexed.
pub struct Analyzer {
    stemmer: Stemmer,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Analyzer(english)")
    }
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer { stemmer: Stemmer::create(Algorithm::English) }
    }
}

impl Analyzer {
    /// Analyses `text` into terms.
    pub fn terms(&self, text: &str) -> Vec<String> {
        text.to_lowercase()
            .split(|c: char| !(c.is_alphanumeric() || c == '\''))
            .map(|t| t.trim_matches('\''))
            .map(|t| t.strip_suffix("'s").unwrap_or(t))
            .filter(|t| !t.is_empty() && !STOP_WORDS.contains(t))
            .map(|t| self.stemmer.stem(t).into_owned())
            .collect()
    }
}

/// An inverted index over a catalog.
#[derive(Debug)]
pub struct SearchIndex {
    analyzer: Analyzer,
    /// term -> (doc, term frequency)
    postings: HashMap<String, Vec<(u32, u32)>>,
    doc_len: Vec<f32>,
    avg_len: f32,
}

impl SearchIndex {
    /// Indexes `products` (document ids are their positions).
    pub fn build(products: &[Product]) -> Self {
        let analyzer = Analyzer::default();
        let mut postings: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        let mut doc_len = Vec::with_capacity(products.len());
        for (i, p) in products.iter().enumerate() {
            let terms = analyzer.terms(&indexed_text(p));
            doc_len.push(terms.len() as f32);
            let mut tf: HashMap<String, u32> = HashMap::new();
            for t in terms {
                *tf.entry(t).or_default() += 1;
            }
            for (t, n) in tf {
                postings.entry(t).or_default().push((i as u32, n));
            }
        }
        let avg_len = doc_len.iter().sum::<f32>() / doc_len.len().max(1) as f32;
        SearchIndex { analyzer, postings, doc_len, avg_len }
    }

    /// The ids of the best `k` documents for `query`, best first (Lucene's BM25: idf =
    /// ln(1 + (N - df + 0.5) / (df + 0.5)), term score = idf · tf / (tf + k1 (1 - b + b · dl / avgdl)),
    /// summed over query terms, repeated terms counted again).
    pub fn search(&self, query: &str, k: usize) -> Vec<usize> {
        let n = self.doc_len.len() as f32;
        let mut scores: HashMap<u32, f32> = HashMap::new();
        for term in self.analyzer.terms(query) {
            let Some(list) = self.postings.get(&term) else { continue };
            let df = list.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(doc, tf) in list {
                let tf = tf as f32;
                let norm = K1 * (1.0 - B + B * self.doc_len[doc as usize] / self.avg_len);
                *scores.entry(doc).or_default() += idf * tf / (tf + norm);
            }
        }
        let mut ranked: Vec<(u32, f32)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.into_iter().take(k).map(|(d, _)| d as usize).collect()
    }
}
