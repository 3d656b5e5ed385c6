//! The iteration loop end to end on a small Vault: report, run directory, resume after a kill.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::runtime;
use eef_runtime::policy::{Act, ActRequest, Policy, PolicyError, TabularPolicy, TrainConfig, TrainReport};
use eef_runtime::rollout::CancellationToken;
use eef_runtime::{Error, ExperimentConfig, Report, Trajectory};

const CONFIG: &str = r#"
[experiment]
name = "small"
seed = 3
iterations = 2

[rollout]
concurrency = 4
temperature = 1.0
progress = false

[eval]
dev_tasks = 10               # held out from the 60 training tasks; best iterations are chosen on them

[[methods]]
selector = "sft"
[[methods]]
selector = "rft"
[[methods]]
selector = "rft"
samples = 6
[[methods]]
selector = "eef"

[environment]
train_tasks = 60
test_tasks = 30
"#;

fn config(dir: &Path) -> ExperimentConfig {
    let mut c = ExperimentConfig::from_toml("small.toml", CONFIG).unwrap();
    c.experiment.run_dir = dir.to_owned();
    c
}

fn run(config: ExperimentConfig) -> Result<Report, Error> {
    let exp = eef_experiments::vault::experiment(config).unwrap();
    runtime().block_on(exp.run())
}

fn best(report: &Report, label: &str) -> f64 {
    report.methods.iter().find(|m| m.label == label).unwrap().best().unwrap().eval.win_rate
}

#[test]
fn the_loop_writes_everything_and_eef_beats_rft() {
    let tmp = tempfile::tempdir().unwrap();
    let report = run(config(tmp.path())).unwrap();
    let root = tmp.path().join("small");
    for f in [
        "config.toml",
        "expert.jsonl",
        "expert-eval.jsonl",
        "sft/checkpoint/tabular.json",
        "sft/iteration.json",
        "eef/iter-1/explore.jsonl",
        "eef/iter-1/selection.jsonl",
        "eef/iter-1/segments.jsonl",
        "eef/iter-1/dataset.jsonl",
        "eef/iter-2/checkpoint/tabular.json",
        "eef/iter-2/eval.jsonl",
        "eef/iter-2/dev-eval.jsonl",
        "sft/dev-eval.jsonl",
        "rft-x6/iter-2/iteration.json",
        "report.md",
        "report.json",
        "plots/win-rate.svg",
        "plots/reward.svg",
        "metrics.jsonl",
    ] {
        assert!(root.join(f).exists(), "missing {f}");
    }
    assert_eq!(report.methods.len(), 4);
    assert_eq!((report.train_tasks, report.dev_tasks), (50, 10), "the dev tasks are held out of training");
    for m in &report.methods {
        let chosen = m.best().unwrap();
        let dev = |it: &eef_runtime::experiment::IterationReport| it.dev.as_ref().unwrap().win_rate;
        assert!(m.iterations.iter().all(|it| dev(it) <= dev(chosen)), "{}: the best iteration is the best on dev", m.label);
        assert!(chosen.eval.win_rate_ci[0] <= chosen.eval.win_rate && chosen.eval.win_rate <= chosen.eval.win_rate_ci[1]);
    }
    assert_eq!(report.methods[0].iterations.len(), 1, "SFT has only iteration 0");
    // The paper's mechanism numbers: tasks solved in the training set grow, recovery states
    // accumulate, harmful segments are counted from the labels.
    let eef_rows = &report.methods.iter().find(|m| m.label == "EEF").unwrap().iterations;
    assert!(eef_rows[1].tasks_solved > eef_rows[0].tasks_solved, "EEF's training set covers more tasks than SFT's");
    assert!(eef_rows[2].recovery_states_total >= eef_rows[1].recovery_states_total && eef_rows[1].recovery_states_total >= eef_rows[1].recovery_states);
    let segments: Vec<eef_runtime::selection::Segment> = eef_runtime::jsonl::read(&root.join("eef/iter-1/segments.jsonl")).unwrap();
    let harmful = segments.iter().filter(|x| x.kind == eef_runtime::selection::SegmentKind::Harmful).count();
    assert_eq!(eef_rows[1].harmful_segments, harmful);
    assert_eq!(report.methods[3].iterations.len(), 3);
    let sft = best(&report, "SFT");
    let rft = best(&report, "RFT");
    let eef = best(&report, "EEF");
    assert!(eef > sft, "EEF {eef} vs SFT {sft}");
    assert!(eef > rft, "EEF {eef} vs RFT {rft}");
    let md = std::fs::read_to_string(root.join("report.md")).unwrap();
    assert!(md.contains("| EEF | 1 |") && md.contains("chosen on the dev split (10 tasks), reported on the test split"), "{md}");
    assert!(md.contains("](plots/win-rate.svg)"), "the report links its plots");
    let svg = std::fs::read_to_string(root.join("plots/win-rate.svg")).unwrap();
    assert!(svg.starts_with("<svg") && ["SFT", "RFT x6", "EEF", "iteration (0 = SFT)"].iter().all(|l| svg.contains(l)), "{svg}");
    // The live log has each phase as it ended: EEF's exploration, selection and iteration lines.
    let live = eef_runtime::live::read(&root.join("metrics.jsonl")).unwrap();
    let eef_phases: Vec<&str> = live.iter().filter(|r| r.method == "EEF" && r.iteration == 1).filter_map(|r| r.phase.as_deref()).collect();
    assert!(["EEF explore it1", "selection", "train", "EEF eval it1", "iteration"].iter().all(|p| eef_phases.contains(p)), "{eef_phases:?}");
    let selection = live.iter().find(|r| r.method == "EEF" && r.iteration == 1 && r.phase.as_deref() == Some("selection")).unwrap();
    assert_eq!(selection.values.as_ref().unwrap()["recovery_states"].as_u64(), Some(eef_rows[1].recovery_states as u64));
    // Exploration of EEF starts from expert states; RFT's does not.
    let eef_explore: Vec<Trajectory> = eef_runtime::jsonl::read(&root.join("eef/iter-1/explore.jsonl")).unwrap();
    assert!(eef_explore.iter().any(|t| t.start != eef_runtime::StartState::TaskStart));
    let rft_explore: Vec<Trajectory> = eef_runtime::jsonl::read(&root.join("rft/iter-1/explore.jsonl")).unwrap();
    assert!(rft_explore.iter().all(|t| t.start == eef_runtime::StartState::TaskStart));
}

