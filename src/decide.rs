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

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Milliseconds since the Unix epoch. Time is passed in, never read.
pub type UnixMillis = u64;

/// Actor recorded on events caused by the automatic rules.
pub const ENGINE_ACTOR: &str = "regdns";

/// How the engine returns to a higher-priority target once it is back up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Failback {
    /// Switch back once the target has been up for `failback_hold_ms`.
    Auto,
    /// Stay; report `failback_pending` until an operator confirms.
    Manual,
}

/// Policy of one endpoint (a DNS name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointPolicy {
    /// Endpoint name (the DNS name served).
    pub name: String,
    /// How to return to a higher-priority target once it is back up.
    pub failback: Failback,
    /// With [`Failback::Auto`], how long (milliseconds) a higher-priority
    /// target must have been up before switching back to it.
    pub failback_hold_ms: u64,
    /// view -> instance ids in priority order (first = preferred).
    pub views: BTreeMap<String, Vec<String>>,
}

/// Health of an instance as concluded by the prober.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Health {
    /// Probes have not concluded yet (e.g. at startup). Also assumed for an
    /// instance missing from the health map.
    #[default]
    Unknown,
    /// The instance is healthy.
    Up {
        /// When it came up, in milliseconds since the Unix epoch.
        since: UnixMillis,
    },
    /// The instance is unhealthy.
    Down {
        /// When it went down, in milliseconds since the Unix epoch.
        since: UnixMillis,
        /// Why it is down (e.g. the failing probe's summary); may be empty.
        reason: String,
    },
}

/// What an operator override does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverrideKind {
    /// Serve `instance` for `endpoint` (in `view`, or every view when `None`).
    Force {
        /// Name of the endpoint the force applies to.
        endpoint: String,
        /// View the force applies to; `None` means every view.
        view: Option<String>,
        /// Instance id to serve.
        instance: String,
    },
    /// Avoid `instance` everywhere unless nothing else is up.
    Drain {
        /// Instance id to drain.
        instance: String,
    },
}

/// An operator override (force or drain) of the automatic rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// Unique id of the override.
    pub id: String,
    /// What the override does.
    pub kind: OverrideKind,
    /// Operator-supplied justification.
    pub reason: String,
    /// Who created the override.
    pub actor: String,
    /// Creation time, in milliseconds since the Unix epoch; the newest
    /// override wins when several apply.
    pub created: UnixMillis,
    /// The override is in effect while `expires > now`.
    pub expires: Option<UnixMillis>,
}

/// Operator confirmation of a pending manual failback. It applies to the
/// failback pending in the run that sees it; callers should drop
/// confirmations once `decide` has run (a confirmation left in the inputs
/// would also confirm later failbacks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailbackConfirmation {
    /// Name of the endpoint whose failback is confirmed.
    pub endpoint: String,
    /// `None` confirms the pending failback of every view of the endpoint.
    pub view: Option<String>,
    /// Who confirmed; recorded as the actor of the resulting event.
    pub actor: String,
    /// Operator-supplied justification.
    pub reason: String,
}

/// The decision for one (endpoint, view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Instance id served now.
    pub active: String,
    /// What the automatic rules give, ignoring force overrides.
    pub base: String,
    /// Human-readable explanation of `active`.
    pub reason: String,
    /// When `active` last changed.
    pub since: UnixMillis,
    /// No target of the view is up (fail-static).
    pub degraded: bool,
    /// Id of the force override in effect, if any.
    pub forced_by: Option<String>,
    /// Manual failback: the higher-priority instance waiting for confirmation.
    pub failback_pending: Option<String>,
    /// Actor of the force override in effect; kept so that the event of a
    /// release can name the actor after the override is gone from the inputs.
    #[serde(default)]
    pub forced_actor: Option<String>,
}

/// Everything `decide` looks at.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Endpoint policies; a duplicated name keeps its first policy.
    pub endpoints: &'a [EndpointPolicy],
    /// instance id -> health; a missing instance is `Health::Unknown`.
    pub health: &'a BTreeMap<String, Health>,
    /// Operator overrides, expired ones included (they are reported back).
    pub overrides: &'a [Override],
    /// (endpoint, view) -> decision of the previous run.
    pub previous: &'a BTreeMap<(String, String), Decision>,
    /// Pending manual failback confirmations.
    pub confirmations: &'a [FailbackConfirmation],
    /// Current time, in milliseconds since the Unix epoch.
    pub now: UnixMillis,
}

/// A change of `active` for one (endpoint, view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When the change happened (the run's `now`), in milliseconds since
    /// the Unix epoch.
    pub time: UnixMillis,
    /// Name of the endpoint.
    pub endpoint: String,
    /// Name of the view.
    pub view: String,
    /// Previously active instance id; `None` on the first decision.
    pub from: Option<String>,
    /// Newly active instance id.
    pub to: String,
    /// Human-readable explanation of the change.
    pub reason: String,
    /// Who caused the change: the override's or confirmation's actor, or
    /// [`ENGINE_ACTOR`] for the automatic rules.
    pub actor: String,
    /// Why, as a value.
    #[serde(default)]
    pub cause: Cause,
}

/// Why the active target of an event changed, as a value (for metrics and scripts; the
/// human explanation is [`Event::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// A health change: the active target went down or a better one came up.
    #[default]
    Health,
    /// A force override took effect.
    Force,
    /// A force override was released or expired.
    Release,
    /// Back to a higher-priority target (after the hold, or confirmed by an operator).
    Failback,
    /// The active instance was drained.
    Drain,
    /// The first decision after start.
    Startup,
}

impl Cause {
    /// Lower-case name (`health`, `force`, `release`, `failback`, `drain`, `startup`).
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Health => "health",
            Cause::Force => "force",
            Cause::Release => "release",
            Cause::Failback => "failback",
            Cause::Drain => "drain",
            Cause::Startup => "startup",
        }
    }
}

/// Result of one `decide` run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Serialized as a list of `{endpoint, view, decision}` entries, because
    /// tuple keys are not representable as keys of e.g. a JSON object.
    #[serde(with = "decisions_as_list")]
    pub decisions: BTreeMap<(String, String), Decision>,
    /// In (endpoint, view) order.
    pub events: Vec<Event>,
    /// Ids of overrides whose expiry is `<= now` (caller removes and
    /// journals them); input order, without duplicates.
    pub expired_overrides: Vec<String>,
    /// Earliest time (> now) at which `decide` must run again even without
    /// new inputs: an auto-failback hold or an override expiry ends.
    pub next_wakeup: Option<UnixMillis>,
}

