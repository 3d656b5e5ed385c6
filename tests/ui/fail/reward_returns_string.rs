use eef_runtime::prelude::*;

#[reward]
fn verdict(t: &Trajectory) -> String {
    if t.success { "win".into() } else { "loss".into() }
}

fn main() {}
