//! The controller: owns the mutable world (health, overrides, decisions, serials) and is
//! the only writer of the snapshot and the state file. Every input (a health transition,
//! an operator command, a flattened address, a timer) runs the pure [`decide`] engine and
//! applies its outcome: journal, log, state file, new snapshot, publishers.
//! One task; inputs arrive on channels, so no lock is held anywhere.
//!
//! This file holds the [`Controller`] type, its start, the core decide-and-apply round
//! and the snapshot, state file and journal writes ("durable before the wire"). The other
//! inputs and outputs are in the submodules, each an `impl Controller` block:
//! `cluster` (shared state through the cluster agent), `replication` (canary digests and
//! replication lag), `commands` (operator commands and overrides) and `status` (the
//! status projection).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use hickory_proto::rr::Name;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::cluster::ClusterWrite;
use crate::control::{ControlError, PublisherStatus};
use crate::decide::{
    self, Decision, ENGINE_ACTOR, EndpointPolicy, Event, Failback, FailbackConfirmation, Health,
    Inputs, Override, OverrideKind, ReplicationPolicy, SeenDigest, UnixMillis,
};
use crate::model::Model;
use crate::probe::{ProbeReport, Transition};
use crate::publish::Published;
use crate::snapshot::build::{ActiveTargets, Flattened, SnapshotBuilder};
use crate::snapshot::{SerialBook, SnapshotHandle};
use crate::state::journal::{Entry, Journal};
use crate::state::{Loaded, SerialEntry, StateStore, StateV1};

mod cluster;
mod commands;
mod replication;
mod status;
#[cfg(test)]
mod tests;

pub use cluster::ClusterLink;
use cluster::ClusterSide;
pub use status::{health_word, until};

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

/// The controller's state.
pub struct Controller {
    model: Arc<Model>,
    policies: Vec<EndpointPolicy>,
    /// Which checks judge each target in each view (docs/health-checks.md#health-as-each-network-sees-it).
    plan: crate::vantage::Plan,
    /// Instance health: this node's own observations alone, or (cluster) every live
    /// observer's combined by `health_quorum`. Status, metrics and the state file.
    health: BTreeMap<String, Health>,
    /// The health decisions use: view → instance → its health in that view.
    view_health: BTreeMap<String, BTreeMap<String, Health>>,
    /// This node's own probe conclusions, by subject key (`hangzhou`, `hangzhou@vpc-b`).
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
    dns: Option<SnapshotBuilder>,
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
            plan: crate::vantage::Plan::new(&model),
            view_health: BTreeMap::new(),
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

    /// Model in force.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
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
                self.dns = Some(SnapshotBuilder::new(
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

    /// Appends to this node's journal only (entries already shared).
    fn journal_local(&mut self, entries: &[Entry]) {
        if let Err(e) = self.journal.append(entries) {
            tracing::error!(error = %e, "event journal not written");
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
            view_health: &self.view_health,
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

    /// Records one transition's new health; the journal entry when it changed.
    fn apply_transition(&mut self, t: Transition, now: UnixMillis) -> Option<Entry> {
        let new = t.health(now);
        let at = match &new {
            Health::Up { since } | Health::Down { since, .. } => *since,
            Health::Unknown => now,
        };
        let old = self
            .own_health
            .get(&t.instance)
            .cloned()
            .unwrap_or_default();
        let same = crate::probe::same_state(&old, &new);
        if same {
            return None;
        }
        let (instance, view) = crate::vantage::split_key(&t.instance);
        tracing::info!(instance, view = view.unwrap_or("-"), up = t.up, reason = %t.reason, "health transition");
        let mut e = Entry::new("health", at, t.reason.clone(), ENGINE_ACTOR);
        e.instance = Some(instance.to_string());
        e.view = view.map(str::to_string);
        e.from = Some(health_word(&old).into());
        e.to = Some(health_word(&new).into());
        self.own_health.insert(t.instance, new);
        Some(e)
    }

    /// Recomputes the health decisions use (per view and per instance) from every live
    /// observer's conclusions; returns the instances whose health changed anywhere.
    fn refresh_health(&mut self) -> BTreeSet<String> {
        let new = {
            let observers = self.observers();
            crate::vantage::combine(&self.plan, &observers)
        };
        let old = crate::vantage::Combined {
            instances: std::mem::take(&mut self.health),
            views: std::mem::take(&mut self.view_health),
        };
        let changed = crate::vantage::changed(&old, &new);
        self.health = new.instances;
        self.view_health = new.views;
        changed
    }

    /// This node and (cluster, while etcd answers) every other live node and agent, each
    /// with the views it declares and its conclusions.
    fn observers(&self) -> Vec<crate::vantage::Observer<'_>> {
        let (me, my_views): (&str, &[String]) = match &self.cluster {
            Some(c) => (&c.link.node, &c.link.views),
            None => ("", &[]),
        };
        let mut out = vec![crate::vantage::Observer {
            name: me,
            views: my_views,
            health: &self.own_health,
        }];
        if let Some(v) = self.cluster.as_ref().and_then(|c| c.view.as_ref())
            && v.connected
        {
            for (name, health) in &v.health {
                if name == me {
                    continue;
                }
                out.push(crate::vantage::Observer {
                    name,
                    views: v.nodes.get(name).map_or(&[][..], |n| &n.views[..]),
                    health,
                });
            }
        }
        out
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
        self.own_health.retain(|id, _| kept_health.contains(id));
        self.plan = crate::vantage::Plan::new(&model);
        self.refresh_health();
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

    /// Saves state one last time (shutdown).
    pub fn flush(&self) {
        let _ = self.save(now_ms());
    }
}
