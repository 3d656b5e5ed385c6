//! The product titles spaCy's noun table is made from (`scripts/make_webshop_nouns.py`): every
//! title of the default `webshop-synth` catalog (the table shipped in
//! `environments/data/webshop-nouns.json`), and held-out titles of another catalog seed, on which
//! the approximation used outside the table is measured.

use std::collections::BTreeSet;
use std::path::Path;

use eef_environments::webshop::{Catalog, WebShopConfig};
use eef_runtime::Error;

/// Held-out titles written.
pub const HELD_OUT: usize = 500;

/// Writes `{"table": [...], "held_out": [...]}` to `out`; returns a one-line summary.
pub fn export(out: &Path) -> Result<String, Error> {
    let default = WebShopConfig::default();
    let table: BTreeSet<String> = Catalog::load(&default).map_err(Error::Setup)?.products.into_iter().map(|p| p.title).collect();
    let other = WebShopConfig { synth_seed: default.synth_seed + 1, ..default };
    let held_out: Vec<String> = Catalog::load(&other)
        .map_err(Error::Setup)?
        .products
        .into_iter()
        .map(|p| p.title)
        .filter(|t| !table.contains(t))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .take(HELD_OUT)
        .collect();
    let json = serde_json::json!({ "table": table, "held_out": held_out });
    std::fs::write(out, serde_json::to_vec(&json).map_err(|e| Error::Setup(e.to_string()))?)
        .map_err(|e| Error::Setup(format!("{}: {e}", out.display())))?;
    Ok(format!("{} table titles, {} held-out titles -> {}", table.len(), held_out.len(), out.display()))
}
