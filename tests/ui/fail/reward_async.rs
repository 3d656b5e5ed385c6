use eef_runtime::prelude::*;

#[reward]
async fn judged(t: &Trajectory) -> f64 {
    t.last_step_reward()
}

fn main() {}
