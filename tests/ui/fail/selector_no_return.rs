use eef_runtime::prelude::*;

#[selector(name = "nothing")]
fn nothing(_group: &TaskGroup<'_>) {}

fn main() {}
