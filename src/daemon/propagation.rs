//! "Did the network get the new answer?" An agent with `[agent] resolver` follows the
//! shared journal for switches of its views; after each one it asks its network's resolver
//! for the endpoint until the new target's answer appears, and reports the time from the
//! switch (the journal entry's time) to that answer: a metric, a journal entry shared
//! through etcd and the latest report per view under the agent's lease (status).
//!
//! The resolver is asked every [`poll`] (1 % of the TTL, 20 ms to 1 s); that is the
//! figure's resolution. Clocks of nodes and agents are assumed in sync (NTP), as etcd
//! leases already assume.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::clock::{UnixMillis, now_ms};
use crate::cluster::agent::Keys;
use crate::cluster::etcd::{EtcdClient, prefix_end};
use crate::cluster::{ClusterWrite, Propagation};
use crate::model::{Model, TargetAnswer};
use crate::state::journal::Entry;

/// Spacing of the questions to the resolver while a switch of an endpoint with `ttl`
/// propagates: 1 % of the TTL, 20 ms to 1 s (about a hundred questions per TTL).
pub fn poll(ttl: u32) -> Duration {
    (Duration::from_millis(u64::from(ttl) * 10))
        .clamp(Duration::from_millis(20), Duration::from_secs(1))
}
/// How far back from the newest entry read the journal is read again, for entries that
/// land a little late (several nodes journal at once; their keys carry their own times).
/// Entries later than that (a node back after an etcd outage) are not live switches.
const LOOKBACK_MS: u64 = 5_000;
/// A switch journaled again within this long (by another node) is the same switch.
const SAME_SWITCH_MS: u64 = 60_000;
/// Journal entries per read.
const PAGE: i64 = 500;
/// Re-read of the journal when the watch is silent (it may have broken).
const RESYNC: Duration = Duration::from_secs(5);

/// How long to wait for a switch to appear: ten TTLs, at least a minute, at most an hour.
pub fn limit(ttl: u32) -> Duration {
    Duration::from_secs(u64::from(ttl) * 10)
        .clamp(Duration::from_secs(60), Duration::from_secs(3600))
}

/// What the resolver must answer for the endpoint once the switch has reached it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A CNAME from the endpoint to this name.
    Cname(Name),
    /// Exactly these addresses (of the type asked).
    Addrs(RecordType, BTreeSet<std::net::IpAddr>),
}

impl Expected {
    /// The expected answer of `endpoint` in view `view` when `to` is active, and the name to
    /// ask for (the overridden name of an RPZ trigger: the resolver applies the policy to
    /// it); `None` when it cannot be checked from outside (an unknown endpoint or target, an
    /// apex CNAME that is served flattened, a passthrough).
    pub fn of(
        model: &Model,
        endpoint: &str,
        view: &str,
        to: &str,
    ) -> Option<(Name, Expected, u32)> {
        let vi = model.view_index(view)?;
        let e = model
            .endpoints
            .iter()
            .find(|e| e.name.to_string().eq_ignore_ascii_case(endpoint))?;
        let t = e.targets[vi].iter().find(|t| t.instance == to)?;
        let expected = match &t.answer {
            TargetAnswer::Cname(_) if e.is_apex(model) => return None,
            // The public answer is whatever the public DNS says: nothing fixed to wait for.
            TargetAnswer::Passthrough => return None,
            TargetAnswer::Cname(n) => Expected::Cname(n.clone()),
            TargetAnswer::Addrs { a, aaaa } if !a.is_empty() => Expected::Addrs(
                RecordType::A,
                a.iter().map(|x| std::net::IpAddr::V4(*x)).collect(),
            ),
            TargetAnswer::Addrs { aaaa, .. } => Expected::Addrs(
                RecordType::AAAA,
                aaaa.iter().map(|x| std::net::IpAddr::V6(*x)).collect(),
            ),
        };
        let asked = e.rpz_trigger(model).unwrap_or_else(|| e.name.clone());
        Some((asked, expected, e.ttl))
    }

    /// The type to ask for: the CNAME itself (what the network caches for the endpoint,
    /// whatever happens to its target), or the addresses.
    pub fn qtype(&self) -> RecordType {
        match self {
            Expected::Cname(_) => RecordType::CNAME,
            Expected::Addrs(t, _) => *t,
        }
    }

