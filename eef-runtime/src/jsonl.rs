//! JSON Lines files: one record per line, appended as records complete so that a killed run
//! loses nothing that had finished.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::{de::DeserializeOwned, Serialize};

use crate::error::Error;

/// Reads every record of a JSONL file. Blank lines are skipped; a malformed line is an error
/// naming the file and line. A truncated *last* line (a write cut short by a kill) is ignored.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let lines: Vec<String> =
        BufReader::new(file).lines().collect::<Result<_, _>>().map_err(|e| Error::io(path, e))?;
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(v) => out.push(v),
            Err(e) if Some(i) == last && e.is_eof() => break,
            Err(e) => {
                return Err(Error::Record { path: path.to_owned(), line: i + 1, message: e.to_string() })
            }
        }
    }
    Ok(out)
}

/// Reads a JSONL file if it exists; an absent file reads as empty.
pub fn read_if_exists<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, Error> {
    if path.exists() {
        read(path)
    } else {
        Ok(Vec::new())
    }
}

/// Writes all records, replacing the file atomically.
pub fn write<T: Serialize>(path: &Path, records: &[T]) -> Result<(), Error> {
    let mut buf = Vec::new();
    for r in records {
        serde_json::to_writer(&mut buf, r).map_err(|e| Error::Setup(e.to_string()))?;
        buf.push(b'\n');
    }
    write_atomic(path, &buf).map_err(|e| Error::io(path, e))
}

/// An append-only JSONL writer that flushes each record.
#[derive(Debug)]
pub struct Appender {
    file: File,
    path: std::path::PathBuf,
}

impl Appender {
    /// Opens `path` for appending, creating it (and its parent directories) if needed. If the
    /// file ends in a partial line (a killed write), a newline is added first.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let needs_newline = fs::read(path).map(|b| !b.is_empty() && b.last() != Some(&b'\n')).unwrap_or(false);
        let mut file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
        if needs_newline {
            file.write_all(b"\n").map_err(|e| Error::io(path, e))?;
        }
        Ok(Appender { file, path: path.to_owned() })
    }

    /// Appends one record and flushes it to the OS.
    pub fn append<T: Serialize>(&mut self, record: &T) -> Result<(), Error> {
        let mut line = serde_json::to_vec(record).map_err(|e| Error::Setup(e.to_string()))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(|e| Error::io(&self.path, e))?;
        self.file.flush().map_err(|e| Error::io(&self.path, e))
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never see a
/// half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_last_line_is_ignored_but_bad_middle_line_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        fs::write(&p, "{\"a\":1}\n{\"a\":2}\n{\"a\":").unwrap();
        let v: Vec<serde_json::Value> = read(&p).unwrap();
        assert_eq!(v.len(), 2);
        let mut app = Appender::open(&p).unwrap();
        app.append(&serde_json::json!({"a": 3})).unwrap();
        let err = read::<serde_json::Value>(&p).unwrap_err().to_string();
        assert!(err.contains("a.jsonl:3"), "{err}");

        fs::write(&p, "{\"a\":1}\nnot json\n{\"a\":2}\n").unwrap();
        let err = read::<serde_json::Value>(&p).unwrap_err().to_string();
        assert!(err.contains(":2:"), "{err}");
    }
}
