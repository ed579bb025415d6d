//! The cluster agent: this node's side of the shared state in etcd. Three tasks:
//! the lease keeper (grant, keepalive every `lease_ttl`/3), the leadership gate (leading
//! only while this node holds the leader key AND its last keepalive was sent less than
//! `lease_ttl`/2 ago, so a node that cannot renew stops publishing before its lease can
//! expire), and the mirror (watch `state/`, re-read, campaign, perform the controller's
//! writes, send views). The gate never waits on etcd, so a hung request cannot keep a
//! stale leader publishing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::etcd::{Compare, EtcdClient, EtcdError, Kv, Op};
use super::{
    Ack, ClusterView, ClusterWrite, NodeInfo, Propagation, Role, SharedFailback, SharedSerial,
    ToController, refused,
};
use crate::config::ClusterConfig;
use crate::decide::{Health, Override};

/// How long a failback confirmation stays in etcd (nodes apply it once, on sight).
const FAILBACK_TTL: Duration = Duration::from_secs(60);
/// Journal entries kept while etcd is unreachable, shared when it is back (oldest dropped).
const MAX_PENDING_EVENTS: usize = 10_000;
/// The same for an agent: it buffers its latest observations, not its history.
pub const AGENT_PENDING_EVENTS: usize = 32;
/// Journal entries per etcd transaction (etcd's default `--max-txn-ops` is 128).
const EVENTS_PER_TXN: usize = 100;
/// Journal entries older than this are trimmed from etcd by the leader.
pub const EVENTS_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Handles of a running agent.
pub struct Agent {
    /// Writes for the agent.
    pub writes: mpsc::Sender<ClusterWrite>,
    /// Shared state and command commits for the controller.
    pub views: mpsc::Receiver<ToController>,
    /// True while this node may publish.
    pub leading: watch::Receiver<bool>,
    /// The client (for `GET /events`).
    pub client: EtcdClient,
    lease: watch::Receiver<Option<i64>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Agent {
    /// Stops every task of the agent and revokes its lease, so that its keys go and
    /// another node takes the leadership at once (a planned stop does not wait `lease_ttl`).
    /// The caller has stopped the publishers first.
    pub async fn stop(&self) {
        self.tasks.iter().for_each(|t| t.abort());
        let lease = *self.lease.borrow();
        if let Some(id) = lease {
            match self.client.lease_revoke(id).await {
                Ok(()) => tracing::info!("cluster lease revoked: another node may lead now"),
                Err(e) => {
                    tracing::warn!(error = %e, "cluster lease not revoked; it lapses by itself")
                }
            }
        }
    }
}

/// Key layout under the prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }
    /// Everything mirrored.
    pub fn state(&self) -> String {
        format!("{}/state/", self.prefix)
    }
    fn node(&self, n: &str) -> String {
        format!("{}/state/nodes/{n}", self.prefix)
    }
    fn health(&self, n: &str) -> String {
        format!("{}/state/health/{n}", self.prefix)
    }
    fn propagation(&self, n: &str) -> String {
        format!("{}/state/propagation/{n}", self.prefix)
    }
    fn leader(&self) -> String {
        format!("{}/state/leader", self.prefix)
    }
    fn override_(&self, id: &str) -> String {
        format!("{}/state/overrides/{id}", self.prefix)
    }
    fn failback(&self, id: &str) -> String {
        format!("{}/state/failbacks/{id}", self.prefix)
    }
    fn serial(&self, zone: &str, view: &str) -> String {
        format!("{}/state/serials/{zone}|{view}", self.prefix)
    }
    /// The shared journal.
    pub fn events(&self) -> String {
        format!("{}/events/", self.prefix)
    }
    /// The journal key of an entry.
    pub fn event(&self, time_ms: u64, node: &str, seq: u64) -> String {
        format!("{}/events/{time_ms:013}-{node}-{seq:06}", self.prefix)
    }
}

