//! Operator overrides: expiry handling, the drain in effect per instance,
//! the applicable force of a view (rule 1) and the layering of a force over
//! the base the automatic rules give.

use super::base::BaseResult;
use super::eligibility::Ctx;
use super::{Decision, EndpointPolicy, Health, Inputs, Override, OverrideKind, UnixMillis};
use std::collections::{BTreeMap, BTreeSet};

/// Overrides split by expiry at `now`.
pub(super) struct Split<'a> {
    /// Ids of overrides whose expiry is `<= now`; input order, without
    /// duplicates.
    pub(super) expired: Vec<String>,
    /// Overrides in effect, in input order.
    pub(super) live: Vec<&'a Override>,
    /// Earliest expiry of a live override.
    pub(super) next_expiry: Option<UnixMillis>,
}

/// Expired overrides are reported and otherwise ignored; unexpired expiries
/// are wake-up times (also for overrides that match nothing, so the caller
/// gets to journal their expiry on time).
pub(super) fn split_expired(overrides: &[Override], now: UnixMillis) -> Split<'_> {
    let mut expired = Vec::new();
    let mut seen_expired = BTreeSet::new();
    let mut live: Vec<&Override> = Vec::new();
    let mut next_expiry: Option<UnixMillis> = None;
    for o in overrides {
        match o.expires {
            Some(t) if t <= now => {
                if seen_expired.insert(o.id.as_str()) {
                    expired.push(o.id.clone());
                }
            }
            Some(t) => {
                next_expiry = Some(next_expiry.map_or(t, |w| w.min(t)));
                live.push(o);
            }
            None => live.push(o),
        }
    }
    Split {
        expired,
        live,
        next_expiry,
    }
}

/// Instance -> the drain in effect (newest `created`, then greatest id).
pub(super) fn drains_in_effect<'a>(live: &[&'a Override]) -> BTreeMap<&'a str, &'a Override> {
    let mut drains: BTreeMap<&str, &Override> = BTreeMap::new();
    for o in live {
        if let OverrideKind::Drain { instance } = &o.kind {
            let replace = drains
                .get(instance.as_str())
                .is_none_or(|cur| (o.created, &o.id) > (cur.created, &cur.id));
            if replace {
                drains.insert(instance.as_str(), o);
            }
        }
    }
    drains
}

/// Rule 1: the applicable force and its instance — view-specific beats
/// all-views, then newest `created`, then greatest id. A force naming an
/// instance that is not a target of this view does not apply to it.
pub(super) fn applicable_force<'o>(
    live: &[&'o Override],
    policy: &EndpointPolicy,
    view: &str,
    targets: &[&str],
) -> Option<(&'o Override, &'o str)> {
    live.iter()
        .filter_map(|o| match &o.kind {
            OverrideKind::Force {
                endpoint,
                view: fview,
                instance,
            } if *endpoint == policy.name
                && fview.as_deref().is_none_or(|v| v == view)
                && targets.contains(&instance.as_str()) =>
            {
                Some((
                    fview.is_some(),
                    o.created,
                    o.id.as_str(),
                    *o,
                    instance.as_str(),
                ))
            }
            _ => None,
        })
        .max_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)))
        .map(|(_, _, _, o, inst)| (o, inst))
}

/// The active target of a view once the force (if any) is layered over the
/// base.
pub(super) struct Layered {
    /// Instance id served.
    pub(super) active: String,
    /// Human-readable explanation of `active`.
    pub(super) reason: String,
    /// Id of the force override in effect, if any.
    pub(super) forced_by: Option<String>,
    /// Actor of the force override in effect, if any.
    pub(super) forced_actor: Option<String>,
}

/// Layers `force` over `base`: a force serves its instance (with notes on its
/// state and what the rules would serve); without one the base is served,
/// and a force of the previous decision that no longer applies is reported
/// as released or expired.
pub(super) fn layer_force(
    ctx: &Ctx<'_>,
    inputs: &Inputs<'_>,
    force: Option<(&Override, &str)>,
    base: &BaseResult<'_>,
    prev: Option<&Decision>,
) -> Layered {
    let now = ctx.now;
    match force {
        Some((o, inst)) => {
            let mut reason = format!("forced by {} (override {}: {})", o.actor, o.id, o.reason);
            match ctx.health(inst) {
                Health::Up { .. } => {}
                Health::Unknown => {
                    reason.push_str(&format!("; note: {inst} health is unknown"));
                }
                Health::Down { reason: why, .. } if why.is_empty() => {
                    reason.push_str(&format!("; note: {inst} is down"));
                }
                Health::Down { reason: why, .. } => {
                    reason.push_str(&format!("; note: {inst} is down ({why})"));
                }
            }
            if ctx.drain(inst).is_some() {
                reason.push_str(&format!("; note: {}", ctx.describe_drain(inst)));
            }
            reason.push_str(&format!(
                "; without the force: {} ({})",
                base.base, base.reason
            ));
            Layered {
                active: inst.to_string(),
                reason,
                forced_by: Some(o.id.clone()),
                forced_actor: Some(o.actor.clone()),
            }
        }
        None => {
            let mut reason = base.reason.clone();
            // A force that was in effect and no longer is: released/expired.
            if let Some(old) = prev.and_then(|p| p.forced_by.as_deref()) {
                let how = match inputs.overrides.iter().find(|o| o.id == old) {
                    None => "released",
                    Some(o) if o.expires.is_some_and(|t| t <= now) => "expired",
                    Some(_) => "no longer applies",
                };
                reason = format!("force {old} {how}; back to {}: {reason}", base.base);
            }
            Layered {
                active: base.base.clone(),
                reason,
                forced_by: None,
                forced_actor: None,
            }
        }
    }
}
