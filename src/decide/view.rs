//! One (endpoint, view): the base by the automatic rules, the force layered
//! over it, and the resulting decision and event.

use super::eligibility::Ctx;
use super::overrides::{Layered, applicable_force, layer_force};
use super::rules::compute_base;
use super::{Cause, Decision, ENGINE_ACTOR, EndpointPolicy, Event, Inputs, Override, UnixMillis};

/// The decision of one (endpoint, view), its event and its wake-up.
pub(super) struct ViewResult {
    /// The decision.
    pub(super) decision: Decision,
    /// The change of `active`, if any.
    pub(super) event: Option<Event>,
    /// When an auto-failback hold ends.
    pub(super) wakeup: Option<UnixMillis>,
}

/// Decides one (endpoint, view): the base by the rules, the force layered
/// over it, and the event should `active` change.
pub(super) fn decide_view(
    ctx: &Ctx<'_>,
    inputs: &Inputs<'_>,
    live: &[&Override],
    policy: &EndpointPolicy,
    view: &str,
    targets: &[&str],
    prev: Option<&Decision>,
) -> ViewResult {
    let now = ctx.now;
    let base = compute_base(
        ctx,
        inputs,
        policy,
        view,
        targets,
        prev.map(|p| p.base.as_str()),
    );

    let force = applicable_force(live, policy, view, targets);

    let degraded = !targets.iter().any(|t| ctx.is_up(t));

    let Layered {
        active,
        reason,
        forced_by,
        forced_actor,
    } = layer_force(ctx, inputs, force, &base, prev);

    let changed = prev.is_none_or(|p| p.active != active);
    let cause = if forced_actor.is_some() {
        Cause::Force
    } else if prev.is_some_and(|p| p.forced_by.is_some()) {
        Cause::Release
    } else if prev.is_none() {
        Cause::Startup
    } else {
        base.cause
    };
    let event = changed.then(|| {
        let actor = if let Some(a) = &forced_actor {
            a.clone()
        } else if let Some(old) = prev.and_then(|p| p.forced_by.as_deref()) {
            inputs
                .overrides
                .iter()
                .find(|o| o.id == old)
                .map(|o| o.actor.clone())
                .or_else(|| prev.and_then(|p| p.forced_actor.clone()))
                .unwrap_or_else(|| ENGINE_ACTOR.to_string())
        } else if let Some(cf) = base.confirmed_by {
            cf.actor.clone()
        } else {
            ENGINE_ACTOR.to_string()
        };
        Event {
            time: now,
            endpoint: policy.name.clone(),
            view: view.to_string(),
            from: prev.map(|p| p.active.clone()),
            to: active.clone(),
            reason: reason.clone(),
            actor,
            cause,
        }
    });

    let since = match prev {
        Some(p) if !changed => p.since,
        _ => now,
    };

    ViewResult {
        decision: Decision {
            active,
            base: base.base,
            reason,
            since,
            degraded,
            forced_by,
            failback_pending: base.pending,
            forced_actor,
        },
        event,
        wakeup: base.wakeup,
    }
}
