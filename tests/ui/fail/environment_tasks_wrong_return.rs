use eef_runtime::prelude::*;

struct Env;

#[environment(max_steps = 10)]
impl Env {
    fn tasks(&self) -> Vec<String> {
        Vec::new()
    }
    fn reset(&mut self, _task: &Task, _seed: u64) -> String {
        String::new()
    }
    fn step(&mut self, _action: &str) -> StepResult {
        StepResult::running("", 0.0)
    }
}

fn main() {}
