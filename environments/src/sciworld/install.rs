//! Where the ScienceWorld simulator lives on this machine.
//!
//! `scripts/setup-scienceworld.sh` downloads the PyPI wheel `scienceworld==1.2.3` and extracts
//! `scienceworld.jar` and `tasks.json` into `$SCIENCEWORLD_HOME` (default
//! `~/.cache/eef/scienceworld-1.2.3`); it also installs a JRE if `java` is missing. Nothing is
//! downloaded at run time.

use std::path::{Path, PathBuf};

/// The simulator version this client is written against.
pub const VERSION: &str = "1.2.3";

/// Why the simulator cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// The jar or tasks.json is missing.
    #[error(
        "ScienceWorld {VERSION} is not installed in {0}: run `bash scripts/setup-scienceworld.sh` \
         (it downloads the PyPI wheel and extracts scienceworld.jar and tasks.json), or point \
         SCIENCEWORLD_HOME at a folder that holds them"
    )]
    Missing(PathBuf),
    /// No Java runtime.
    #[error("no Java runtime found (looked at $JAVA_HOME/bin/java and `java` on PATH): install one, e.g. `apt-get install openjdk-17-jre-headless`")]
    NoJava,
}

/// A usable installation: the folder with the jar, and a `java` executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Install {
    /// Folder holding `scienceworld.jar` and `tasks.json`.
    pub dir: PathBuf,
    /// The `java` executable.
    pub java: PathBuf,
}

/// The default folder: `$SCIENCEWORLD_HOME`, else `~/.cache/eef/scienceworld-1.2.3`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SCIENCEWORLD_HOME") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("eef").join(format!("scienceworld-{VERSION}"))
}

fn find_java() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("JAVA_HOME") {
        let p = PathBuf::from(h).join("bin").join("java");
        if p.is_file() {
            return Some(p);
        }
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("java")).find(|p| p.is_file()))
}

impl Install {
    /// The installation in [`default_dir`].
    pub fn locate() -> Result<Self, InstallError> {
        Self::at(&default_dir())
    }

    /// The installation in `dir`.
    pub fn at(dir: &Path) -> Result<Self, InstallError> {
        if !dir.join("scienceworld.jar").is_file() || !dir.join("tasks.json").is_file() {
            return Err(InstallError::Missing(dir.to_owned()));
        }
        let java = find_java().ok_or(InstallError::NoJava)?;
        Ok(Install { dir: dir.to_owned(), java })
    }
}
