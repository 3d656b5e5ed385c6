//! Product search as WebShop's: pyserini's `LuceneSearcher` (Anserini 0.14.3 on Lucene 8) with
//! BM25 k1 = 0.9, b = 0.4 over the text WebShop indexes for each product (title, description,
//! first bullet point, option text), reproduced step by step:
//!
//! - analysis as Anserini's `DefaultEnglishAnalyzer`: Unicode word segmentation (UAX #29, as
//!   Lucene's `StandardTokenizer`), possessive `'s` removed, lower case, Lucene's English stop
//!   words removed, Porter stemming (the original algorithm, as Lucene's `PorterStemFilter`);
//! - document lengths stored as Lucene's one-byte norms (`SmallFloat.intToByte4`), so scores
//!   use the same lossy lengths;
//! - Lucene 8's BM25 in single precision (`weight - weight / (1 + tf · normInverse)`), repeated
//!   query terms as one clause boosted by their count (Anserini's bag-of-words query), clause
//!   scores summed in double precision and rounded to single; ties broken by the external id
//!   (the ASIN, ascending), as Anserini sorts (`BREAK_SCORE_TIES_BY_DOCID`).
//!
//! Agreement with the real Lucene is measured on the catalog by
//! `scripts/make_webshop_episode_reference.py` (`tests/data/webshop/ranking_reference.json`).

use std::collections::HashMap;

use unicode_segmentation::UnicodeSegmentation;

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

/// Lucene's `EnglishPossessiveFilter`: a trailing `'s` (apostrophe `'`, `’` or `＇`; `s` or
/// `S`) is removed.
fn strip_possessive(t: &str) -> &str {
    for apostrophe in ["'", "\u{2019}", "\u{FF07}"] {
        for s in ["s", "S"] {
            if let Some(stem) = t.strip_suffix(s).and_then(|r| r.strip_suffix(apostrophe)) {
                return stem;
            }
        }
    }
    t
}

/// The analyser (Anserini's `DefaultEnglishAnalyzer`): terms of `text` as indexed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Analyzer;

impl Analyzer {
    /// Analyses `text` into terms.
    pub fn terms(&self, text: &str) -> Vec<String> {
        text.unicode_words()
            .map(|t| strip_possessive(t).to_lowercase())
            .filter(|t| !t.is_empty() && !STOP_WORDS.contains(&t.as_str()))
            .map(|t| super::porter::stem(&t))
            .collect()
    }
}

/// Lucene's `SmallFloat.intToByte4`: a document length as its one-byte norm.
pub fn length_to_norm(len: u32) -> u8 {
    const FREE: u32 = 24; // 255 - longToInt4(Integer.MAX_VALUE)
    if len < FREE {
        return len as u8;
    }
    let i = u64::from(len - FREE);
    let bits = 64 - i.leading_zeros();
    let int4 = if bits < 4 {
        i as u32
    } else {
        let shift = bits - 4;
        (((i >> shift) as u32) & 0x07) | ((shift + 1) << 3)
    };
    (FREE + int4) as u8
}

/// Lucene's `SmallFloat.byte4ToInt`: the length a norm stands for.
pub fn norm_to_length(norm: u8) -> u32 {
    const FREE: u32 = 24;
    let i = u32::from(norm);
    if i < FREE {
        return i;
    }
    let i = i - FREE;
    let bits = u64::from(i & 0x07);
    let shift = (i >> 3) as i32 - 1;
    let decoded = if shift == -1 { bits } else { (bits | 0x08) << shift };
    (u64::from(FREE) + decoded) as u32
}

/// An inverted index over a catalog.
#[derive(Debug)]
pub struct SearchIndex {
    analyzer: Analyzer,
    /// term -> (doc, term frequency)
    postings: HashMap<String, Vec<(u32, u32)>>,
    /// Each document's length as Lucene stores it (one byte).
    norms: Vec<u8>,
    /// `1 / (k1 · (1 - b + b · length / avgdl))` per norm value, as Lucene caches it.
    norm_inverse: [f32; 256],
    /// Each document's ASIN, which breaks score ties.
    ids: Vec<String>,
}

impl SearchIndex {
    /// Indexes `products` (document ids are their positions).
    pub fn build(products: &[Product]) -> Self {
        let analyzer = Analyzer;
        let mut postings: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        let mut norms = Vec::with_capacity(products.len());
        let mut total_terms = 0u64;
        for (i, p) in products.iter().enumerate() {
            let terms = analyzer.terms(&indexed_text(p));
            total_terms += terms.len() as u64;
            norms.push(length_to_norm(terms.len() as u32));
            let mut tf: HashMap<String, u32> = HashMap::new();
            for t in terms {
                *tf.entry(t).or_default() += 1;
            }
            for (t, n) in tf {
                postings.entry(t).or_default().push((i as u32, n));
            }
        }
        for list in postings.values_mut() {
            list.sort_unstable();
        }
        let avgdl = (total_terms as f64 / products.len().max(1) as f64) as f32;
        let mut norm_inverse = [0f32; 256];
        for (n, slot) in norm_inverse.iter_mut().enumerate() {
            *slot = 1.0 / (K1 * ((1.0 - B) + B * norm_to_length(n as u8) as f32 / avgdl));
        }
        let ids = products.iter().map(|p| p.asin.clone()).collect();
        SearchIndex { analyzer, postings, norms, norm_inverse, ids }
    }

    /// The ids of the best `k` documents for `query`, best first, scored as Lucene 8's BM25:
    /// per distinct query term, weight = count · ln(1 + (N - df + 0.5) / (df + 0.5)), term score
    /// = weight - weight / (1 + tf · normInverse[norm]); summed over terms.
    pub fn search(&self, query: &str, k: usize) -> Vec<usize> {
        self.scored(query, k).into_iter().map(|(d, _)| d).collect()
    }

    /// [`SearchIndex::search`] with each document's score.
    pub fn scored(&self, query: &str, k: usize) -> Vec<(usize, f32)> {
        let n = self.norms.len() as f64;
        let mut counts: Vec<(String, u32)> = Vec::new();
        for term in self.analyzer.terms(query) {
            match counts.iter_mut().find(|(t, _)| *t == term) {
                Some(c) => c.1 += 1,
                None => counts.push((term, 1)),
            }
        }
        let mut scores: HashMap<u32, f64> = HashMap::new();
        for (term, count) in counts {
            let Some(list) = self.postings.get(&term) else { continue };
            let df = list.len() as f64;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln() as f32;
            let weight = count as f32 * idf;
            for &(doc, tf) in list {
                let inv = self.norm_inverse[self.norms[doc as usize] as usize];
                let s = weight - weight / (1.0 + tf as f32 * inv);
                *scores.entry(doc).or_default() += f64::from(s);
            }
        }
        let mut ranked: Vec<(u32, f32)> = scores.into_iter().map(|(d, s)| (d, s as f32)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| self.ids[a.0 as usize].cmp(&self.ids[b.0 as usize])));
        ranked.into_iter().take(k).map(|(d, s)| (d as usize, s)).collect()
    }
}

