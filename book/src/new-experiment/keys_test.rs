use eef_experiments::keys::{KeysConfig, KeysEnv, KeysExpert};
use eef_runtime::policy::TabularPolicy;
use eef_runtime::prelude::*;
use eef_runtime::selection::{Eef, Reason};
use eef_runtime::testing::{GroupOptions, TaskGroups};

#[test]
fn eef_recovers_the_hard_houses() {
    let keys = KeysConfig { houses: 12, hard_every: 3 };
    let env = move |_worker| Ok::<_, EnvError>(KeysEnv::new(keys.clone()));
    // An untrained explorer picks keys at random: enough to succeed from late states.
    let options = GroupOptions { samples: 6, seed: 1, ..GroupOptions::default() };
    let eef = Eef::default();
    let groups = TaskGroups::collect(env, KeysExpert::new(3), TabularPolicy::default(), &eef, &options).unwrap();
    let selection = groups.select(&eef);
    assert!(selection.examples.iter().any(|e| matches!(e.reason, Reason::Recovery { .. })), "{}", selection.summary());
    insta::assert_snapshot!(selection.summary());
}
