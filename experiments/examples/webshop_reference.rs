//! The port's side of `scripts/make_webshop_episode_reference.py`: writes the default catalog in
//! WebShop's file formats, or serves the port's search ranking on stdin/stdout.
//!
//! ```text
//! cargo run --release --example webshop_reference -- export /tmp/webshop-port
//! cargo run --release --example webshop_reference -- search    # one JSON string per line in
//! ```
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["export", dir] => eef_experiments::webshop_reference::export(std::path::Path::new(dir)),
        ["search"] => eef_experiments::webshop_reference::serve_search(std::io::stdin().lock(), std::io::stdout().lock()),
        _ => {
            eprintln!("usage: webshop_reference export DIR | webshop_reference search");
            return std::process::ExitCode::FAILURE;
        }
    };
    match result {
        Ok(summary) => {
            eprintln!("{summary}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
