//! The operator-facing contract of the running daemon: commands the admin API sends to the
//! controller and the status it gets back. Plain data, serialisable; the admin API and the
//! CLI depend on this module, never on the controller's internals.

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::decide::{Event, FailbackConfirmation, Override, OverrideKind, UnixMillis};

/// A request for a new override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOverride {
    /// Force or drain.
    pub kind: OverrideKind,
    /// Why (required, journaled).
    pub reason: String,
    /// Who (required, journaled).
    pub actor: String,
    /// When it lapses (ms since epoch); None = until released.
    pub expires: Option<UnixMillis>,
}

/// A request to release overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// One override, or every override when None.
    pub id: Option<String>,
    /// Who.
    pub actor: String,
    /// Why.
    pub reason: String,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", content = "message", rename_all = "snake_case")]
pub enum ControlError {
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is not valid.
    #[error("{0}")]
    Invalid(String),
    /// The change could not be made durable, so it was not made.
    #[error("not applied: the state could not be saved ({0})")]
    Persist(String),
    /// A reload was rejected; the running configuration is kept.
    #[error("reload rejected, still running the previous configuration: {0}")]
    Reload(String),
    /// The daemon is stopping.
    #[error("regdns is shutting down")]
    Unavailable,
    /// A shared change could not be committed to etcd (`[cluster]`).
    #[error("{0}")]
    Cluster(String),
}

/// Status of one check of an instance's last probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    /// `v2`, `auth` or an extra check's name.
    pub check: String,
    /// Passed.
    pub ok: bool,
    /// Latency in milliseconds.
    pub latency_ms: f64,
    /// Detail or failure reason.
    pub detail: String,
}

/// Status of one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// Id.
    pub id: String,
    /// `up`, `down` or `unknown`.
    pub state: String,
    /// Since when (ms since epoch), if known.
    pub since_ms: Option<UnixMillis>,
    /// Why it is down.
    pub reason: Option<String>,
    /// Drained by an override.
    pub drained: bool,
    /// Time of the last probe (ms since epoch).
    pub last_probe_ms: Option<UnixMillis>,
    /// Checks of the last probe.
    pub checks: Vec<CheckStatus>,
    /// Canary manifest digest last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_digest: Option<String>,
    /// Since when that digest is seen (ms since epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_digest_since_ms: Option<UnixMillis>,
    /// The instance whose digest this one must have (`replication_max_lag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_reference: Option<String>,
    /// How long this instance's digest has differed from the reference's (0 when equal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_lag_ms: Option<u64>,
    /// Behind for longer than an endpoint allows: not eligible there.
    #[serde(default)]
    pub replication_behind: bool,
    /// The names the checks resolved through the instance's `resolver`, with their latest
    /// addresses (none without a `resolver`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<ResolvedStatus>,
}

/// A name an instance's checks resolved through its `resolver`, as last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedStatus {
    /// The host name (lower-cased, no trailing dot).
    pub name: String,
    /// Its addresses (IPv4 first).
    pub addresses: Vec<std::net::IpAddr>,
    /// The DNS server asked (`IP:port`).
    pub resolver: std::net::SocketAddr,
}

/// Status of one endpoint in one view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStatus {
    /// Endpoint name.
    pub endpoint: String,
    /// View.
    pub view: String,
    /// Active instance.
    pub active: String,
    /// What is answered (`CNAME x.`, `A 10.1.3.4`).
    pub answer: String,
    /// Why.
    pub reason: String,
    /// Since when (ms since epoch).
    pub since_ms: UnixMillis,
    /// No target is up: fail-static.
    pub degraded: bool,
    /// Override in force.
    pub forced_by: Option<String>,
    /// Manual failback waiting for confirmation: the instance it would return to.
    pub failback_pending: Option<String>,
}

/// A zone's serial in a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneSerial {
    /// Zone origin.
    pub zone: String,
    /// View.
    pub view: String,
    /// SOA serial served.
    pub serial: u32,
}

/// State of a publisher (DNS snapshot, PrivateZone binding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublisherStatus {
    /// Name, e.g. `dns` or `privatezone:zone-1234/@`.
    pub name: String,
    /// `ok`, `pending`, `failing`, `dry-run` or `disabled`.
    pub state: String,
    /// Human detail (last change, last error).
    pub detail: String,
    /// Last success (ms since epoch).
    pub last_ok_ms: Option<UnixMillis>,
    /// Consecutive failures.
    pub failures: u32,
}

/// Everything `GET /status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// regdns version.
    pub version: String,
    /// Start time (ms since epoch).
    pub started_ms: UnixMillis,
    /// Snapshot generation.
    pub generation: u64,
    /// Instances.
    pub instances: Vec<InstanceStatus>,
    /// Endpoint × view decisions.
    pub endpoints: Vec<EndpointStatus>,
    /// Active overrides.
    pub overrides: Vec<Override>,
    /// Serials.
    pub zones: Vec<ZoneSerial>,
    /// Publishers.
    pub publishers: Vec<PublisherStatus>,
    /// Each target's health in each view, and who judged it.
    #[serde(default)]
    pub view_health: Vec<ViewTargetStatus>,
    /// The cluster (`[cluster]` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStatus>,
}

