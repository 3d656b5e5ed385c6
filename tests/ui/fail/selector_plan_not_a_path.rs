use eef_runtime::prelude::*;

#[selector(plan = "task_starts")]
fn pick(_group: &TaskGroup<'_>) -> Selection {
    Selection::default()
}

fn main() {}
