//! The event journal `events.jsonl`: one JSON object per line, append-only, rotated at a
//! size cap (`events.jsonl.1` … `.N`). Every decision change, override and health
//! transition lands here with its time, reason and actor.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decide::UnixMillis;

/// Journal file name.
pub const JOURNAL_FILE: &str = "events.jsonl";
/// Default size at which the journal rotates.
pub const DEFAULT_MAX_BYTES: u64 = 8 << 20;
/// Rotated files kept.
pub const DEFAULT_KEEP: usize = 3;

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Format version (1).
    #[serde(default = "one")]
    pub v: u32,
    /// RFC 3339 time.
    pub time: String,
    /// Milliseconds since the Unix epoch.
    pub time_ms: UnixMillis,
    /// `switch`, `override-added`, `override-released`, `override-expired`, `failback`,
    /// `health`, `reload`, `canary-digest` (a new canary digest on an instance),
    /// `replication-behind` / `replication-caught-up` (a replica passed or came back within
    /// `replication_max_lag`), `privatezone` (a record changed), `privatezone-drift` (a manual
    /// edit found and repaired).
    pub kind: String,
    /// Endpoint, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// View, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// Previous instance (switch) or state (health).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// New instance (switch) or state (health).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Instance concerned (health, drain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Override id concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_id: Option<String>,
    /// Why.
    pub reason: String,
    /// Who: `regdns` for automatic decisions, the operator otherwise.
    pub actor: String,
    /// The node that journaled it (`[cluster]` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

fn one() -> u32 {
    1
}

impl Entry {
    /// A new entry of `kind` at `time_ms`.
    pub fn new(
        kind: &str,
        time_ms: UnixMillis,
        reason: impl Into<String>,
        actor: impl Into<String>,
    ) -> Entry {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(time_ms);
        Entry {
            v: 1,
            time: humantime::format_rfc3339_millis(t).to_string(),
            time_ms,
            kind: kind.to_string(),
            endpoint: None,
            view: None,
            from: None,
            to: None,
            instance: None,
            override_id: None,
            reason: reason.into(),
            actor: actor.into(),
            node: None,
        }
    }
}

/// The journal of one state directory.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    size: u64,
    /// The file ends in a torn line (a crash mid-append): the next append starts a new line.
    torn: bool,
    max_bytes: u64,
    keep: usize,
}

impl Journal {
    /// Opens (creating) `dir/events.jsonl`.
    pub fn open(dir: &Path, max_bytes: u64, keep: usize) -> std::io::Result<Journal> {
        let path = dir.join(JOURNAL_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        let torn = size > 0 && last_byte(&path)? != Some(b'\n');
        Ok(Journal {
            path,
            file,
            size,
            torn,
            max_bytes: max_bytes.max(1024),
            keep: keep.max(1),
        })
    }

    /// Appends entries durably (one write and one fsync for the batch).
    pub fn append(&mut self, entries: &[Entry]) -> std::io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut buf, e).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        if self.size > 0 && self.size + buf.len() as u64 > self.max_bytes {
            self.rotate()?;
            self.torn = false;
        }
        if self.torn {
            buf.insert(0, b'\n');
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.size += buf.len() as u64;
        self.torn = false;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        for i in (1..self.keep).rev() {
            let from = rotated(&self.path, i);
            if from.exists() {
                fs::rename(&from, rotated(&self.path, i + 1))?;
            }
        }
        fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// The last byte of a file, if any.
fn last_byte(path: &Path) -> std::io::Result<Option<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    if f.seek(SeekFrom::End(0))? == 0 {
        return Ok(None);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b)?;
    Ok(Some(b[0]))
}

fn rotated(path: &Path, i: usize) -> PathBuf {
    PathBuf::from(format!("{}.{i}", path.display()))
}

/// Reads entries at or after `since_ms` from the journal and its rotations, oldest first.
/// Lines that do not parse (a torn last line after a crash) are skipped.
pub fn read_since(dir: &Path, since_ms: UnixMillis, keep: usize) -> Vec<Entry> {
    let path = dir.join(JOURNAL_FILE);
    let mut files: Vec<PathBuf> = (1..=keep.max(1)).rev().map(|i| rotated(&path, i)).collect();
    files.push(path);
    let mut out = Vec::new();
    for f in files {
        let Ok(file) = File::open(&f) else { continue };
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            if let Ok(e) = serde_json::from_str::<Entry>(&line)
                && e.time_ms >= since_ms
            {
                out.push(e);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_reads_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), 1024, 2).unwrap();
        for i in 0..40u64 {
            let mut e = Entry::new("switch", 1_000 + i, format!("reason {i}"), "regdns");
            e.endpoint = Some("cross-region.registry.io.".into());
            j.append(&[e]).unwrap();
        }
        assert!(dir.path().join("events.jsonl.1").exists());
        assert!(
            !dir.path().join("events.jsonl.3").exists(),
            "only `keep` rotations"
        );
        let all = read_since(dir.path(), 0, 2);
        assert!(
            all.len() < 40 && all.len() > 5,
            "old entries rotated away: {}",
            all.len()
        );
        assert_eq!(all.last().unwrap().reason, "reason 39");
        assert!(
            all.windows(2).all(|w| w[0].time_ms < w[1].time_ms),
            "oldest first"
        );
        let recent = read_since(dir.path(), 1_035, 2);
        assert_eq!(recent.len(), 5);
        let size = std::fs::metadata(dir.path().join("events.jsonl"))
            .unwrap()
            .len();
        assert!(size <= 1024);
    }

    /// After a crash mid-append (a torn last line), the next append starts on a new line:
    /// the new entry is readable, not glued to the torn one.
    #[test]
    fn an_append_after_a_torn_line_starts_a_new_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), 1 << 20, 2).unwrap();
        j.append(&[Entry::new("startup", 5, "x", "regdns")])
            .unwrap();
        drop(j);
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("events.jsonl"))
            .unwrap()
            .write_all(b"{\"v\":1,\"ti")
            .unwrap();
        let mut j = Journal::open(dir.path(), 1 << 20, 2).unwrap();
        j.append(&[Entry::new("reload", 9, "after the crash", "regdns")])
            .unwrap();
        j.append(&[Entry::new("reload", 10, "and again", "regdns")])
            .unwrap();
        let reasons: Vec<String> = read_since(dir.path(), 0, 2)
            .into_iter()
            .map(|e| e.reason)
            .collect();
        assert_eq!(reasons, ["x", "after the crash", "and again"]);
    }

    #[test]
    fn torn_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), 1 << 20, 2).unwrap();
        j.append(&[Entry::new("startup", 5, "x", "regdns")])
            .unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("events.jsonl"))
            .unwrap()
            .write_all(b"{\"v\":1,\"ti")
            .unwrap();
        assert_eq!(read_since(dir.path(), 0, 2).len(), 1);
        let line = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
        assert!(
            line.starts_with("{\"v\":1,\"time\":\"1970-01-01T00:00:00.005Z\""),
            "{line}"
        );
    }
}
