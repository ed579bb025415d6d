//! Version 1 of the state file format. Reading an older format later is one more match
//! arm in [`super::parse`], not a migration script.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decide::{self, Decision, Health, Override, SeenDigest, UnixMillis};

/// Everything regdns persists besides the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateV1 {
    /// Always 1.
    pub version: u32,
    /// When it was written.
    #[serde(default)]
    pub saved_at: UnixMillis,
    /// Decision per (endpoint, view).
    #[serde(with = "decide::decisions_as_list", default)]
    pub decisions: BTreeMap<(String, String), Decision>,
    /// Last-known health per instance (informational after a restart: probes re-conclude).
    #[serde(default)]
    pub health: BTreeMap<String, Health>,
    /// Active overrides.
    #[serde(default)]
    pub overrides: Vec<Override>,
    /// SOA serials per (zone, view), so secondaries never see a serial go backwards.
    #[serde(default)]
    pub serials: Vec<SerialEntry>,
    /// Canary digests per instance with the time each was first seen (replication lag
    /// survives a restart).
    #[serde(default)]
    pub canary_digests: BTreeMap<String, SeenDigest>,
}

impl Default for StateV1 {
    fn default() -> Self {
        StateV1 {
            version: 1,
            saved_at: 0,
            decisions: BTreeMap::new(),
            health: BTreeMap::new(),
            overrides: Vec::new(),
            serials: Vec::new(),
            canary_digests: BTreeMap::new(),
        }
    }
}

/// A persisted SOA serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialEntry {
    /// Zone origin.
    pub zone: String,
    /// View name.
    pub view: String,
    /// Serial last published.
    pub serial: u32,
    /// Content digest it was published for.
    pub digest: u64,
}
