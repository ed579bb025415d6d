//! The engine's public input and output types: endpoint policies, health,
//! overrides, confirmations, decisions, events and the outcome of a run.

use super::decisions_as_list;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Milliseconds since the Unix epoch. Time is passed in, never read.
pub use crate::clock::UnixMillis;

/// Actor recorded on events caused by the automatic rules.
pub const ENGINE_ACTOR: &str = "regdns";

/// How the engine returns to a higher-priority target once it is back up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Failback {
    /// Switch back once the target has been up for `failback_hold_ms`.
    Auto,
    /// Stay; report `failback_pending` until an operator confirms.
    Manual,
}

/// Policy of one endpoint (a DNS name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointPolicy {
    /// Endpoint name (the DNS name served).
    pub name: String,
    /// How to return to a higher-priority target once it is back up.
    pub failback: Failback,
    /// With [`Failback::Auto`], how long (milliseconds) a higher-priority
    /// target must have been up before switching back to it.
    pub failback_hold_ms: u64,
    /// view -> instance ids in priority order (first = preferred).
    pub views: BTreeMap<String, Vec<String>>,
    /// Replication awareness: targets whose canary digest is behind the reference's
    /// for longer than the limit are not eligible.
    #[serde(default)]
    pub replication: Option<ReplicationPolicy>,
}

/// `replication_max_lag` of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationPolicy {
    /// The instance whose canary digest the others must have: the endpoint's primary
    /// (first target of the default view), where images are pushed.
    pub reference: String,
    /// Longest time (milliseconds) a target's digest may differ from the reference's.
    pub max_lag_ms: u64,
}

/// The canary digest last seen on an instance and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenDigest {
    /// `sha256:…` of the canary manifest.
    pub digest: String,
    /// When this digest was first seen on the instance (milliseconds since the epoch).
    pub first_seen: UnixMillis,
}

/// Health of an instance as concluded by the prober.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Health {
    /// Probes have not concluded yet (e.g. at startup). Also assumed for an
    /// instance missing from the health map.
    #[default]
    Unknown,
    /// The instance is healthy.
    Up {
        /// When it came up, in milliseconds since the Unix epoch.
        since: UnixMillis,
    },
    /// The instance is unhealthy.
    Down {
        /// When it went down, in milliseconds since the Unix epoch.
        since: UnixMillis,
        /// Why it is down (e.g. the failing probe's summary); may be empty.
        reason: String,
    },
}

/// What an operator override does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverrideKind {
    /// Serve `instance` for `endpoint` (in `view`, or every view when `None`).
    Force {
        /// Name of the endpoint the force applies to.
        endpoint: String,
        /// View the force applies to; `None` means every view.
        view: Option<String>,
        /// Instance id to serve.
        instance: String,
    },
    /// Avoid `instance` everywhere unless nothing else is up.
    Drain {
        /// Instance id to drain.
        instance: String,
    },
}

/// An operator override (force or drain) of the automatic rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// Unique id of the override.
    pub id: String,
    /// What the override does.
    pub kind: OverrideKind,
    /// Operator-supplied justification.
    pub reason: String,
    /// Who created the override.
    pub actor: String,
    /// Creation time, in milliseconds since the Unix epoch; the newest
    /// override wins when several apply.
    pub created: UnixMillis,
    /// The override is in effect while `expires > now`.
    pub expires: Option<UnixMillis>,
}

/// Operator confirmation of a pending manual failback. It applies to the
/// failback pending in the run that sees it; callers should drop
/// confirmations once `decide` has run (a confirmation left in the inputs
/// would also confirm later failbacks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailbackConfirmation {
    /// Name of the endpoint whose failback is confirmed.
    pub endpoint: String,
    /// `None` confirms the pending failback of every view of the endpoint.
    pub view: Option<String>,
    /// Who confirmed; recorded as the actor of the resulting event.
    pub actor: String,
    /// Operator-supplied justification.
    pub reason: String,
}

/// The decision for one (endpoint, view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Instance id served now.
    pub active: String,
    /// What the automatic rules give, ignoring force overrides.
    pub base: String,
    /// Human-readable explanation of `active`.
    pub reason: String,
    /// When `active` last changed.
    pub since: UnixMillis,
    /// No target of the view is up (fail-static).
    pub degraded: bool,
    /// Id of the force override in effect, if any.
    pub forced_by: Option<String>,
    /// Manual failback: the higher-priority instance waiting for confirmation.
    pub failback_pending: Option<String>,
    /// Actor of the force override in effect; kept so that the event of a
    /// release can name the actor after the override is gone from the inputs.
    #[serde(default)]
    pub forced_actor: Option<String>,
}