/// `#[serde(with = "…")]` helper that (de)serializes a decision map keyed by
/// (endpoint, view) as a sequence of entries. Usable for persisting
/// `previous` too.
pub mod decisions_as_list {
    use super::Decision;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct EntryRef<'a> {
        endpoint: &'a str,
        view: &'a str,
        decision: &'a Decision,
    }

    #[derive(Deserialize)]
    struct Entry {
        endpoint: String,
        view: String,
        decision: Decision,
    }

    /// Serializes the map as a sequence of `{endpoint, view, decision}`.
    pub fn serialize<S: Serializer>(
        map: &BTreeMap<(String, String), Decision>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter().map(|((endpoint, view), decision)| EntryRef {
            endpoint,
            view,
            decision,
        }))
    }

    /// Deserializes a sequence of `{endpoint, view, decision}` into the map;
    /// a later duplicate (endpoint, view) entry replaces an earlier one.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<(String, String), Decision>, D::Error> {
        let entries = Vec::<Entry>::deserialize(deserializer)?;
        Ok(entries
            .into_iter()
            .map(|e| ((e.endpoint, e.view), e.decision))
            .collect())
    }
}

/// Formats a duration Go-style: `2m0s`, `1h0m5s`, `1.5s`, `250ms`, `0s`.
pub fn format_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = (ms / 60_000) % 60;
    let secs = (ms / 1000) % 60;
    let frac = ms % 1000;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if frac == 0 {
        out.push_str(&format!("{secs}s"));
    } else {
        let frac = format!("{frac:03}");
        out.push_str(&format!("{secs}.{}s", frac.trim_end_matches('0')));
    }
    out
}

/// Computes the decisions for every (endpoint, view) of `inputs.endpoints`.
pub fn decide(inputs: &Inputs<'_>) -> Outcome {
    let now = inputs.now;
    let mut next_wakeup: Option<UnixMillis> = None;
    let mut wake = |t: UnixMillis| {
        next_wakeup = Some(next_wakeup.map_or(t, |w| w.min(t)));
    };

    // Expired overrides are reported and otherwise ignored; unexpired
    // expiries are wake-up times (also for overrides that match nothing, so
    // the caller gets to journal their expiry on time).
    let mut expired_overrides = Vec::new();
    let mut seen_expired = BTreeSet::new();
    let mut live: Vec<&Override> = Vec::new();
    for o in inputs.overrides {
        match o.expires {
            Some(t) if t <= now => {
                if seen_expired.insert(o.id.as_str()) {
                    expired_overrides.push(o.id.clone());
                }
            }
            Some(t) => {
                wake(t);
                live.push(o);
            }
            None => live.push(o),
        }
    }

    // Instance -> the drain in effect (newest `created`, then greatest id).
    let mut drains: BTreeMap<&str, &Override> = BTreeMap::new();
    for o in &live {
        if let OverrideKind::Drain { instance } = &o.kind {
            let replace = drains
                .get(instance.as_str())
                .is_none_or(|cur| (o.created, &o.id) > (cur.created, &cur.id));
            if replace {
                drains.insert(instance.as_str(), o);
            }
        }
    }

    let ctx = Ctx {
        health: inputs.health,
        drains,
        now,
    };

    // Endpoints in name order; a duplicated name keeps its first policy.
    let mut policies: BTreeMap<&str, &EndpointPolicy> = BTreeMap::new();
    for p in inputs.endpoints {
        policies.entry(p.name.as_str()).or_insert(p);
    }

    let mut decisions = BTreeMap::new();
    let mut events = Vec::new();
    for (name, policy) in policies {
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
            let vr = decide_view(&ctx, inputs, &live, policy, view, &targets, prev);
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
    }
}

struct Ctx<'a> {
    health: &'a BTreeMap<String, Health>,
    drains: BTreeMap<&'a str, &'a Override>,
    now: UnixMillis,
}

static UNKNOWN: Health = Health::Unknown;

impl Ctx<'_> {
    fn health(&self, inst: &str) -> &Health {
        self.health.get(inst).unwrap_or(&UNKNOWN)
    }

    fn up_since(&self, inst: &str) -> Option<UnixMillis> {
        match self.health(inst) {
            Health::Up { since } => Some(*since),
            _ => None,
        }
    }

    fn is_up(&self, inst: &str) -> bool {
        self.up_since(inst).is_some()
    }

    fn drain(&self, inst: &str) -> Option<&Override> {
        self.drains.get(inst).copied()
    }

    fn usable(&self, inst: &str) -> bool {
        self.is_up(inst) && self.drain(inst).is_none()
    }

    /// "hangzhou down (timeout)", "hangzhou up", "hangzhou health unknown".
    fn describe(&self, inst: &str) -> String {
        match self.health(inst) {
            Health::Unknown => format!("{inst} health unknown"),
            Health::Up { since } => format!(
                "{inst} up for {}",
                format_duration(self.now.saturating_sub(*since))
            ),
            Health::Down { reason, .. } if reason.is_empty() => format!("{inst} down"),
            Health::Down { reason, .. } => format!("{inst} down ({reason})"),
        }
    }

    /// "hangzhou down: timeout" style, for lists.
    fn short_state(&self, inst: &str) -> String {
        let mut s = match self.health(inst) {
            Health::Unknown => format!("{inst} unknown"),
            Health::Up { .. } => format!("{inst} up"),
            Health::Down { reason, .. } if reason.is_empty() => format!("{inst} down"),
            Health::Down { reason, .. } => format!("{inst} down: {reason}"),
        };
        if self.drain(inst).is_some() {
            s.push_str(" (drained)");
        }
        s
    }

    fn list_states<'t>(&self, insts: impl IntoIterator<Item = &'t str>) -> String {
        insts
            .into_iter()
            .map(|i| self.short_state(i))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn describe_drain(&self, inst: &str) -> String {
        match self.drain(inst) {
            Some(d) => format!(
                "{inst} drained by {} (override {}: {})",
                d.actor, d.id, d.reason
            ),
            None => format!("{inst} not drained"),
        }
    }

    /// Why `chosen` (the first usable target) is the best: names the
    /// higher-priority targets that were skipped.
    fn best_reason(&self, targets: &[&str], chosen: usize) -> String {
        let skipped: Vec<String> = targets[..chosen]
            .iter()
            .map(|t| {
                if self.is_up(t) {
                    self.describe_drain(t)
                } else {
                    self.describe(t)
                }
            })
            .collect();
        let b = targets[chosen];
        if skipped.is_empty() {
            format!("{b} is the highest-priority target and is up")
        } else {
            format!(
                "{}; {b} is the highest-priority up target",
                skipped.join(", ")
            )
        }
    }
}

struct BaseResult<'a> {
    base: String,
    reason: String,
    pending: Option<String>,
    confirmed_by: Option<&'a FailbackConfirmation>,
    wakeup: Option<UnixMillis>,
    /// Why the base is what it is, should it differ from the previous one.
    cause: Cause,
}

impl BaseResult<'_> {
    fn plain(base: &str, reason: String) -> Self {
        BaseResult {
            base: base.to_string(),
            reason,
            pending: None,
            confirmed_by: None,
            wakeup: None,
            cause: Cause::Health,
        }
    }

    fn because(mut self, cause: Cause) -> Self {
        self.cause = cause;
        self
    }
}

