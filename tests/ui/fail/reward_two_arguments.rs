use eef_runtime::prelude::*;

#[reward]
fn shaped(t: &Trajectory, bonus: f64) -> f64 {
    t.last_step_reward() + bonus
}

fn main() {}