/// The tabular policy, but the whole run is cancelled after `limit` actions (a Ctrl-C).
struct KilledAfter {
    inner: TabularPolicy,
    seen: Arc<AtomicUsize>,
    limit: usize,
    token: CancellationToken,
}

impl Policy for KilledAfter {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        if self.seen.fetch_add(requests.len(), Ordering::SeqCst) >= self.limit {
            self.token.cancel();
        }
        self.inner.act_batch(requests)
    }
    fn train(&mut self, data: &[Trajectory], config: &TrainConfig) -> Result<TrainReport, PolicyError> {
        self.inner.train(data, config)
    }
    fn save(&self, dir: &Path) -> Result<(), PolicyError> {
        self.inner.save(dir)
    }
    fn load(&mut self, dir: &Path) -> Result<(), PolicyError> {
        self.inner.load(dir)
    }
}

/// Every JSONL file under `root` (relative path, bytes), sorted by path, but the live-metrics
/// log (`metrics.jsonl`: times and throughputs, appended to by a resumed run).
fn jsonl_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") && !p.ends_with("metrics.jsonl") {
                out.push((p.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_killed_run_resumes_to_the_same_result_without_losing_trajectories() {
    let whole = tempfile::tempdir().unwrap();
    let expected = run(config(whole.path())).unwrap();

    let killed = tempfile::tempdir().unwrap();
    let cfg = config(killed.path());
    for limit in [700, 2500] {
        let exp = eef_experiments::vault::experiment(cfg.clone()).unwrap();
        let token = exp.cancellation_token();
        let seen = Arc::new(AtomicUsize::new(0));
        let exp = exp.policy(move || KilledAfter { inner: TabularPolicy::default(), seen: seen.clone(), limit, token: token.clone() });
        let res = runtime().block_on(exp.run());
        assert!(matches!(res, Err(Error::Cancelled)), "the run was interrupted at {limit}: {res:?}");
    }
    let lines = |files: &[(String, Vec<u8>)]| -> Vec<(String, String)> {
        files.iter().flat_map(|(f, b)| String::from_utf8_lossy(b).lines().map(|l| (f.clone(), l.to_owned())).collect::<Vec<_>>()).collect()
    };
    let before = lines(&jsonl_files(&killed.path().join("small")));
    assert!(!before.is_empty());
    let resumed = run(cfg).unwrap();
    assert_eq!(resumed.methods, expected.methods, "resuming gives the uninterrupted result");
    let after_files = jsonl_files(&killed.path().join("small"));
    let after = lines(&after_files);
    for (file, record) in &before {
        if file.ends_with("explore.jsonl") || file.ends_with("eval.jsonl") || file == "expert.jsonl" {
            assert!(after.contains(&(file.clone(), record.clone())), "a trajectory collected before the kill was lost from {file}");
        }
    }
    let whole_files = jsonl_files(&whole.path().join("small"));
    assert_eq!(after_files.len(), whole_files.len());
    for ((f, a), (g, b)) in after_files.iter().zip(&whole_files) {
        assert!(f == g && a == b, "{f} differs from the uninterrupted run's (byte for byte)");
    }
}

/// The tabular policy, counting training calls.
struct CountingTrains {
    inner: TabularPolicy,
    trains: Arc<AtomicUsize>,
}

impl Policy for CountingTrains {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        self.inner.act_batch(requests)
    }
    fn train(&mut self, data: &[Trajectory], config: &TrainConfig) -> Result<TrainReport, PolicyError> {
        self.trains.fetch_add(1, Ordering::SeqCst);
        self.inner.train(data, config)
    }
    fn save(&self, dir: &Path) -> Result<(), PolicyError> {
        self.inner.save(dir)
    }
    fn load(&mut self, dir: &Path) -> Result<(), PolicyError> {
        self.inner.load(dir)
    }
}

#[test]
fn a_run_killed_after_training_reuses_the_trained_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = run(config(tmp.path())).unwrap();
    // Kill after every training step but before the evaluations were recorded.
    let root = tmp.path().join("small");
    let mut removed = 0;
    for dir in ["sft", "rft/iter-1", "rft/iter-2", "rft-x6/iter-1", "rft-x6/iter-2", "eef/iter-1", "eef/iter-2"] {
        assert!(root.join(dir).join("checkpoint/trained.json").exists(), "{dir}: no trained.json");
        std::fs::remove_file(root.join(dir).join("iteration.json")).unwrap();
        removed += 1;
    }
    std::fs::remove_file(root.join("report.json")).unwrap();
    let trains = Arc::new(AtomicUsize::new(0));
    let counter = trains.clone();
    let exp = eef_experiments::vault::experiment(config(tmp.path())).unwrap().policy(move || CountingTrains { inner: TabularPolicy::default(), trains: counter.clone() });
    let resumed = runtime().block_on(exp.run()).unwrap();
    assert_eq!(removed, 7);
    assert_eq!(trains.load(Ordering::SeqCst), 0, "trained policies are loaded, not trained again");
    assert_eq!(resumed.methods, expected.methods);
}

