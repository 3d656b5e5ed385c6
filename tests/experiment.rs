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
        // The interval is the task bootstrap of this evaluation: recomputed from its per-task
        // results, and as wide as 30 test tasks make it (binomial: ±1.96·√(p(1−p)/30)).
        let e = &chosen.eval;
        assert_eq!(e.tasks.len(), 30, "{}: one entry per test task", m.label);
        let per_task: Vec<f64> = e.tasks.values().map(|v| v[0]).collect();
        assert_eq!(e.win_rate_ci, eef_runtime::experiment::metrics::bootstrap_ci(&per_task));
        let half = 1.96 * (e.win_rate * (1.0 - e.win_rate) / 30.0).sqrt();
        assert!(((e.win_rate_ci[1] - e.win_rate_ci[0]) / 2.0 - half).abs() < 0.05 + half * 0.25, "{}: {:?} vs ±{half:.3}", m.label, e.win_rate_ci);
    }
    assert_eq!(report.methods[0].iterations.len(), 1, "SFT has only iteration 0");
    // The paper's mechanism numbers: tasks solved in the training set grow, recovery states
    // accumulate, harmful segments are counted from the labels.
    let eef_rows = &report.methods.iter().find(|m| m.label == "EEF").unwrap().iterations;
    assert!(eef_rows[1].tasks_solved > eef_rows[0].tasks_solved, "EEF's training set covers more tasks than SFT's");
    // Recovery states: counted from what entered the training sets, and found in both
    // iterations (so the accumulation below is not vacuous).
    let recoveries = |k: usize| -> std::collections::BTreeSet<String> {
        let data: Vec<eef_runtime::selection::TrainingExample> = eef_runtime::jsonl::read(&root.join(format!("eef/iter-{k}/dataset.jsonl"))).unwrap();
        data.into_iter()
            .filter_map(|e| match (e.reason, e.trajectory.start) {
                (eef_runtime::selection::Reason::Recovery { beneficial_to, .. }, eef_runtime::StartState::Expert { trajectory, .. }) => Some(format!("{trajectory}@{beneficial_to}")),
                _ => None,
            })
            .collect()
    };
    let (first, second) = (recoveries(1), recoveries(2));
    assert!(eef_rows[1].recovery_states > 0, "EEF found no recovery state: the checks below would be empty");
    assert_eq!(eef_rows[1].recovery_states_total, first.len());
    assert_eq!(eef_rows[2].recovery_states_total, second.len());
    assert!(first.is_subset(&second), "the training set accumulates: iteration 1's recovery states stay");
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
    // Broken evaluation episodes are shown, and each method is compared with SFT and RFT on the
    // same tasks.
    assert!(md.contains("| Broken episodes |") && md.contains("| 0 of 30 |"), "{md}");
    assert!(md.contains("## Paired differences") && md.contains("| EEF − SFT | 30 |") && md.contains("| EEF − RFT | 30 |"), "{md}");
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
    walk(root)
        .into_iter()
        .filter(|p| p.ends_with(".jsonl") && !p.ends_with("metrics.jsonl"))
        .map(|p| (p.clone(), std::fs::read(root.join(&p)).unwrap()))
        .collect()
}

