//! The same seed gives the same files whatever the number of threads: a small WebShop run with
//! the burn Llama policy (SFT, RFT, EEF; packed whole-conversation training, batched decoding
//! with the key-value cache of earlier turns, four episodes at a time) on one thread and on two,
//! in two child processes, every JSONL file compared byte for byte.

use std::path::{Path, PathBuf};

const CHILD: &str = "EEF_DETERMINISM_CHILD";

/// A few minutes' run: 40 training goals, 10 test goals.
fn config(run_dir: &Path) -> String {
    format!(
        r#"
[experiment]
name = "det"
seed = 3
run_dir = {run_dir:?}
iterations = 1
train_from = "previous"
[train]
epochs = 2
[rollout]
concurrency = 4
temperature = 1.0
eval_temperature = 0.0
progress = false
[eval]
max_tasks = 10
[eef]
states = 2
[[methods]]
selector = "sft"
[[methods]]
selector = "rft"
[[methods]]
selector = "eef"
[environment]
test_goals = 10
max_train_goals = 40
max_steps = 6
offer_valid_actions = true
[policy]
vocab_size = 320
max_context = 384
batch_size = 4
[policy.model]
vocab_size = 320
hidden_size = 32
intermediate_size = 64
num_hidden_layers = 2
num_attention_heads = 4
num_key_value_heads = 2
"#,
        run_dir = run_dir.display().to_string()
    )
}

/// Every JSONL file under `dir` but the live metrics log (timings), by relative path.
fn jsonl_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") && p.file_name().is_some_and(|n| n != "metrics.jsonl") {
                out.push((p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn one_thread_and_two_threads_write_byte_identical_runs() {
    if let Ok(dir) = std::env::var(CHILD) {
        let dir = PathBuf::from(dir);
        let path = dir.join("det.toml");
        std::fs::write(&path, config(&dir)).unwrap();
        let config = eef_runtime::ExperimentConfig::from_file(&path).unwrap();
        let experiment = eef_experiments::webshop::experiment(config).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let report = rt.block_on(experiment.run()).unwrap();
        assert_eq!(report.methods.len(), 3);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let runs: Vec<Vec<(PathBuf, Vec<u8>)>> = [1, 2]
        .into_iter()
        .map(|threads| {
            let dir = tmp.path().join(format!("threads-{threads}"));
            std::fs::create_dir_all(&dir).unwrap();
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["one_thread_and_two_threads_write_byte_identical_runs", "--exact", "--test-threads", "1", "--nocapture"])
                .env(CHILD, &dir)
                .env("RAYON_NUM_THREADS", threads.to_string())
                .output()
                .unwrap();
            assert!(out.status.success(), "the run on {threads} thread(s) failed:\n{}", String::from_utf8_lossy(&out.stderr));
            jsonl_files(&dir.join("det"))
        })
        .collect();
    let names = |r: &[(PathBuf, Vec<u8>)]| r.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&runs[0]), names(&runs[1]));
    assert!(runs[0].iter().any(|(p, _)| p.ends_with("eval.jsonl")) && runs[0].len() >= 8, "{:?}", names(&runs[0]));
    for ((path, a), (_, b)) in runs[0].iter().zip(&runs[1]) {
        assert!(a == b, "{} differs between one and two threads", path.display());
    }
}
