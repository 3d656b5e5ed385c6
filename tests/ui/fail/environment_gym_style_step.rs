use eef_runtime::prelude::*;

struct Env;

#[environment(max_steps = 10)]
impl Env {
    fn tasks(&self) -> Vec<Task> {
        Vec::new()
    }
    fn reset(&mut self, _task: &Task, _seed: u64) -> String {
        String::new()
    }
    fn step(&mut self, _action: &str) -> (String, f64, bool) {
        (String::new(), 0.0, false)
    }
}

fn main() {}
