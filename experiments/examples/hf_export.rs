//! Re-saves the Hugging Face fixtures for `scripts/make_hf_fixtures.py --check`.
//!
//! ```text
//! cargo run --release --example hf_export -- tests/data/hf /tmp/eef-hf-export
//! ```
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [fixtures, out] = args.as_slice() else {
        eprintln!("usage: hf_export FIXTURES_DIR OUT_DIR");
        return std::process::ExitCode::FAILURE;
    };
    match eef_experiments::hf_export::run(std::path::Path::new(fixtures), std::path::Path::new(out)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