/// Every file under `root`, as paths relative to it, sorted.
fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
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
    let trained: Vec<String> = walk(&root).into_iter().filter(|p| p.ends_with("/checkpoint/trained.json")).collect();
    let dirs = ["sft", "rft/iter-1", "rft/iter-2", "rft-x6/iter-1", "rft-x6/iter-2", "eef/iter-1", "eef/iter-2"];
    assert_eq!(trained, dirs.iter().map(|d| format!("{d}/checkpoint/trained.json")).collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>(), "every trained iteration is killed below");
    for dir in dirs {
        std::fs::remove_file(root.join(dir).join("iteration.json")).unwrap();
    }
    std::fs::remove_file(root.join("report.json")).unwrap();
    let trains = Arc::new(AtomicUsize::new(0));
    let counter = trains.clone();
    let exp = eef_experiments::vault::experiment(config(tmp.path())).unwrap().policy(move || CountingTrains { inner: TabularPolicy::default(), trains: counter.clone() });
    let resumed = runtime().block_on(exp.run()).unwrap();
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
    // At the defaults, and with EEF's samples and params changed: the budget is the EEF method's
    // actual episodes, not what the `[eef]` section alone would plan.
    for eef in ["", "samples = 2\nparams = { states = 3 }"] {
        let tmp = tempfile::tempdir().unwrap();
        let head = CONFIG.split("[[methods]]").next().unwrap();
        let tail = &CONFIG[CONFIG.find("[environment]").unwrap()..];
        let text = format!("{head}[[methods]]\nselector = \"eef\"\n{eef}\n[[methods]]\nselector = \"rft\"\nmatch_budget_of = \"eef\"\n\n{tail}");
        let mut c = ExperimentConfig::from_toml("budget.toml", &text).unwrap();
        c.experiment.run_dir = tmp.path().to_owned();
        c.experiment.iterations = 1;
        let report = run(c).unwrap();
        let eef_label = if eef.is_empty() { "EEF" } else { "EEF x2" };
        let episodes = |label: &str| report.methods.iter().find(|m| m.label == label).unwrap().iterations[1].explore.as_ref().unwrap().episodes;
        assert!(episodes(eef_label) > report.train_tasks, "EEF probes expert states too");
        assert_eq!(episodes("RFT (EEF budget)"), episodes(eef_label), "{eef}");
        let md = std::fs::read_to_string(tmp.path().join("small/report.md")).unwrap();
        assert!(md.contains("Episodes simulated"), "{md}");
    }
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

/// A tabular policy that numbers its weights: every training call makes a new version (saved with
/// the checkpoint), and every call is logged with the version it saw.
struct Versioned {
    inner: TabularPolicy,
    version: u64,
    next: Arc<AtomicUsize>,
    log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Versioned {
    fn record(&self, event: String) {
        let mut log = self.log.lock().unwrap();
        if log.last() != Some(&event) {
            log.push(event);
        }
    }
    fn bump(&mut self) -> u64 {
        self.version = self.next.fetch_add(1, Ordering::SeqCst) as u64 + 1;
        self.version
    }
}

impl Policy for Versioned {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        self.record(format!("act v{}", self.version));
        self.inner.act_batch(requests)
    }
    fn train(&mut self, data: &[Trajectory], config: &TrainConfig) -> Result<TrainReport, PolicyError> {
        let from = self.version;
        let to = self.bump();
        self.record(format!("sft v{from} -> v{to}"));
        // A few trajectories only, so that the policy fails some tasks the expert solved (a
        // table trained on every expert success replays them, and explorations would all tie).
        let few: Vec<Trajectory> = data.iter().take(3).cloned().collect();
        self.inner.train(&few, config)
    }
    fn supports_preferences(&self) -> bool {
        true
    }
    fn train_preferences(&mut self, pairs: &[eef_runtime::selection::PreferencePair], config: &TrainConfig) -> Result<TrainReport, PolicyError> {
        let from = self.version;
        let to = self.bump();
        self.record(format!("dpo v{from} -> v{to} ({} pairs, lr share {})", pairs.len(), config.dpo.learning_rate_ratio_at(config.iteration)));
        // One pair only, so that failures (and pairs) remain for the next iteration.
        self.inner.train_preferences(&pairs[..1.min(pairs.len())], config)
    }
    fn save(&self, dir: &Path) -> Result<(), PolicyError> {
        std::fs::write(dir.join("version"), self.version.to_string()).unwrap();
        self.inner.save(dir)
    }
    fn load(&mut self, dir: &Path) -> Result<(), PolicyError> {
        self.version = std::fs::read_to_string(dir.join("version")).unwrap().parse().unwrap();
        self.inner.load(dir)
    }
}