/// Rules 2-5: the base target, from the previous base.
fn compute_base<'a>(
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
            .position(|t| matches!(ctx.health(t), Health::Unknown) && ctx.drain(t).is_none())
            .or_else(|| {
                targets
                    .iter()
                    .position(|t| matches!(ctx.health(t), Health::Unknown))
            });
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

    match ctx.health(c) {
        Health::Unknown => {
            let mut reason = format!("{c} health unknown (probes not concluded); keeping {c}");
            if ctx.drain(c).is_some() {
                reason = format!(
                    "{reason} ({}; no undrained target up)",
                    ctx.describe_drain(c)
                );
            }
            BaseResult::plain(c, reason)
        }
        Health::Down { .. } => {
            if let Some(bi) = best {
                let mut r = BaseResult::plain(
                    targets[bi],
                    format!(
                        "{}; {} is the highest-priority up target",
                        ctx.describe(c),
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
        Health::Up { .. } if ctx.drain(c).is_some() => {
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
        Health::Up { .. } => {
            let bi = best.expect("c is usable, so some target is");
            if bi == ci {
                return BaseResult::plain(c, ctx.best_reason(targets, ci));
            }
            // A higher-priority target is back up: failback.
            match policy.failback {
                Failback::Auto => auto_failback(ctx, policy, targets, ci),
                Failback::Manual => {
                    let b = targets[bi];
                    let confirmation = inputs.confirmations.iter().find(|cf| {
                        cf.endpoint == policy.name && cf.view.as_deref().is_none_or(|v| v == view)
                    });
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
            }
        }
    }
}

/// The time at which a target above `chosen` (usable, still in its hold)
/// completes its auto-failback hold.
fn hold_wakeup(
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
        .filter(|t| ctx.drain(t).is_none())
        .filter_map(|t| ctx.up_since(t))
        .map(|since| since.saturating_add(policy.failback_hold_ms))
        .filter(|t| *t > ctx.now)
        .min()
}

fn auto_failback<'a>(
    ctx: &Ctx<'_>,
    policy: &EndpointPolicy,
    targets: &[&str],
    ci: usize,
) -> BaseResult<'a> {
    let hold = policy.failback_hold_ms;
    let c = targets[ci];
    // Highest-priority usable target above the current one whose hold is over.
    let ready = targets[..ci].iter().position(|t| {
        ctx.drain(t).is_none()
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

struct ViewResult {
    decision: Decision,
    event: Option<Event>,
    wakeup: Option<UnixMillis>,
}

fn decide_view(
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

    // Rule 1: the applicable force — view-specific beats all-views, then
    // newest `created`, then greatest id. A force naming an instance that is
    // not a target of this view does not apply to it.
    let force = live
        .iter()
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
        .map(|(_, _, _, o, inst)| (o, inst));

    let degraded = !targets.iter().any(|t| ctx.is_up(t));

    let (active, reason, forced_by, forced_actor) = match force {
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
            (
                inst.to_string(),
                reason,
                Some(o.id.clone()),
                Some(o.actor.clone()),
            )
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
            (base.base.clone(), reason, None, None)
        }
    };

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

#[cfg(test)]
mod tests {
    use super::*;

    const EP: &str = "cross-region.registry.io.";
    const HZ: &str = "hangzhou";
    const ZJK: &str = "zhangjiakou";
    const SH: &str = "shanghai";
    const MIN: u64 = 60_000;

    fn s(x: &str) -> String {
        x.to_string()
    }

    fn policy(failback: Failback, hold: u64, views: &[(&str, &[&str])]) -> EndpointPolicy {
        EndpointPolicy {
            name: s(EP),
            failback,
            failback_hold_ms: hold,
            views: views
                .iter()
                .map(|(v, ts)| (s(v), ts.iter().map(|t| s(t)).collect()))
                .collect(),
        }
    }

    fn up(since: u64) -> Health {
        Health::Up { since }
    }

    fn down(since: u64, why: &str) -> Health {
        Health::Down {
            since,
            reason: s(why),
        }
    }

    fn force(
        id: &str,
        view: Option<&str>,
        inst: &str,
        actor: &str,
        created: u64,
        expires: Option<u64>,
    ) -> Override {
        Override {
            id: s(id),
            kind: OverrideKind::Force {
                endpoint: s(EP),
                view: view.map(s),
                instance: s(inst),
            },
            reason: s("maintenance"),
            actor: s(actor),
            created,
            expires,
        }
    }

    fn drain(id: &str, inst: &str) -> Override {
        Override {
            id: s(id),
            kind: OverrideKind::Drain { instance: s(inst) },
            reason: s("upgrade"),
            actor: s("bob"),
            created: 0,
            expires: None,
        }
    }

    fn prev(active: &str, base: &str) -> Decision {
        Decision {
            active: s(active),
            base: s(base),
            reason: s("previous"),
            since: 1,
            degraded: false,
            forced_by: None,
            failback_pending: None,
            forced_actor: None,
        }
    }

    fn confirm(view: Option<&str>) -> FailbackConfirmation {
        FailbackConfirmation {
            endpoint: s(EP),
            view: view.map(s),
            actor: s("carol"),
            reason: s("primary verified"),
        }
    }

    fn run(
        endpoints: &[EndpointPolicy],
        health: &[(&str, Health)],
        overrides: &[Override],
        previous: &[((&str, &str), Decision)],
        confirmations: &[FailbackConfirmation],
        now: u64,
    ) -> Outcome {
        let health: BTreeMap<String, Health> =
            health.iter().map(|(i, h)| (s(i), h.clone())).collect();
        let previous: BTreeMap<(String, String), Decision> = previous
            .iter()
            .map(|((e, v), d)| ((s(e), s(v)), d.clone()))
            .collect();
        decide(&Inputs {
            endpoints,
            health: &health,
            overrides,
            previous: &previous,
            confirmations,
            now,
        })
    }

    /// Every event carries its cause as a value, whatever the reason text says.
    #[test]
    fn events_carry_their_cause() {
        let p = [policy(Failback::Auto, MIN, &[("default", &[HZ, ZJK])])];
        let cause = |out: &Outcome| out.events.first().map(|e| e.cause);
        let key = (EP, "default");
        // Startup.
        let out = run(&p, &[(HZ, up(0)), (ZJK, up(0))], &[], &[], &[], 10);
        assert_eq!(cause(&out), Some(Cause::Startup));
        // Health: the active target goes down.
        let out = run(
            &p,
            &[(HZ, down(5, "refused")), (ZJK, up(0))],
            &[],
            &[(key, prev(HZ, HZ))],
            &[],
            10,
        );
        assert_eq!(cause(&out), Some(Cause::Health));
        // Failback after the hold.
        let out = run(
            &p,
            &[(HZ, up(0)), (ZJK, up(0))],
            &[],
            &[(key, prev(ZJK, ZJK))],
            &[],
            2 * MIN,
        );
        assert_eq!(cause(&out), Some(Cause::Failback));
        // Drain of the active target.
        let out = run(
            &p,
            &[(HZ, up(0)), (ZJK, up(0))],
            &[drain("d1", HZ)],
            &[(key, prev(HZ, HZ))],
            &[],
            10,
        );
        assert_eq!(cause(&out), Some(Cause::Drain));
        // Force, then its release.
        let f = force("f1", None, ZJK, "alice", 1, None);
        let out = run(
            &p,
            &[(HZ, up(0)), (ZJK, up(0))],
            &[f],
            &[(key, prev(HZ, HZ))],
            &[],
            10,
        );
        assert_eq!(cause(&out), Some(Cause::Force));
        let forced = out.decisions[&(s(EP), s("default"))].clone();
        let out = run(
            &p,
            &[(HZ, up(0)), (ZJK, up(0))],
            &[],
            &[(key, forced)],
            &[],
            20,
        );
        assert_eq!(cause(&out), Some(Cause::Release));
        // Manual failback confirmed by an operator.
        let m = [policy(Failback::Manual, 0, &[("default", &[HZ, ZJK])])];
        let out = run(
            &m,
            &[(HZ, up(0)), (ZJK, up(0))],
            &[],
            &[(key, prev(ZJK, ZJK))],
            &[confirm(None)],
            10,
        );
        assert_eq!(cause(&out), Some(Cause::Failback));
        assert_eq!(out.events[0].actor, "carol");
    }

    /// One row of the single-view table: endpoint EP, view "default",
    /// targets [hangzhou, zhangjiakou, shanghai].
    struct Case {
        name: &'static str,
        failback: Failback,
        hold: u64,
        health: Vec<(&'static str, Health)>,
        overrides: Vec<Override>,
        previous: Option<Decision>,
        confirmations: Vec<FailbackConfirmation>,
        now: u64,
        // expectations
        active: &'static str,
        base: &'static str,
        degraded: bool,
        pending: Option<&'static str>,
        forced_by: Option<&'static str>,
        /// (from, to, actor); None = no event expected.
        event: Option<(Option<&'static str>, &'static str, &'static str)>,
        wakeup: Option<u64>,
        expired: Vec<&'static str>,
        reason: &'static str,
    }

    impl Default for Case {
        fn default() -> Self {
            Case {
                name: "",
                failback: Failback::Auto,
                hold: 2 * MIN,
                health: vec![],
                overrides: vec![],
                previous: None,
                confirmations: vec![],
                now: 10 * MIN,
                active: "",
                base: "",
                degraded: false,
                pending: None,
                forced_by: None,
                event: None,
                wakeup: None,
                expired: vec![],
                reason: "",
            }
        }
    }

    fn table() -> Vec<Case> {
        let now = 10 * MIN;
        vec![
            // --- priority ---
            Case {
                name: "priority: all up picks the first",
                health: vec![(HZ, up(0)), (ZJK, up(0)), (SH, up(0))],
                active: HZ,
                base: HZ,
                event: Some((None, HZ, "regdns")),
                reason: "startup: hangzhou is the highest-priority target and is up",
                ..Case::default()
            },
            Case {
                name: "priority: stays on primary, no event",
                health: vec![(HZ, up(0)), (ZJK, up(0)), (SH, up(0))],
                previous: Some(prev(HZ, HZ)),
                active: HZ,
                base: HZ,
                reason: "hangzhou is the highest-priority target and is up",
                ..Case::default()
            },
            Case {
                name: "priority: skips down primary at startup",
                health: vec![(HZ, down(0, "timeout")), (ZJK, up(0)), (SH, up(0))],
                active: ZJK,
                base: ZJK,
                event: Some((None, ZJK, "regdns")),
                reason: "hangzhou down (timeout); zhangjiakou is the highest-priority up target",
                ..Case::default()
            },
            // --- failover ---
            Case {
                name: "failover: current down switches at once, no hold",
                health: vec![
                    (HZ, down(now - 1000, "connection refused")),
                    (ZJK, up(now - 1000)),
                    (SH, up(0)),
                ],
                previous: Some(prev(HZ, HZ)),
                active: ZJK,
                base: ZJK,
                event: Some((Some(HZ), ZJK, "regdns")),
                reason: "hangzhou down (connection refused); zhangjiakou is the highest-priority up target",
                ..Case::default()
            },
            Case {
                name: "failover: skips down secondary",
                health: vec![(HZ, down(0, "timeout")), (ZJK, down(0, "503")), (SH, up(0))],
                previous: Some(prev(HZ, HZ)),
                active: SH,
                base: SH,
                event: Some((Some(HZ), SH, "regdns")),
                ..Case::default()
            },
            // --- auto failback ---
            Case {
                name: "auto failback: before hold stays, wakeup at since+hold",
                health: vec![(HZ, up(now - 30_000)), (ZJK, up(0)), (SH, up(0))],
                previous: Some(prev(ZJK, ZJK)),
                active: ZJK,
                base: ZJK,
                wakeup: Some(now - 30_000 + 2 * MIN),
                reason: "zhangjiakou is up; failback to hangzhou held: up for 30s of 2m0s hold, failback in 1m30s",
                ..Case::default()
            },
            Case {
                name: "auto failback: exactly at hold switches",
                health: vec![(HZ, up(now - 2 * MIN)), (ZJK, up(0)), (SH, up(0))],
                previous: Some(prev(ZJK, ZJK)),
                active: HZ,
                base: HZ,
                event: Some((Some(ZJK), HZ, "regdns")),
                reason: "failback to hangzhou: up for 2m0s (hold 2m0s)",
                ..Case::default()
            },
            Case {
                name: "auto failback: to the best ready target, wakeup for the one still held",
                health: vec![
                    (HZ, up(now - 10_000)),
                    (ZJK, up(now - 5 * MIN)),
                    (SH, up(0)),
                ],
                previous: Some(prev(SH, SH)),
                active: ZJK,
                base: ZJK,
                event: Some((Some(SH), ZJK, "regdns")),
                wakeup: Some(now - 10_000 + 2 * MIN),
                reason: "failback to zhangjiakou: up for 5m0s (hold 2m0s)",
                ..Case::default()
            },
            Case {
                name: "auto failback: hold 0 switches immediately",
                hold: 0,
                health: vec![(HZ, up(now)), (ZJK, up(0))],
                previous: Some(prev(ZJK, ZJK)),
                active: HZ,
                base: HZ,
                event: Some((Some(ZJK), HZ, "regdns")),
                reason: "failback to hangzhou: up for 0s (hold 0s)",
                ..Case::default()
            },
            // --- manual failback ---
            Case {
                name: "manual failback: pending without confirmation",
                failback: Failback::Manual,
                health: vec![(HZ, up(now - 10 * MIN)), (ZJK, up(0))],
                previous: Some(prev(ZJK, ZJK)),
                active: ZJK,
                base: ZJK,
                pending: Some(HZ),
                reason: "waiting for operator confirmation to return to hangzhou",
                ..Case::default()
            },
            Case {
                name: "manual failback: confirmation switches with the operator as actor",
                failback: Failback::Manual,
                health: vec![(HZ, up(now - 10 * MIN)), (ZJK, up(0))],
                previous: Some(Decision {
                    failback_pending: Some(s(HZ)),
                    ..prev(ZJK, ZJK)
                }),
                confirmations: vec![confirm(Some("default"))],
                active: HZ,
                base: HZ,
                event: Some((Some(ZJK), HZ, "carol")),
                reason: "failback to hangzhou (hangzhou up for 10m0s) confirmed by carol (primary verified)",
                ..Case::default()
            },
            Case {
                name: "manual failback: confirmation for another view is ignored",
                failback: Failback::Manual,
                health: vec![(HZ, up(0)), (ZJK, up(0))],
                previous: Some(prev(ZJK, ZJK)),
                confirmations: vec![confirm(Some("vpc-bbbbb"))],
                active: ZJK,
                base: ZJK,
                pending: Some(HZ),
                ..Case::default()
            },
            Case {
                name: "manual failback: failover itself is immediate",
                failback: Failback::Manual,
                health: vec![(HZ, down(0, "timeout")), (ZJK, up(0))],
                previous: Some(prev(HZ, HZ)),
                active: ZJK,
                base: ZJK,
                event: Some((Some(HZ), ZJK, "regdns")),
                ..Case::default()
            },
            // --- fail-static ---
            Case {
                name: "fail-static: nothing up keeps current, degraded",
                health: vec![
                    (HZ, down(0, "timeout")),
                    (ZJK, down(0, "503")),
                    (SH, down(0, "")),
                ],
                previous: Some(prev(ZJK, ZJK)),
                active: ZJK,
                base: ZJK,
                degraded: true,
                reason: "fail-static: no target up (hangzhou down: timeout, zhangjiakou down: 503, shanghai down); keeping zhangjiakou",
                ..Case::default()
            },
            Case {
                name: "fail-static: at startup uses the first target",
                health: vec![
                    (HZ, down(0, "timeout")),
                    (ZJK, down(0, "503")),
                    (SH, down(0, "x")),
                ],
                active: HZ,
                base: HZ,
                degraded: true,
                event: Some((None, HZ, "regdns")),
                reason: "no previous answer, using hangzhou",
                ..Case::default()
            },
            Case {
                name: "fail-static: current down, other unknown: keep current",
                health: vec![(HZ, down(0, "timeout"))],
                previous: Some(prev(HZ, HZ)),
                active: HZ,
                base: HZ,
                degraded: true,
                reason: "fail-static: no target up (hangzhou down: timeout, zhangjiakou unknown, shanghai unknown)",
                ..Case::default()
            },
            // --- drain ---
            Case {
                name: "drain: drained primary is left at once",
                health: vec![(HZ, up(0)), (ZJK, up(now)), (SH, up(0))],
                overrides: vec![drain("d1", HZ)],
                previous: Some(prev(HZ, HZ)),
                active: ZJK,
                base: ZJK,
                event: Some((Some(HZ), ZJK, "regdns")),
                reason: "hangzhou drained by bob (override d1: upgrade); zhangjiakou is the highest-priority up target",
                ..Case::default()
            },
            Case {
                name: "drain: drained instance used when nothing else is up",
                health: vec![(HZ, up(0)), (ZJK, down(0, "503")), (SH, down(0, "timeout"))],
                overrides: vec![drain("d1", HZ)],
                previous: Some(prev(ZJK, ZJK)),
                active: HZ,
                base: HZ,
                event: Some((Some(ZJK), HZ, "regdns")),
                reason: "using hangzhou, the highest-priority up target, although drained",
                ..Case::default()
            },
            Case {
                name: "drain: drained current kept when nothing else is up",
                health: vec![(HZ, up(0)), (ZJK, down(0, "503")), (SH, down(0, "timeout"))],
                overrides: vec![drain("d1", HZ)],
                previous: Some(prev(HZ, HZ)),
                active: HZ,
                base: HZ,
                reason: "keeping hangzhou, up although drained",
                ..Case::default()
            },
            Case {
                name: "drain: no failback to a drained higher-priority target",
                health: vec![(HZ, up(0)), (ZJK, up(0))],
                overrides: vec![drain("d1", HZ)],
                previous: Some(prev(ZJK, ZJK)),
                active: ZJK,
                base: ZJK,
                ..Case::default()
            },
            Case {
                name: "drain: expired drain no longer applies",
                health: vec![(HZ, up(0)), (ZJK, up(0))],
                overrides: vec![Override {
                    expires: Some(now),
                    ..drain("d1", HZ)
                }],
                previous: Some(prev(HZ, HZ)),
                active: HZ,
                base: HZ,
                expired: vec!["d1"],
                ..Case::default()
            },
            // --- force ---
            Case {
                name: "force: forced to a down instance, base keeps evolving",
                health: vec![(HZ, up(0)), (ZJK, down(0, "timeout"))],
                overrides: vec![force("f1", None, ZJK, "ops", 5, Some(now + MIN))],
                previous: Some(prev(HZ, HZ)),
                active: ZJK,
                base: HZ,
                forced_by: Some("f1"),
                event: Some((Some(HZ), ZJK, "ops")),
                wakeup: Some(now + MIN),
                reason: "forced by ops (override f1: maintenance); note: zhangjiakou is down (timeout); without the force: hangzhou",
                ..Case::default()
            },
            Case {
                name: "force: expiry returns to base, reported as expired",
                health: vec![(HZ, up(0)), (ZJK, up(0))],
                overrides: vec![force("f1", None, ZJK, "ops", 5, Some(now))],
                previous: Some(Decision {
                    forced_by: Some(s("f1")),
                    forced_actor: Some(s("ops")),
                    ..prev(ZJK, HZ)
                }),
                active: HZ,
                base: HZ,
                event: Some((Some(ZJK), HZ, "ops")),
                expired: vec!["f1"],
                reason: "force f1 expired; back to hangzhou",
                ..Case::default()
            },
            Case {
                name: "force: release to primary base (manual) arms no pending failback",
                failback: Failback::Manual,
                health: vec![(HZ, up(0)), (ZJK, up(0))],
                previous: Some(Decision {
                    forced_by: Some(s("f1")),
                    forced_actor: Some(s("ops")),
                    ..prev(ZJK, HZ)
                }),
                active: HZ,
                base: HZ,
                pending: None,
                event: Some((Some(ZJK), HZ, "ops")),
                reason: "force f1 released; back to hangzhou",
                ..Case::default()
            },
            Case {
                name: "force: forcing to primary while base on secondary, manual",
                failback: Failback::Manual,
                health: vec![(HZ, up(0)), (ZJK, up(0))],
                overrides: vec![force("f1", None, HZ, "ops", 5, None)],
                previous: Some(prev(ZJK, ZJK)),
                active: HZ,
                base: ZJK,
                forced_by: Some("f1"),
                pending: Some(HZ),
                event: Some((Some(ZJK), HZ, "ops")),
                ..Case::default()
            },
            Case {
                name: "force: naming a non-target instance does not apply",
                health: vec![(HZ, up(0))],
                overrides: vec![force("f1", None, "beijing", "ops", 5, None)],
                previous: Some(prev(HZ, HZ)),
                active: HZ,
                base: HZ,
                ..Case::default()
            },
            Case {
                name: "force: newest of equals wins",
                health: vec![(HZ, up(0)), (ZJK, up(0)), (SH, up(0))],
                overrides: vec![
                    force("f-new", None, SH, "dave", 20, None),
                    force("f-old", None, ZJK, "ops", 10, None),
                ],
                previous: Some(prev(HZ, HZ)),
                active: SH,
                base: HZ,
                forced_by: Some("f-new"),
                event: Some((Some(HZ), SH, "dave")),
                ..Case::default()
            },
            // --- unknown health ---
            Case {
                name: "unknown: startup assumes the first target",
                health: vec![],
                active: HZ,
                base: HZ,
                degraded: true,
                event: Some((None, HZ, "regdns")),
                reason: "startup: hangzhou assumed until probes conclude",
                ..Case::default()
            },
            Case {
                name: "unknown: never chosen as new target over an up one",
                health: vec![(ZJK, up(0))],
                active: ZJK,
                base: ZJK,
                event: Some((None, ZJK, "regdns")),
                reason: "startup: hangzhou health unknown; zhangjiakou is the highest-priority up target",
                ..Case::default()
            },
            Case {
                name: "unknown: startup skips a known-down target",
                health: vec![(HZ, down(0, "timeout"))],
                active: ZJK,
                base: ZJK,
                degraded: true,
                event: Some((None, ZJK, "regdns")),
                reason: "startup: zhangjiakou assumed until probes conclude",
                ..Case::default()
            },
            Case {
                name: "unknown: previous target kept while unknown even if others are up",
                health: vec![(ZJK, up(0)), (HZ, up(0))],
                previous: Some(prev(SH, SH)),
                active: SH,
                base: SH,
                reason: "shanghai health unknown (probes not concluded); keeping shanghai",
                ..Case::default()
            },
            Case {
                name: "previous base no longer a target is recomputed",
                health: vec![(HZ, up(0))],
                previous: Some(prev("beijing", "beijing")),
                active: HZ,
                base: HZ,
                event: Some((Some("beijing"), HZ, "regdns")),
                reason: "beijing is no longer a target of this view",
                ..Case::default()
            },
        ]
    }

    #[test]
    fn rules_table() {
        let mut failures = Vec::new();
        for c in table() {
            let p = policy(c.failback, c.hold, &[("default", &[HZ, ZJK, SH])]);
            let previous: Vec<((&str, &str), Decision)> = c
                .previous
                .iter()
                .map(|d| ((EP, "default"), d.clone()))
                .collect();
            let out = run(
                &[p],
                &c.health,
                &c.overrides,
                &previous,
                &c.confirmations,
                c.now,
            );
            let d = &out.decisions[&(s(EP), s("default"))];
            let mut errs = Vec::new();
            if d.active != c.active {
                errs.push(format!("active {} != {}", d.active, c.active));
            }
            if d.base != c.base {
                errs.push(format!("base {} != {}", d.base, c.base));
            }
            if d.degraded != c.degraded {
                errs.push(format!("degraded {} != {}", d.degraded, c.degraded));
            }
            if d.failback_pending.as_deref() != c.pending {
                errs.push(format!(
                    "pending {:?} != {:?}",
                    d.failback_pending, c.pending
                ));
            }
            if d.forced_by.as_deref() != c.forced_by {
                errs.push(format!("forced_by {:?} != {:?}", d.forced_by, c.forced_by));
            }
            let ev: Vec<(Option<&str>, &str, &str)> = out
                .events
                .iter()
                .map(|e| (e.from.as_deref(), e.to.as_str(), e.actor.as_str()))
                .collect();
            let want_ev: Vec<_> = c.event.into_iter().collect();
            if ev != want_ev {
                errs.push(format!("events {ev:?} != {want_ev:?}"));
            }
            if out.next_wakeup != c.wakeup {
                errs.push(format!("wakeup {:?} != {:?}", out.next_wakeup, c.wakeup));
            }
            if out.expired_overrides != c.expired {
                errs.push(format!(
                    "expired {:?} != {:?}",
                    out.expired_overrides, c.expired
                ));
            }
            if !d.reason.contains(c.reason) {
                errs.push(format!("reason {:?} lacks {:?}", d.reason, c.reason));
            }
            for e in &out.events {
                if e.reason != d.reason || e.time != c.now {
                    errs.push(format!("event {e:?} disagrees with decision"));
                }
            }
            let want_since = match &c.previous {
                Some(p) if p.active == d.active => p.since,
                _ => c.now,
            };
            if d.since != want_since {
                errs.push(format!("since {} != {want_since}", d.since));
            }
            if !errs.is_empty() {
                failures.push(format!("{}: {}", c.name, errs.join("; ")));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn force_view_specific_beats_all_views() {
        let p = policy(
            Failback::Auto,
            0,
            &[("default", &[HZ, ZJK, SH]), ("vpc-bbbbb", &[HZ, ZJK, SH])],
        );
        let health = [(HZ, up(0)), (ZJK, up(0)), (SH, up(0))];
        // The all-views force is newer, the view-specific one still wins.
        let overrides = [
            force("all", None, ZJK, "ops", 20, None),
            force("vpc", Some("vpc-bbbbb"), SH, "erin", 10, None),
        ];
        let out = run(&[p], &health, &overrides, &[], &[], 100);
        let dflt = &out.decisions[&(s(EP), s("default"))];
        let vpc = &out.decisions[&(s(EP), s("vpc-bbbbb"))];
        assert_eq!(
            (dflt.active.as_str(), dflt.forced_by.as_deref()),
            (ZJK, Some("all"))
        );
        assert_eq!(
            (vpc.active.as_str(), vpc.forced_by.as_deref()),
            (SH, Some("vpc"))
        );
        assert_eq!(dflt.base, HZ);
        assert_eq!(vpc.base, HZ);
        let actors: Vec<_> = out
            .events
            .iter()
            .map(|e| (e.view.as_str(), e.to.as_str(), e.actor.as_str()))
            .collect();
        assert_eq!(
            actors,
            vec![("default", ZJK, "ops"), ("vpc-bbbbb", SH, "erin")]
        );
    }

    #[test]
    fn base_evolves_under_force_and_release_returns_to_it() {
        let p = policy(Failback::Auto, 2 * MIN, &[("default", &[HZ, ZJK])]);
        let f = force("f1", None, HZ, "ops", 0, None);
        // Primary fails while forced to it: base fails over, active stays.
        let out = run(
            std::slice::from_ref(&p),
            &[(HZ, down(0, "timeout")), (ZJK, up(0))],
            std::slice::from_ref(&f),
            &[(
                (EP, "default"),
                Decision {
                    forced_by: Some(s("f1")),
                    forced_actor: Some(s("ops")),
                    ..prev(HZ, HZ)
                },
            )],
            &[],
            MIN,
        );
        let d = out.decisions[&(s(EP), s("default"))].clone();
        assert_eq!((d.active.as_str(), d.base.as_str()), (HZ, ZJK));
        assert!(out.events.is_empty());
        assert!(
            d.reason.contains("note: hangzhou is down (timeout)"),
            "{}",
            d.reason
        );
        // Primary back up 1 minute later; hold still running; force released.
        let out = run(
            std::slice::from_ref(&p),
            &[(HZ, up(2 * MIN)), (ZJK, up(0))],
            &[],
            &[((EP, "default"), d)],
            &[],
            3 * MIN,
        );
        let d = &out.decisions[&(s(EP), s("default"))];
        assert_eq!((d.active.as_str(), d.base.as_str()), (ZJK, ZJK));
        assert_eq!(out.next_wakeup, Some(4 * MIN));
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].actor, "ops");
        assert!(
            out.events[0]
                .reason
                .starts_with("force f1 released; back to zhangjiakou")
        );
    }

    #[test]
    fn removed_views_and_endpoints_are_dropped_without_events() {
        let p = policy(Failback::Auto, 0, &[("default", &[HZ])]);
        let out = run(
            &[p],
            &[(HZ, up(0))],
            &[],
            &[
                ((EP, "default"), prev(HZ, HZ)),
                ((EP, "gone-view"), prev(HZ, HZ)),
                (("gone.endpoint.", "default"), prev(HZ, HZ)),
            ],
            &[],
            5,
        );
        assert_eq!(out.decisions.len(), 1);
        assert!(out.events.is_empty());
    }

    #[test]
    fn override_expiry_drives_next_wakeup() {
        let p = policy(Failback::Auto, 0, &[("default", &[HZ, ZJK])]);
        let overrides = [
            force("f1", None, ZJK, "ops", 0, Some(500)),
            drain("d1", SH),
            Override {
                expires: Some(300),
                ..drain("d2", SH)
            },
            Override {
                expires: Some(50),
                ..drain("old", SH)
            },
        ];
        let out = run(
            &[p],
            &[(HZ, up(0)), (ZJK, up(0))],
            &overrides,
            &[],
            &[],
            100,
        );
        assert_eq!(out.next_wakeup, Some(300));
        assert_eq!(out.expired_overrides, vec![s("old")]);
    }

    #[test]
    fn manual_confirmation_for_all_views() {
        let p = policy(
            Failback::Manual,
            0,
            &[("default", &[HZ, ZJK]), ("vpc-bbbbb", &[HZ, ZJK])],
        );
        let previous = [
            ((EP, "default"), prev(ZJK, ZJK)),
            ((EP, "vpc-bbbbb"), prev(ZJK, ZJK)),
        ];
        let health = [(HZ, up(0)), (ZJK, up(0))];
        let out = run(std::slice::from_ref(&p), &health, &[], &previous, &[], 10);
        assert!(out.events.is_empty());
        assert!(
            out.decisions
                .values()
                .all(|d| d.failback_pending.as_deref() == Some(HZ))
        );
        let out = run(&[p], &health, &[], &previous, &[confirm(None)], 10);
        assert_eq!(out.events.len(), 2);
        assert!(out.events.iter().all(|e| e.actor == "carol" && e.to == HZ));
        assert!(out.decisions.values().all(|d| d.failback_pending.is_none()));
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(250), "250ms");
        assert_eq!(format_duration(1500), "1.5s");
        assert_eq!(format_duration(120_000), "2m0s");
        assert_eq!(format_duration(3_605_000), "1h0m5s");
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        const INSTANCES: [&str; 4] = ["i0", "i1", "i2", "i3"];
        const VIEWS: [&str; 3] = ["default", "v1", "v2"];
        const NOW: u64 = 100_000;

        #[derive(Debug, Clone)]
        struct World {
            endpoints: Vec<EndpointPolicy>,
            health: BTreeMap<String, Health>,
            overrides: Vec<Override>,
            previous: BTreeMap<(String, String), Decision>,
            confirmations: Vec<FailbackConfirmation>,
        }

        impl World {
            fn inputs(&self) -> Inputs<'_> {
                Inputs {
                    endpoints: &self.endpoints,
                    health: &self.health,
                    overrides: &self.overrides,
                    previous: &self.previous,
                    confirmations: &self.confirmations,
                    now: NOW,
                }
            }
        }

        fn ep_name(i: usize) -> String {
            format!("e{i}.registry.io.")
        }

        fn targets() -> impl Strategy<Value = Vec<String>> {
            // A random non-empty ordered subset of the instances.
            Just(INSTANCES.to_vec())
                .prop_shuffle()
                .prop_flat_map(|v| (Just(v), 1..=4usize))
                .prop_map(|(v, n)| v[..n].iter().map(|s| s.to_string()).collect())
        }

        fn policy(i: usize) -> impl Strategy<Value = EndpointPolicy> {
            (
                prop_oneof![Just(Failback::Auto), Just(Failback::Manual)],
                prop_oneof![Just(0u64), Just(1_000), Just(30_000)],
                proptest::collection::btree_map(
                    proptest::sample::select(VIEWS.to_vec()).prop_map(String::from),
                    targets(),
                    1..=3,
                ),
            )
                .prop_map(move |(failback, hold, views)| EndpointPolicy {
                    name: ep_name(i),
                    failback,
                    failback_hold_ms: hold,
                    views,
                })
        }

        fn time() -> impl Strategy<Value = u64> {
            prop_oneof![Just(0u64), Just(NOW), NOW - 40_000..=NOW]
        }

        fn health() -> impl Strategy<Value = Health> {
            prop_oneof![
                1 => Just(Health::Unknown),
                3 => time().prop_map(|since| Health::Up { since }),
                2 => (time(), "[a-z]{0,3}").prop_map(|(since, reason)| Health::Down { since, reason }),
            ]
        }

        fn instance() -> impl Strategy<Value = String> {
            proptest::sample::select(INSTANCES.to_vec()).prop_map(String::from)
        }

        fn view_opt() -> impl Strategy<Value = Option<String>> {
            proptest::option::of(proptest::sample::select(VIEWS.to_vec()).prop_map(String::from))
        }

        fn an_override() -> impl Strategy<Value = Override> {
            let kind = prop_oneof![
                (0..4usize, view_opt(), instance()).prop_map(|(e, view, instance)| {
                    OverrideKind::Force {
                        endpoint: ep_name(e),
                        view,
                        instance,
                    }
                }),
                instance().prop_map(|instance| OverrideKind::Drain { instance }),
            ];
            (
                0..6u32,
                kind,
                0..NOW,
                proptest::option::of(NOW - 10..NOW + 10),
            )
                .prop_map(|(id, kind, created, expires)| Override {
                    id: format!("o{id}"),
                    kind,
                    reason: "r".into(),
                    actor: format!("actor{id}"),
                    created,
                    expires,
                })
        }

        fn a_decision() -> impl Strategy<Value = Decision> {
            (
                instance(),
                instance(),
                proptest::option::of(0..6u32),
                any::<bool>(),
            )
                .prop_map(|(active, base, forced, same)| Decision {
                    active: if same { base.clone() } else { active },
                    base,
                    reason: "prev".into(),
                    since: 1,
                    degraded: false,
                    forced_by: forced.map(|i| format!("o{i}")),
                    failback_pending: None,
                    forced_actor: forced.map(|i| format!("actor{i}")),
                })
        }

        fn world() -> impl Strategy<Value = World> {
            (1..=3usize)
                .prop_flat_map(|n| {
                    let policies: Vec<_> = (0..n).map(policy).collect();
                    (
                        policies,
                        // Every instance gets a health (possibly Unknown);
                        // a missing entry is covered by the unit tests.
                        proptest::collection::vec(health(), 4).prop_map(|hs| {
                            INSTANCES.iter().map(|i| i.to_string()).zip(hs).collect()
                        }),
                        proptest::collection::vec(an_override(), 0..=4),
                        proptest::collection::btree_map(
                            (
                                // Mostly existing endpoints, some removed ones.
                                (0..=n).prop_map(ep_name),
                                proptest::sample::select(VIEWS.to_vec()).prop_map(String::from),
                            ),
                            a_decision(),
                            0..=9,
                        ),
                        proptest::collection::vec(
                            (0..4usize, view_opt()).prop_map(|(e, view)| FailbackConfirmation {
                                endpoint: ep_name(e),
                                view,
                                actor: "op".into(),
                                reason: "ok".into(),
                            }),
                            0..=2,
                        ),
                    )
                })
                .prop_map(
                    |(endpoints, health, overrides, previous, confirmations)| World {
                        endpoints,
                        health,
                        overrides,
                        previous,
                        confirmations,
                    },
                )
        }

        fn is_up(w: &World, i: &str) -> bool {
            matches!(w.health.get(i), Some(Health::Up { .. }))
        }

        fn is_unknown(w: &World, i: &str) -> bool {
            matches!(w.health.get(i), None | Some(Health::Unknown))
        }

        fn drained(w: &World, i: &str) -> bool {
            w.overrides.iter().any(|o| {
                matches!(&o.kind, OverrideKind::Drain { instance } if instance == i)
                    && o.expires.is_none_or(|t| t > NOW)
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

            /// (a) while an up, undrained target exists, neither a down nor
            /// an unknown target is picked, unless forced (or it is the
            /// previous base kept while its health is unknown).
            #[test]
            fn prefers_up_undrained(w in world()) {
                let out = decide(&w.inputs());
                for ((e, v), d) in &out.decisions {
                    let policy = w.endpoints.iter().find(|p| &p.name == e).unwrap();
                    let targets = &policy.views[v];
                    let any_usable = targets.iter().any(|t| is_up(&w, t) && !drained(&w, t));
                    if d.forced_by.is_none() {
                        prop_assert_eq!(&d.active, &d.base);
                    }
                    if any_usable {
                        let kept_unknown = is_unknown(&w, &d.base)
                            && !drained(&w, &d.base)
                            && w.previous.get(&(e.clone(), v.clone())).is_some_and(|p| p.base == d.base);
                        prop_assert!(
                            (is_up(&w, &d.base) && !drained(&w, &d.base)) || kept_unknown,
                            "base {} for {}/{}: {}", d.base, e, v, d.reason
                        );
                    }
                    prop_assert_eq!(d.degraded, !targets.iter().any(|t| is_up(&w, t)));
                }
            }

            /// (b) determinism.
            #[test]
            fn deterministic(w in world()) {
                prop_assert_eq!(decide(&w.inputs()), decide(&w.inputs()));
            }

            /// (c) idempotence: feeding the decisions back yields no events.
            #[test]
            fn idempotent(w in world()) {
                let first = decide(&w.inputs());
                let mut w2 = w.clone();
                w2.previous = first.decisions.clone();
                let second = decide(&w2.inputs());
                prop_assert!(second.events.is_empty(), "{:?}", second.events);
                prop_assert_eq!(
                    second.decisions.values().map(|d| (&d.active, &d.base)).collect::<Vec<_>>(),
                    first.decisions.values().map(|d| (&d.active, &d.base)).collect::<Vec<_>>()
                );
            }

            /// (d) no flapping: leaving a usable base for a higher-priority
            /// target happens only once its hold is over (auto) or on
            /// confirmation (manual).
            #[test]
            fn no_early_failback(w in world()) {
                let out = decide(&w.inputs());
                for ((e, v), d) in &out.decisions {
                    let Some(p) = w.previous.get(&(e.clone(), v.clone())) else { continue };
                    let policy = w.endpoints.iter().find(|x| &x.name == e).unwrap();
                    let targets = &policy.views[v];
                    let pos = |i: &str| targets.iter().position(|t| t == i);
                    let (Some(old), Some(new)) = (pos(&p.base), pos(&d.base)) else { continue };
                    if new >= old || !is_up(&w, &p.base) || drained(&w, &p.base) {
                        continue;
                    }
                    match policy.failback {
                        Failback::Auto => {
                            let Some(Health::Up { since }) = w.health.get(&d.base) else {
                                return Err(TestCaseError::fail("failback to a target not up"));
                            };
                            prop_assert!(since + policy.failback_hold_ms <= NOW);
                        }
                        Failback::Manual => {
                            prop_assert!(w.confirmations.iter().any(|c| &c.endpoint == e
                                && c.view.as_ref().is_none_or(|cv| cv == v)));
                        }
                    }
                }
            }

            /// (e) active and base are always targets of the view; the
            /// wake-up is in the future.
            #[test]
            fn active_is_a_target(w in world()) {
                let out = decide(&w.inputs());
                for ((e, v), d) in &out.decisions {
                    let policy = w.endpoints.iter().find(|x| &x.name == e).unwrap();
                    prop_assert!(policy.views[v].contains(&d.active));
                    prop_assert!(policy.views[v].contains(&d.base));
                }
                if let Some(t) = out.next_wakeup {
                    prop_assert!(t > NOW);
                }
            }
        }
    }
}
