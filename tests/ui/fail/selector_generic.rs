use eef_runtime::prelude::*;

#[selector]
fn pick<T>(_group: &TaskGroup<'_>) -> Selection {
    Selection::default()
}

fn main() {}
