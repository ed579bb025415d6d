//! The controller: owns the mutable world (health, overrides, decisions, serials) and is
//! the only writer of the snapshot and the state file. Every input (a health transition,
//! an operator command, a flattened address, a timer) runs the pure [`decide`] engine and
//! applies its outcome: journal, log, state file, new snapshot, publishers.
//! One task; inputs arrive on channels, so no lock is held anywhere.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use hickory_proto::rr::Name;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::cluster::{
    self, Ack, ClusterView, ClusterWrite, Reply, SharedFailback, SharedSerial, ToController,
};
use crate::config::HealthQuorum;
use crate::control::{
    CheckStatus, ClusterNodeStatus, ClusterStatus, Command, ControlError, EndpointStatus,
    InstanceStatus, NewOverride, PublisherStatus, Release, Status, ZoneSerial,
};
use crate::decide::{
    self, Decision, ENGINE_ACTOR, EndpointPolicy, Event, Failback, FailbackConfirmation, Health,
    Inputs, Override, OverrideKind, ReplicationPolicy, SeenDigest, UnixMillis,
};
use crate::model::Model;
use crate::probe::{DigestSeen, ProbeReport, Transition};
use crate::publish::Published;
use crate::publish::dns::{ActiveTargets, DnsBuilder, Flattened, active_answer};
use crate::snapshot::{SerialBook, SnapshotHandle};
use crate::state::journal::{Entry, Journal};
use crate::state::{Loaded, SerialEntry, StateStore, StateV1};

/// The policy the decision engine sees for each endpoint.
pub fn policies(model: &Model) -> Vec<EndpointPolicy> {
    model
        .endpoints
        .iter()
        .map(|e| EndpointPolicy {
            name: e.name.to_string(),
            failback: match e.failback {
                crate::config::FailbackMode::Auto => Failback::Auto,
                crate::config::FailbackMode::Manual => Failback::Manual,
            },
            failback_hold_ms: e.failback_hold.as_millis() as u64,
            replication: e.replication_max_lag.and_then(|lag| {
                // The reference is the endpoint's primary: the default view's first target.
                let default = model
                    .views
                    .iter()
                    .position(|v| v.name == crate::model::DEFAULT_VIEW)?;
                let reference = e.targets.get(default)?.first()?.instance.clone();
                Some(ReplicationPolicy {
                    reference,
                    max_lag_ms: lag.as_millis() as u64,
                })
            }),
            views: model
                .views
                .iter()
                .enumerate()
                .map(|(vi, v)| {
                    (
                        v.name.clone(),
                        e.targets[vi].iter().map(|t| t.instance.clone()).collect(),
                    )
                })
                .collect(),
        })
        .collect()
}

/// Endpoint name -> index into `model.endpoints`.
fn endpoint_index(model: &Model) -> HashMap<String, usize> {
    model
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.to_string(), i))
        .collect()
}

/// The controller's link to the cluster agent (`[cluster]`).
#[derive(Debug)]
pub struct ClusterLink {
    /// This node's name.
    pub node: String,
    /// How observations combine.
    pub quorum: HealthQuorum,
    /// Writes for the agent.
    pub writes: tokio::sync::mpsc::Sender<ClusterWrite>,
    /// Whether this node leads (publishers run).
    pub leading: watch::Receiver<bool>,
}

/// Cluster-mode state of the controller.
#[derive(Debug)]
struct ClusterSide {
    link: ClusterLink,
    /// The last shared state seen (None before the first read).
    view: Option<ClusterView>,
    /// Failback confirmations already applied.
    seen_failbacks: BTreeSet<String>,
    /// Serials last handed to the agent.
    shared_serials: Vec<((String, String), SharedSerial)>,
}

/// The controller's state.
pub struct Controller {
    model: Arc<Model>,
    policies: Vec<EndpointPolicy>,
    /// The health decisions use: this node's own observations alone, or (cluster) the
    /// live nodes' observations combined by `health_quorum`.
    health: BTreeMap<String, Health>,
    /// This node's own probe conclusions.
    own_health: BTreeMap<String, Health>,
    cluster: Option<ClusterSide>,
    overrides: Vec<Override>,
    decisions: BTreeMap<(String, String), Decision>,
    flattened: HashMap<Name, Flattened>,
    digests: BTreeMap<String, SeenDigest>,
    /// A new canary digest is not in the state file yet.
    unsaved_digests: bool,
    lagging: std::collections::BTreeSet<(String, String)>,
    serials: SerialBook,
    /// The last snapshot build, updated in place of a full rebuild (None: rebuild fully).
    dns: Option<DnsBuilder>,
    /// Endpoint name -> index into `model.endpoints`.
    endpoint_index: HashMap<String, usize>,
    generation: u64,
    started_ms: UnixMillis,
    next_wakeup: Option<UnixMillis>,
    snap: SnapshotHandle,
    /// The generation of the snapshot being served, for tasks that act on a new one
    /// (NOTIFY) without polling.
    served: watch::Sender<u64>,
    store: StateStore,
    journal: Journal,
    reports: watch::Receiver<BTreeMap<String, ProbeReport>>,
    publishers: watch::Receiver<BTreeMap<String, PublisherStatus>>,
    published: watch::Sender<Arc<Published>>,
}

/// How the controller started: what the state file held.
#[derive(Debug)]
pub enum StartState {
    /// First start.
    Fresh,
    /// Restored from the state file.
    Restored,
    /// The state file was corrupt: safe defaults, with the reason.
    Corrupt(String),
}

