//! The Vault's world: the rulebook and the tasks, both generated from seeds.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::VaultConfig;
use eef_runtime::{Split, Task};

/// Glyphs of easy and hard tasks alike; the expert knows their levers.
pub const COMMON_GLYPHS: [&str; 10] = ["sun", "moon", "star", "river", "tree", "stone", "flame", "wave", "bird", "key"];
/// Glyphs only hard tasks show, in their first half; the expert knows their levers.
pub const RARE_GLYPHS: [&str; 20] = [
    "comet", "spiral", "crown", "lantern", "feather", "mask", "shell", "bell", "harp", "compass", "tower", "wheel", "arrow",
    "chalice", "mirror", "owl", "fox", "rose", "skull", "torch",
];
/// Glyphs only hard tasks show, in their second half; the expert believes in a wrong lever for them.
pub const BLIND_SPOT_GLYPHS: [&str; 8] = ["serpent", "anchor", "eye", "hourglass", "dragon", "scales", "trident", "sphinx"];
/// Lever colours (the first `levers` are used).
pub const LEVERS: [&str; 6] = ["red", "green", "blue", "yellow", "white", "black"];

/// A door.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Door {
    /// Its glyph.
    pub glyph: String,
    /// Whether a wrong lever seals the vault.
    pub trapped: bool,
}

/// A task: a corridor of doors.
#[derive(Clone, Debug, PartialEq)]
pub struct VaultTask {
    /// Identifier (`vault-N`).
    pub id: String,
    /// Index in the world's task list.
    pub index: usize,
    /// Train or test.
    pub split: Split,
    /// Whether it is a hard task.
    pub hard: bool,
    /// The doors, in order.
    pub doors: Vec<Door>,
}

impl VaultTask {
    /// The runtime's view of the task.
    pub fn as_task(&self) -> Task {
        Task::new(
            self.id.as_str(),
            format!("Open the treasure chamber: pass all {} doors by pulling the lever each door's glyph calls for.", self.doors.len()),
            self.split,
            self.index,
        )
    }
}

/// The rulebook and the tasks.
#[derive(Clone, Debug)]
pub struct World {
    /// Lever colours in use.
    pub levers: Vec<&'static str>,
    /// Glyph -> index of its lever.
    pub rulebook: BTreeMap<String, usize>,
    /// All tasks, train first.
    pub tasks: Vec<VaultTask>,
    /// Step limit override.
    pub max_steps: Option<usize>,
    /// The expert's slip probability.
    pub expert_slip: f64,
}

impl World {
    /// Generates the world of `config`.
    pub fn new(config: &VaultConfig) -> Self {
        let levers: Vec<&'static str> = LEVERS[..config.levers.clamp(2, LEVERS.len())].to_vec();
        let mut rng = ChaCha8Rng::seed_from_u64(config.world_seed);
        let rulebook = COMMON_GLYPHS
            .iter()
            .chain(&RARE_GLYPHS)
            .chain(&BLIND_SPOT_GLYPHS)
            .map(|g| (g.to_string(), rng.gen_range(0..levers.len())))
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(config.task_seed);
        let total = config.train_tasks + config.test_tasks;
        let tasks = (0..total)
            .map(|i| {
                let split = if i < config.train_tasks { Split::Train } else { Split::Test };
                let hard = rng.gen_bool(config.hard_fraction.clamp(0.0, 1.0));
                let n = if hard { rng.gen_range(8..=12) } else { rng.gen_range(4..=7) };
                let mut doors: Vec<Door> = (0..n)
                    .map(|_| Door {
                        glyph: COMMON_GLYPHS.choose(&mut rng).copied().unwrap_or("sun").to_owned(),
                        trapped: rng.gen_bool(config.trapped_fraction.clamp(0.0, 1.0)),
                    })
                    .collect();
                if hard {
                    let early: Vec<usize> = (0..n / 2).collect();
                    for &rare in early.choose_multiple(&mut rng, config.rare_doors.min(n / 2)) {
                        doors[rare] =
                            Door { glyph: RARE_GLYPHS.choose(&mut rng).copied().unwrap_or("comet").to_owned(), trapped: true };
                    }
                    let blind = rng.gen_range(n / 2..n);
                    doors[blind] =
                        Door { glyph: BLIND_SPOT_GLYPHS.choose(&mut rng).copied().unwrap_or("eye").to_owned(), trapped: true };
                }
                VaultTask { id: format!("vault-{i}"), index: i, split, hard, doors }
            })
            .collect();
        World { levers, rulebook, tasks, max_steps: config.max_steps, expert_slip: config.expert_slip }
    }
}