    /// Whether `response` (to a question for `name`) carries this answer, and what it
    /// carried (for the report).
    pub fn seen_in(&self, name: &Name, response: &Message) -> (bool, String) {
        if response.metadata.response_code != ResponseCode::NoError {
            return (false, response.metadata.response_code.to_string());
        }
        let mut cname = None;
        let mut addrs = BTreeSet::new();
        for r in &response.answers {
            match &r.data {
                RData::CNAME(c) if r.name == *name => {
                    cname = Some(c.0.clone());
                }
                RData::A(a) if cname.is_none() => {
                    addrs.insert(std::net::IpAddr::V4(a.0));
                }
                RData::AAAA(a) if cname.is_none() => {
                    addrs.insert(std::net::IpAddr::V6(a.0));
                }
                _ => {}
            }
        }
        let shown = match &cname {
            Some(c) => format!("CNAME {c}"),
            None if addrs.is_empty() => "no records".to_string(),
            None => addrs
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        };
        let ok = match self {
            Expected::Cname(want) => cname.as_ref().is_some_and(|c| c == want),
            Expected::Addrs(_, want) => cname.is_none() && &addrs == want,
        };
        (ok, shown)
    }
}

/// A switch of one of the agent's views, read from the shared journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// Endpoint name.
    pub endpoint: String,
    /// View.
    pub view: String,
    /// New instance.
    pub to: String,
    /// When it was journaled.
    pub at: UnixMillis,
}

/// The switches of `views` among journal entries (each (endpoint, view, to) once: every
/// node journals the same switch).
pub fn switches(entries: &[Entry], views: &[String]) -> Vec<Switch> {
    let mut out: Vec<Switch> = Vec::new();
    for e in entries {
        let (Some(endpoint), Some(view), Some(to)) = (&e.endpoint, &e.view, &e.to) else {
            continue;
        };
        if e.kind != "switch" || !views.contains(view) {
            continue;
        }
        match out
            .iter_mut()
            .find(|s| &s.endpoint == endpoint && &s.view == view && &s.to == to)
        {
            Some(s) => s.at = s.at.min(e.time_ms),
            None => out.push(Switch {
                endpoint: endpoint.clone(),
                view: view.clone(),
                to: to.clone(),
                at: e.time_ms,
            }),
        }
    }
    out
}

/// What the follower needs.
pub(super) struct Follower {
    pub(super) client: EtcdClient,
    pub(super) keys: Arc<Keys>,
    pub(super) model: Arc<Model>,
    pub(super) views: Vec<String>,
    pub(super) resolver: SocketAddr,
    pub(super) writes: mpsc::Sender<ClusterWrite>,
}

/// Reports of the measurements, for the follower to share.
type Reports = mpsc::Sender<Propagation>;

impl Follower {
    /// Follows the journal until the task is aborted.
    pub(super) async fn run(self) {
        let started = now_ms();
        let prefix = self.keys.events();
        let end = prefix_end(&prefix);
        // (endpoint, view) → the switch being measured (or last measured) and its task.
        let mut measuring: BTreeMap<(String, String), (Switch, JoinHandle<()>)> = BTreeMap::new();
        let mut latest: BTreeMap<String, Propagation> = BTreeMap::new();
        let (report_tx, mut report_rx) = mpsc::channel::<Propagation>(64);
        let (changed_tx, mut changed_rx) = mpsc::channel::<()>(1);
        // Stops with this task (dropped when it is aborted).
        let _watcher = AbortOnDrop(tokio::spawn(watch(
            self.client.clone(),
            prefix.clone(),
            changed_tx,
        )));
        let mut newest = started;
        // Keys already read (within the look-back window).
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut resync = tokio::time::interval(RESYNC);
        loop {
            tokio::select! {
                Some(()) = changed_rx.recv() => {}
                _ = resync.tick() => {}
                Some(p) = report_rx.recv() => {
                    self.report(&p).await;
                    latest.insert(p.view.clone(), p);
                    let _ = self.writes.send(ClusterWrite::Propagation(latest.clone())).await;
                    continue;
                }
            }
            let from = format!(
                "{prefix}{:013}",
                newest.saturating_sub(LOOKBACK_MS).max(started)
            );
            let Some(entries) = self.read_new(&from, &end, &mut seen).await else {
                continue;
            };
            newest = entries
                .iter()
                .map(|e| e.time_ms)
                .max()
                .unwrap_or(newest)
                .max(newest);
            // Keys older than the look-back are never read again: forget them.
            let keep = format!(
                "{prefix}{:013}",
                newest.saturating_sub(LOOKBACK_MS).max(started)
            );
            seen.retain(|k| *k >= keep);
            for s in switches(&entries, &self.views) {
                let key = (s.endpoint.clone(), s.view.clone());
                if let Some((old, task)) = measuring.get(&key) {
                    if old.to == s.to && s.at.abs_diff(old.at) < SAME_SWITCH_MS {
                        continue; // the same switch, journaled by another node
                    }
                    if s.at < old.at {
                        continue; // an older switch read late: the newer one stands
                    }
                    task.abort();
                }
                let Some((name, expected, ttl)) =
                    Expected::of(&self.model, &s.endpoint, &s.view, &s.to)
                else {
                    tracing::info!(endpoint = %s.endpoint, view = %s.view, to = %s.to, "switch not checkable at the resolver (an apex CNAME is served flattened, or the config differs)");
                    continue;
                };
                tracing::info!(endpoint = %s.endpoint, view = %s.view, to = %s.to, resolver = %self.resolver, "switch seen: asking the network's resolver until it answers the new target");
                let task = tokio::spawn(measure(
                    self.resolver,
                    s.clone(),
                    name,
                    expected,
                    ttl,
                    report_tx.clone(),
                ));
                measuring.insert(key, (s, task));
            }
            if measuring.len() > 10_000 {
                measuring.retain(|_, (_, t)| !t.is_finished());
            }
        }
    }