/// Parses the mirrored keys into a view.
pub fn parse_view(keys: &Keys, kvs: &[Kv], revision: i64) -> ClusterView {
    let base = keys.state();
    let mut v = ClusterView {
        connected: true,
        revision,
        ..Default::default()
    };
    for kv in kvs {
        let Some(rest) = kv.key.strip_prefix(&base) else {
            continue;
        };
        let (kind, name) = rest.split_once('/').unwrap_or((rest, ""));
        match kind {
            "nodes" => {
                if let Ok(n) = serde_json::from_slice::<NodeInfo>(&kv.value) {
                    v.nodes.insert(name.to_string(), n);
                }
            }
            "health" => {
                if let Ok(h) = serde_json::from_slice::<BTreeMap<String, Health>>(&kv.value) {
                    v.health.insert(name.to_string(), h);
                }
            }
            "propagation" => {
                if let Ok(p) = serde_json::from_slice::<BTreeMap<String, Propagation>>(&kv.value) {
                    v.propagation.insert(name.to_string(), p);
                }
            }
            "leader" => v.leader = Some(String::from_utf8_lossy(&kv.value).into_owned()),
            "overrides" => {
                if let Ok(o) = serde_json::from_slice::<Override>(&kv.value) {
                    v.overrides.push(o);
                }
            }
            "failbacks" => {
                if let Ok(f) = serde_json::from_slice::<SharedFailback>(&kv.value) {
                    v.failbacks.push(f);
                }
            }
            "serials" => {
                if let (Some((zone, view)), Ok(s)) = (
                    name.split_once('|'),
                    serde_json::from_slice::<SharedSerial>(&kv.value),
                ) {
                    v.serials.insert((zone.to_string(), view.to_string()), s);
                }
            }
            _ => {}
        }
    }
    v.overrides.sort_by_key(|o| (o.created, o.id.clone()));
    v.failbacks.sort_by_key(|f| (f.at, f.id.clone()));
    v
}

/// What the lease keeper reports to the mirror.
#[derive(Debug)]
enum LeaseEvent {
    Granted(i64),
    Renewed,
    Failed(String),
}

/// Starts the agent for `node`, a full node declaring no views.
pub fn spawn(cfg: &ClusterConfig, node: String, started_ms: u64) -> Result<Agent, EtcdError> {
    spawn_as(
        cfg,
        NodeInfo {
            node,
            version: env!("CARGO_PKG_VERSION").into(),
            started_ms,
            role: Role::Node,
            views: Vec::new(),
        },
    )
}

/// Starts the agent for the member `info` describes. A [`Role::Agent`] member never
/// campaigns for leadership and keeps at most [`AGENT_PENDING_EVENTS`] journal entries
/// while etcd is unreachable (its latest observations are always kept and re-put).
pub fn spawn_as(cfg: &ClusterConfig, info: NodeInfo) -> Result<Agent, EtcdError> {
    let node = info.node.clone();
    let client = EtcdClient::new(cfg)?;
    crate::metrics::cluster_enabled();
    let ttl = cfg.lease_ttl;
    let (lease_tx, lease_rx) = mpsc::channel(16);
    let (renewed_tx, renewed_rx) = watch::channel::<Option<Instant>>(None);
    let (lease_id_tx, lease_id_rx) = watch::channel::<Option<i64>>(None);
    let (holds_tx, holds_rx) = watch::channel(false);
    let (leading_tx, leading_rx) = watch::channel(false);
    let (writes_tx, writes_rx) = mpsc::channel(256);
    let (views_tx, views_rx) = mpsc::channel(64);
    let keeper = tokio::spawn(keep_lease(
        client.clone(),
        ttl,
        lease_tx,
        renewed_tx,
        lease_id_tx,
    ));
    let gate = tokio::spawn(gate(ttl, renewed_rx, holds_rx, leading_tx));
    let mirror = Mirror {
        client: client.clone(),
        keys: Keys::new(&cfg.prefix),
        max_pending_events: match info.role {
            Role::Node => MAX_PENDING_EVENTS,
            Role::Agent => AGENT_PENDING_EVENTS,
        },
        info,
        node,
        propagation: None,
        lease: 0,
        connected: false,
        error: None,
        health: BTreeMap::new(),
        view: ClusterView::default(),
        holds: holds_tx,
        views: views_tx,
        seq: 0,
        ttl,
        pending_events: Vec::new(),
    };
    // The watch runs in its own task: the mirror tells it the revision it read last, it
    // tells the mirror that something changed.
    let (changed_tx, changed_rx) = mpsc::channel::<()>(1);
    let (rev_tx, rev_rx) = watch::channel(0i64);
    let watcher = tokio::spawn(watch_state(
        client.clone(),
        Keys::new(&cfg.prefix).state(),
        rev_rx,
        changed_tx,
    ));
    let mirror = tokio::spawn(mirror.run(lease_rx, writes_rx, changed_rx, rev_tx));
    Ok(Agent {
        writes: writes_tx,
        views: views_rx,
        leading: leading_rx,
        client,
        lease: lease_id_rx,
        tasks: vec![keeper, gate, mirror, watcher],
    })
}

