//! Acting speed with and without the reuse of earlier turns' keys and values
//! ([`eef_runtime::model::prefix_cache`]): a run's trained policy replays the episodes the run
//! recorded (its `expert.jsonl`), turn by turn, several episodes in flight as the rollout engine
//! keeps them, greedy, once with `kv_reuse` and once without, A/B interleaved.
//!
//! ```text
//! cargo run --release --example act_bench -- --config experiments/configs/webshop.toml --run runs/webshop
//! ```
//!
//! Each episode's prompts are built as acting builds them: the recorded instruction and
//! observations, and the policy's own earlier answers (as in a rollout, where the cache holds the
//! answer the policy gave). The answers are generated freely for `max_new_tokens` at most (the
//! recorded trajectories do not keep the valid actions to constrain them with). The actions must
//! come out the same both ways: the report says whether they did.

use std::path::{Path, PathBuf};
use std::time::Instant;

use eef_runtime::model::chat::Chat;
use eef_runtime::model::{CpuTrain, LmPolicy, LmSettings, Tok};
use eef_runtime::policy::{Act, ActRequest, Policy, Step};
use eef_runtime::{Error, ExperimentConfig, Trajectory};

/// One pass over the episodes.
#[derive(Clone, Debug)]
pub struct Pass {
    /// Whether earlier turns' keys and values were reused.
    pub reuse: bool,
    /// Seconds.
    pub seconds: f64,
    /// Every answer, episode by episode.
    pub actions: Vec<Vec<String>>,
    /// Prompt tokens the model was asked to act on (whether fed or reused).
    pub prompt_tokens: usize,
    /// Prompt tokens actually fed to the model.
    pub prefilled: usize,
}

/// The requests of turn `k` of every episode long enough, with their episode numbers: the
/// recorded observations, and the policy's own `answers` so far as the history's actions.
fn turn(episodes: &[Trajectory], answers: &[Vec<Act>], k: usize) -> (Vec<usize>, Vec<ActRequest>) {
    episodes
        .iter()
        .enumerate()
        .filter(|(_, t)| t.turns.len() > k)
        .map(|(e, t)| {
            let history = t.turns[..k].iter().zip(&answers[e]).map(|(turn, a)| Step { observation: turn.observation.clone(), thought: a.thought.clone(), action: a.action.clone() }).collect();
            (
                e,
                ActRequest {
                    seed: e as u64,
                    task: t.task_id.clone(),
                    instruction: t.instruction.clone(),
                    history,
                    observation: t.turns[k].observation.clone(),
                    valid_actions: None,
                    temperature: 0.0,
                },
            )
        })
        .unzip()
}

/// Plays `episodes` with the policy saved in `checkpoint`, `in_flight` episodes at a time.
fn pass(settings: &LmSettings, checkpoint: &Path, chat: &Chat, episodes: &[Trajectory], in_flight: usize, reuse: bool) -> Result<Pass, Error> {
    let mut policy = LmPolicy::<CpuTrain>::new(LmSettings { kv_reuse: reuse, ..settings.clone() }, Default::default());
    policy.load(checkpoint)?;
    let mut answers: Vec<Vec<Act>> = vec![Vec::new(); episodes.len()];
    let mut prompt_tokens = 0;
    let started = Instant::now();
    let n = in_flight.max(1);
    for (g, group) in episodes.chunks(n).enumerate() {
        let first = g * n;
        let longest = group.iter().map(|t| t.turns.len()).max().unwrap_or(0);
        for k in 0..longest {
            let (who, requests) = turn(group, &answers[first..first + group.len()], k);
            prompt_tokens += requests.iter().map(|r| chat.prompt(&r.instruction, &r.history, &r.observation, settings.prompt_budget()).map_or(0, |p| p.len())).sum::<usize>();
            for (e, answer) in who.into_iter().zip(policy.act_batch(&requests)) {
                answers[first + e].push(answer?);
            }
        }
    }
    let actions = answers.into_iter().map(|a| a.into_iter().map(|a| a.action).collect()).collect();
    let seconds = started.elapsed().as_secs_f64();
    let stats = policy.cache_stats();
    let prefilled = if reuse { stats.prefilled_tokens } else { prompt_tokens };
    Ok(Pass { reuse, seconds, actions, prompt_tokens, prefilled })
}

/// Runs `rounds` A/B pairs on up to `max_episodes` of the run's expert episodes and returns the
/// report (Markdown).
pub fn run(config_path: &Path, run_dir: &Path, max_episodes: usize, in_flight: usize, rounds: usize) -> Result<String, Error> {
    let config = ExperimentConfig::from_file(config_path)?;
    let settings: LmSettings = config.policy()?;
    let checkpoint: PathBuf = run_dir.join("sft/checkpoint");
    if !checkpoint.exists() {
        return Err(Error::Setup(format!("{}: no trained policy there (run the experiment's SFT first)", checkpoint.display())));
    }
    let mut episodes: Vec<Trajectory> = eef_runtime::jsonl::read(&run_dir.join("expert.jsonl"))?;
    episodes.truncate(max_episodes);
    if episodes.is_empty() {
        return Err(Error::Setup(format!("{}: no episode to replay", run_dir.join("expert.jsonl").display())));
    }
    let tok = Tok::from_file(&checkpoint.join("tokenizer.json")).map_err(Error::Setup)?;
    let chat = Chat::from_folder(&checkpoint, tok, settings.chat.clone()).map_err(Error::Setup)?;
    let mut passes = Vec::new();
    for round in 0..rounds.max(1) {
        // ABBA.
        let order = if round % 2 == 0 { [true, false] } else { [false, true] };
        for reuse in order {
            passes.push(pass(&settings, &checkpoint, &chat, &episodes, in_flight, reuse)?);
        }
    }
    let median = |reuse: bool| {
        let mut s: Vec<f64> = passes.iter().filter(|p| p.reuse == reuse).map(|p| p.seconds).collect();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    let (with, without) = (median(true), median(false));
    let same = passes.iter().all(|p| p.actions == passes[0].actions);
    let p = &passes[0];
    let turns: usize = episodes.iter().map(|t| t.turns.len()).sum();
    let reused = passes.iter().find(|p| p.reuse).map_or(0, |p| p.prompt_tokens - p.prefilled);
    Ok(format!(
        "# Acting with and without the cache of earlier turns\n\n{} episodes ({turns} turns, {:.0} prompt tokens per turn on average) from {}, the policy in {}, {in_flight} in flight, greedy, `max_new_tokens` {}; median of {} passes each, A/B interleaved; threads: {}.\n\n\
         | | seconds | turns/s | prompt tokens/s | prompt tokens fed |\n|---|---:|---:|---:|---:|\n\
         | kv_reuse = true | {with:.2} | {:.1} | {:.0} | {} ({:.0}% reused) |\n| kv_reuse = false | {without:.2} | {:.1} | {:.0} | {} |\n\n\
         Speed-up: **{:.2}x**. The same actions both ways: **{}**.\n",
        episodes.len(),
        p.prompt_tokens as f64 / turns as f64,
        run_dir.join("expert.jsonl").display(),
        checkpoint.display(),
        settings.max_new_tokens,
        rounds.max(1),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        turns as f64 / with,
        p.prompt_tokens as f64 / with,
        p.prompt_tokens - reused,
        100.0 * reused as f64 / p.prompt_tokens.max(1) as f64,
        turns as f64 / without,
        p.prompt_tokens as f64 / without,
        p.prompt_tokens,
        without / with,
        if same { "yes" } else { "NO" }
    ))
}
