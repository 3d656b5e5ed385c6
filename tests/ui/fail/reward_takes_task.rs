use eef_runtime::prelude::*;

#[reward]
fn by_task(task: &Task) -> f64 {
    task.index as f64
}

fn main() {}
