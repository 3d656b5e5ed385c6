//! Writes the product titles for spaCy's noun table (`scripts/make_webshop_nouns.py` runs it).
//!
//! ```text
//! cargo run --release --example webshop_titles -- /tmp/webshop-titles.json
//! ```
fn main() -> std::process::ExitCode {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: webshop_titles OUT.json");
        return std::process::ExitCode::FAILURE;
    };
    eef_experiments::cli::print_report(eef_experiments::webshop_titles::export(std::path::Path::new(&out)))
}
