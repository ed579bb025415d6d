//! Failback to a higher-priority target once it is back up: automatic
//! after a hold (and the wake-up at which a hold ends), or manual on an
//! operator's confirmation.

use super::base::BaseResult;
use super::eligibility::Ctx;
use super::fmt::format_duration;
use super::{Cause, EndpointPolicy, Failback, Inputs, UnixMillis};

/// The time at which a target above `chosen` (usable, still in its hold)
/// completes its auto-failback hold.
pub(super) fn hold_wakeup(
    ctx: &Ctx<'_>,
    policy: &EndpointPolicy,
    targets: &[&str],
    chosen: usize,
) -> Option<UnixMillis> {
    if policy.failback != Failback::Auto {
        return None;
    }
    targets[..chosen]
        .iter()
        .filter(|t| ctx.usable(t))
        .filter_map(|t| ctx.up_since(t))
        .map(|since| since.saturating_add(policy.failback_hold_ms))
        .filter(|t| *t > ctx.now)
        .min()
}

/// Auto failback from the current base `targets[ci]`: to the
/// highest-priority usable target above it whose hold is over, else stay.
pub(super) fn auto_failback<'a>(
    ctx: &Ctx<'_>,
    policy: &EndpointPolicy,
    targets: &[&str],
    ci: usize,
) -> BaseResult<'a> {
    let hold = policy.failback_hold_ms;
    let c = targets[ci];
    // Highest-priority usable target above the current one whose hold is over.
    let ready = targets[..ci].iter().position(|t| {
        ctx.usable(t)
            && ctx
                .up_since(t)
                .is_some_and(|s| s.saturating_add(hold) <= ctx.now)
    });
    match ready {
        Some(ri) => {
            let r = targets[ri];
            let up_for = ctx.now.saturating_sub(ctx.up_since(r).unwrap_or(ctx.now));
            BaseResult {
                base: r.to_string(),
                reason: format!(
                    "failback to {r}: up for {} (hold {})",
                    format_duration(up_for),
                    format_duration(hold)
                ),
                pending: None,
                confirmed_by: None,
                wakeup: hold_wakeup(ctx, policy, targets, ri),
                cause: Cause::Failback,
            }
        }
        None => {
            let wakeup = hold_wakeup(ctx, policy, targets, ci);
            // The waiting target that finishes its hold first.
            let waiting = targets[..ci]
                .iter()
                .filter(|t| ctx.usable(t))
                .min_by_key(|t| ctx.up_since(t).map(|s| s.saturating_add(hold)))
                .copied()
                .unwrap_or(c);
            let up_for = ctx
                .now
                .saturating_sub(ctx.up_since(waiting).unwrap_or(ctx.now));
            BaseResult {
                base: c.to_string(),
                reason: format!(
                    "{c} is up; failback to {waiting} held: up for {} of {} hold, failback in {}",
                    format_duration(up_for),
                    format_duration(hold),
                    format_duration(hold.saturating_sub(up_for))
                ),
                pending: None,
                confirmed_by: None,
                wakeup,
                cause: Cause::Health,
            }
        }
    }
}

/// Manual failback from the current base `targets[ci]` to the usable
/// higher-priority `targets[bi]`: only once an operator confirms it.
pub(super) fn manual_failback<'a>(
    ctx: &Ctx<'_>,
    inputs: &Inputs<'a>,
    policy: &EndpointPolicy,
    view: &str,
    targets: &[&str],
    ci: usize,
    bi: usize,
) -> BaseResult<'a> {
    let c = targets[ci];
    let b = targets[bi];
    let confirmation = inputs
        .confirmations
        .iter()
        .find(|cf| cf.endpoint == policy.name && cf.view.as_deref().is_none_or(|v| v == view));
    match confirmation {
        Some(cf) => BaseResult {
            base: b.to_string(),
            reason: format!(
                "failback to {b} ({}) confirmed by {} ({})",
                ctx.describe(b),
                cf.actor,
                cf.reason
            ),
            pending: None,
            confirmed_by: Some(cf),
            wakeup: None,
            cause: Cause::Failback,
        },
        None => BaseResult {
            base: c.to_string(),
            reason: format!(
                "{} and {c} is up; manual failback: waiting for operator confirmation to return to {b}",
                ctx.describe(b)
            ),
            pending: Some(b.to_string()),
            confirmed_by: None,
            wakeup: None,
            cause: Cause::Health,
        },
    }
}
