use eef_runtime::prelude::*;

#[derive(Default)]
struct Limits {
    max_turns: usize,
}

#[selector]
fn short(_group: &TaskGroup<'_>, params: &Limits) -> Selection {
    let _ = params.max_turns;
    Selection::default()
}

fn main() {}
