use eef_runtime::prelude::*;

#[selector]
fn picks(group: &TaskGroup<'_>) -> Vec<Trajectory> {
    group.explored.to_vec()
}

fn main() {}
