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

#[test]
fn every_shipped_config_parses() {
    use eef_runtime::model::LmSettings;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let config = eef_runtime::ExperimentConfig::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let policy: LmSettings = config.policy().unwrap_or_else(|e| panic!("{e}"));
        let compiled = policy.backend.compiled();
        if path.file_name().unwrap().to_str().unwrap().starts_with("webshop") {
            let s: eef_experiments::webshop::Settings = config.environment().unwrap();
            assert_eq!(s.env.max_steps, 10);
            match eef_experiments::webshop::experiment(config) {
                Ok(_) => assert!(compiled),
                // A GPU config in a CPU build says which feature to enable.
                Err(e) => assert!(!compiled && e.to_string().contains(&format!("--features {}", policy.backend.feature())), "{e}"),
            }
        }
        n += 1;
    }
    assert!(n >= 5, "{n} configs");
}

#[test]
fn seeds_runs_each_seed_in_its_own_directory_and_summarises_them() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("few.toml");
    let toml = format!(
        "[experiment]\nname = \"few\"\nseed = 5\niterations = 1\nrun_dir = {:?}\n[rollout]\nprogress = false\n[[methods]]\nselector = \"sft\"\n[[methods]]\nselector = \"eef\"\n[environment]\ntrain_tasks = 20\ntest_tasks = 10\n",
        tmp.path().display().to_string()
    );
    std::fs::write(&path, toml).unwrap();
    let args = Args::try_parse_from(["vault_eef", "--config", path.to_str().unwrap(), "--seeds", "3"]).unwrap();
    let md = eef_experiments::cli::run_seeds(&args, "unused", &eef_experiments::vault::experiment).unwrap();
    for seed in [5, 6, 7] {
        assert!(tmp.path().join(format!("few-seed{seed}/report.json")).exists(), "seed {seed} ran in its own directory");
    }
    assert!(md.contains("over 3 seeds (5, 6, 7)") && md.contains("| EEF |") && md.contains("| SFT |"), "{md}");
    let eef = md.lines().find(|l| l.starts_with("| EEF |")).unwrap();
    assert_eq!(eef.matches("% / ").count(), 3, "each seed's win rate and reward: {eef}");
    // The paired difference from SFT, pooled over the seeds' common test tasks.
    let paired = md.lines().find(|l| l.starts_with("| EEF − SFT |")).unwrap_or_else(|| panic!("no paired row: {md}"));
    assert_eq!(paired.matches(" pts [").count(), 1, "{paired}");
    assert_eq!(std::fs::read_to_string(tmp.path().join("few-seeds.md")).unwrap(), md);
}

/// `tests/Cargo.toml` lists its test files (`autotests = false`, the files sit at the crate
/// root): a new file that is not listed would silently never build. This fails instead, naming
/// the entry to add.
#[test]
fn every_test_file_is_listed_in_the_test_crate_manifest() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if path.extension().is_some_and(|e| e == "rs") {
            let stem = name.trim_end_matches(".rs");
            assert!(
                manifest.contains(&format!("path = \"{name}\"")),
                "tests/{name} is not built: add\n\n[[test]]\nname = \"{stem}\"\npath = \"{name}\"\n\nto tests/Cargo.toml"
            );
        }
    }
}
