use eef_runtime::prelude::*;

struct Env;

#[environment(max_steps = 10)]
impl Clone for Env {
    fn clone(&self) -> Self {
        Env
    }
}

fn main() {}
