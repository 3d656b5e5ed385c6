use eef_runtime::prelude::*;

struct Env;

#[environment(max_steps = 10)]
impl Env {
    fn tasks(&self) -> Vec<Task> {
        Vec::new()
    }
    fn reset(&mut self, _task: &Task, _seed: u64) -> &'static str {
        "start"
    }
    fn step(&mut self, _action: &str) -> StepResult {
        StepResult::finished("end", 1.0)
    }
}

fn main() {}
