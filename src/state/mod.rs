//! Persisted state in `state_dir` (docs/design.md#7-state-and-audit): the current decisions, last-known instance
//! health, active overrides and zone serials in one versioned JSON file written atomically
//! (temp file, fsync, rename, fsync of the directory), plus the event journal
//! ([`journal`]). A corrupt or unreadable file is reported, kept aside for inspection and
//! replaced by the safe default; it never stops the daemon.

pub mod journal;
mod v1;

pub use v1::{SerialEntry, StateV1};

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the state file inside `state_dir`.
pub const STATE_FILE: &str = "state.json";

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The state directory cannot be created or written.
    #[error("state directory {dir}: {source}")]
    Dir {
        /// Directory.
        dir: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing the state file failed; the previous file is intact.
    #[error("cannot write {file}: {source}")]
    Write {
        /// File.
        file: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// What was found on disk at startup.
#[derive(Debug)]
pub enum Loaded {
    /// No state file: first start.
    Fresh,
    /// A valid state file.
    State(Box<StateV1>),
    /// The file was unreadable or corrupt; it was moved to `kept_as`.
    Corrupt {
        /// Why it could not be used.
        error: String,
        /// Where the bad file now is (None if it could not be moved).
        kept_as: Option<PathBuf>,
    },
}

/// The state file of one `state_dir`.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
    path: PathBuf,
}

impl StateStore {
    /// Opens (creating) the state directory.
    pub fn open(dir: &Path) -> Result<StateStore, StateError> {
        fs::create_dir_all(dir).map_err(|source| StateError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
        Ok(StateStore {
            dir: dir.to_path_buf(),
            path: dir.join(STATE_FILE),
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state file. Never fails: problems come back as [`Loaded::Corrupt`].
    pub fn load(&self) -> Loaded {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Fresh,
            Err(e) => {
                return Loaded::Corrupt {
                    error: format!("cannot read {}: {e}", self.path.display()),
                    kept_as: None,
                };
            }
        };
        match parse(&bytes) {
            Ok(s) => Loaded::State(Box::new(s)),
            Err(error) => {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let kept = self.dir.join(format!("{STATE_FILE}.corrupt-{stamp}"));
                let kept_as = fs::rename(&self.path, &kept).ok().map(|_| kept);
                Loaded::Corrupt {
                    error: format!("{}: {error}", self.path.display()),
                    kept_as,
                }
            }
        }
    }

    /// Writes the state atomically and durably. Only after this returns Ok may a change be
    /// acknowledged.
    pub fn save(&self, state: &StateV1) -> Result<(), StateError> {
        let mut bytes = serde_json::to_vec_pretty(state).map_err(|e| StateError::Write {
            file: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        bytes.push(b'\n');
        write_atomic(&self.path, &bytes).map_err(|source| StateError::Write {
            file: self.path.clone(),
            source,
        })
    }
}

/// Parses a state file, checking its version.
pub fn parse(bytes: &[u8]) -> Result<StateV1, String> {
    #[derive(serde::Deserialize)]
    struct Version {
        version: u32,
    }
    let v: Version =
        serde_json::from_slice(bytes).map_err(|e| format!("not a regdns state file: {e}"))?;
    match v.version {
        1 => serde_json::from_slice(bytes).map_err(|e| format!("invalid version 1 state: {e}")),
        n => Err(format!(
            "state file version {n} is newer than this regdns understands (1)"
        )),
    }
}

/// temp file in the same directory, fsync, rename over, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Decision, Health, Override, OverrideKind};

    fn sample() -> StateV1 {
        let mut s = StateV1::default();
        s.decisions.insert(
            ("cross-region.registry.io.".into(), "default".into()),
            Decision {
                active: "zhangjiakou".into(),
                base: "zhangjiakou".into(),
                reason: "hangzhou down".into(),
                since: 1,
                degraded: false,
                forced_by: None,
                failback_pending: None,
                forced_actor: None,
            },
        );
        s.health.insert(
            "hangzhou".into(),
            Health::Down {
                since: 5,
                reason: "refused".into(),
            },
        );
        s.overrides.push(Override {
            id: "o1".into(),
            kind: OverrideKind::Drain {
                instance: "hangzhou".into(),
            },
            reason: "maintenance".into(),
            actor: "ops".into(),
            created: 3,
            expires: None,
        });
        s
    }

    #[test]
    fn round_trips_and_is_versioned() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert!(matches!(store.load(), Loaded::Fresh));
        store.save(&sample()).unwrap();
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(text.contains("\"version\": 1"), "{text}");
        match store.load() {
            Loaded::State(s) => assert_eq!(*s, sample()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_file_is_reported_and_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store.save(&sample()).unwrap();
        let text = std::fs::read(store.path()).unwrap();
        std::fs::write(store.path(), &text[..text.len() / 2]).unwrap();
        match store.load() {
            Loaded::Corrupt { error, kept_as } => {
                assert!(
                    error.contains("not a regdns state file") || error.contains("invalid"),
                    "{error}"
                );
                assert!(kept_as.unwrap().exists());
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(store.load(), Loaded::Fresh),
            "the bad file was moved away"
        );
    }

    #[test]
    fn future_versions_are_refused() {
        assert!(parse(br#"{"version": 7}"#).unwrap_err().contains("newer"));
        assert!(parse(b"\x00\x01garbage").is_err());
    }
}