    /// The entries from `from` not read before, page by page (`None`: etcd did not answer).
    async fn read_new(
        &self,
        from: &str,
        end: &[u8],
        seen: &mut BTreeSet<String>,
    ) -> Option<Vec<Entry>> {
        let mut out = Vec::new();
        let mut start = from.to_string();
        loop {
            let kvs = match self.client.range(&start, end, PAGE, false).await {
                Ok(k) => k,
                Err(e) => {
                    tracing::debug!(error = %e, "journal not read; retrying");
                    return None;
                }
            };
            let full = kvs.len() as i64 == PAGE;
            for kv in &kvs {
                if seen.insert(kv.key.clone())
                    && let Ok(e) = serde_json::from_slice::<Entry>(&kv.value)
                {
                    out.push(e);
                }
            }
            match kvs.last() {
                Some(last) if full => start = format!("{}\0", last.key),
                _ => return Some(out),
            }
        }
    }

    /// The metric, the log line and the shared journal entry of one measurement.
    async fn report(&self, p: &Propagation) {
        crate::metrics::propagation(&p.view, p.seconds());
        match p.seconds() {
            Some(s) => {
                tracing::info!(endpoint = %p.endpoint, view = %p.view, to = %p.to, seconds = s, ttl = p.ttl, "switch propagated to the network's resolver")
            }
            None => {
                tracing::warn!(endpoint = %p.endpoint, view = %p.view, to = %p.to, detail = %p.detail, "switch not seen at the network's resolver")
            }
        }
        let mut e = Entry::new(
            "propagation",
            p.seen_ms.unwrap_or_else(now_ms),
            p.detail.clone(),
            crate::decide::ENGINE_ACTOR,
        );
        e.endpoint = Some(p.endpoint.clone());
        e.view = Some(p.view.clone());
        e.to = Some(p.to.clone());
        let _ = self.writes.send(ClusterWrite::Events(vec![e])).await;
    }
}

