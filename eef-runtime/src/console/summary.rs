//! The line printed when a phase finishes, from the numbers the live-metrics log records.

use serde_json::Value;

/// `seconds` as `45s`, `3m05s` or `1h02m`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn num(values: &Value, key: &str) -> Option<f64> {
    values.get(key).and_then(Value::as_f64)
}

fn count(values: &Value, key: &str) -> u64 {
    values.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// What the training steps of a phase added up to (kept by the live-metrics handle).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainTally {
    /// Optimizer steps taken.
    pub steps: usize,
    /// Epochs.
    pub epochs: usize,
    /// Tokens processed.
    pub tokens: usize,
    /// Seconds spent in steps.
    pub seconds: f64,
}

/// The line for a finished rollout phase (`label` as the rollout names it).
pub fn rollout(label: &str, values: &Value) -> String {
    let mut line = format!("{label}: {} episodes", count(values, "episodes"));
    let simulated = count(values, "simulated");
    if simulated != count(values, "episodes") {
        line.push_str(&format!(" ({simulated} run now)"));
    }
    if let Some(w) = num(values, "win_rate") {
        line.push_str(&format!(", success {:.1}%", 100.0 * w));
    }
    if let Some(r) = num(values, "avg_reward") {
        line.push_str(&format!(", reward {r:.3}"));
    }
    let broken = count(values, "broken");
    if broken > 0 {
        line.push_str(&format!(", {broken} broken"));
    }
    if let Some(s) = num(values, "seconds") {
        line.push_str(&format!(", {}", duration(s)));
    }
    line
}

/// The line for a finished training phase.
pub fn train(scope: &str, values: &Value, tally: &TrainTally) -> String {
    let objective = values.get("objective").and_then(Value::as_str).unwrap_or("train");
    let what = if objective == "dpo" { format!("{} pairs", count(values, "pairs")) } else { format!("{} trajectories", count(values, "trajectories")) };
    let mut line = format!("{scope} {}: {what}", if objective == "dpo" { "dpo" } else { "train" });
    if tally.steps > 0 {
        line.push_str(&format!(", {} steps", tally.steps));
        if tally.epochs > 1 {
            line.push_str(&format!(" ({} epochs)", tally.epochs));
        }
    }
    if let Some(l) = num(values, "loss") {
        line.push_str(&format!(", loss {l:.4}"));
    }
    if tally.seconds > 0.0 && tally.tokens > 0 {
        line.push_str(&format!(", {:.0} tok/s", tally.tokens as f64 / tally.seconds));
    }
    if let Some(s) = num(values, "seconds") {
        line.push_str(&format!(", {}", duration(s)));
    }
    line
}

/// The line for an iteration's selection.
pub fn selection(scope: &str, values: &Value) -> String {
    let mut line = format!("{scope} selection: {} examples", count(values, "examples"));
    let recovery = count(values, "recovery_states");
    if recovery > 0 || count(values, "segments") > 0 {
        line.push_str(&format!(" ({recovery} from recovery states), {} segments, {} probes dropped", count(values, "segments"), count(values, "dropped_probes")));
    }
    if count(values, "pairs") > 0 {
        line.push_str(&format!(", {} preference pairs", count(values, "pairs")));
    }
    line
}

/// The line for a finished iteration (its evaluation).
pub fn iteration(scope: &str, values: &Value) -> String {
    let eval = values.get("eval").cloned().unwrap_or(Value::Null);
    let mut line = format!("{scope} done: test success {:.1}%, reward {:.3}", 100.0 * num(&eval, "win_rate").unwrap_or(0.0), num(&eval, "avg_reward").unwrap_or(0.0));
    if let Some(dev) = values.get("dev").filter(|d| !d.is_null()) {
        line.push_str(&format!(" (dev {:.1}%)", 100.0 * num(dev, "win_rate").unwrap_or(0.0)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_person_writes_them() {
        assert_eq!(duration(0.4), "0s");
        assert_eq!(duration(59.0), "59s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(3720.0), "1h02m");
    }

    #[test]
    fn a_rollout_line_says_what_ran_and_how_it_went() {
        let v = serde_json::json!({ "episodes": 100, "simulated": 40, "win_rate": 0.14, "avg_reward": 0.53, "broken": 2, "seconds": 65.0 });
        assert_eq!(rollout("SFT eval it0", &v), "SFT eval it0: 100 episodes (40 run now), success 14.0%, reward 0.530, 2 broken, 1m05s");
    }
}
