//! Rules 2-5 of the engine: the base target of a view by priority,
//! failover, fail-static and drains, evolved from the previous base.

use super::base::BaseResult;
use super::eligibility::{Ctx, State};
use super::failback::{auto_failback, hold_wakeup, manual_failback};
use super::{Cause, EndpointPolicy, Failback, Inputs};

/// Rules 2-5: the base target, from the previous base.
pub(super) fn compute_base<'a>(
    ctx: &Ctx<'_>,
    inputs: &Inputs<'a>,
    policy: &EndpointPolicy,
    view: &str,
    targets: &[&str],
    prev_base: Option<&str>,
) -> BaseResult<'a> {
    let best = targets.iter().position(|t| ctx.usable(t));
    let first_up_drained = targets.iter().position(|t| ctx.is_up(t));
    let current = prev_base.and_then(|b| targets.iter().position(|t| *t == b));

    let Some(ci) = current else {
        // Startup, or the previous base is no longer a target of the view.
        let cause = if prev_base.is_none() {
            Cause::Startup
        } else {
            Cause::Health
        };
        return startup_base(ctx, policy, targets, prev_base).because(cause);
    };
    compute_base_from(
        ctx,
        inputs,
        policy,
        view,
        targets,
        ci,
        best,
        first_up_drained,
    )
}

/// The base when there is no usable previous one (startup, or it left the view).
fn startup_base<'a>(
    ctx: &Ctx<'_>,
    policy: &EndpointPolicy,
    targets: &[&str],
    prev_base: Option<&str>,
) -> BaseResult<'a> {
    let best = targets.iter().position(|t| ctx.usable(t));
    let first_up_drained = targets.iter().position(|t| ctx.is_up(t));
    {
        let prefix = match prev_base {
            None => "startup: ".to_string(),
            Some(old) => format!("{old} is no longer a target of this view; "),
        };
        if let Some(bi) = best {
            let mut r = BaseResult::plain(
                targets[bi],
                format!("{prefix}{}", ctx.best_reason(targets, bi)),
            );
            r.wakeup = hold_wakeup(ctx, policy, targets, bi);
            return r;
        }
        if let Some(di) = first_up_drained {
            let d = targets[di];
            return BaseResult::plain(
                d,
                format!(
                    "{prefix}no undrained target up ({}); using {d}, the highest-priority up target, although drained",
                    ctx.list_states(targets.iter().copied())
                ),
            );
        }
        let unknown = targets
            .iter()
            .position(|t| ctx.state(t) == State::Unknown && ctx.drain(t).is_none())
            .or_else(|| targets.iter().position(|t| ctx.state(t) == State::Unknown));
        if let Some(ui) = unknown {
            let u = targets[ui];
            let others: Vec<&str> = targets.iter().copied().filter(|t| *t != u).collect();
            let mut reason = format!("{prefix}{u} assumed until probes conclude");
            if ctx.drain(u).is_some() {
                reason.push_str(&format!(" ({})", ctx.describe_drain(u)));
            }
            if !others.is_empty() {
                reason.push_str(&format!("; others: {}", ctx.list_states(others)));
            }
            return BaseResult::plain(u, reason);
        }
        let first = targets[0];
        BaseResult::plain(
            first,
            format!(
                "{prefix}fail-static: no target up ({}); no previous answer, using {first}",
                ctx.list_states(targets.iter().copied())
            ),
        )
    }
}

/// Rules 2-5 from the current base `targets[ci]`.
#[allow(clippy::too_many_arguments)]
fn compute_base_from<'a>(
    ctx: &Ctx<'_>,
    inputs: &Inputs<'a>,
    policy: &EndpointPolicy,
    view: &str,
    targets: &[&str],
    ci: usize,
    best: Option<usize>,
    first_up_drained: Option<usize>,
) -> BaseResult<'a> {
    let c = targets[ci];

    // Rule 5: a drained current target is left at once for any usable one.
    if let (Some(_), Some(bi)) = (ctx.drain(c), best) {
        let mut r = BaseResult::plain(
            targets[bi],
            format!(
                "{}; {} is the highest-priority up target",
                ctx.describe_drain(c),
                targets[bi]
            ),
        );
        r.wakeup = hold_wakeup(ctx, policy, targets, bi);
        return r.because(Cause::Drain);
    }

    match ctx.state(c) {
        State::Unknown => {
            let mut reason = format!("{c} health unknown (probes not concluded); keeping {c}");
            if ctx.drain(c).is_some() {
                reason = format!(
                    "{reason} ({}; no undrained target up)",
                    ctx.describe_drain(c)
                );
            }
            BaseResult::plain(c, reason)
        }
        State::Down => {
            if let Some(bi) = best {
                // Name the replicas skipped for lag on the way, too.
                let mut why = vec![ctx.describe(c)];
                why.extend(
                    targets[..bi]
                        .iter()
                        .filter(|t| **t != c && ctx.lagging(t).is_some())
                        .map(|t| ctx.describe(t)),
                );
                let mut r = BaseResult::plain(
                    targets[bi],
                    format!(
                        "{}; {} is the highest-priority up target",
                        why.join(", "),
                        targets[bi]
                    ),
                );
                r.wakeup = hold_wakeup(ctx, policy, targets, bi);
                return r;
            }
            if let Some(di) = first_up_drained {
                let d = targets[di];
                return BaseResult::plain(
                    d,
                    format!(
                        "{}; no undrained target up; using {d}, the highest-priority up target, although drained ({})",
                        ctx.describe(c),
                        ctx.describe_drain(d)
                    ),
                );
            }
            BaseResult::plain(
                c,
                format!(
                    "fail-static: no target up ({}); keeping {c}",
                    ctx.list_states(targets.iter().copied())
                ),
            )
        }
        State::Up if ctx.drain(c).is_some() => {
            // Drained but nothing usable exists (handled above otherwise).
            let others: Vec<&str> = targets.iter().copied().filter(|t| *t != c).collect();
            let others = if others.is_empty() {
                "no other target".to_string()
            } else {
                ctx.list_states(others)
            };
            BaseResult::plain(
                c,
                format!(
                    "no undrained target up ({others}); keeping {c}, up although drained ({})",
                    ctx.describe_drain(c)
                ),
            )
        }
        State::Up => {
            let bi = best.unwrap_or(ci); // c is usable, so best is Some
            if bi == ci {
                return BaseResult::plain(c, ctx.best_reason(targets, ci));
            }
            // A higher-priority target is back up: failback.
            match policy.failback {
                Failback::Auto => auto_failback(ctx, policy, targets, ci),
                Failback::Manual => manual_failback(ctx, inputs, policy, view, targets, ci, bi),
            }
        }
    }
}