#[test]
fn eto_iterations_are_dpo_alone_from_the_model_they_explored_with() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(tmp.path());
    c.methods = vec![eef_runtime::config::MethodConfig::new("sft"), eef_runtime::config::MethodConfig::new("eto")];
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let (l, n) = (log.clone(), next.clone());
    let exp = eef_experiments::vault::experiment(c).unwrap().policy(move || Versioned { inner: TabularPolicy::default(), version: 0, next: n.clone(), log: l.clone() });
    let report = runtime().block_on(exp.run()).unwrap();
    let log = log.lock().unwrap().clone();
    // SFT trains v1 from the base; ETO's first iteration explores with v1 and trains v2 from it,
    // its second explores with v2 and trains v3 from it. No supervised pass after SFT.
    let expected = ["sft v0 -> v1", "act v1", "dpo v1 -> v2", "act v2", "dpo v2 -> v3", "act v3"];
    let shape: Vec<String> = log.iter().map(|e| e.split(" (").next().unwrap().to_owned()).collect();
    let eto_rows = &report.methods.iter().find(|m| m.label == "ETO").unwrap().iterations;
    assert_eq!(shape, expected, "{log:#?} {:?}", eto_rows.iter().map(|r| (r.explore.clone(), r.pairs)).collect::<Vec<_>>());
    assert!(log[2].ends_with("lr share 0.05)") && log[4].ends_with("lr share 0.025)"), "{log:#?}");

    let eto = report.methods.iter().find(|m| m.label == "ETO").unwrap();
    let root = tmp.path().join("small");
    let experts: Vec<Trajectory> = eef_runtime::jsonl::read(&root.join("expert.jsonl")).unwrap();
    let solved: std::collections::BTreeSet<_> = experts.iter().filter(|t| t.success).map(|t| t.task_id.clone()).collect();
    for k in 1..=2 {
        let it = &eto.iterations[k];
        assert_eq!(it.explore.as_ref().unwrap().episodes, solved.len(), "one exploration per task the expert solved");
        assert_eq!(it.training_examples, 0, "no supervised examples");
        let pairs: Vec<eef_runtime::selection::PreferencePair> = eef_runtime::jsonl::read(&root.join(format!("eto/iter-{k}/dataset-pairs.jsonl"))).unwrap();
        let mine: Vec<eef_runtime::selection::PreferencePair> = eef_runtime::jsonl::read(&root.join(format!("eto/iter-{k}/pairs.jsonl"))).unwrap();
        assert!(!mine.is_empty(), "iteration {k} found no pairs: the check would be empty");
        let ids = |v: &[eef_runtime::selection::PreferencePair]| {
            let mut ids: Vec<(String, String)> = v.iter().map(|p| (p.chosen.id.clone(), p.rejected.id.clone())).collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(&pairs), ids(&mine), "iteration {k} trains on its own pairs alone");
        assert!(pairs.iter().all(|p| p.rejected.id.starts_with(&format!("eto/it{k}/")) || p.chosen.id.starts_with(&format!("eto/it{k}/"))));
    }
}

/// Off a terminal (a batch job's log), a run prints what it does: where it writes, a line per
/// finished phase with its numbers (rollouts, training, selection, each iteration's test
/// score), the run's remaining time once every kind of phase still to run has been seen, and
/// where the report is.
#[test]
fn a_run_off_a_terminal_prints_each_phase_and_the_time_left() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(tmp.path());
    c.rollout.progress = true;
    let shown = common::SharedBuf::default();
    let console = eef_runtime::console::Console::lines(shown.clone(), std::time::Duration::from_secs(3600));
    let exp = eef_experiments::vault::experiment(c).unwrap().console(console);
    let report = runtime().block_on(exp.run()).unwrap();
    let text = shown.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.iter().all(|l| l.starts_with('[') && l.contains("] ")), "every line starts with the run's time:\n{text}");
    assert!(lines[0].contains("] vault: 50 training, 30 test, 10 dev tasks; methods SFT, RFT, RFT x6, EEF; run directory "), "{text}");
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(has("] expert: 50 episodes, success "), "{text}");
    assert!(has("] SFT train: "), "{text}");
    assert!(has("] SFT eval it0: 30 episodes, success "), "{text}");
    assert!(has("] SFT dev it0: 10 episodes, success "), "{text}");
    let eef = report.methods.iter().find(|m| m.label == "EEF").unwrap();
    let it1 = &eef.iterations[1];
    assert!(it1.recovery_states > 0 && has("] EEF it1 selection: ") && has(&format!(" ({} from recovery states), ", it1.recovery_states)), "{text}");
    assert!(has(&format!("] EEF it2 done: test success {:.1}%", 100.0 * eef.iterations[2].eval.win_rate)), "{text}");
    assert!(has("EEF explore it1: ") && has("RFT x6 explore it2: "), "{text}");
    // The time left is shown once it can be estimated, and not on the run's last phase.
    let with_eta: Vec<&&str> = lines.iter().filter(|l| l.contains("[run: ~")).collect();
    assert!(!with_eta.is_empty(), "{text}");
    assert!(!lines.iter().rev().find(|l| l.contains("EEF dev it2: ")).unwrap().contains("[run: ~"), "{text}");
    assert!(lines.last().unwrap().contains("] report: ") && lines.last().unwrap().contains("report.md"), "{text}");
}
