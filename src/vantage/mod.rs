//! Health as each network sees it (docs/health-checks.md#health-as-each-network-sees-it).
//!
//! A view is answered with its own targets: for a VPC typically the instance's internal
//! addresses, reached over that network's own path. This module says which checks judge a
//! target in a view and who observes them ([`Plan`]), and combines the observers'
//! conclusions into the health each view decides on ([`combine`]). Pure: no I/O, no clock;
//! the same observations give the same health on every node.
//!
//! * A **subject** is something probed: an instance's own checks (key `hangzhou`), or, in a
//!   view with `probe = "addresses"`, the same checks run against the addresses that view is
//!   answered for that instance (key `hangzhou@vpc-bbbbb`).
//! * An **observer** is a regdns node or a `regdns agent`, with the views it declares
//!   (`cluster.views`, `agent.views`) and its conclusions per subject.
//! * A view's health of a target is the view's quorum ([`quorum`]) over the observers that
//!   declare the view, or over every observer when none does.

pub mod quorum;

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::config::{HealthQuorum, ViewProbe};
use crate::decide::Health;
use crate::model::{Model, TargetAnswer};

/// Separates instance and view in the key of an address subject (`hangzhou@vpc-bbbbb`).
/// Neither instance ids nor view names may contain it.
pub const SEP: char = '@';

/// Key of the subject "`instance`'s checks at the addresses `view` is answered".
pub fn address_key(instance: &str, view: &str) -> String {
    format!("{instance}{SEP}{view}")
}

/// The instance and, for an address subject, the view of a subject key.
pub fn split_key(key: &str) -> (&str, Option<&str>) {
    match key.split_once(SEP) {
        Some((i, v)) => (i, Some(v)),
        None => (key, None),
    }
}

/// Something probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `hangzhou` or `hangzhou@vpc-bbbbb` (see [`address_key`]).
    pub key: String,
    /// The instance whose checks run.
    pub instance: String,
    /// The view whose addresses are dialled; `None` for the instance's own checks.
    pub view: Option<String>,
    /// The addresses dialled (empty for the instance's own checks).
    pub addresses: Vec<IpAddr>,
}

/// Which subject judges each target of each view, and each view's quorum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Every subject by key: each instance's own checks and each view's addresses.
    pub subjects: BTreeMap<String, Subject>,
    /// view → instance → key of the subject that judges the instance in that view, for
    /// every instance that is a target of the view.
    pub judged_by: BTreeMap<String, BTreeMap<String, String>>,
    /// view → its quorum.
    quorums: BTreeMap<String, HealthQuorum>,
    /// The cluster's quorum (instance health, views without their own).
    pub default_quorum: HealthQuorum,
}

impl Plan {
    /// The plan of `model`.
    pub fn new(model: &Model) -> Plan {
        let default_quorum = model
            .cluster
            .as_ref()
            .map(|c| c.health_quorum)
            .unwrap_or_default();
        let mut plan = Plan {
            default_quorum,
            ..Plan::default()
        };
        for i in &model.instances {
            plan.subjects.insert(
                i.id.clone(),
                Subject {
                    key: i.id.clone(),
                    instance: i.id.clone(),
                    view: None,
                    addresses: Vec::new(),
                },
            );
        }
        for (vi, v) in model.views.iter().enumerate() {
            plan.quorums
                .insert(v.name.clone(), v.health_quorum.unwrap_or(default_quorum));
            let judged = plan.judged_by.entry(v.name.clone()).or_default();
            for e in &model.endpoints {
                for t in &e.targets[vi] {
                    let key = match (&t.answer, v.probe) {
                        (TargetAnswer::Addrs { a, aaaa }, ViewProbe::Addresses) => {
                            let key = address_key(&t.instance, &v.name);
                            plan.subjects.entry(key.clone()).or_insert_with(|| Subject {
                                key: key.clone(),
                                instance: t.instance.clone(),
                                view: Some(v.name.clone()),
                                addresses: a
                                    .iter()
                                    .map(|x| IpAddr::V4(*x))
                                    .chain(aaaa.iter().map(|x| IpAddr::V6(*x)))
                                    .collect(),
                            });
                            key
                        }
                        _ => t.instance.clone(),
                    };
                    judged.entry(t.instance.clone()).or_insert(key);
                }
            }
        }
        plan
    }

