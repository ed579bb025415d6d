//! Operator commands: validates and applies overrides (force, drain), their release and
//! manual failback confirmations, each made durable (state file, journal) before it is
//! answered; in cluster mode, hands them to the cluster agent to commit in etcd instead.

use super::Controller;
use crate::clock::now_ms;
use crate::cluster::{Ack, ClusterWrite, Reply, SharedFailback};
use crate::control::{Command, ControlError, NewOverride, Release};
use crate::decide::{Event, FailbackConfirmation, Override, OverrideKind, UnixMillis};
use crate::state::journal::Entry;

impl Controller {
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
