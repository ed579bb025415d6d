//! Cluster mode (`[cluster]`): the controller's link to the cluster agent. Joins the
//! cluster, applies the shared state the agent reads from etcd (overrides, failback
//! confirmations, serials, the other nodes' health), acknowledges committed operator
//! changes, and hands this node's serials and shared writes to the agent. Nothing here
//! writes etcd itself: the agent does.

use std::collections::BTreeSet;

use tokio::sync::watch;

use super::Controller;
use crate::clock::now_ms;
use crate::cluster::{self, ClusterView, ClusterWrite, Reply, SharedSerial, ToController};
use crate::config::HealthQuorum;
use crate::control::ControlError;
use crate::decide::{Event, Override};

/// The controller's link to the cluster agent (`[cluster]`).
#[derive(Debug)]
pub struct ClusterLink {
    /// This node's name.
    pub node: String,
    /// How observations combine (the cluster's default; views may have their own).
    pub quorum: HealthQuorum,
    /// The views this node declares (`cluster.views`): its observations decide them.
    pub views: Vec<String>,
    /// Writes for the agent.
    pub writes: tokio::sync::mpsc::Sender<ClusterWrite>,
    /// Whether this node leads (publishers run).
    pub leading: watch::Receiver<bool>,
}

/// Cluster-mode state of the controller.
#[derive(Debug)]
pub(super) struct ClusterSide {
    pub(super) link: ClusterLink,
    /// The last shared state seen (None before the first read).
    pub(super) view: Option<ClusterView>,
    /// Failback confirmations already applied.
    seen_failbacks: BTreeSet<String>,
    /// Serials last handed to the agent.
    shared_serials: Vec<((String, String), SharedSerial)>,
}

impl Controller {
    /// Joins the cluster: from now on health is combined, overrides are shared.
    pub fn join_cluster(&mut self, link: ClusterLink) {
        self.cluster = Some(ClusterSide {
            link,
            view: None,
            seen_failbacks: BTreeSet::new(),
            shared_serials: Vec::new(),
        });
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

    /// Hands this node's serials to the agent when they changed (cluster mode).
    pub(super) fn share_serials(&mut self) {
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

    /// Refuses a shared change while etcd is unreachable.
    pub(super) fn cluster_ready(&self) -> Result<(), ControlError> {
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
    pub(super) fn send_shared(&self, w: ClusterWrite) {
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
}