/// Grants the lease and renews it every `ttl`/3; a lease etcd no longer knows is
/// granted anew. `renewed` carries the time each successful renewal was *sent*.
async fn keep_lease(
    client: EtcdClient,
    ttl: Duration,
    events: mpsc::Sender<LeaseEvent>,
    renewed: watch::Sender<Option<Instant>>,
    lease_id: watch::Sender<Option<i64>>,
) {
    let period = ttl / 3;
    let mut lease: Option<i64> = None;
    loop {
        let sent = Instant::now();
        let r = match lease {
            None => client.lease_grant(ttl).await.map(|id| {
                lease = Some(id);
                lease_id.send_replace(Some(id));
                LeaseEvent::Granted(id)
            }),
            Some(id) => match client.lease_keepalive(id).await {
                Ok(true) => Ok(LeaseEvent::Renewed),
                Ok(false) => {
                    tracing::warn!(lease = id, "cluster lease expired; granting a new one");
                    lease = None;
                    renewed.send_replace(None);
                    continue;
                }
                Err(e) => Err(e),
            },
        };
        let ev = match r {
            Ok(ev) => {
                renewed.send_replace(Some(sent));
                ev
            }
            Err(e) => LeaseEvent::Failed(e.to_string()),
        };
        if events.send(ev).await.is_err() {
            return;
        }
        tokio::time::sleep_until(sent + period).await;
    }
}