/// Everything `decide` looks at.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Endpoint policies; a duplicated name keeps its first policy.
    pub endpoints: &'a [EndpointPolicy],
    /// instance id -> health; a missing instance is `Health::Unknown`. Used for the views
    /// missing from `view_health`.
    pub health: &'a BTreeMap<String, Health>,
    /// view -> instance id -> that instance's health in that view (health as each network
    /// sees it). A view present here is decided on this map alone (a missing instance is
    /// `Health::Unknown`); a view absent from it on `health`.
    pub view_health: &'a BTreeMap<String, BTreeMap<String, Health>>,
    /// Operator overrides, expired ones included (they are reported back).
    pub overrides: &'a [Override],
    /// (endpoint, view) -> decision of the previous run.
    pub previous: &'a BTreeMap<(String, String), Decision>,
    /// Pending manual failback confirmations.
    pub confirmations: &'a [FailbackConfirmation],
    /// instance id -> canary digest last seen (replication awareness).
    pub digests: &'a BTreeMap<String, SeenDigest>,
    /// Current time, in milliseconds since the Unix epoch.
    pub now: UnixMillis,
    /// Re-decide only these endpoints (by name), plus any endpoint with a view missing from
    /// `previous`; `None` decides every endpoint. With a restriction, [`Outcome::decisions`]
    /// and [`Outcome::events`] cover only the endpoints decided; the caller keeps its
    /// previous decisions for the others. The caller guarantees that nothing the others
    /// depend on changed since `previous` (their targets' health, drains, forces,
    /// confirmations, digests) and that none of their timers is due (`now` is before the
    /// previous run's `next_wakeup`); then the result equals the full run's, apart from the
    /// time-dependent wording of the carried-over reasons. `next_wakeup` then covers only the
    /// decided endpoints and the overrides: the caller keeps the earlier wake-up too.
    pub only: Option<&'a std::collections::BTreeSet<String>>,
}

/// A change of `active` for one (endpoint, view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When the change happened (the run's `now`), in milliseconds since
    /// the Unix epoch.
    pub time: UnixMillis,
    /// Name of the endpoint.
    pub endpoint: String,
    /// Name of the view.
    pub view: String,
    /// Previously active instance id; `None` on the first decision.
    pub from: Option<String>,
    /// Newly active instance id.
    pub to: String,
    /// Human-readable explanation of the change.
    pub reason: String,
    /// Who caused the change: the override's or confirmation's actor, or
    /// [`ENGINE_ACTOR`] for the automatic rules.
    pub actor: String,
    /// Why, as a value.
    #[serde(default)]
    pub cause: Cause,
}

/// Why the active target of an event changed, as a value (for metrics and scripts; the
/// human explanation is [`Event::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// A health change: the active target went down or a better one came up.
    #[default]
    Health,
    /// A force override took effect.
    Force,
    /// A force override was released or expired.
    Release,
    /// Back to a higher-priority target (after the hold, or confirmed by an operator).
    Failback,
    /// The active instance was drained.
    Drain,
    /// The first decision after start.
    Startup,
}

impl Cause {
    /// Lower-case name (`health`, `force`, `release`, `failback`, `drain`, `startup`).
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Health => "health",
            Cause::Force => "force",
            Cause::Release => "release",
            Cause::Failback => "failback",
            Cause::Drain => "drain",
            Cause::Startup => "startup",
        }
    }
}

/// Result of one `decide` run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Serialized as a list of `{endpoint, view, decision}` entries, because
    /// tuple keys are not representable as keys of e.g. a JSON object.
    #[serde(with = "decisions_as_list")]
    pub decisions: BTreeMap<(String, String), Decision>,
    /// In (endpoint, view) order.
    pub events: Vec<Event>,
    /// Ids of overrides whose expiry is `<= now` (caller removes and
    /// journals them); input order, without duplicates.
    pub expired_overrides: Vec<String>,
    /// Earliest time (> now) at which `decide` must run again even without
    /// new inputs: an auto-failback hold, an override expiry or a replication lag
    /// limit ends.
    pub next_wakeup: Option<UnixMillis>,
    /// (endpoint, instance) pairs not eligible because the instance's canary digest has
    /// been behind the reference's for longer than the endpoint allows.
    #[serde(default)]
    pub lagging: std::collections::BTreeSet<(String, String)>,
}