#[test]
fn setup_mistakes_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(tmp.path());
    c.methods.push(eef_runtime::config::MethodConfig::new("longest"));
    let err = run(c).unwrap_err().to_string();
    assert!(err.contains("selector \"longest\", which is not registered"), "{err}");
    assert!(err.contains("eef, eto, rft, sft"), "{err}");

    let c = config(tmp.path());
    run(c.clone()).unwrap();
    let mut other = c;
    other.experiment.seed = 4;
    let err = run(other).unwrap_err().to_string();
    assert!(err.contains("different configuration"), "{err}");
}

#[test]
fn a_preference_method_with_a_policy_that_cannot_train_on_preferences_is_refused_at_setup() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(tmp.path());
    c.methods.push(eef_runtime::config::MethodConfig::new("eto"));
    let counter = Arc::new(AtomicUsize::new(0));
    let trains = counter.clone();
    let exp = eef_experiments::vault::experiment(c).unwrap().policy(move || CountingTrains { inner: TabularPolicy::default(), trains: trains.clone() });
    let err = runtime().block_on(exp.run()).unwrap_err().to_string();
    assert!(err.contains("method \"ETO\"") && err.contains("cannot train on preferences"), "{err}");
    assert_eq!(counter.load(Ordering::SeqCst), 0);
    assert!(!tmp.path().join("small").exists(), "nothing was run or written before the refusal");
}

