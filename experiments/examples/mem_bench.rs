//! Host memory of loading a ~510 MB bf16 checkpoint (peak RSS against the file size) and of a
//! training step (against the plan's estimate), each in a fresh process.
//!
//! ```text
//! cargo run --release --example mem_bench
//! ```
fn main() -> std::process::ExitCode {
    match eef_experiments::mem_bench::run() {
        Ok(report) => {
            print!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
