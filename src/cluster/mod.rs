//! Cluster mode (docs/design.md#10-scale-and-high-availability, `[cluster]`): several regdns nodes share one state in etcd.
//! [`etcd`] is the JSON-gateway client, [`agent`]
//! the task that keeps this node's lease, membership, observations and leadership in etcd
//! and mirrors the shared state (overrides, observations, failback confirmations, serials)
//! to the controller. The decision engine stays pure: the controller feeds it the
//! health combined by [`crate::vantage`] and the shared overrides.
//!
//! Keys under `prefix`: `state/nodes/NODE` and `state/health/NODE` (on the node's lease),
//! `state/leader` (on the leader's lease), `state/overrides/ID`, `state/failbacks/ID` (on a
//! short lease of their own), `state/serials/ZONE|VIEW`, and `events/TIME-NODE-SEQ`
//! (the shared journal, outside `state/` so the watch does not carry it).

pub mod agent;
pub mod etcd;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::control::ControlError;
use crate::decide::{Event, FailbackConfirmation, Health, Override, UnixMillis};
use crate::state::journal::Entry;

/// A member as it registers itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node name.
    pub node: String,
    /// regdns version.
    pub version: String,
    /// When it started (ms since epoch).
    pub started_ms: UnixMillis,
    /// A full node (DNS, decisions, publishers when leading) or an agent (observes only).
    #[serde(default)]
    pub role: Role,
    /// The views it declares: its observations decide those views' health.
    #[serde(default)]
    pub views: Vec<String>,
}

/// What a cluster member does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `regdns serve`: answers DNS, decides, may lead and publish.
    #[default]
    Node,
    /// `regdns agent`: probes from inside a client network and reports; never leads.
    Agent,
}

impl Role {
    /// `node` or `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Agent => "agent",
        }
    }
}

/// How long a client network's resolver took to answer a switch with its new target: an
/// agent's latest report for one view (`[agent] resolver`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Propagation {
    /// The view (client network).
    pub view: String,
    /// The endpoint that switched.
    pub endpoint: String,
    /// The instance it switched to.
    pub to: String,
    /// The resolver asked (`100.100.2.136:53`).
    pub resolver: String,
    /// When the switch was journaled (ms since epoch, the deciding node's clock).
    pub switched_ms: UnixMillis,
    /// When the resolver first answered the new target; `None` when it did not within
    /// the limit (see `detail`).
    pub seen_ms: Option<UnixMillis>,
    /// The endpoint's TTL: the time a resolver may keep the old answer.
    pub ttl: u32,
    /// What was seen, e.g. "answered 10.1.0.6 after 2.1s (TTL 5s)".
    pub detail: String,
}

impl Propagation {
    /// Seconds from the switch to the new answer, if it came.
    pub fn seconds(&self) -> Option<f64> {
        self.seen_ms
            .map(|s| s.saturating_sub(self.switched_ms) as f64 / 1000.0)
    }
}

/// A failback confirmation shared through etcd (applied once by every node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedFailback {
    /// Unique id.
    pub id: String,
    /// When it was confirmed (ms since epoch).
    pub at: UnixMillis,
    /// The confirmation.
    pub confirmation: FailbackConfirmation,
}

/// The shared SOA serial of one zone in one view and the content digest it numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedSerial {
    /// Serial.
    pub serial: u32,
    /// Digest of the content.
    pub digest: u64,
}

/// What this node knows of the shared state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterView {
    /// etcd answers this node (lease renewed, reads succeed).
    pub connected: bool,
    /// Why not, when not connected.
    pub error: Option<String>,
    /// etcd revision of this view.
    pub revision: i64,
    /// Live members.
    pub nodes: BTreeMap<String, NodeInfo>,
    /// The node holding the leader key.
    pub leader: Option<String>,
    /// Each live node's observations: node → instance → health.
    pub health: BTreeMap<String, BTreeMap<String, Health>>,
    /// Shared overrides.
    pub overrides: Vec<Override>,
    /// Recent failback confirmations.
    pub failbacks: Vec<SharedFailback>,
    /// Shared serials per (zone, view).
    pub serials: BTreeMap<(String, String), SharedSerial>,
    /// Each live agent's latest propagation report per view: agent → view → report.
    pub propagation: BTreeMap<String, BTreeMap<String, Propagation>>,
}

/// An operator command waiting for its commit in etcd; answered by the controller once it
/// has applied the committed state (or with the error). Its journal entries are committed
/// in the same transaction, so the shared journal has them once the operator has an answer.
#[derive(Debug)]
pub struct Ack {
    /// The command's journal entries (shared in the transaction, journaled locally after).
    pub entries: Vec<Entry>,
    /// Who waits for the answer.
    pub reply: Reply,
}

/// The waiting caller of a shared command.
#[derive(Debug)]
pub enum Reply {
    /// A new override.
    Override(Override, oneshot::Sender<Result<Override, ControlError>>),
    /// Released overrides.
    Release(
        Vec<Override>,
        oneshot::Sender<Result<Vec<Override>, ControlError>>,
    ),
    /// A failback confirmation.
    Failback(oneshot::Sender<Result<Vec<Event>, ControlError>>),
}

impl Ack {
    /// Answers with an error.
    pub fn fail(self, e: ControlError) {
        match self.reply {
            Reply::Override(_, tx) => {
                let _ = tx.send(Err(e));
            }
            Reply::Release(_, tx) => {
                let _ = tx.send(Err(e));
            }
            Reply::Failback(tx) => {
                let _ = tx.send(Err(e));
            }
        }
    }
}

/// A write the controller asks of the agent.
#[derive(Debug)]
pub enum ClusterWrite {
    /// Commit a new override, then acknowledge.
    PutOverride(Override, Ack),
    /// Delete overrides (release), then acknowledge.
    DeleteOverrides(Vec<String>, Ack),
    /// Commit a failback confirmation, then acknowledge.
    PutFailback(SharedFailback, Ack),
    /// Delete expired overrides (every node evaluates expiry; deleting twice is harmless).
    DeleteExpired(Vec<String>),
    /// This node's current observations.
    Health(BTreeMap<String, Health>),
    /// This node's serials per (zone, view) with their content digests.
    Serials(Vec<((String, String), SharedSerial)>),
    /// Journal entries to share.
    Events(Vec<Entry>),
    /// An agent's latest propagation report per view.
    Propagation(BTreeMap<String, Propagation>),
}

/// What the agent tells the controller.
#[derive(Debug)]
pub enum ToController {
    /// The shared state changed (or connectivity did).
    View(ClusterView),
    /// A command was committed: apply the view, then acknowledge.
    Committed(ClusterView, Ack),
}

/// The message an operator gets when a shared change cannot be committed.
pub fn refused(error: &str) -> ControlError {
    ControlError::Cluster(format!(
        "not applied: etcd is unreachable from this node ({error}); overrides, drains and failback confirmations are shared through etcd and are never kept on one node only; retry when etcd is back (regdns status shows cluster: ok)"
    ))
}
