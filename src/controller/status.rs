//! The status projection: what `GET /status` shows, built from the controller's state,
//! the prober's last reports, the publishers' status and the cluster view.

use std::time::{Duration, UNIX_EPOCH};

use super::Controller;
use crate::clock::now_ms;
use crate::control::{
    CheckStatus, ClusterNodeStatus, ClusterStatus, EndpointStatus, InstanceStatus,
    PropagationStatus, PublisherStatus, ResolvedStatus, Status, ViewTargetStatus, ZoneSerial,
};
use crate::decide::{Health, OverrideKind, UnixMillis};
use crate::snapshot::build::active_answer;

impl Controller {
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
                    checks: r.map(|r| check_statuses(&r.checks)).unwrap_or_default(),
                    canary_digest: seen.map(|s| s.digest.clone()),
                    canary_digest_since_ms: seen.map(|s| s.first_seen),
                    replication_reference,
                    replication_lag_ms,
                    replication_behind: self.lagging.iter().any(|(_, x)| *x == i.id),
                    resolved: r
                        .map(|r| {
                            r.resolved
                                .iter()
                                .map(|n| ResolvedStatus {
                                    name: n.name.clone(),
                                    addresses: n.addresses.clone(),
                                    resolver: n.resolver,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
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
                .map(|(n, obs)| {
                    let info = view.nodes.get(n);
                    ClusterNodeStatus {
                        node: n.clone(),
                        started_ms: info.map_or(self.started_ms, |i| i.started_ms),
                        version: info
                            .map_or(env!("CARGO_PKG_VERSION").into(), |i| i.version.clone()),
                        role: info
                            .map_or(crate::cluster::Role::Node, |i| i.role)
                            .as_str()
                            .into(),
                        views: if *n == c.link.node {
                            c.link.views.clone()
                        } else {
                            info.map(|i| i.views.clone()).unwrap_or_default()
                        },
                        // A node reports every instance; an agent those of its views.
                        instances: self
                            .model
                            .instances
                            .iter()
                            .filter_map(|i| match (obs.get(&i.id), info.map(|i| i.role)) {
                                (None, Some(crate::cluster::Role::Agent)) => None,
                                (h, _) => Some((
                                    i.id.clone(),
                                    health_word(h.unwrap_or(&Health::Unknown)).into(),
                                )),
                            })
                            .collect(),
                    }
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
                propagation: view
                    .propagation
                    .iter()
                    .filter(|(agent, _)| view.nodes.contains_key(*agent))
                    .flat_map(|(agent, per_view)| {
                        per_view.values().map(move |p| PropagationStatus {
                            agent: agent.clone(),
                            view: p.view.clone(),
                            endpoint: p.endpoint.clone(),
                            to: p.to.clone(),
                            resolver: p.resolver.clone(),
                            switched_ms: p.switched_ms,
                            seconds: p.seconds(),
                            ttl: p.ttl,
                            detail: p.detail.clone(),
                        })
                    })
                    .collect(),
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
            view_health: self.view_health_status(&reports),
            cluster,
        }
    }

    /// Each target's health in each view, with what judged it and who decided it.
    fn view_health_status(
        &self,
        reports: &std::collections::BTreeMap<String, crate::probe::ProbeReport>,
    ) -> Vec<ViewTargetStatus> {
        let observers = self.observers();
        let mut out = Vec::new();
        for v in &self.model.views {
            let Some(judged) = self.plan.judged_by.get(&v.name) else {
                continue;
            };
            let (deciders, declared) = crate::vantage::deciders(&v.name, &observers);
            for (instance, key) in judged {
                let h = self
                    .view_health
                    .get(&v.name)
                    .and_then(|m| m.get(instance))
                    .cloned()
                    .unwrap_or_default();
                let (since_ms, reason) = match &h {
                    Health::Up { since } => (Some(*since), None),
                    Health::Down { since, reason } => (Some(*since), Some(reason.clone())),
                    Health::Unknown => (None, None),
                };
                let subject = self.plan.subjects.get(key);
                let checked = match subject {
                    Some(s) if !s.addresses.is_empty() => format!(
                        "addresses {}",
                        s.addresses
                            .iter()
                            .map(|a| a.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    _ => "instance".to_string(),
                };
                out.push(ViewTargetStatus {
                    view: v.name.clone(),
                    target: instance.clone(),
                    state: health_word(&h).into(),
                    since_ms,
                    reason,
                    checked,
                    quorum: self.plan.quorum(&v.name).to_string(),
                    declared,
                    observers: deciders
                        .iter()
                        .map(|o| {
                            let name = if o.name.is_empty() {
                                "this node"
                            } else {
                                o.name
                            };
                            let seen = o.health.get(key).unwrap_or(&Health::Unknown);
                            (name.to_string(), health_word(seen).to_string())
                        })
                        .collect(),
                    checks: match subject {
                        Some(s) if s.view.is_some() => reports
                            .get(key)
                            .map(|r| check_statuses(&r.checks))
                            .unwrap_or_default(),
                        _ => Vec::new(),
                    },
                });
            }
        }
        out
    }
}

fn check_statuses(checks: &[crate::probe::CheckResult]) -> Vec<CheckStatus> {
    checks
        .iter()
        .map(|c| CheckStatus {
            check: c.check.clone(),
            ok: c.ok,
            latency_ms: c.latency.as_secs_f64() * 1000.0,
            detail: c.detail.clone(),
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
