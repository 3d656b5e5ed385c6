use eef_runtime::prelude::*;
use eef_runtime::selection::PlanContext;

/// Parameters from `[[methods]] params = { max_turns = 3, from_start = true }`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    max_turns: usize,
    from_start: bool,
}

fn starts(_ctx: &PlanContext<'_>, params: &Limits) -> Vec<StartState> {
    if params.from_start {
        vec![StartState::TaskStart]
    } else {
        Vec::new()
    }
}

/// A documented, public selector with parameters and a plan that reads them.
#[selector(name = "short", plan = starts)]
pub fn short(group: &TaskGroup<'_>, params: &Limits) -> Selection {
    let _ = (group, params.max_turns);
    Selection::default()
}

fn main() {
    let configured = short::with(Limits { max_turns: 3, from_start: true });
    assert_eq!(configured.name(), "short");
    assert_eq!(short.name(), "short");
}
