//! The port's side of the WebShop differential references
//! (`scripts/make_webshop_episode_reference.py`): the default `webshop-synth` catalog written in
//! the original's file formats, and the port's search ranking served line by line, so the
//! original Python code can run on the same products, goals, prices and (optionally) ranking.

use std::io::{BufRead, Write};
use std::path::Path;

use eef_environments::webshop::{export, Catalog, WebShopConfig, SEARCH_RETURN_N};
use eef_runtime::Error;

fn catalog() -> Result<Catalog, Error> {
    Catalog::load(&WebShopConfig::default()).map_err(Error::Setup)
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Setup(e.to_string()))?;
    std::fs::write(path, bytes).map_err(|e| Error::Setup(format!("{}: {e}", path.display())))
}

/// Writes `items_shuffle.json`, `items_ins_v2.json`, `goals.json` and `prices.json` of the
/// default catalog into `dir`; returns a one-line summary.
pub fn export(dir: &Path) -> Result<String, Error> {
    let c = catalog()?;
    std::fs::create_dir_all(dir).map_err(|e| Error::Setup(format!("{}: {e}", dir.display())))?;
    write_json(&dir.join("items_shuffle.json"), &export::raw_products(&c))?;
    write_json(&dir.join("items_ins_v2.json"), &export::raw_attributes(&c))?;
    write_json(&dir.join("goals.json"), &export::goals_json(&c))?;
    write_json(&dir.join("prices.json"), &export::prices_json(&c))?;
    Ok(format!("{}: {} products, {} goals -> {}", c.label(), c.products.len(), c.goals.len(), dir.display()))
}

/// Answers search requests: each input line is a JSON string (the keywords as the original
/// passes them to its searcher), each output line the JSON list of the top
/// [`SEARCH_RETURN_N`] ASINs the port ranks for it.
pub fn serve_search(input: impl BufRead, mut output: impl Write) -> Result<String, Error> {
    let c = catalog()?;
    let mut n = 0usize;
    for line in input.lines() {
        let line = line.map_err(|e| Error::Setup(e.to_string()))?;
        let query: String = serde_json::from_str(&line).map_err(|e| Error::Setup(format!("request {line:?}: {e}")))?;
        let asins: Vec<&str> = c.index.search(&query, SEARCH_RETURN_N).into_iter().map(|i| c.products[i].asin.as_str()).collect();
        let reply = serde_json::to_string(&asins).map_err(|e| Error::Setup(e.to_string()))?;
        writeln!(output, "{reply}").and_then(|_| output.flush()).map_err(|e| Error::Setup(e.to_string()))?;
        n += 1;
    }
    Ok(format!("answered {n} searches"))
}
