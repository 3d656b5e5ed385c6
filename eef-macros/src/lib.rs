//! Procedural macros of the **eef** framework. Use them through `eef_runtime`
//! (`use eef_runtime::prelude::*;`), which re-exports them; the code they generate refers to the
//! runtime only through `::eef_runtime::__private`.
//!
//! - [`macro@environment`] on an inherent `impl` block: implements `Environment` from its
//!   `tasks`, `reset`, `step` (and optional `valid_actions`, `max_steps`, `replay`) methods.
//! - [`macro@reward`] on a function `fn(&Trajectory) -> f64`: a reusable `Reward`.
//! - [`macro@selector`] on a function `fn(&TaskGroup) -> Selection` (optionally with a second
//!   argument `&Params` read from the method's `params` table): a reusable `Selector`.
//!
//! Misuse is reported as a compile error at the offending tokens, saying how to fix it; the item
//! is still emitted so that one mistake does not cascade into unrelated errors.

mod args;
mod environment;
mod fn_item;
mod reward;
mod selector;

use proc_macro::TokenStream;

/// Implements `eef_runtime::Environment` for a type from the methods of an inherent `impl` block.
///
/// ```text
/// #[environment(name = "vault", max_steps = 12)]
/// impl Vault {
///     fn tasks(&self) -> Vec<Task> { ... }
///     fn reset(&mut self, task: &Task, seed: u64) -> String { ... }          // or Result<String, E>
///     fn step(&mut self, action: &str) -> StepResult { ... }                  // or Result<StepResult, E>
///     fn valid_actions(&self) -> Option<Vec<String>> { ... }                  // optional
///     fn max_steps(&self, task: &Task) -> usize { ... }                       // optional
///     fn replay(&mut self, task: &Task, seed: u64, prefix: &[String]) -> ReplayOutcome { ... } // optional
/// }
/// ```
///
/// Arguments: `name = "..."` (default: the type's name in lower case) and `max_steps = N`
/// (required unless the block defines `max_steps`). A method whose name is one edit away from a
/// hook's (two for longer names), e.g. `valid_action`, is an error that names the hook; mark a
/// deliberate helper of such a name `#[env(skip)]`.
#[proc_macro_attribute]
pub fn environment(args: TokenStream, item: TokenStream) -> TokenStream {
    environment::expand(args.into(), item.into()).into()
}

/// Turns a plain function `fn(&Trajectory) -> f64` into a reusable reward: a unit struct of the
/// same name implementing `eef_runtime::Reward` (the function stays callable as `name::call`).
///
/// Arguments: `name = "..."` (default: the function's name) and `success = X`, the lowest score
/// that counts as a success (default 1.0).
#[proc_macro_attribute]
pub fn reward(args: TokenStream, item: TokenStream) -> TokenStream {
    reward::expand(args.into(), item.into()).into()
}

/// Turns a function `fn(&TaskGroup<'_>) -> Selection` into a reusable selector: a unit struct of
/// the same name implementing `eef_runtime::Selector` (the function stays callable as
/// `name::call`).
///
/// Arguments: `name = "..."` (default: the function's name; used in `[[methods]] selector = ...`)
/// and `plan = path::to::fn`, a `fn(&PlanContext<'_>) -> Vec<StartState>` naming where to explore
/// (default: every task start).
///
/// With a second argument `params: &P` (`P: Deserialize + Default`), each method reads `P` from
/// its `[[methods]] params` table (`P::default()` without one), with the configuration's line and
/// column on errors; `plan` then takes `(&PlanContext<'_>, &P)`, and `name::with(p)` binds the
/// selector to `p` in code.
#[proc_macro_attribute]
pub fn selector(args: TokenStream, item: TokenStream) -> TokenStream {
    selector::expand(args.into(), item.into()).into()
}
