//! The Vault's scripted expert.

use std::collections::BTreeMap;

use rand::Rng;

use super::world::{World, BLIND_SPOT_GLYPHS};
use eef_runtime::policy::{Act, ActRequest, Policy, PolicyError};

/// An expert that reads the glyph from the observation and pulls the lever its rulebook names.
/// It knows every glyph except the blind-spot ones, for which it believes in the next lever
/// over; with probability `expert_slip` it pulls a random lever at a common (untrapped) door.
#[derive(Clone, Debug)]
pub struct ScriptedExpert {
    belief: BTreeMap<String, String>,
    levers: Vec<String>,
    slip: f64,
}

impl ScriptedExpert {
    /// The expert of `world`.
    pub fn new(world: &World) -> Self {
        let n = world.levers.len();
        let belief = world
            .rulebook
            .iter()
            .map(|(g, &l)| {
                let l = if BLIND_SPOT_GLYPHS.contains(&g.as_str()) { (l + 1) % n } else { l };
                (g.clone(), format!("pull[{}]", world.levers[l]))
            })
            .collect();
        ScriptedExpert { belief, levers: world.levers.iter().map(|l| format!("pull[{l}]")).collect(), slip: world.expert_slip }
    }

    fn glyph(observation: &str) -> Option<&str> {
        let line = observation.lines().last()?;
        line.strip_prefix("The door bears a ")?.strip_suffix(" glyph.")
    }

    fn act_one(&self, r: &ActRequest) -> Act {
        let Some(glyph) = Self::glyph(&r.observation) else {
            return Act::new("look");
        };
        let mut rng = eef_runtime::seed::rng(r.seed);
        let slip = self.slip > 0.0 && rng.gen_bool(self.slip.min(1.0));
        let action = match self.belief.get(glyph) {
            Some(a) if !slip => a.clone(),
            _ => self.levers[rng.gen_range(0..self.levers.len())].clone(),
        };
        Act { action, thought: Some(format!("The {glyph} glyph calls for a lever I know.")) }
    }
}

impl Policy for ScriptedExpert {
    fn name(&self) -> String {
        "vault-scripted-expert".to_owned()
    }

    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        requests.iter().map(|r| Ok(self.act_one(r))).collect()
    }
}
