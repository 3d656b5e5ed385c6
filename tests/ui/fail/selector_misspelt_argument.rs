use eef_runtime::prelude::*;

#[selector(nmae = "pick")]
fn pick(_group: &TaskGroup<'_>) -> Selection {
    Selection::default()
}

fn main() {}