#[test]
fn a_budget_matched_rft_explores_as_many_episodes_as_eef() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(tmp.path());
    c.experiment.iterations = 1;
    c.methods = vec![
        eef_runtime::config::MethodConfig::new("eef"),
        eef_runtime::config::MethodConfig { match_budget_of: Some("eef".into()), ..eef_runtime::config::MethodConfig::new("rft") },
    ];
    let report = run(c).unwrap();
    let episodes = |label: &str| report.methods.iter().find(|m| m.label == label).unwrap().iterations[1].explore.as_ref().unwrap().episodes;
    assert!(episodes("EEF") > report.train_tasks, "EEF probes expert states too");
    assert_eq!(episodes("RFT (EEF budget)"), episodes("EEF"));
    let md = std::fs::read_to_string(tmp.path().join("small/report.md")).unwrap();
    assert!(md.contains("Episodes simulated"), "{md}");
}

#[test]
fn several_expert_sources_are_tagged_and_selectable_per_method() {
    use eef_runtime::config::{ExpertSource, MethodConfig};
    let tmp = tempfile::tempdir().unwrap();
    // Expert data of two "experts": the vault expert's trajectories, split by task parity.
    let mut first = config(&tmp.path().join("first"));
    first.experiment.iterations = 0;
    first.methods = vec![MethodConfig::new("sft")];
    run(first).unwrap();
    let all: Vec<Trajectory> = eef_runtime::jsonl::read(&tmp.path().join("first/small/expert.jsonl")).unwrap();
    let parity = |t: &Trajectory| t.task_id.to_string().trim_start_matches("vault-").parse::<usize>().unwrap() % 2;
    for (name, p) in [("gpt4", 0), ("gpt35", 1)] {
        let mine: Vec<Trajectory> = all.iter().filter(|t| parity(t) == p).cloned().collect();
        eef_runtime::jsonl::write(&tmp.path().join(format!("{name}.jsonl")), &mine).unwrap();
    }
    let mut c = config(tmp.path());
    c.experiment.iterations = 1;
    c.expert.sources = ["gpt4", "gpt35"].map(|n| ExpertSource { name: n.into(), from_file: tmp.path().join(format!("{n}.jsonl")) }).to_vec();
    c.methods = vec![
        MethodConfig::new("eef"),
        MethodConfig { label: Some("EEF gpt4".into()), experts: Some(vec!["gpt4".into()]), ..MethodConfig::new("eef") },
    ];
    let report = run(c).unwrap();
    let tags: Vec<Trajectory> = eef_runtime::jsonl::read(&tmp.path().join("small/expert.jsonl")).unwrap();
    assert!(tags.iter().all(|t| (t.provenance.as_deref() == Some("gpt4")) == (parity(t) == 0)), "every expert trajectory carries its source");
    assert_eq!(report.expert_sources.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["gpt4", "gpt35"]);
    let examples = |dir: &str| -> Vec<eef_runtime::selection::TrainingExample> { eef_runtime::jsonl::read(&tmp.path().join(format!("small/{dir}/iter-1/selection.jsonl"))).unwrap() };
    let expert_sources = |dir: &str| -> std::collections::BTreeSet<Option<String>> {
        examples(dir).into_iter().filter(|e| e.trajectory.turns.iter().any(|t| t.actor == eef_runtime::Actor::Expert)).map(|e| e.trajectory.provenance).collect()
    };
    assert_eq!(expert_sources("eef"), [Some("gpt35".to_owned()), Some("gpt4".to_owned())].into_iter().collect());
    assert_eq!(expert_sources("eef-gpt4"), [Some("gpt4".to_owned())].into_iter().collect(), "the method saw only its source");
    let md = std::fs::read_to_string(tmp.path().join("small/report.md")).unwrap();
    assert!(md.contains("Expert sources: `gpt4`"), "{md}");

    let bad = "[experiment]\nname = \"x\"\n[[expert.sources]]\nname = \"gpt4\"\nfrom_file = \"a.jsonl\"\n[[methods]]\nselector = \"eef\"\nexperts = [\"gpt5\"]\n";
    let err = ExperimentConfig::from_toml("bad.toml", bad).unwrap_err().to_string();
    assert!(err.contains("bad.toml:8:") && err.contains("\"gpt5\", which [[expert.sources]] does not name (known: gpt4)"), "{err}");
}

