//! Selection on the Vault: snapshots of what `sft`, `rft`, `eef` and `eto` pick on fixed seeds,
//! and the properties EEF's selection must have.

mod common;

use std::sync::Arc;

use common::*;
use eef_environments::vault::{RARE_GLYPHS, BLIND_SPOT_GLYPHS};
use eef_runtime::selection::{Eef, Eto, Reason, Rft, SegmentKind, Selection, Selector, Sft, TaskGroup};
use eef_runtime::{Actor, Trajectory};

struct Picked {
    text: String,
    selections: Vec<Selection>,
}

fn select_all(selector: &dyn Selector, samples: usize) -> Picked {
    select_with_policy(selector, samples, |_| true)
}

/// [`select_all`] with the exploring policy trained only on the experts `trained_on` keeps.
fn select_with_policy(selector: &dyn Selector, samples: usize, trained_on: impl Fn(&Trajectory) -> bool) -> Picked {
    runtime().block_on(async {
        let cfg = small_vault();
        let experts = expert_data(&cfg, 4).await;
        let kept: Vec<Trajectory> = experts.iter().filter(|t| trained_on(t)).cloned().collect();
        let policy = Arc::new(sft_policy(&kept));
        let explored = explore(&cfg, selector, policy, &experts, samples, 4).await;
        let mut text = String::new();
        let mut selections = Vec::new();
        for task in train_tasks(&cfg) {
            let mine: Vec<Trajectory> = experts.iter().filter(|e| e.task_id == task.id).cloned().collect();
            let tried: Vec<Trajectory> = explored.iter().filter(|e| e.task_id == task.id).cloned().collect();
            let s = selector.select(&TaskGroup { task: &task, experts: &mine, explored: &tried, iteration: 1 });
            let expert_won = mine.iter().any(|e| e.success);
            text.push_str(&format!(
                "## {} (expert {}, {} explorations, {} successful)\n{}",
                task.id,
                if expert_won { "won" } else { "failed" },
                tried.len(),
                tried.iter().filter(|t| t.success).count(),
                s.summary()
            ));
            selections.push(s);
        }
        Picked { text, selections }
    })
}

fn glyph_of(observation: &str) -> &str {
    observation.lines().last().unwrap_or("").trim_start_matches("The door bears a ").trim_end_matches(" glyph.")
}

#[test]
fn sft_snapshot() {
    insta::assert_snapshot!("sft", select_all(&Sft, 1).text);
}

#[test]
fn rft_snapshot() {
    insta::assert_snapshot!("rft", select_all(&Rft::default(), 2).text);
}

#[test]
fn eef_snapshot() {
    insta::assert_snapshot!("eef", select_all(&Eef::default(), 1).text);
}

#[test]
fn eto_snapshot() {
    // The exploring policy learnt from only half the tasks' experts, so it fails some tasks the
    // expert solved: those failures are paired with the expert's success.
    let picked = select_with_policy(&Eto, 2, |t| t.task_id.to_string().trim_start_matches("vault-").parse::<usize>().unwrap() % 2 == 0);
    let pairs: usize = picked.selections.iter().map(|s| s.pairs.len()).sum();
    assert!(pairs >= 2, "the ETO snapshot must hold preference pairs ({pairs})");
    let mut cut = 0;
    for s in &picked.selections {
        assert!(s.examples.is_empty(), "ETO trains by preference alone");
        for p in &s.pairs {
            // The expert always succeeds with reward 1 here, so no pair is reversed.
            assert!(p.chosen.success && p.rejected.reward < p.chosen.reward);
            assert!(p.rejected.turns.len() <= p.chosen.turns.len() + eef_runtime::selection::REJECTED_EXTRA_TURNS);
            cut += usize::from(p.rejected.turns.len() == p.chosen.turns.len() + eef_runtime::selection::REJECTED_EXTRA_TURNS);
            assert!(p.chosen.turns.iter().chain(&p.rejected.turns).all(|t| t.trainable), "DPO compares whole trajectories");
        }
    }
    assert!(cut > 0, "the snapshot should show a rejected exploration cut to the expert's length + 5");
    insta::assert_snapshot!("eto", picked.text);
}

#[test]
fn eef_masks_follow_the_paper() {
    let picked = select_all(&Eef::default(), 1);
    let mut recoveries = 0;
    for s in &picked.selections {
        for e in &s.examples {
            let t = &e.trajectory;
            let k = t.start.prefix_len();
            match e.reason {
                Reason::Recovery { beneficial_from, beneficial_to } => {
                    recoveries += 1;
                    assert_eq!(beneficial_to, k, "the recovery state is where the exploration started");
                    for (i, turn) in t.turns.iter().enumerate() {
                        let expected = i >= beneficial_from;
                        assert_eq!(turn.trainable, expected, "turn {i} of {}", t.summary());
                        assert_eq!(turn.actor, if i < k { Actor::Expert } else { Actor::Policy });
                    }
                    assert!(t.success);
                }
                Reason::TaskStart | Reason::ExpertSuccess => assert!(t.turns.iter().all(|x| x.trainable)),
                Reason::Custom(_) => unreachable!(),
            }
        }
        // Harmful expert actions are never trained on: wherever an example replays them as
        // part of its expert prefix, they are masked.
        for seg in s.segments.iter().filter(|s| s.kind == SegmentKind::Harmful) {
            for e in &s.examples {
                if let eef_runtime::StartState::Expert { trajectory, step } = &e.trajectory.start {
                    if trajectory == &seg.expert && seg.to <= *step {
                        assert!(e.trajectory.turns[seg.from..seg.to].iter().all(|t| !t.trainable));
                    }
                }
            }
        }
    }
    assert!(recoveries > 0, "EEF found no recovery state:\n{}", picked.text);
}

#[test]
fn eef_trains_on_expert_steps_rft_never_sees() {
    let trainable_expert_glyphs = |p: &Picked| -> Vec<String> {
        p.selections
            .iter()
            .flat_map(|s| &s.examples)
            .flat_map(|e| &e.trajectory.turns)
            .filter(|t| t.actor == Actor::Expert && t.trainable)
            .map(|t| glyph_of(&t.observation).to_owned())
            .collect()
    };
    let eef = trainable_expert_glyphs(&select_all(&Eef::default(), 1));
    let rft = trainable_expert_glyphs(&select_all(&Rft::default(), 6));
    assert!(eef.iter().any(|g| RARE_GLYPHS.contains(&g.as_str())), "EEF keeps beneficial rare-door steps: {eef:?}");
    assert!(!rft.iter().any(|g| RARE_GLYPHS.contains(&g.as_str())), "RFT only sees expert successes: {rft:?}");
    assert!(
        !eef.iter().any(|g| BLIND_SPOT_GLYPHS.contains(&g.as_str())),
        "the expert's blind-spot pulls are harmful and never trained on"
    );
}

#[test]
fn same_seed_same_rollouts_whatever_the_concurrency() {
    let run = |concurrency| {
        runtime().block_on(async {
            let cfg = small_vault();
            let experts = expert_data(&cfg, concurrency).await;
            let policy = Arc::new(sft_policy(&experts));
            explore(&cfg, &Eef::default(), policy, &experts, 2, concurrency).await
        })
    };
    let a = run(1);
    let b = run(8);
    assert!(!a.is_empty());
    assert_eq!(a, b);
}
