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
    fn step(&mut self, action: String) -> StepResult {
        StepResult::finished(action, 1.0)
    }
}

fn main() {}
