use eef_runtime::prelude::*;
use eef_runtime::selection::PlanContext;

fn starts(_ctx: &PlanContext<'_>) -> Vec<String> {
    Vec::new()
}

#[selector(plan = starts)]
fn pick(_group: &TaskGroup<'_>) -> Selection {
    Selection::default()
}

fn main() {}