/// The cluster as this node sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// This node.
    pub node: String,
    /// `ok` (etcd answers) or `degraded` (deciding on this node's own observations).
    pub state: String,
    /// Why degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The leader (runs the publishers).
    pub leader: Option<String>,
    /// This node is the leader and its publishers run.
    pub leading: bool,
    /// `any`, `majority` or `all`.
    pub health_quorum: String,
    /// Live nodes and agents with their view of every instance.
    pub nodes: Vec<ClusterNodeStatus>,
    /// The agents' latest propagation reports (one per agent and view).
    #[serde(default)]
    pub propagation: Vec<PropagationStatus>,
}

/// One target's health in one view: what the view's decisions use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewTargetStatus {
    /// The view.
    pub view: String,
    /// The target's instance.
    pub target: String,
    /// `up`, `down` or `unknown` in this view.
    pub state: String,
    /// Since when (ms since epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<UnixMillis>,
    /// Why down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What judges it: `instance` (the instance's own checks) or `addresses 10.1.0.5, …`
    /// (the instance's checks at the addresses this view is answered).
    pub checked: String,
    /// The quorum of this view's observers.
    pub quorum: String,
    /// True when observers declare this view (only they decide it); false when none does
    /// (every observer decides it).
    pub declared: bool,
    /// Each deciding observer (node or agent) → `up`, `down` or `unknown`.
    pub observers: std::collections::BTreeMap<String, String>,
    /// This node's latest checks of an address subject (empty for `instance`: see the
    /// instance's own checks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckStatus>,
}

/// An agent's latest report of how long its network's resolver took to answer a switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropagationStatus {
    /// The agent.
    pub agent: String,
    /// The view (its network).
    pub view: String,
    /// The endpoint that switched.
    pub endpoint: String,
    /// The instance it switched to.
    pub to: String,
    /// The resolver asked.
    pub resolver: String,
    /// When the switch was journaled (ms since epoch).
    pub switched_ms: UnixMillis,
    /// Seconds until the resolver answered the new target; absent when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The endpoint's TTL.
    pub ttl: u32,
    /// What was seen.
    pub detail: String,
}

/// One live node and its observations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNodeStatus {
    /// Name.
    pub node: String,
    /// Start time (ms since epoch).
    pub started_ms: UnixMillis,
    /// regdns version.
    pub version: String,
    /// `node` or `agent`.
    #[serde(default = "node_role")]
    pub role: String,
    /// The views it declares.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<String>,
    /// Instance → `up`, `down` or `unknown` as this node's probes see it (an agent: the
    /// instances of its views only).
    pub instances: std::collections::BTreeMap<String, String>,
}

fn node_role() -> String {
    "node".into()
}

/// A command to the controller, with the channel its answer goes back on.
#[derive(Debug)]
pub enum Command {
    /// Report status.
    Status(oneshot::Sender<Status>),
    /// Add an override; answered once it is durable.
    AddOverride(NewOverride, oneshot::Sender<Result<Override, ControlError>>),
    /// Release overrides; answered once durable.
    Release(
        Release,
        oneshot::Sender<Result<Vec<Override>, ControlError>>,
    ),
    /// Confirm a pending manual failback.
    Failback(
        FailbackConfirmation,
        oneshot::Sender<Result<Vec<Event>, ControlError>>,
    ),
    /// Reload config and zones.
    Reload(oneshot::Sender<Result<String, ControlError>>),
}

/// Cloneable handle for sending commands to the controller.
#[derive(Debug, Clone)]
pub struct ControlHandle {
    tx: mpsc::Sender<Command>,
}

impl ControlHandle {
    /// Wraps a command channel.
    pub fn new(tx: mpsc::Sender<Command>) -> Self {
        ControlHandle { tx }
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ControlError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| ControlError::Unavailable)?;
        rx.await.map_err(|_| ControlError::Unavailable)
    }

    /// Current status.
    pub async fn status(&self) -> Result<Status, ControlError> {
        self.call(Command::Status).await
    }
    /// Adds an override.
    pub async fn add_override(&self, o: NewOverride) -> Result<Override, ControlError> {
        self.call(|tx| Command::AddOverride(o, tx)).await?
    }
    /// Releases overrides.
    pub async fn release(&self, r: Release) -> Result<Vec<Override>, ControlError> {
        self.call(|tx| Command::Release(r, tx)).await?
    }
    /// Confirms a manual failback.
    pub async fn failback(&self, c: FailbackConfirmation) -> Result<Vec<Event>, ControlError> {
        self.call(|tx| Command::Failback(c, tx)).await?
    }
    /// Reloads.
    pub async fn reload(&self) -> Result<String, ControlError> {
        self.call(Command::Reload).await?
    }
}
