use eef_runtime::prelude::*;

#[reward(success = "high")]
fn final_reward(t: &Trajectory) -> f64 {
    t.last_step_reward()
}

fn main() {}
