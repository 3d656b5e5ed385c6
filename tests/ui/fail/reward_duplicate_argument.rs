use eef_runtime::prelude::*;

#[reward(success = 1.0, success = 0.5)]
fn final_reward(t: &Trajectory) -> f64 {
    t.last_step_reward()
}

fn main() {}