/// Asks the resolver every [`poll`] until it answers the new target or [`limit`] passes.
async fn measure(
    resolver: SocketAddr,
    s: Switch,
    name: Name,
    expected: Expected,
    ttl: u32,
    reports: Reports,
) {
    let deadline = s.at.saturating_add(limit(ttl).as_millis() as u64);
    let mut last = String::from("no answer yet");
    let mut tick = tokio::time::interval(poll(ttl));
    let seen_ms = loop {
        tick.tick().await;
        let now = now_ms();
        if now > deadline {
            break None;
        }
        match crate::flatten::query(resolver, &name, expected.qtype()).await {
            Ok(m) => {
                let (ok, shown) = expected.seen_in(&name, &m);
                last = shown;
                if ok {
                    break Some(now_ms());
                }
            }
            Err(e) => last = e.to_string(),
        }
    };
    let detail = match seen_ms {
        Some(t) => format!(
            "resolver {resolver} answered {last} {:.1}s after the switch (TTL {ttl}s)",
            t.saturating_sub(s.at) as f64 / 1000.0
        ),
        None => format!(
            "resolver {resolver} still answered {last} {}s after the switch (TTL {ttl}s)",
            limit(ttl).as_secs()
        ),
    };
    let _ = reports
        .send(Propagation {
            view: s.view,
            endpoint: s.endpoint,
            to: s.to,
            resolver: resolver.to_string(),
            switched_ms: s.at,
            seen_ms,
            ttl,
            detail,
        })
        .await;
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Signals every change under the journal prefix; re-opens the watch after a failure.
async fn watch(client: EtcdClient, prefix: String, changed: mpsc::Sender<()>) {
    loop {
        match client.watch_prefix(&prefix, 0).await {
            Ok(mut w) => {
                while w.next_change().await.is_ok() {
                    let _ = changed.try_send(());
                }
            }
            Err(e) => tracing::debug!(error = %e, "journal watch not opened"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, CNAME};

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn response(records: Vec<Record>) -> Message {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        for r in records {
            m.add_answer(r);
        }
        m
    }

    #[test]
    fn an_rpz_trigger_is_checked_at_the_name_it_overrides() {
        use crate::snapshot::rpz_tests::{DOCKER, ORDINARY, QUAY, fixture};
        let m = fixture();
        let (name, want, _) = Expected::of(&m, DOCKER, "default", "ga").unwrap();
        assert_eq!(name, n("registry-1.docker.io."));
        assert_eq!(want, Expected::Cname(n("ga.accel.test.")));
        let (name, want, _) = Expected::of(&m, QUAY, "default", "ga").unwrap();
        assert_eq!(name, n("quay.io."));
        assert_eq!(want.qtype(), RecordType::A);
        assert_eq!(Expected::of(&m, DOCKER, "default", "direct"), None);
        let (name, _, _) = Expected::of(&m, ORDINARY, "default", "ga").unwrap();
        assert_eq!(name, n(ORDINARY));
    }

    #[test]
    fn a_cname_switch_is_seen_only_with_the_new_target() {
        let name = n("cr.registry.test.");
        let want = Expected::Cname(n("b.example."));
        let old = response(vec![
            Record::from_rdata(name.clone(), 30, RData::CNAME(CNAME(n("a.example.")))),
            Record::from_rdata(n("a.example."), 30, RData::A(A([192, 0, 2, 1].into()))),
        ]);
        assert_eq!(
            want.seen_in(&name, &old),
            (false, "CNAME a.example.".into())
        );
        let new = response(vec![Record::from_rdata(
            n("CR.registry.test."),
            30,
            RData::CNAME(CNAME(n("b.example."))),
        )]);
        assert!(want.seen_in(&name, &new).0);
    }

    #[test]
    fn an_address_switch_needs_exactly_the_new_addresses() {
        let name = n("cr.registry.test.");
        let want = Expected::Addrs(
            RecordType::A,
            ["10.1.0.6".parse().unwrap(), "10.1.0.7".parse().unwrap()].into(),
        );
        let a = |ip: [u8; 4]| Record::from_rdata(name.clone(), 30, RData::A(A(ip.into())));
        assert!(!want.seen_in(&name, &response(vec![a([10, 1, 0, 6])])).0);
        let (ok, shown) = want.seen_in(&name, &response(vec![a([10, 1, 0, 7]), a([10, 1, 0, 6])]));
        assert!(ok, "{shown}");
        let mut nx = response(vec![]);
        nx.metadata.response_code = ResponseCode::NXDomain;
        assert_eq!(
            want.seen_in(&name, &nx),
            (false, "Non-Existent Domain".into())
        );
    }

    fn entry(kind: &str, view: &str, to: &str, t: u64) -> Entry {
        let mut e = Entry::new(kind, t, "r", "regdns");
        e.endpoint = Some("cr.registry.test.".into());
        e.view = Some(view.into());
        e.to = Some(to.into());
        e
    }

    #[test]
    fn each_switch_of_the_agents_views_counts_once() {
        let entries = [
            entry("switch", "vpc-b", "zjk", 1_000),
            entry("switch", "vpc-b", "zjk", 1_003), // the same switch from another node
            entry("switch", "vpc-a", "zjk", 1_000), // not this agent's view
            entry("health", "vpc-b", "down", 999),
            entry("switch", "vpc-b", "hz", 9_000),
        ];
        let s = switches(&entries, &["vpc-b".to_string()]);
        assert_eq!(
            s,
            [
                Switch {
                    endpoint: "cr.registry.test.".into(),
                    view: "vpc-b".into(),
                    to: "zjk".into(),
                    at: 1_000
                },
                Switch {
                    endpoint: "cr.registry.test.".into(),
                    view: "vpc-b".into(),
                    to: "hz".into(),
                    at: 9_000
                },
            ]
        );
    }

    #[test]
    fn the_poll_is_a_hundredth_of_the_ttl_within_bounds() {
        assert_eq!(poll(1), Duration::from_millis(20));
        assert_eq!(poll(3), Duration::from_millis(30));
        assert_eq!(poll(30), Duration::from_millis(300));
        assert_eq!(poll(3600), Duration::from_secs(1));
    }

    #[test]
    fn the_limit_scales_with_the_ttl() {
        assert_eq!(limit(5), Duration::from_secs(60));
        assert_eq!(limit(30), Duration::from_secs(300));
        assert_eq!(limit(86_400), Duration::from_secs(3600));
    }
}