/// Leading = holds the leader key and the last renewal was sent less than `ttl`/2 ago.
async fn gate(
    ttl: Duration,
    mut renewed: watch::Receiver<Option<Instant>>,
    mut holds: watch::Receiver<bool>,
    leading: watch::Sender<bool>,
) {
    let margin = ttl / 2;
    loop {
        let last = *renewed.borrow_and_update();
        let h = *holds.borrow_and_update();
        let deadline = last.map(|t| t + margin);
        let now = Instant::now();
        let lead = h && deadline.is_some_and(|d| d > now);
        leading.send_if_modified(|l| {
            if *l != lead {
                if lead {
                    tracing::info!("this node is the cluster leader: publishers start");
                } else {
                    tracing::warn!("this node is no longer the cluster leader: publishers stop");
                }
                *l = lead;
                true
            } else {
                false
            }
        });
        let sleep = async {
            match deadline {
                Some(d) if lead => tokio::time::sleep_until(d).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            r = renewed.changed() => if r.is_err() { return },
            r = holds.changed() => if r.is_err() { return },
            _ = sleep => {}
        }
    }
}

struct Mirror {
    client: EtcdClient,
    keys: Keys,
    node: String,
    info: NodeInfo,
    lease: i64,
    connected: bool,
    error: Option<String>,
    health: BTreeMap<String, Health>,
    view: ClusterView,
    holds: watch::Sender<bool>,
    views: mpsc::Sender<ToController>,
    seq: u64,
    ttl: Duration,
    pending_events: Vec<crate::state::journal::Entry>,
    max_pending_events: usize,
    /// An agent's latest propagation reports (put under its lease).
    propagation: Option<Vec<u8>>,
}

impl Mirror {
    async fn run(
        mut self,
        mut lease: mpsc::Receiver<LeaseEvent>,
        mut writes: mpsc::Receiver<ClusterWrite>,
        mut changed_rx: mpsc::Receiver<()>,
        rev_tx: watch::Sender<i64>,
    ) {
        let mut resync = tokio::time::interval(self.ttl / 2);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut trim = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                Some(ev) = lease.recv() => self.on_lease(ev).await,
                Some(()) = changed_rx.recv() => self.sync().await,
                Some(w) = writes.recv() => self.on_write(w).await,
                _ = resync.tick() => if self.connected { self.sync().await },
                _ = trim.tick() => if *self.holds.borrow() { self.trim_events().await },
                else => break,
            }
            let _ = rev_tx.send_if_modified(|r| {
                let changed = *r != self.view.revision && self.view.revision > 0;
                *r = self.view.revision;
                changed
            });
        }
    }

    fn disconnected(&mut self, e: &str) {
        if self.connected || self.error.is_none() {
            tracing::error!(error = %e, "cluster degraded: etcd unreachable or refusing this node; deciding on its own observations, overrides refused, publishers paused");
            crate::metrics::cluster_state(false, false);
        }
        self.connected = false;
        self.error = Some(e.to_string());
        self.holds.send_replace(false);
        self.view.connected = false;
        self.view.error = self.error.clone();
        let _ = self.views.try_send(ToController::View(self.view.clone()));
    }

    async fn on_lease(&mut self, ev: LeaseEvent) {
        match ev {
            LeaseEvent::Failed(e) => self.disconnected(&e),
            LeaseEvent::Granted(id) => {
                self.lease = id;
                self.holds.send_replace(false);
                if let Err(e) = self.register().await {
                    return self.disconnected(&e.to_string());
                }
                self.sync().await;
            }
            LeaseEvent::Renewed => {
                if !self.connected {
                    // Back: our keys may be gone with an expired lease only (handled by
                    // Granted); re-put them anyway and re-read everything.
                    if let Err(e) = self.register().await {
                        return self.disconnected(&e.to_string());
                    }
                    self.sync().await;
                }
            }
        }
    }

    /// Puts this node's membership and observations under its lease.
    async fn register(&mut self) -> Result<(), EtcdError> {
        let info = serde_json::to_vec(&self.info).unwrap_or_default();
        let health = serde_json::to_vec(&self.health).unwrap_or_default();
        let mut ops = vec![
            Op::Put(self.keys.node(&self.node), info, self.lease),
            Op::Put(self.keys.health(&self.node), health, self.lease),
        ];
        if let Some(p) = &self.propagation {
            ops.push(Op::Put(
                self.keys.propagation(&self.node),
                p.clone(),
                self.lease,
            ));
        }
        self.client.txn(&[], &ops, &[]).await.map(|_| ())
    }

    /// Re-reads the shared state, campaigns when there is no leader, sends the view.
    async fn sync(&mut self) {
        if self.lease == 0 {
            return;
        }
        let (kvs, rev) = match self.client.range_prefix(&self.keys.state()).await {
            Ok(x) => x,
            Err(e) => return self.disconnected(&e.to_string()),
        };
        let mut view = parse_view(&self.keys, &kvs, rev);
        if !view.nodes.contains_key(&self.node) {
            // Our keys are gone (lease lost while we were away): put them back.
            if let Err(e) = self.register().await {
                return self.disconnected(&e.to_string());
            }
            view.nodes.insert(self.node.clone(), self.info.clone());
            view.health.insert(self.node.clone(), self.health.clone());
        }
        let leader_key = kvs.iter().find(|kv| kv.key == self.keys.leader());
        let mut holds = leader_key.is_some_and(|kv| kv.lease == self.lease);
        if leader_key.is_none() && self.info.role == Role::Node {
            match self
                .client
                .txn(
                    &[Compare::Absent(self.keys.leader())],
                    &[Op::Put(
                        self.keys.leader(),
                        self.node.as_bytes().to_vec(),
                        self.lease,
                    )],
                    &[Op::Get(self.keys.leader())],
                )
                .await
            {
                Ok((true, _)) => {
                    holds = true;
                    view.leader = Some(self.node.clone());
                }
                Ok((false, read)) => {
                    view.leader = read
                        .first()
                        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned());
                }
                Err(e) => return self.disconnected(&e.to_string()),
            }
        }
        if !self.connected {
            tracing::info!("cluster ok: etcd reachable again; shared state reloaded");
        }
        self.connected = true;
        self.error = None;
        self.holds.send_replace(holds);
        crate::metrics::cluster_state(true, holds);
        crate::metrics::cluster_nodes(view.nodes.len());
        self.view = view;
        let _ = self.views.send(ToController::View(self.view.clone())).await;
        self.flush_events().await;
    }

    /// Re-reads and hands the committed view with the acknowledgement to the controller
    /// (when the re-read failed, the commit still stands and the watch brings it later).
    async fn committed(&mut self, ack: Ack) {
        self.sync().await;
        let _ = self
            .views
            .send(ToController::Committed(self.view.clone(), ack))
            .await;
    }

    async fn on_write(&mut self, w: ClusterWrite) {
        match w {
            ClusterWrite::PutOverride(o, ack) => {
                let Ok(value) = serde_json::to_vec(&o) else {
                    return;
                };
                let mut ops = vec![Op::Put(self.keys.override_(&o.id), value, 0)];
                ops.extend(self.event_ops(&ack.entries));
                match self
                    .client
                    .txn(&[Compare::Absent(self.keys.override_(&o.id))], &ops, &[])
                    .await
                {
                    Ok(_) => self.committed(ack).await,
                    Err(e) => {
                        ack.fail(refused(&e.to_string()));
                        self.disconnected(&e.to_string());
                    }
                }
            }
            ClusterWrite::DeleteOverrides(ids, ack) => {
                let mut ops: Vec<Op> = ids
                    .iter()
                    .map(|id| Op::Delete(self.keys.override_(id)))
                    .collect();
                ops.extend(self.event_ops(&ack.entries));
                match self.client.txn(&[], &ops, &[]).await {
                    Ok(_) => self.committed(ack).await,
                    Err(e) => {
                        ack.fail(refused(&e.to_string()));
                        self.disconnected(&e.to_string());
                    }
                }
            }
            ClusterWrite::PutFailback(f, ack) => {
                let r = async {
                    let lease = self.client.lease_grant(FAILBACK_TTL).await?;
                    let value = serde_json::to_vec(&f).unwrap_or_default();
                    let mut ops = vec![Op::Put(self.keys.failback(&f.id), value, lease)];
                    ops.extend(self.event_ops(&ack.entries));
                    self.client.txn(&[], &ops, &[]).await
                }
                .await;
                match r {
                    Ok(_) => self.committed(ack).await,
                    Err(e) => {
                        ack.fail(refused(&e.to_string()));
                        self.disconnected(&e.to_string());
                    }
                }
            }
            ClusterWrite::DeleteExpired(ids) => {
                if self.connected {
                    let ops: Vec<Op> = ids
                        .iter()
                        .map(|id| Op::Delete(self.keys.override_(id)))
                        .collect();
                    let _ = self.client.txn(&[], &ops, &[]).await;
                }
            }
            ClusterWrite::Health(h) => {
                self.health = h;
                if self.connected && self.lease != 0 {
                    let value = serde_json::to_vec(&self.health).unwrap_or_default();
                    if let Err(e) = self
                        .client
                        .put(&self.keys.health(&self.node), &value, self.lease)
                        .await
                    {
                        self.disconnected(&e.to_string());
                    }
                }
            }
            ClusterWrite::Propagation(p) => {
                let value = serde_json::to_vec(&p).unwrap_or_default();
                self.propagation = Some(value.clone());
                if self.connected
                    && self.lease != 0
                    && let Err(e) = self
                        .client
                        .put(&self.keys.propagation(&self.node), &value, self.lease)
                        .await
                {
                    self.disconnected(&e.to_string());
                }
            }
            ClusterWrite::Serials(list) => {
                if self.connected {
                    for ((zone, view), mine) in list {
                        // Nothing to write when the last view already numbers this content.
                        let known = self.view.serials.get(&(zone.clone(), view.clone()));
                        if known.is_some() && next_shared_serial(known.copied(), mine).is_none() {
                            continue;
                        }
                        if let Err(e) = self.reconcile_serial(&zone, &view, mine).await {
                            tracing::debug!(error = %e, "shared serial not written");
                        }
                    }
                }
            }
            ClusterWrite::Events(entries) => {
                self.pending_events.extend(entries);
                let excess = self
                    .pending_events
                    .len()
                    .saturating_sub(self.max_pending_events);
                self.pending_events.drain(..excess);
                self.flush_events().await;
            }
        }
    }

    /// Journal entries as puts under `events/`, tagged with this node's name.
    fn event_ops(&mut self, entries: &[crate::state::journal::Entry]) -> Vec<Op> {
        entries
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.node = Some(self.node.clone());
                self.seq += 1;
                let key = self.keys.event(e.time_ms, &self.node, self.seq);
                Op::Put(key, serde_json::to_vec(&e).unwrap_or_default(), 0)
            })
            .collect()
    }

    /// Shares the journal entries waiting (kept while etcd is unreachable), in transactions
    /// of at most [`EVENTS_PER_TXN`] puts (etcd refuses more than 128 operations in one).
    async fn flush_events(&mut self) {
        while self.connected && !self.pending_events.is_empty() {
            let n = self.pending_events.len().min(EVENTS_PER_TXN);
            let batch: Vec<_> = self.pending_events[..n].to_vec();
            let ops = self.event_ops(&batch);
            if let Err(e) = self.client.txn(&[], &ops, &[]).await {
                tracing::debug!(error = %e, "journal entries not shared yet");
                return;
            }
            self.pending_events.drain(..n);
        }
    }

    /// Makes the shared serial of (zone, view) number this node's content: when etcd holds
    /// another digest, the next serial after both; when it holds ours with a lower serial,
    /// ours. Compare-and-swap on the key's revision; a lost race is settled by the next
    /// snapshot or view.
    async fn reconcile_serial(
        &mut self,
        zone: &str,
        view: &str,
        mine: SharedSerial,
    ) -> Result<(), EtcdError> {
        let key = self.keys.serial(zone, view);
        let (_, read) = self.client.txn(&[], &[Op::Get(key.clone())], &[]).await?;
        let current = read.first().and_then(|kv| {
            Some((
                kv.mod_revision,
                serde_json::from_slice::<SharedSerial>(&kv.value).ok()?,
            ))
        });
        let Some(next) = next_shared_serial(current.map(|(_, s)| s), mine) else {
            return Ok(());
        };
        let cmp = match current {
            Some((rev, _)) => Compare::ModRevision(key.clone(), rev),
            None => Compare::Absent(key.clone()),
        };
        let value = serde_json::to_vec(&next).unwrap_or_default();
        self.client
            .txn(&[cmp], &[Op::Put(key, value, 0)], &[])
            .await
            .map(|_| ())
    }

    async fn trim_events(&mut self) {
        let cutoff = crate::clock::now_ms().saturating_sub(EVENTS_RETENTION.as_millis() as u64);
        let end = format!("{}{cutoff:013}", self.keys.events());
        let _ = self
            .client
            .delete(&self.keys.events(), Some(end.as_bytes()))
            .await;
    }
}