impl Controller {
    /// Builds the controller from the model and what the state directory holds, and
    /// publishes the first snapshot (the persisted decisions, or the first target of each
    /// view) so that DNS can answer before any probe concluded.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        model: Arc<Model>,
        store: StateStore,
        journal: Journal,
        snap: SnapshotHandle,
        reports: watch::Receiver<BTreeMap<String, ProbeReport>>,
        publishers: watch::Receiver<BTreeMap<String, PublisherStatus>>,
        published: watch::Sender<Arc<Published>>,
    ) -> (Controller, StartState) {
        let (state, start) = match store.load() {
            Loaded::Fresh => (StateV1::default(), StartState::Fresh),
            Loaded::State(s) => (*s, StartState::Restored),
            Loaded::Corrupt { error, kept_as } => {
                let kept = kept_as
                    .map(|p| format!("; the bad file was kept as {}", p.display()))
                    .unwrap_or_default();
                (
                    StateV1::default(),
                    StartState::Corrupt(format!("{error}{kept}")),
                )
            }
        };
        let mut serials = SerialBook::default();
        for s in &state.serials {
            serials.seed(&s.zone, &s.view, s.serial, s.digest);
        }
        let endpoint_index = endpoint_index(&model);
        let mut c = Controller {
            policies: policies(&model),
            model,
            // Probes re-conclude after a restart; the persisted decisions stand meanwhile.
            health: BTreeMap::new(),
            own_health: BTreeMap::new(),
            cluster: None,
            overrides: state.overrides,
            decisions: state.decisions,
            flattened: HashMap::new(),
            digests: state.canary_digests,
            unsaved_digests: false,
            lagging: Default::default(),
            serials,
            dns: None,
            endpoint_index,
            generation: 0,
            started_ms: now_ms(),
            next_wakeup: None,
            snap,
            served: watch::Sender::new(0),
            store,
            journal,
            reports,
            publishers,
            published,
        };
        c.decide_and_apply(now_ms(), &[], false);
        (c, start)
    }

    /// The snapshot handle.
    pub fn snapshot(&self) -> &SnapshotHandle {
        &self.snap
    }

    /// Changes when a new snapshot is served (its generation).
    pub fn served(&self) -> watch::Receiver<u64> {
        self.served.subscribe()
    }

    /// Serves a new snapshot and tells whoever waits on [`Self::served`].
    fn serve(&mut self, s: Arc<crate::snapshot::Snapshot>) {
        let generation = s.generation;
        self.snap.store(s);
        self.served.send_replace(generation);
    }

    /// Active instance per (endpoint, view), from the decisions.
    fn active(&self) -> ActiveTargets {
        self.decisions
            .iter()
            .map(|(k, d)| (k.clone(), d.active.clone()))
            .collect()
    }

    /// Builds the next snapshot (moving serials) without serving it yet: rebuilds only the
    /// answers of `changed` (endpoint, view) pairs when given and a previous build exists,
    /// else everything.
    fn next_snapshot(
        &mut self,
        changed: Option<&[(String, String)]>,
    ) -> Option<Arc<crate::snapshot::Snapshot>> {
        self.generation += 1;
        let active = self.active();
        match (&mut self.dns, changed) {
            (Some(b), Some(changed)) => {
                let pairs: BTreeSet<(usize, usize)> = changed
                    .iter()
                    .filter_map(|(e, v)| {
                        Some((*self.endpoint_index.get(e)?, self.model.view_index(v)?))
                    })
                    .collect();
                b.update(
                    &self.model,
                    &active,
                    &self.flattened,
                    &mut self.serials,
                    &pairs,
                );
            }
            _ => {
                self.dns = Some(DnsBuilder::new(
                    &self.model,
                    &active,
                    &self.flattened,
                    &mut self.serials,
                ))
            }
        }
        self.dns
            .as_ref()
            .map(|b| Arc::new(b.snapshot(&self.model, self.generation)))
    }

    fn state(&self, now: UnixMillis) -> StateV1 {
        StateV1 {
            version: 1,
            saved_at: now,
            decisions: self.decisions.clone(),
            health: self.health.clone(),
            overrides: self.overrides.clone(),
            serials: self
                .serials
                .entries()
                .map(|((zone, view), (serial, digest))| SerialEntry {
                    zone: zone.clone(),
                    view: view.clone(),
                    serial: *serial,
                    digest: *digest,
                })
                .collect(),
            canary_digests: self.digests.clone(),
        }
    }

    fn save(&self, now: UnixMillis) -> Result<(), ControlError> {
        self.store.save(&self.state(now)).map_err(|e| {
            tracing::error!(error = %e, "state not saved");
            crate::metrics::state_write_error();
            ControlError::Persist(e.to_string())
        })
    }

    fn journal(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        self.journal_local(&entries);
        if let Some(c) = &self.cluster
            && let Err(e) = c.link.writes.try_send(ClusterWrite::Events(entries))
        {
            tracing::debug!(error = %e, "journal entries not shared");
        }
    }

    /// Runs the decision engine and applies the outcome: journal, log, state file, snapshot,
    /// publishers, once for the whole round. `force` saves even when no decision changed
    /// (new health to persist, a reloaded model). Returns the switch events.
    fn decide_and_apply(
        &mut self,
        now: UnixMillis,
        confirmations: &[FailbackConfirmation],
        force: bool,
    ) -> Vec<Event> {
        self.decide_and_apply_for(now, confirmations, force, None)
    }

    /// [`Controller::decide_and_apply`], re-deciding only the endpoints that use one of
    /// `changed_health` (instances whose health changed) when given, unless a timer is due.
    fn decide_and_apply_for(
        &mut self,
        now: UnixMillis,
        confirmations: &[FailbackConfirmation],
        force: bool,
        changed_health: Option<&BTreeSet<String>>,
    ) -> Vec<Event> {
        let cpu0 = crate::metrics::thread_cpu_seconds();
        let timer_due = self.next_wakeup.is_some_and(|t| t <= now);
        let only = match changed_health {
            Some(ids) if !timer_due && self.generation > 0 => {
                Some(decide::endpoints_using(&self.policies, ids))
            }
            _ => None,
        };
        let out = decide::decide(&Inputs {
            endpoints: &self.policies,
            health: &self.health,
            overrides: &self.overrides,
            previous: &self.decisions,
            confirmations,
            digests: &self.digests,
            now,
            only: only.as_ref(),
        });
        let mut entries = Vec::new();
        for id in &out.expired_overrides {
            if let Some(pos) = self.overrides.iter().position(|o| &o.id == id) {
                let o = self.overrides.remove(pos);
                tracing::info!(id = %o.id, actor = %o.actor, "override expired");
                let mut e = Entry::new(
                    "override-expired",
                    now,
                    format!("expired: {}", o.reason),
                    o.actor.clone(),
                );
                e.override_id = Some(o.id.clone());
                entries.push(e);
            }
        }
        for ev in &out.events {
            tracing::info!(
                endpoint = %ev.endpoint, view = %ev.view, from = ev.from.as_deref().unwrap_or("-"),
                to = %ev.to, reason = %ev.reason, actor = %ev.actor, "decision"
            );
            if ev.from.is_some() {
                crate::metrics::failover(&ev.endpoint, &ev.view, ev.cause);
            }
            let mut e = Entry::new("switch", ev.time, ev.reason.clone(), ev.actor.clone());
            e.endpoint = Some(ev.endpoint.clone());
            e.view = Some(ev.view.clone());
            e.from = ev.from.clone();
            e.to = Some(ev.to.clone());
            entries.push(e);
        }
        if let Some(c) = &self.cluster
            && !out.expired_overrides.is_empty()
        {
            let _ = c
                .link
                .writes
                .try_send(ClusterWrite::DeleteExpired(out.expired_overrides.clone()));
        }
        entries.extend(self.replication_entries(&out.lagging, now));
        let decisions_changed = match &only {
            // Restricted: the outcome holds only the endpoints decided.
            Some(_) => out
                .decisions
                .iter()
                .any(|(k, d)| self.decisions.get(k) != Some(d)),
            None => out.decisions != self.decisions,
        };
        let unsaved_digests = std::mem::take(&mut self.unsaved_digests);
        let changed = force
            || out.lagging != self.lagging
            || decisions_changed
            || !out.expired_overrides.is_empty()
            || self.generation == 0;
        // A full rebuild at the first run and after a reload (no build to update); else
        // only the (endpoint, view) pairs whose active target moved.
        let rebuild_all = self.dns.is_none();
        let moved: Vec<(String, String)> = out
            .events
            .iter()
            .map(|e| (e.endpoint.clone(), e.view.clone()))
            .collect();
        match &only {
            Some(_) => {
                self.decisions.extend(out.decisions);
                // The earlier wake-up still stands for the endpoints not decided.
                self.next_wakeup = match (out.next_wakeup, self.next_wakeup.filter(|t| *t > now)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            None => {
                self.decisions = out.decisions;
                self.next_wakeup = out.next_wakeup;
            }
        }
        self.lagging = out.lagging;
        // Durable before the wire: journal and state file (both fsynced) are written before
        // the new answer is served, so a kill -9 never restarts on an older decision than
        // one already answered. The snapshot is built first for the serials it saves.
        let snapshot = if rebuild_all {
            self.next_snapshot(None)
        } else if !moved.is_empty() {
            self.next_snapshot(Some(&moved))
        } else {
            None
        };
        let t0 = std::time::Instant::now();
        self.journal(entries);
        if changed || unsaved_digests {
            let _ = self.save(now);
        }
        if !out.events.is_empty() {
            tracing::debug!(
                durable_us = t0.elapsed().as_micros() as u64,
                "decision made durable before serving it"
            );
        }
        if let Some(s) = snapshot {
            self.serve(s);
            self.share_serials();
        }
        if changed {
            self.published.send_replace(Arc::new(Published {
                model: self.model.clone(),
                decisions: self.decisions.clone(),
            }));
        }
        crate::metrics::controller_round(crate::metrics::thread_cpu_seconds() - cpu0);
        tracing::debug!(
            decided = only.as_ref().map_or(self.policies.len(), |o| o.len()),
            moved = moved.len(),
            cpu_us = ((crate::metrics::thread_cpu_seconds() - cpu0) * 1e6) as u64,
            "decision round"
        );
        out.events
    }

    /// A health transition from the prober.
    pub fn on_transition(&mut self, t: Transition) {
        self.on_transitions(vec![t]);
    }

    /// Health transitions from the prober, handled as one round: one journal append, one
    /// decision run over the endpoints that use a changed instance, one state save and one
    /// snapshot.
    pub fn on_transitions(&mut self, batch: Vec<Transition>) {
        let now = now_ms();
        let mut entries = Vec::new();
        let mut changed = BTreeSet::new();
        for t in batch {
            if let Some(e) = self.apply_transition(t, now) {
                changed.insert(e.instance.clone().unwrap_or_default());
                entries.push(e);
            }
        }
        if changed.is_empty() {
            return;
        }
        self.journal(entries);
        if let Some(c) = &self.cluster {
            let _ = c
                .link
                .writes
                .try_send(ClusterWrite::Health(self.own_health.clone()));
        }
        let changed = self.refresh_health();
        if changed.is_empty() {
            // Persist this node's observations even when the quorum did not move.
            let _ = self.save(now);
            return;
        }
        self.decide_and_apply_for(now, &[], true, Some(&changed));
    }

    /// Appends to this node's journal only (entries already shared).
    fn journal_local(&mut self, entries: &[Entry]) {
        if let Err(e) = self.journal.append(entries) {
            tracing::error!(error = %e, "event journal not written");
        }
    }

    /// Recomputes the health decisions use; returns the instances whose health changed.
    fn refresh_health(&mut self) -> BTreeSet<String> {
        let new = match &self.cluster {
            Some(c) => match &c.view {
                Some(v) if v.connected => {
                    let mut per_node = v.health.clone();
                    per_node.insert(c.link.node.clone(), self.own_health.clone());
                    cluster::quorum::combine_all(c.link.quorum, &per_node)
                }
                _ => self.own_health.clone(),
            },
            None => self.own_health.clone(),
        };
        let mut changed = BTreeSet::new();
        for id in new.keys().chain(self.health.keys()) {
            if new.get(id) != self.health.get(id) {
                changed.insert(id.clone());
            }
        }
        self.health = new;
        changed
    }

    /// Joins the cluster: from now on health is combined, overrides are shared.
    pub fn join_cluster(&mut self, link: ClusterLink) {
        self.cluster = Some(ClusterSide {
            link,
            view: None,
            seen_failbacks: BTreeSet::new(),
            shared_serials: Vec::new(),
        });
    }

    /// Hands this node's serials to the agent when they changed (cluster mode).
    fn share_serials(&mut self) {
        let Some(c) = &mut self.cluster else {
            return;
        };
        let list: Vec<((String, String), SharedSerial)> = self
            .serials
            .entries()
            .map(|(k, (serial, digest))| {
                (
                    k.clone(),
                    SharedSerial {
                        serial: *serial,
                        digest: *digest,
                    },
                )
            })
            .collect();
        if list != c.shared_serials {
            c.shared_serials = list.clone();
            let _ = c.link.writes.try_send(ClusterWrite::Serials(list));
        }
    }

    /// A message of the cluster agent: new shared state, or a committed command to
    /// acknowledge once applied.
    pub fn on_cluster(&mut self, msg: ToController) {
        match msg {
            ToController::View(v) => {
                self.apply_view(v);
            }
            ToController::Committed(v, ack) => {
                let events = self.apply_view(v);
                self.journal_local(&ack.entries);
                match ack.reply {
                    Reply::Override(ov, tx) => {
                        tracing::info!(id = %ov.id, actor = %ov.actor, reason = %ov.reason, kind = ?ov.kind, "override added (committed in etcd)");
                        let _ = tx.send(Ok(ov));
                    }
                    Reply::Release(removed, tx) => {
                        tracing::info!(ids = ?removed.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), "overrides released (committed in etcd)");
                        let _ = tx.send(Ok(removed));
                    }
                    Reply::Failback(tx) => {
                        let _ = tx.send(Ok(events));
                    }
                }
            }
        }
    }

    /// Applies the shared state: overrides, failback confirmations, serials, combined
    /// health; decides. Returns the switch events.
    fn apply_view(&mut self, v: ClusterView) -> Vec<Event> {
        let now = now_ms();
        let Some(c) = &mut self.cluster else {
            return Vec::new();
        };
        let was_connected = c.view.as_ref().is_some_and(|v| v.connected);
        let mut confirmations = Vec::new();
        let mut overrides_changed = false;
        let mut rebuild = false;
        if v.connected {
            // Expiry is evaluated the same on every node; an expired override still in
            // etcd (not deleted yet) is not applied again.
            let shared: Vec<Override> = v
                .overrides
                .iter()
                .filter(|o| o.expires.is_none_or(|e| e > now))
                .cloned()
                .collect();
            if shared != self.overrides {
                overrides_changed = true;
                self.overrides = shared;
            }
            for f in &v.failbacks {
                if c.seen_failbacks.insert(f.id.clone()) {
                    confirmations.push(f.confirmation.clone());
                }
            }
            // Confirmations leave etcd with their lease; forget them then.
            c.seen_failbacks
                .retain(|id| v.failbacks.iter().any(|f| &f.id == id));
            for ((zone, view), s) in &v.serials {
                let own = self
                    .serials
                    .entries()
                    .find(|(k, _)| k.0 == *zone && k.1 == *view)
                    .map(|(_, x)| *x);
                if let Some((serial, digest)) = own
                    && digest == s.digest
                    && crate::snapshot::serial_gt(s.serial, serial)
                {
                    self.serials.seed(zone, view, s.serial, s.digest);
                    rebuild = true;
                }
            }
        }
        let reconnected = v.connected && !was_connected;
        c.view = Some(v);
        if reconnected {
            // Our observations and serials may be newer than what etcd holds.
            let _ = c
                .link
                .writes
                .try_send(ClusterWrite::Health(self.own_health.clone()));
            c.shared_serials.clear();
        }
        let changed_health = self.refresh_health();
        if rebuild {
            self.dns = None;
        }
        let events = if overrides_changed || !confirmations.is_empty() || rebuild || reconnected {
            self.decide_and_apply(now, &confirmations, true)
        } else if !changed_health.is_empty() {
            self.decide_and_apply_for(now, &[], true, Some(&changed_health))
        } else {
            Vec::new()
        };
        if reconnected {
            self.share_serials();
        }
        events
    }

    /// Records one transition's new health; the journal entry when it changed.
    fn apply_transition(&mut self, t: Transition, now: UnixMillis) -> Option<Entry> {
        let at =
            t.at.duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(now);
        let new = if t.up {
            Health::Up { since: at }
        } else {
            Health::Down {
                since: at,
                reason: t.reason.clone(),
            }
        };
        let old = self
            .own_health
            .get(&t.instance)
            .cloned()
            .unwrap_or_default();
        let same = matches!(
            (&old, &new),
            (Health::Up { .. }, Health::Up { .. }) | (Health::Down { .. }, Health::Down { .. })
        );
        if same {
            return None;
        }
        tracing::info!(instance = %t.instance, up = t.up, reason = %t.reason, "health transition");
        let mut e = Entry::new("health", at, t.reason.clone(), ENGINE_ACTOR);
        e.instance = Some(t.instance.clone());
        e.from = Some(health_word(&old).into());
        e.to = Some(health_word(&new).into());
        self.own_health.insert(t.instance, new);
        Some(e)
    }

    /// Journal entries for instances that fell behind the replication limit of some
    /// endpoint, or caught up with it, between the current and the `new` lagging sets.
    fn replication_entries(
        &self,
        new: &std::collections::BTreeSet<(String, String)>,
        now: UnixMillis,
    ) -> Vec<Entry> {
        let instances = |set: &std::collections::BTreeSet<(String, String)>| {
            set.iter()
                .map(|(_, i)| i.clone())
                .collect::<std::collections::BTreeSet<String>>()
        };
        let (before, after) = (instances(&self.lagging), instances(new));
        let mut out = Vec::new();
        for inst in after.difference(&before) {
            let endpoints: Vec<&str> = new
                .iter()
                .filter(|(_, i)| i == inst)
                .map(|(e, _)| e.as_str())
                .collect();
            let (reference, lag) = self.replication_of(inst, now);
            let mut e = Entry::new(
                "replication-behind",
                now,
                format!(
                    "{inst} canary digest {} behind {}'s {} for {}; not eligible for {}",
                    self.short_digest_of(inst),
                    reference.as_deref().unwrap_or("?"),
                    reference
                        .as_deref()
                        .map(|r| self.short_digest_of(r))
                        .unwrap_or_default(),
                    decide::format_duration(lag.unwrap_or(0) / 1000 * 1000),
                    endpoints.join(", ")
                ),
                ENGINE_ACTOR,
            );
            e.instance = Some(inst.clone());
            tracing::warn!(instance = %inst, reason = %e.reason, "replication behind");
            out.push(e);
        }
        for inst in before.difference(&after) {
            let (reference, _) = self.replication_of(inst, now);
            let mut e = Entry::new(
                "replication-caught-up",
                now,
                format!(
                    "{inst} caught up with {} (canary digest {})",
                    reference.as_deref().unwrap_or("?"),
                    self.short_digest_of(inst)
                ),
                ENGINE_ACTOR,
            );
            e.instance = Some(inst.clone());
            tracing::info!(instance = %inst, reason = %e.reason, "replication caught up");
            out.push(e);
        }
        out
    }

    fn short_digest_of(&self, inst: &str) -> String {
        self.digests
            .get(inst)
            .map(|d| crate::probe::canary::short_digest(&d.digest))
            .unwrap_or_else(|| "unknown".into())
    }

    /// The replication reference of every instance listed by an endpoint with a
    /// replication rule (the first such endpoint's reference).
    fn replication_references(&self) -> HashMap<&str, &str> {
        let mut refs = HashMap::new();
        for p in &self.policies {
            if let Some(r) = &p.replication {
                for t in p.views.values().flatten() {
                    refs.entry(t.as_str()).or_insert(r.reference.as_str());
                }
            }
        }
        refs
    }

    /// The replication reference of `inst` and how long its digest has differed from it.
    fn replication_of(&self, inst: &str, now: UnixMillis) -> (Option<String>, Option<u64>) {
        let reference = self
            .replication_references()
            .get(inst)
            .map(|r| r.to_string());
        let lag = reference
            .as_deref()
            .and_then(|r| self.lag_behind(inst, r, now));
        (reference, lag)
    }

    /// How long `inst`'s canary digest has differed from `reference`'s (0 when equal);
    /// `None` while either digest is unknown.
    fn lag_behind(&self, inst: &str, reference: &str, now: UnixMillis) -> Option<u64> {
        let (rd, td) = (self.digests.get(reference), self.digests.get(inst));
        (rd.is_some() && td.is_some()).then(|| {
            decide::replication_lag(rd, td, now)
                .map(|(_, l)| l)
                .unwrap_or(0)
        })
    }

    /// A canary digest from the prober: recorded with the time it was first seen.
    pub fn on_digest(&mut self, d: DigestSeen) {
        let now = now_ms();
        let at =
            d.at.duration_since(UNIX_EPOCH)
                .map(|x| x.as_millis() as u64)
                .unwrap_or(now);
        let old = self.digests.get(&d.instance).map(|s| s.digest.clone());
        if old.as_deref() == Some(d.digest.as_str()) {
            return;
        }
        tracing::info!(instance = %d.instance, digest = %d.digest, "new canary digest");
        let mut e = Entry::new(
            "canary-digest",
            at,
            format!(
                "{} canary digest is now {}",
                d.instance,
                crate::probe::canary::short_digest(&d.digest)
            ),
            ENGINE_ACTOR,
        );
        e.instance = Some(d.instance.clone());
        e.from = old;
        e.to = Some(d.digest.clone());
        self.journal(vec![e]);
        self.digests.insert(
            d.instance,
            SeenDigest {
                digest: d.digest,
                first_seen: at,
            },
        );
        // The new digest must survive a restart even when no decision changed.
        self.unsaved_digests = true;
        self.decide_and_apply(now, &[], false);
    }

    /// A journal entry from a publisher (PrivateZone drift and changes).
    pub fn on_publisher_entry(&mut self, e: Entry) {
        self.journal(vec![e]);
    }

    /// New flattened addresses for apex CNAME targets.
    pub fn on_flattened(&mut self, f: HashMap<Name, Flattened>) {
        self.flattened = f;
        // New addresses may move a serial: persist it before serving it, so a restart never
        // serves a lower serial than one already answered.
        let snapshot = self.next_snapshot(None);
        let _ = self.save(now_ms());
        if let Some(s) = snapshot {
            self.serve(s);
        }
    }

    /// Time of the next timer-driven decision run.
    pub fn next_wakeup(&self) -> Option<UnixMillis> {
        self.next_wakeup
    }

    /// Timer: a hold ended or an override expired.
    pub fn on_timer(&mut self) {
        self.decide_and_apply(now_ms(), &[], false);
    }

    /// Replaces the model after a successful reload. Health of instances whose probe
    /// settings did not change is kept; decisions of endpoints and views that still exist
    /// are kept.
    pub fn replace_model(&mut self, model: Arc<Model>, kept_health: &[String]) {
        self.health.retain(|id, _| kept_health.contains(id));
        self.own_health.retain(|id, _| kept_health.contains(id));
        self.overrides.retain(|o| match &o.kind {
            OverrideKind::Drain { instance } => model.instance(instance).is_some(),
            OverrideKind::Force { endpoint, .. } => model
                .endpoints
                .iter()
                .any(|e| e.name.to_string() == *endpoint),
        });
        self.policies = policies(&model);
        self.endpoint_index = endpoint_index(&model);
        self.dns = None;
        self.model = model;
        let now = now_ms();
        self.journal(vec![Entry::new(
            "reload",
            now,
            "configuration reloaded",
            ENGINE_ACTOR,
        )]);
        self.decide_and_apply(now, &[], true);
    }

    /// Handles an operator command (except reload, which the daemon performs).
    pub fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Status(tx) => {
                let _ = tx.send(self.status());
            }
            Command::AddOverride(o, tx) if self.cluster.is_some() => {
                let now = now_ms();
                match self.validate(&o, now).and_then(|_| self.cluster_ready()) {
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                    Ok(()) => {
                        let ov = new_override(o, now);
                        let entries = vec![override_added_entry(&ov, now)];
                        self.send_shared(ClusterWrite::PutOverride(
                            ov.clone(),
                            Ack {
                                entries,
                                reply: Reply::Override(ov, tx),
                            },
                        ));
                    }
                }
            }
            Command::Release(r, tx) if self.cluster.is_some() => {
                match self
                    .to_release(&r)
                    .and_then(|x| self.cluster_ready().map(|_| x))
                {
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                    Ok(removed) => {
                        let ids = removed.iter().map(|o| o.id.clone()).collect();
                        let entries = released_entries(&removed, &r, now_ms());
                        self.send_shared(ClusterWrite::DeleteOverrides(
                            ids,
                            Ack {
                                entries,
                                reply: Reply::Release(removed, tx),
                            },
                        ));
                    }
                }
            }
            Command::Failback(c, tx) if self.cluster.is_some() => {
                match self.check_failback(&c).and_then(|_| self.cluster_ready()) {
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                    Ok(()) => {
                        let now = now_ms();
                        let mut entry =
                            Entry::new("failback", now, c.reason.clone(), c.actor.clone());
                        entry.endpoint = Some(c.endpoint.clone());
                        entry.view = c.view.clone();
                        let f = SharedFailback {
                            id: format!("fb-{:08x}", rand::random::<u32>()),
                            at: now,
                            confirmation: c,
                        };
                        self.send_shared(ClusterWrite::PutFailback(
                            f,
                            Ack {
                                entries: vec![entry],
                                reply: Reply::Failback(tx),
                            },
                        ));
                    }
                }
            }
            Command::AddOverride(o, tx) => {
                let _ = tx.send(self.add_override(o));
            }
            Command::Release(r, tx) => {
                let _ = tx.send(self.release(r));
            }
            Command::Failback(c, tx) => {
                let _ = tx.send(self.failback(c));
            }
            Command::Reload(tx) => {
                let _ = tx.send(Err(ControlError::Invalid(
                    "reload is handled by the daemon".into(),
                )));
            }
        }
    }

    /// Refuses a shared change while etcd is unreachable.
    fn cluster_ready(&self) -> Result<(), ControlError> {
        match self.cluster.as_ref().and_then(|c| c.view.as_ref()) {
            Some(v) if v.connected => Ok(()),
            Some(v) => Err(cluster::refused(
                v.error.as_deref().unwrap_or("no answer yet"),
            )),
            None => Err(cluster::refused("the shared state has not been read yet")),
        }
    }

    /// Hands a shared change to the agent; the agent (or the controller, once applied)
    /// answers the operator.
    fn send_shared(&self, w: ClusterWrite) {
        let Some(c) = &self.cluster else {
            return;
        };
        if let Err(e) = c.link.writes.try_send(w) {
            let w = match e {
                tokio::sync::mpsc::error::TrySendError::Full(w)
                | tokio::sync::mpsc::error::TrySendError::Closed(w) => w,
            };
            let ack = match w {
                ClusterWrite::PutOverride(_, a)
                | ClusterWrite::DeleteOverrides(_, a)
                | ClusterWrite::PutFailback(_, a) => a,
                _ => return,
            };
            ack.fail(cluster::refused("the cluster agent is busy or stopped"));
        }
    }

    fn endpoint_views(&self, endpoint: &str) -> Option<Vec<String>> {
        self.policies
            .iter()
            .find(|p| p.name == endpoint)
            .map(|p| p.views.keys().cloned().collect())
    }

    fn validate(&self, o: &NewOverride, now: UnixMillis) -> Result<(), ControlError> {
        if o.reason.trim().is_empty() {
            return Err(ControlError::Invalid(
                "a reason is required (it is journaled)".into(),
            ));
        }
        if o.actor.trim().is_empty() {
            return Err(ControlError::Invalid(
                "an actor is required (who is doing this)".into(),
            ));
        }
        if let Some(exp) = o.expires
            && exp <= now
        {
            return Err(ControlError::Invalid(
                "the expiry is in the past; give a future time or a duration like 30m".into(),
            ));
        }
        let known_instances = || {
            self.model
                .instances
                .iter()
                .map(|i| i.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &o.kind {
            OverrideKind::Drain { instance } => {
                if self.model.instance(instance).is_none() {
                    return Err(ControlError::NotFound(format!(
                        "unknown instance {instance:?} (known: {})",
                        known_instances()
                    )));
                }
            }
            OverrideKind::Force {
                endpoint,
                view,
                instance,
            } => {
                let Some(views) = self.endpoint_views(endpoint) else {
                    let known: Vec<String> = self.policies.iter().map(|p| p.name.clone()).collect();
                    return Err(ControlError::NotFound(format!(
                        "unknown endpoint {endpoint:?} (known: {})",
                        known.join(", ")
                    )));
                };
                if let Some(v) = view
                    && !views.contains(v)
                {
                    return Err(ControlError::NotFound(format!(
                        "unknown view {v:?} (known: {})",
                        views.join(", ")
                    )));
                }
                if self.model.instance(instance).is_none() {
                    return Err(ControlError::NotFound(format!(
                        "unknown instance {instance:?} (known: {})",
                        known_instances()
                    )));
                }
                let policy = self
                    .policies
                    .iter()
                    .find(|p| &p.name == endpoint)
                    .expect("checked above");
                let check_views: Vec<&String> = match view {
                    Some(v) => vec![v],
                    None => policy.views.keys().collect(),
                };
                if !check_views
                    .iter()
                    .any(|v| policy.views[*v].contains(instance))
                {
                    return Err(ControlError::Invalid(format!(
                        "{instance} is not a target of {endpoint} in the given view(s)"
                    )));
                }
            }
        }
        Ok(())
    }

    fn add_override(&mut self, o: NewOverride) -> Result<Override, ControlError> {
        let now = now_ms();
        self.validate(&o, now)?;
        let ov = new_override(o, now);
        self.overrides.push(ov.clone());
        if let Err(e) = self.save(now) {
            self.overrides.pop();
            return Err(e);
        }
        tracing::info!(id = %ov.id, actor = %ov.actor, reason = %ov.reason, kind = ?ov.kind, "override added");
        self.journal(vec![override_added_entry(&ov, now)]);
        self.decide_and_apply(now, &[], false);
        Ok(ov)
    }

    /// The overrides a release names.
    fn to_release(&self, r: &Release) -> Result<Vec<Override>, ControlError> {
        Ok(match &r.id {
            Some(id) => match self.overrides.iter().position(|o| &o.id == id) {
                Some(p) => vec![self.overrides[p].clone()],
                None => {
                    let known: Vec<&str> = self.overrides.iter().map(|o| o.id.as_str()).collect();
                    return Err(ControlError::NotFound(format!(
                        "no override {id:?} (active: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    )));
                }
            },
            None => self.overrides.clone(),
        })
    }

    fn release(&mut self, r: Release) -> Result<Vec<Override>, ControlError> {
        let now = now_ms();
        let removed = self.to_release(&r)?;
        let before = self.overrides.clone();
        self.overrides
            .retain(|o| !removed.iter().any(|x| x.id == o.id));
        if let Err(e) = self.save(now) {
            self.overrides = before;
            return Err(e);
        }
        let entries = released_entries(&removed, &r, now);
        self.journal(entries);
        self.decide_and_apply(now, &[], false);
        Ok(removed)
    }

    fn failback(&mut self, c: FailbackConfirmation) -> Result<Vec<Event>, ControlError> {
        self.check_failback(&c)?;
        let now = now_ms();
        let mut entry = Entry::new("failback", now, c.reason.clone(), c.actor.clone());
        entry.endpoint = Some(c.endpoint.clone());
        entry.view = c.view.clone();
        self.journal(vec![entry]);
        Ok(self.decide_and_apply(now, &[c], false))
    }

    /// A failback confirmation is valid and a failback is pending.
    fn check_failback(&self, c: &FailbackConfirmation) -> Result<(), ControlError> {
        let Some(views) = self.endpoint_views(&c.endpoint) else {
            return Err(ControlError::NotFound(format!(
                "unknown endpoint {:?}",
                c.endpoint
            )));
        };
        if let Some(v) = &c.view
            && !views.contains(v)
        {
            return Err(ControlError::NotFound(format!(
                "unknown view {v:?} (known: {})",
                views.join(", ")
            )));
        }
        if c.reason.trim().is_empty() || c.actor.trim().is_empty() {
            return Err(ControlError::Invalid(
                "reason and actor are required".into(),
            ));
        }
        let pending = self.decisions.iter().any(|((e, v), d)| {
            *e == c.endpoint
                && c.view.as_ref().is_none_or(|cv| cv == v)
                && d.failback_pending.is_some()
        });
        if !pending {
            return Err(ControlError::Invalid(format!(
                "no failback is pending for {}",
                c.endpoint
            )));
        }
        Ok(())
    }

    /// The status report.
    pub fn status(&self) -> Status {
        let now = now_ms();
        let references = self.replication_references();
        let reports = self.reports.borrow().clone();
        let drained: Vec<&str> = self
            .overrides
            .iter()
            .filter_map(|o| match &o.kind {
                OverrideKind::Drain { instance } => Some(instance.as_str()),
                _ => None,
            })
            .collect();
        let instances = self
            .model
            .instances
            .iter()
            .map(|i| {
                let h = self.health.get(&i.id).cloned().unwrap_or_default();
                let (since_ms, reason) = match &h {
                    Health::Up { since } => (Some(*since), None),
                    Health::Down { since, reason } => (Some(*since), Some(reason.clone())),
                    Health::Unknown => (None, None),
                };
                let r = reports.get(&i.id);
                let seen = self.digests.get(&i.id);
                let replication_reference = references.get(i.id.as_str()).map(|r| r.to_string());
                let replication_lag_ms = replication_reference
                    .as_deref()
                    .and_then(|r| self.lag_behind(&i.id, r, now));
                InstanceStatus {
                    id: i.id.clone(),
                    state: health_word(&h).into(),
                    since_ms,
                    reason,
                    drained: drained.contains(&i.id.as_str()),
                    last_probe_ms: r.map(|r| {
                        r.at.duration_since(UNIX_EPOCH)
                            .map(|d| d.as_millis() as u64)
                            .unwrap_or(0)
                    }),
                    checks: r
                        .map(|r| {
                            r.checks
                                .iter()
                                .map(|c| CheckStatus {
                                    check: c.check.clone(),
                                    ok: c.ok,
                                    latency_ms: c.latency.as_secs_f64() * 1000.0,
                                    detail: c.detail.clone(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    canary_digest: seen.map(|s| s.digest.clone()),
                    canary_digest_since_ms: seen.map(|s| s.first_seen),
                    replication_reference,
                    replication_lag_ms,
                    replication_behind: self.lagging.iter().any(|(_, x)| *x == i.id),
                }
            })
            .collect();
        let mut endpoints = Vec::new();
        let active = self.active();
        for ep in &self.model.endpoints {
            for (vi, v) in self.model.views.iter().enumerate() {
                let key = (ep.name.to_string(), v.name.clone());
                let Some(d) = self.decisions.get(&key) else {
                    continue;
                };
                endpoints.push(EndpointStatus {
                    endpoint: key.0.clone(),
                    view: v.name.clone(),
                    active: d.active.clone(),
                    answer: active_answer(ep, vi, &v.name, &active).to_string(),
                    reason: d.reason.clone(),
                    since_ms: d.since,
                    degraded: d.degraded,
                    forced_by: d.forced_by.clone(),
                    failback_pending: d.failback_pending.clone(),
                });
            }
        }
        let snap = self.snap.load();
        let zones = snap
            .views
            .iter()
            .flat_map(|v| {
                v.zones.iter().map(move |z| ZoneSerial {
                    zone: z.origin.to_string(),
                    view: v.name.clone(),
                    serial: z.serial,
                })
            })
            .collect();
        let mut publishers = vec![PublisherStatus {
            name: "dns".into(),
            state: "ok".into(),
            detail: format!("snapshot generation {}", self.generation),
            last_ok_ms: Some(now_ms()),
            failures: 0,
        }];
        publishers.extend(self.publishers.borrow().values().cloned());
        let cluster = self.cluster.as_ref().map(|c| {
            let leading = *c.link.leading.borrow();
            let view = c.view.clone().unwrap_or_default();
            publishers.push(PublisherStatus {
                name: "cluster".into(),
                state: if leading { "leader" } else { "standby" }.into(),
                detail: match (&view.leader, leading) {
                    (_, true) => "this node runs the publishers".into(),
                    (Some(l), false) => format!("publishers run on the leader {l}"),
                    (None, false) => "no leader: publishers paused".into(),
                },
                last_ok_ms: None,
                failures: 0,
            });
            let mut per_node = view.health.clone();
            per_node.insert(c.link.node.clone(), self.own_health.clone());
            let mut nodes: Vec<ClusterNodeStatus> = per_node
                .iter()
                .filter(|(n, _)| view.nodes.contains_key(*n) || **n == c.link.node)
                .map(|(n, obs)| ClusterNodeStatus {
                    node: n.clone(),
                    started_ms: view.nodes.get(n).map_or(self.started_ms, |i| i.started_ms),
                    version: view
                        .nodes
                        .get(n)
                        .map_or(env!("CARGO_PKG_VERSION").into(), |i| i.version.clone()),
                    instances: self
                        .model
                        .instances
                        .iter()
                        .map(|i| {
                            (
                                i.id.clone(),
                                health_word(obs.get(&i.id).unwrap_or(&Health::Unknown)).into(),
                            )
                        })
                        .collect(),
                })
                .collect();
            nodes.sort_by(|a, b| a.node.cmp(&b.node));
            ClusterStatus {
                node: c.link.node.clone(),
                state: if view.connected { "ok" } else { "degraded" }.into(),
                error: view.error.clone(),
                leader: view.leader.clone(),
                leading,
                health_quorum: c.link.quorum.to_string(),
                nodes,
            }
        });
        Status {
            version: env!("CARGO_PKG_VERSION").into(),
            started_ms: self.started_ms,
            generation: self.generation,
            instances,
            endpoints,
            overrides: self.overrides.clone(),
            zones,
            publishers,
            cluster,
        }
    }

    /// Saves state one last time (shutdown).
    pub fn flush(&self) {
        let _ = self.save(now_ms());
    }

    /// Model in force.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }
}

/// A new override from a request, with a fresh id.
fn new_override(o: NewOverride, now: UnixMillis) -> Override {
    Override {
        id: format!("ovr-{:08x}", rand::random::<u32>()),
        kind: o.kind,
        reason: o.reason,
        actor: o.actor,
        created: now,
        expires: o.expires,
    }
}

/// The journal entry of a new override.
fn override_added_entry(ov: &Override, now: UnixMillis) -> Entry {
    let mut e = Entry::new("override-added", now, ov.reason.clone(), ov.actor.clone());
    e.override_id = Some(ov.id.clone());
    match &ov.kind {
        OverrideKind::Drain { instance } => e.instance = Some(instance.clone()),
        OverrideKind::Force {
            endpoint,
            view,
            instance,
        } => {
            e.endpoint = Some(endpoint.clone());
            e.view = view.clone();
            e.to = Some(instance.clone());
        }
    }
    e
}

/// The journal entries of released overrides.
fn released_entries(removed: &[Override], r: &Release, now: UnixMillis) -> Vec<Entry> {
    removed
        .iter()
        .map(|o| {
            let mut e = Entry::new(
                "override-released",
                now,
                if r.reason.is_empty() {
                    "released".to_string()
                } else {
                    r.reason.clone()
                },
                r.actor.clone(),
            );
            e.override_id = Some(o.id.clone());
            e
        })
        .collect()
}

/// `up`, `down` or `unknown`.
pub fn health_word(h: &Health) -> &'static str {
    match h {
        Health::Up { .. } => "up",
        Health::Down { .. } => "down",
        Health::Unknown => "unknown",
    }
}

/// Sleep until a wall-clock time in ms (at most one hour, re-armed by the caller).
pub fn until(ms: Option<UnixMillis>) -> Duration {
    match ms {
        Some(t) => Duration::from_millis(t.saturating_sub(now_ms())).min(Duration::from_secs(3600)),
        None => Duration::from_secs(3600),
    }
}
