//! Which targets may be used: the per-run context ([`Ctx`]) of health and
//! drains, and the descriptions of target states used in reasons.
//!
//! [`Ctx::usable`] is the single place that says whether a target may be
//! chosen by the automatic rules. Eligibility has three inputs: health, drains, and
//! replication (a target whose canary digest has been behind the endpoint's reference
//! for longer than `replication_max_lag` counts as not up, see [`replication_lag`]).

use super::fmt::format_duration;
use super::{Health, Override, ReplicationPolicy, SeenDigest, UnixMillis};
use std::collections::BTreeMap;

/// What the rules may look at about instances in one run, for one endpoint.
pub(super) struct Ctx<'a> {
    /// instance id -> health; a missing instance is `Health::Unknown`.
    pub(super) health: &'a BTreeMap<String, Health>,
    /// Instance -> the drain in effect.
    pub(super) drains: &'a BTreeMap<&'a str, &'a Override>,
    /// The run's current time.
    pub(super) now: UnixMillis,
    /// Canary digests last seen per instance.
    pub(super) digests: &'a BTreeMap<String, SeenDigest>,
    /// The endpoint's replication rule, if any.
    pub(super) replication: Option<&'a ReplicationPolicy>,
}

/// Health as the rules see it: a lagging replica is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Unknown,
    Up,
    Down,
}

/// How far `target`'s canary digest is behind `reference`'s: `None` when they are equal
/// or either is unknown, else since when they differ (the later of the two first-seen
/// times) and for how long at `now`.
pub fn replication_lag(
    reference: Option<&SeenDigest>,
    target: Option<&SeenDigest>,
    now: UnixMillis,
) -> Option<(UnixMillis, u64)> {
    let (r, t) = (reference?, target?);
    if r.digest == t.digest {
        return None;
    }
    let since = r.first_seen.max(t.first_seen);
    Some((since, now.saturating_sub(since)))
}

static UNKNOWN: Health = Health::Unknown;

impl Ctx<'_> {
    pub(super) fn health(&self, inst: &str) -> &Health {
        self.health.get(inst).unwrap_or(&UNKNOWN)
    }

    /// Since when and for how long `inst` has been behind the endpoint's reference, with
    /// the endpoint's limit; `None` without a rule, for the reference itself, or in sync.
    fn behind(&self, inst: &str) -> Option<(UnixMillis, u64, u64)> {
        let rule = self.replication?;
        if rule.reference == inst {
            return None;
        }
        let (since, lag) = replication_lag(
            self.digests.get(&rule.reference),
            self.digests.get(inst),
            self.now,
        )?;
        Some((since, lag, rule.max_lag_ms))
    }

    /// How long `inst` has been behind the reference, when that is over the endpoint's
    /// limit (it is then not eligible).
    pub(super) fn lagging(&self, inst: &str) -> Option<u64> {
        let (_, lag, max) = self.behind(inst)?;
        (lag > max).then_some(lag)
    }

    /// When `inst` will pass the lag limit, if it is behind but not yet over it.
    pub(super) fn lag_deadline(&self, inst: &str) -> Option<UnixMillis> {
        let (since, lag, max) = self.behind(inst)?;
        (lag <= max).then(|| since.saturating_add(max) + 1)
    }

    /// Health as the rules see it: down when lagging.
    pub(super) fn state(&self, inst: &str) -> State {
        if self.lagging(inst).is_some() {
            return State::Down;
        }
        match self.health(inst) {
            Health::Unknown => State::Unknown,
            Health::Up { .. } => State::Up,
            Health::Down { .. } => State::Down,
        }
    }

    /// Up (and not lagging) since when.
    pub(super) fn up_since(&self, inst: &str) -> Option<UnixMillis> {
        match self.health(inst) {
            Health::Up { since } if self.lagging(inst).is_none() => Some(*since),
            _ => None,
        }
    }

    /// "zhangjiakou skipped: canary digest behind hangzhou's for 14m (max 10m)".
    fn describe_lag(&self, inst: &str) -> Option<String> {
        let lag = self.lagging(inst)?;
        let rule = self.replication?;
        Some(format!(
            "{inst} skipped: canary digest behind {}'s for {} (max {})",
            rule.reference,
            format_duration(round_lag(lag)),
            format_duration(rule.max_lag_ms)
        ))
    }

    pub(super) fn is_up(&self, inst: &str) -> bool {
        self.up_since(inst).is_some()
    }

    pub(super) fn drain(&self, inst: &str) -> Option<&Override> {
        self.drains.get(inst).copied()
    }

    /// Whether `inst` may be chosen by the automatic rules: up and not
    /// drained. Every rule that asks "may this target be used" asks here.
    pub(super) fn usable(&self, inst: &str) -> bool {
        self.is_up(inst) && self.drain(inst).is_none()
    }

    /// "hangzhou down (timeout)", "hangzhou up", "hangzhou health unknown",
    /// "zhangjiakou skipped: canary digest behind hangzhou's for 14m (max 10m)".
    pub(super) fn describe(&self, inst: &str) -> String {
        if let Some(lag) = self.describe_lag(inst) {
            return lag;
        }
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
            _ if self.lagging(inst).is_some() => self.describe_lag(inst).unwrap_or_default(),
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

    pub(super) fn list_states<'t>(&self, insts: impl IntoIterator<Item = &'t str>) -> String {
        insts
            .into_iter()
            .map(|i| self.short_state(i))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(super) fn describe_drain(&self, inst: &str) -> String {
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
    pub(super) fn best_reason(&self, targets: &[&str], chosen: usize) -> String {
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

/// Lags are shown to the second (minutes and hours when long): the reason is read by
/// people, and a decision's reason should not change with every millisecond.
fn round_lag(ms: u64) -> u64 {
    if ms >= 60_000 {
        ms / 60_000 * 60_000
    } else {
        ms / 1000 * 1000
    }
}
