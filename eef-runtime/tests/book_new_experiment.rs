//! The book's "A new experiment, from an empty file" chapter, as written: its files under
//! `book/src/new-experiment/` are compiled here (the module where a user's crate would have
//! `eef_experiments::keys`), its snapshot test runs, and the experiment runs end to end on the
//! chapter's configuration.

#[allow(dead_code)] // DEFAULT_CONFIG serves the chapter's example, not this test
mod eef_experiments {
    pub mod keys {
        include!("../../book/src/new-experiment/keys.rs");
    }
}

include!("../../book/src/new-experiment/keys_test.rs");

/// `cargo run --example keys_eef` as the chapter's configuration sets it up: every method runs,
/// the expert fails the hard houses, and EEF finds recovery states in them.
#[test]
fn the_chapters_experiment_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ExperimentConfig::from_toml("keys.toml", include_str!("../../book/src/new-experiment/keys.toml")).unwrap();
    config.experiment.run_dir = dir.path().to_owned();
    config.rollout.progress = false;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let report = runtime.block_on(eef_experiments::keys::experiment(config).unwrap().run()).unwrap();
    let labels: Vec<&str> = report.methods.iter().map(|m| m.label.as_str()).collect();
    assert_eq!(labels, ["SFT", "RFT", "EEF"]);
    assert!(report.expert_train.win_rate > 0.5 && report.expert_train.win_rate < 1.0, "the expert fails the hard houses only: {}", report.expert_train.win_rate);
    let eef = &report.methods[2];
    assert!(eef.iterations[1].recovery_states > 0, "EEF recovers the hard houses");
    assert!(dir.path().join("keys/report.md").exists());
}
