//! A typed client of the simulator's `PythonInterface`, over one JVM.

use std::time::Duration;

use super::install::Install;
use super::py4j::{Arg, Gateway, Py4jError, Value};

/// The JVM class the Python package drives.
const INTERFACE: &str = "scienceworld.runtime.pythonapi.PythonInterface";

/// JVM options that make every object's identity hash the same constant (HotSpot's
/// `-XX:hashCode=2`).
///
/// The simulator keeps objects in hash sets keyed by identity, so with the JVM's default
/// (thread-local random) identity hashes the order it visits objects in, and with it the global
/// random draws of growing plants, bees and genetics, depends on everything the JVM did before:
/// the same actions give other observations in a JVM that ran earlier episodes, and a replay in a
/// fresh JVM after a crash leaves the original episode (grow-fruit 50 instead of 100). With
/// constant hashes the hash sets iterate in insertion order and an episode is a function of the
/// calls made since `reset` (which reseeds the simulator's random generator) in any JVM. Measured
/// cost (`sciworld_bench`): 3% more time per step on ten training tasks, up to a third on
/// mendelian-genetics.
pub const DETERMINISTIC_JVM_OPTIONS: [&str; 2] = ["-XX:+UnlockExperimentalVMOptions", "-XX:hashCode=2"];

/// One running simulator (one JVM).
#[derive(Debug)]
pub struct ScienceWorld {
    gateway: Gateway,
    target: String,
}

fn expect_str(v: Value, what: &str) -> Result<String, Py4jError> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(Py4jError::Protocol(format!("{what} answered {other:?}"))),
    }
}

impl ScienceWorld {
    /// Starts a JVM with `jvm_options` (e.g. [`DETERMINISTIC_JVM_OPTIONS`]) and creates the
    /// interface object.
    pub fn start(
        install: &Install,
        jvm_options: &[&str],
        call_timeout: Duration,
        startup_timeout: Duration,
    ) -> Result<Self, Py4jError> {
        let mut gateway =
            Gateway::spawn(&install.java, jvm_options, &install.dir, "scienceworld.jar", call_timeout, startup_timeout)?;
        let target = gateway.construct(INTERFACE)?;
        Ok(ScienceWorld { gateway, target })
    }

    /// The JVM's process id.
    pub fn pid(&self) -> u32 {
        self.gateway.pid()
    }

    /// Whether the connection failed and the simulator must be replaced.
    pub fn is_broken(&self) -> bool {
        self.gateway.is_broken()
    }

    /// Calls `method` and expects a string.
    fn call_str(&mut self, method: &str, args: &[Arg<'_>]) -> Result<String, Py4jError> {
        let v = self.call(method, args)?;
        expect_str(v, method)
    }

    /// Calls `method` and expects a list of strings (read in one call, then released).
    fn call_string_list(&mut self, method: &str) -> Result<Vec<String>, Py4jError> {
        match self.call(method, &[])? {
            Value::List(id) => self.gateway.joined_string_list(&id),
            other => Err(Py4jError::Protocol(format!("{method} answered {other:?}"))),
        }
    }

    fn call(&mut self, method: &str, args: &[Arg<'_>]) -> Result<Value, Py4jError> {
        self.gateway.call(&self.target, method, args)
    }

    /// Loads a task variation (`simplifications`, e.g. `"easy"`); `gold` also generates the gold
    /// action sequence. The simulator reports a bad task name as an `ERROR:` string, returned here
    /// as [`Py4jError::Java`].
    pub fn load(&mut self, task: &str, variation: usize, simplifications: &str, gold: bool) -> Result<(), Py4jError> {
        let v = self.call("load", &[Arg::Str(task), Arg::Int(variation as i64), Arg::Str(simplifications), Arg::Bool(gold)])?;
        match v {
            Value::Str(s) if s.contains("ERROR") => Err(Py4jError::Java(s)),
            _ => Ok(()),
        }
    }

    /// Resets the loaded task to its first state.
    pub fn reset(&mut self) -> Result<(), Py4jError> {
        self.call("reset", &[]).map(|_| ())
    }

    /// Applies an action; returns the observation.
    pub fn step(&mut self, action: &str) -> Result<String, Py4jError> {
        self.call_str("step", &[Arg::Str(action)])
    }

    /// The score, 0-100 (negative when the task failed), as the Python API rounds it.
    pub fn score(&mut self) -> Result<i64, Py4jError> {
        match self.call("getScore", &[])? {
            Value::Double(x) => Ok((100.0 * x).round() as i64),
            Value::Int(x) => Ok(100 * x),
            other => Err(Py4jError::Protocol(format!("getScore answered {other:?}"))),
        }
    }

    /// Whether the task is completed.
    pub fn completed(&mut self) -> Result<bool, Py4jError> {
        match self.call("getCompleted", &[])? {
            Value::Bool(b) => Ok(b),
            other => Err(Py4jError::Protocol(format!("getCompleted answered {other:?}"))),
        }
    }

    /// Moves taken.
    pub fn num_moves(&mut self) -> Result<i64, Py4jError> {
        match self.call("getNumMoves", &[])? {
            Value::Int(n) => Ok(n),
            other => Err(Py4jError::Protocol(format!("getNumMoves answered {other:?}"))),
        }
    }

    /// `look around` without taking time (`freeActionLook`).
    pub fn free_look(&mut self) -> Result<String, Py4jError> {
        self.call_str("freeActionLook", &[])
    }

    /// `inventory` without taking time (`freeActionInventory`).
    pub fn free_inventory(&mut self) -> Result<String, Py4jError> {
        self.call_str("freeActionInventory", &[])
    }

    /// `task` without taking time (`freeActionTaskDesc`).
    pub fn free_task_description(&mut self) -> Result<String, Py4jError> {
        self.call_str("freeActionTaskDesc", &[])
    }

    /// The loaded task's description.
    pub fn task_description(&mut self) -> Result<String, Py4jError> {
        self.call_str("getTaskDescription", &[])
    }

    /// The gold action sequence (the task must have been loaded with `gold = true`).
    pub fn gold_actions(&mut self) -> Result<Vec<String>, Py4jError> {
        self.call_string_list("getGoldActionSequence")
    }

    /// The simulator's task names.
    pub fn task_names(&mut self) -> Result<Vec<String>, Py4jError> {
        self.call_string_list("getTaskNames")
    }

    /// The valid action strings in the current state, sorted as the Python package returns them
    /// (`getValidActionObjectCombinations` sorts them in the JVM). About a thousand; computing
    /// them draws from the simulator's random generator when object names are ambiguous, so the
    /// calls made, not only the actions, decide later states.
    pub fn valid_actions(&mut self) -> Result<Vec<String>, Py4jError> {
        self.call_string_list("getValidActionObjectCombinations")
    }
}
