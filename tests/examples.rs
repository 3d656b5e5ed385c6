//! The shipped experiment configurations and the examples' command line.

use clap::Parser;
use eef_experiments::cli::Args;

#[test]
fn the_shipped_vault_config_builds_an_experiment() {
    let args = Args::try_parse_from(["vault_eef", "--iterations", "1", "--seed", "9", "--quiet"]).unwrap();
    let config = args.load_config(eef_experiments::vault::DEFAULT_CONFIG).unwrap();
    assert_eq!(config.experiment.iterations, 1);
    assert_eq!(config.experiment.seed, 9);
    assert!(!config.rollout.progress);
    let labels: Vec<String> = config.methods.iter().map(|m| m.label()).collect();
    assert_eq!(labels, ["SFT", "RFT", "RFT x6", "EEF"]);
    eef_experiments::vault::experiment(config).unwrap();
}

#[test]
fn a_malformed_config_names_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.toml");
    std::fs::write(&path, "[experiment]\nname = \"x\"\n\n[environment]\nlevers = \"six\"\n").unwrap();
    let args = Args::try_parse_from(["vault_eef", "--config", path.to_str().unwrap()]).unwrap();
    let config = args.load_config("unused").unwrap();
    let err = eef_experiments::vault::experiment(config).unwrap_err().to_string();
    assert!(err.contains("bad.toml:5:10"), "{err}");
    assert!(err.contains("invalid type: string \"six\""), "{err}");
}
