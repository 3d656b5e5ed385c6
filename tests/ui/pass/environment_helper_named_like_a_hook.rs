use eef_runtime::prelude::*;

struct Env {
    steps: usize,
}

#[environment(max_steps = 10)]
impl Env {
    fn tasks(&self) -> Vec<Task> {
        Vec::new()
    }
    fn reset(&mut self, _task: &Task, _seed: u64) -> String {
        self.steps = 0;
        String::new()
    }
    fn step(&mut self, _action: &str) -> StepResult {
        self.steps += 1;
        StepResult::running(format!("{} steps", self.steps_taken()), 0.0)
    }
    /// A deliberate helper one edit away from `steps`... and not a hook.
    #[env(skip)]
    fn steps_taken(&self) -> usize {
        self.steps
    }
    #[env(skip)]
    fn reset_(&mut self) {}
}

fn main() {
    let _ = Env { steps: 0 }.reset_();
}
