//! Pure decision engine for regdns: given endpoint policies, instance health,
//! operator overrides, the previous decisions and the current time, pick the
//! active target per (endpoint, view).
//!
//! The engine never reads a clock, performs no I/O and uses no randomness:
//! identical inputs always give identical outputs.
//!
//! Layering, per (endpoint, view):
//! * `base` evolves by the automatic rules (priority, failover, failback
//!   holds, manual failback, fail-static, drains) from the previous `base`;
//! * `active` is the newest applicable `Force` override's instance, or `base`.
//!
//! Forces therefore never influence `base`: releasing a force returns to
//! what the rules would have served had the force never existed.
//!
//! Layout: `types` holds the public inputs and outputs; `eligibility`
//! says which targets may be used; `rules` gives the base (priority,
//! failover, fail-static, drains); `failback` returns to a higher-priority
//! target; `overrides` handles expiries, drains and forces; `view` assembles
//! the decision and event of one (endpoint, view); [`decide`] runs them all.

mod base;
mod eligibility;
mod failback;
mod fmt;
mod overrides;
mod rules;
mod types;
mod view;

#[cfg(test)]
mod tests;

pub mod decisions_as_list;

pub use eligibility::replication_lag;
pub use fmt::format_duration;
pub use types::{
    Cause, Decision, ENGINE_ACTOR, EndpointPolicy, Event, Failback, FailbackConfirmation, Health,
    Inputs, Outcome, Override, OverrideKind, ReplicationPolicy, SeenDigest, UnixMillis,
};

use eligibility::Ctx;
use overrides::{Split, drains_in_effect, split_expired};
use std::collections::{BTreeMap, BTreeSet};

/// Names of the endpoints whose targets (in any view) include one of `instances`: the
/// endpoints a health change of those instances can move.
pub fn endpoints_using(
    endpoints: &[EndpointPolicy],
    instances: &BTreeSet<String>,
) -> BTreeSet<String> {
    endpoints
        .iter()
        .filter(|p| p.views.values().flatten().any(|t| instances.contains(t)))
        .map(|p| p.name.clone())
        .collect()
}
use view::decide_view;

/// Computes the decisions for every (endpoint, view) of `inputs.endpoints` (or only of the
/// endpoints in `inputs.only`, see [`Inputs::only`]).
pub fn decide(inputs: &Inputs<'_>) -> Outcome {
    let now = inputs.now;
    let mut next_wakeup: Option<UnixMillis> = None;
    let mut wake = |t: UnixMillis| {
        next_wakeup = Some(next_wakeup.map_or(t, |w| w.min(t)));
    };

    let Split {
        expired: expired_overrides,
        live,
        next_expiry,
    } = split_expired(inputs.overrides, now);
    if let Some(t) = next_expiry {
        wake(t);
    }

    let drains = drains_in_effect(&live);
    let mut lagging = BTreeSet::new();

    // Endpoints in name order; a duplicated name keeps its first policy.
    let mut policies: BTreeMap<&str, &EndpointPolicy> = BTreeMap::new();
    for p in inputs.endpoints {
        policies.entry(p.name.as_str()).or_insert(p);
    }

    let mut decisions = BTreeMap::new();
    let mut events = Vec::new();
    for (name, policy) in policies {
        let ctx = Ctx {
            health: inputs.health,
            drains: &drains,
            now,
            digests: inputs.digests,
            replication: policy.replication.as_ref(),
        };
        // Each view is decided on its own view of the targets' health.
        let view_ctx = |view: &str| Ctx {
            health: inputs.view_health.get(view).unwrap_or(inputs.health),
            ..ctx
        };
        for t in policy.views.values().flatten() {
            if ctx.lagging(t).is_some() {
                lagging.insert((name.to_string(), t.clone()));
            }
            if let Some(at) = ctx.lag_deadline(t) {
                wake(at);
            }
        }
        let skip = inputs.only.is_some_and(|only| {
            !only.contains(name)
                && policy.views.iter().all(|(view, targets)| {
                    targets.is_empty()
                        || inputs
                            .previous
                            .contains_key(&(name.to_string(), view.clone()))
                })
        });
        if skip {
            continue;
        }
        for (view, raw_targets) in &policy.views {
            // Priority is the first occurrence; a view without targets gets
            // no decision.
            let mut targets: Vec<&str> = Vec::new();
            for t in raw_targets {
                if !targets.contains(&t.as_str()) {
                    targets.push(t);
                }
            }
            if targets.is_empty() {
                continue;
            }
            let key = (name.to_string(), view.clone());
            let prev = inputs.previous.get(&key);
            let vr = decide_view(&view_ctx(view), inputs, &live, policy, view, &targets, prev);
            if let Some(t) = vr.wakeup {
                wake(t);
            }
            if let Some(e) = vr.event {
                events.push(e);
            }
            decisions.insert(key, vr.decision);
        }
    }

    Outcome {
        decisions,
        events,
        expired_overrides,
        next_wakeup,
        lagging,
    }
}
