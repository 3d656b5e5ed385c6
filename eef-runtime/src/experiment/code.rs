//! What produced a run: a fingerprint of the code (by default the SHA-256 of the running
//! executable, which changes with any change compiled into it) and the git commit of the working
//! directory when there is one, recorded in `<run>/code.json`. Resuming a run with different
//! code is refused unless asked for (`--resume-anyway`), since finished phases would be mixed
//! with phases run by the new code.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// The code behind a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeIdentity {
    /// A fingerprint of the experiment's code (the executable's SHA-256, or one the caller sets).
    pub fingerprint: String,
    /// `git rev-parse HEAD` (with `-dirty` when the working tree has changes), when available.
    pub git: Option<String>,
}

impl CodeIdentity {
    /// The identity of the running program: its executable's SHA-256 and the git commit of the
    /// current directory.
    pub fn of_current_exe() -> Self {
        let fingerprint = std::env::current_exe()
            .ok()
            .and_then(|p| std::fs::read(p).ok())
            .map(|bytes| format!("exe-sha256:{:x}", Sha256::digest(bytes)))
            .unwrap_or_else(|| "unknown".to_owned());
        CodeIdentity { fingerprint, git: git_commit() }
    }
}

fn git_commit() -> Option<String> {
    let run = |args: &[&str]| std::process::Command::new("git").args(args).output().ok().filter(|o| o.status.success());
    let head = String::from_utf8(run(&["rev-parse", "HEAD"])?.stdout).ok()?.trim().to_owned();
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|o| !o.stdout.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}

/// Checks `code` against the identity recorded in `dir` (recording it when there is none, or
/// when `resume_anyway`); a mismatch is refused with what changed.
pub fn check(dir: &Path, code: &CodeIdentity, resume_anyway: bool, has_results: bool) -> Result<(), Error> {
    let path = dir.join("code.json");
    let recorded: Option<CodeIdentity> = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).ok(),
        Err(_) => None,
    };
    if let Some(old) = &recorded {
        if old.fingerprint != code.fingerprint && has_results && !resume_anyway {
            let git = match (&old.git, &code.git) {
                (Some(a), Some(b)) if a != b => format!("; git {a} -> {b}"),
                _ => String::new(),
            };
            return Err(Error::Setup(format!(
                "{} was produced by different code (fingerprint {} -> {}{git}): its finished phases would be mixed with \
                 results of the new code. Start afresh with --fresh, or continue with the new code with --resume-anyway",
                dir.display(),
                short(&old.fingerprint),
                short(&code.fingerprint)
            )));
        }
    }
    if recorded.as_ref() != Some(code) {
        let text = serde_json::to_string_pretty(code).map_err(|e| Error::Setup(e.to_string()))?;
        crate::jsonl::write_atomic(&path, text.as_bytes()).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

fn short(f: &str) -> &str {
    &f[..f.len().min(24)]
}
