use eef_runtime::prelude::*;

struct Env<T: Send> {
    inner: T,
}

#[environment(name = "generic", max_steps = 4)]
impl<T: Send> Env<T> {
    fn tasks(&self) -> Vec<Task> {
        vec![Task::new("t", "do it", Split::Train, 0)]
    }
    fn reset(&mut self, _task: &Task, _seed: u64) -> Result<String, EnvError> {
        Ok("start".into())
    }
    fn step(&mut self, _action: &str) -> StepResult {
        StepResult::finished("end", 1.0)
    }
}

/// Documented reward.
#[reward]
pub fn final_reward(t: &Trajectory) -> f64 {
    t.last_step_reward()
}

#[selector(name = "nothing")]
fn nothing(_group: &TaskGroup<'_>) -> Selection {
    Selection::default()
}

fn main() {
    let env = Env { inner: 1u8 };
    let _ = env.inner;
    assert_eq!(Environment::name(&env), "generic");
    assert_eq!(final_reward.name(), "final_reward");
    assert_eq!(nothing.name(), "nothing");
}