    /// The quorum of `view` (the cluster's for an unknown view).
    pub fn quorum(&self, view: &str) -> HealthQuorum {
        self.quorums
            .get(view)
            .copied()
            .unwrap_or(self.default_quorum)
    }

    /// What an observer probes: a full node (no `agent_views`) every subject; an agent the
    /// instance checks of every target of its views and those views' address subjects.
    pub fn subjects_for(&self, agent_views: Option<&[String]>) -> Vec<&Subject> {
        let Some(views) = agent_views else {
            return self.subjects.values().collect();
        };
        let mut keys: std::collections::BTreeSet<&str> = Default::default();
        for v in views {
            for (instance, key) in self.judged_by.get(v).into_iter().flatten() {
                keys.insert(instance);
                keys.insert(key);
            }
        }
        keys.into_iter()
            .filter_map(|k| self.subjects.get(k))
            .collect()
    }
}

/// One observer's conclusions.
#[derive(Debug, Clone, Copy)]
pub struct Observer<'a> {
    /// Node or agent name.
    pub name: &'a str,
    /// The views it declares (empty: none).
    pub views: &'a [String],
    /// Subject key → what its probes concluded.
    pub health: &'a BTreeMap<String, Health>,
}

/// The observers that decide `view`: those declaring it, or all when none does (then the
/// flag is false).
pub fn deciders<'a>(view: &str, observers: &[Observer<'a>]) -> (Vec<Observer<'a>>, bool) {
    let declared: Vec<Observer<'a>> = observers
        .iter()
        .filter(|o| o.views.iter().any(|v| v == view))
        .copied()
        .collect();
    if declared.is_empty() {
        (observers.to_vec(), false)
    } else {
        (declared, true)
    }
}

/// The health decisions use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Combined {
    /// Instance → its own checks over every observer, by the cluster's quorum (status,
    /// metrics, the state file).
    pub instances: BTreeMap<String, Health>,
    /// View → instance → its health in that view. Every view of the plan has an entry;
    /// an instance missing from it has not concluded (`Unknown`).
    pub views: BTreeMap<String, BTreeMap<String, Health>>,
}

/// Combines the observers' conclusions by the plan.
pub fn combine(plan: &Plan, observers: &[Observer<'_>]) -> Combined {
    let gather = |who: &[Observer<'_>], key: &str| -> BTreeMap<String, Health> {
        who.iter()
            .filter_map(|o| Some((o.name.to_string(), o.health.get(key)?.clone())))
            .collect()
    };
    let mut out = Combined::default();
    for s in plan.subjects.values().filter(|s| s.view.is_none()) {
        let h = quorum::combine(plan.default_quorum, &gather(observers, &s.key));
        if h != Health::Unknown {
            out.instances.insert(s.instance.clone(), h);
        }
    }
    for (view, judged) in &plan.judged_by {
        let (who, declared) = deciders(view, observers);
        let q = plan.quorum(view);
        // Every observer, the cluster's quorum, the instance's own checks: exactly the
        // instance health computed above (most views at scale; no second combination).
        let as_instances = !declared && q == plan.default_quorum;
        let mut m = BTreeMap::new();
        for (instance, key) in judged {
            let h = if as_instances && key == instance {
                out.instances.get(instance).cloned().unwrap_or_default()
            } else {
                quorum::combine(q, &gather(&who, key))
            };
            if h != Health::Unknown {
                m.insert(instance.clone(), h);
            }
        }
        out.views.insert(view.clone(), m);
    }
    out
}

/// Instances whose health differs between `a` and `b` (in any view, or as an instance).
pub fn changed(a: &Combined, b: &Combined) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut diff = |x: &BTreeMap<String, Health>, y: &BTreeMap<String, Health>| {
        for k in x.keys().chain(y.keys()) {
            if x.get(k) != y.get(k) {
                out.insert(k.clone());
            }
        }
    };
    diff(&a.instances, &b.instances);
    let empty = BTreeMap::new();
    for v in a.views.keys().chain(b.views.keys()) {
        diff(
            a.views.get(v).unwrap_or(&empty),
            b.views.get(v).unwrap_or(&empty),
        );
    }
    out
}

#[cfg(test)]
mod tests;