/// What the shared serial of a zone and view becomes when this node serves `mine`: None to
/// leave it (it already numbers this content with an equal or newer serial); ours when it
/// numbers the same content with an older serial; for other content, the next serial after
/// both (so a secondary never sees one serial for two contents, nor a serial going back).
pub fn next_shared_serial(
    current: Option<SharedSerial>,
    mine: SharedSerial,
) -> Option<SharedSerial> {
    use crate::snapshot::serial_gt;
    match current {
        None => Some(mine),
        Some(s) if s.digest == mine.digest => serial_gt(mine.serial, s.serial).then_some(mine),
        Some(s) => Some(SharedSerial {
            serial: if serial_gt(mine.serial, s.serial) {
                mine.serial
            } else {
                s.serial.wrapping_add(1)
            },
            digest: mine.digest,
        }),
    }
}

/// Watches `state/` and signals every change; re-opens the watch from the last revision
/// the mirror read after any failure.
async fn watch_state(
    client: EtcdClient,
    prefix: String,
    mut rev: watch::Receiver<i64>,
    changed: mpsc::Sender<()>,
) {
    loop {
        // Wait for a first read, so the watch starts right after it.
        let start = loop {
            let r = *rev.borrow_and_update();
            if r > 0 {
                break r + 1;
            }
            if rev.changed().await.is_err() {
                return;
            }
        };
        match client.watch_prefix(&prefix, start).await {
            Ok(mut w) => loop {
                match w.next_change().await {
                    Ok(revision) => {
                        tracing::debug!(revision, "cluster watch: change");
                        let _ = changed.try_send(());
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cluster watch ended; re-opening");
                        let _ = changed.try_send(());
                        break;
                    }
                }
            },
            Err(e) => tracing::debug!(error = %e, "cluster watch not opened"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A cheap clone of the key layout for readers of the shared journal.
pub fn keys(prefix: &str) -> Arc<Keys> {
    Arc::new(Keys::new(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ss(serial: u32, digest: u64) -> SharedSerial {
        SharedSerial { serial, digest }
    }

    #[test]
    fn shared_serials() {
        let cases = [
            (None, ss(10, 1), Some(ss(10, 1))),
            (Some(ss(10, 1)), ss(10, 1), None),
            (Some(ss(12, 1)), ss(10, 1), None),
            (Some(ss(10, 1)), ss(12, 1), Some(ss(12, 1))),
            (Some(ss(10, 1)), ss(11, 2), Some(ss(11, 2))),
            (Some(ss(10, 1)), ss(10, 2), Some(ss(11, 2))),
            (Some(ss(15, 1)), ss(11, 2), Some(ss(16, 2))),
            (Some(ss(u32::MAX, 1)), ss(5, 2), Some(ss(5, 2))),
        ];
        for (current, mine, want) in cases {
            assert_eq!(
                next_shared_serial(current, mine),
                want,
                "{current:?} {mine:?}"
            );
        }
    }

    #[test]
    fn views_parse_every_kind_of_key() {
        let keys = Keys::new("/r");
        let kv = |k: &str, v: &str, lease: i64| Kv {
            key: format!("/r/state/{k}"),
            value: v.as_bytes().to_vec(),
            mod_revision: 1,
            lease,
        };
        let v = parse_view(
            &keys,
            &[
                kv(
                    "nodes/a",
                    r#"{"node":"a","version":"0.1.0","started_ms":5}"#,
                    7,
                ),
                kv("health/a", r#"{"hz":{"Up":{"since":3}}}"#, 7),
                kv("leader", "a", 7),
                kv(
                    "overrides/ovr-1",
                    r#"{"id":"ovr-1","kind":{"Drain":{"instance":"hz"}},"reason":"r","actor":"x","created":1,"expires":null}"#,
                    0,
                ),
                kv(
                    "serials/registry.test.|default",
                    r#"{"serial":7,"digest":9}"#,
                    0,
                ),
                kv("health/b", "not json", 8),
            ],
            42,
        );
        assert!(v.connected);
        assert_eq!(v.revision, 42);
        assert_eq!(v.leader.as_deref(), Some("a"));
        assert_eq!(v.nodes["a"].started_ms, 5);
        assert_eq!(v.health["a"]["hz"], Health::Up { since: 3 });
        assert!(!v.health.contains_key("b"), "a bad value is skipped");
        assert_eq!(v.overrides[0].id, "ovr-1");
        assert_eq!(
            v.serials[&("registry.test.".to_string(), "default".to_string())],
            ss(7, 9)
        );
    }

    /// The safety property of leadership: leading ends `lease_ttl`/2 after the last renewal
    /// was sent, with no call to etcd, and only while the leader key is held.
    #[tokio::test(start_paused = true)]
    async fn leadership_ends_half_a_ttl_after_the_last_renewal() {
        let ttl = Duration::from_secs(4);
        let (renewed_tx, renewed_rx) = watch::channel::<Option<Instant>>(None);
        let (holds_tx, holds_rx) = watch::channel(false);
        let (leading_tx, mut leading) = watch::channel(false);
        tokio::spawn(gate(ttl, renewed_rx, holds_rx, leading_tx));
        let settle = || tokio::time::sleep(Duration::from_millis(1));
        renewed_tx.send_replace(Some(Instant::now()));
        settle().await;
        assert!(
            !*leading.borrow_and_update(),
            "renewed but not holding the key"
        );
        holds_tx.send_replace(true);
        settle().await;
        assert!(*leading.borrow_and_update());
        // 1.9 s after the renewal (ttl/2 = 2 s): still leading.
        tokio::time::sleep(Duration::from_millis(1900)).await;
        assert!(*leading.borrow());
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!*leading.borrow(), "no renewal for ttl/2: stop publishing");
        // A renewal brings it back; losing the key ends it at once.
        renewed_tx.send_replace(Some(Instant::now()));
        settle().await;
        assert!(*leading.borrow());
        holds_tx.send_replace(false);
        settle().await;
        assert!(!*leading.borrow());
    }
}
