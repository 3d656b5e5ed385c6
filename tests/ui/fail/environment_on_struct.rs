use eef_runtime::prelude::*;

#[environment(max_steps = 10)]
struct Env {
    value: u32,
}

fn main() {}