#[test]
fn an_unregistered_selector_is_reported_at_its_place_in_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "[experiment]\nname = \"x\"\n\n[[methods]]\nselector = \"sft\"\n\n[[methods]]\nselector = \"short_rft\"\n";
    let mut c = ExperimentConfig::from_toml("exp.toml", text).unwrap();
    c.experiment.run_dir = tmp.path().to_owned();
    let err = run(c).unwrap_err().to_string();
    assert!(err.contains("exp.toml:8:12") && err.contains("selector \"short_rft\", which is not registered"), "{err}");
}

#[test]
fn identical_runs_leave_identical_files_whatever_the_completion_order() {
    let files = jsonl_files;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut ca = config(a.path());
    ca.experiment.iterations = 1;
    ca.rollout.concurrency = 8;
    let mut cb = config(b.path());
    cb.experiment.iterations = 1;
    cb.rollout.concurrency = 3;
    run(ca).unwrap();
    run(cb).unwrap();
    let (fa, fb) = (files(&a.path().join("small")), files(&b.path().join("small")));
    assert!(fa.len() > 10);
    for ((na, ba), (nb, bb)) in fa.iter().zip(&fb) {
        assert_eq!(na, nb);
        assert!(ba == bb, "{na} differs between two identical runs");
    }
}

#[test]
fn a_finished_run_is_extended_by_more_iterations() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(tmp.path());
    c.experiment.iterations = 1;
    let one = run(c.clone()).unwrap();
    let mtime = |p: &str| std::fs::metadata(tmp.path().join("small").join(p)).unwrap().modified().unwrap();
    let first = mtime("eef/iter-1/checkpoint/trained.json");
    c.experiment.iterations = 2;
    let two = run(c).unwrap();
    let eef = |r: &Report| r.methods.iter().find(|m| m.label == "EEF").unwrap().iterations.clone();
    assert_eq!(eef(&two).len(), 3, "iterations 0, 1 and the new 2");
    assert_eq!(eef(&two)[..2], eef(&one)[..], "the finished iterations are kept, not rerun");
    assert_eq!(mtime("eef/iter-1/checkpoint/trained.json"), first);
    assert!(tmp.path().join("small/eef/iter-2/iteration.json").exists());
}

#[test]
fn resuming_a_run_of_other_code_is_refused_unless_asked_for() {
    use eef_runtime::experiment::code::CodeIdentity;
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(tmp.path());
    c.experiment.iterations = 1;
    let code = |f: &str| CodeIdentity { fingerprint: f.into(), git: Some(format!("commit-{f}")) };
    let go = |fp: &str, anyway: bool| runtime().block_on(eef_experiments::vault::experiment(c.clone()).unwrap().code(code(fp)).resume_anyway(anyway).run());
    let first = go("aaa", false).unwrap();
    assert_eq!(go("aaa", false).unwrap(), first, "the same code resumes");
    let err = go("bbb", false).unwrap_err().to_string();
    assert!(err.contains("produced by different code (fingerprint aaa -> bbb; git commit-aaa -> commit-bbb)") && err.contains("--fresh") && err.contains("--resume-anyway"), "{err}");
    go("bbb", true).unwrap();
    let recorded: CodeIdentity = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("small/code.json")).unwrap()).unwrap();
    assert_eq!(recorded, code("bbb"), "the run now records the code that continued it");
}
