//! Which targets may be used: the per-run context ([`Ctx`]) of health and
//! drains, and the descriptions of target states used in reasons.
//!
//! [`Ctx::usable`] is the single place that says whether a target may be
//! chosen by the automatic rules.

use super::fmt::format_duration;
use super::{Health, Override, UnixMillis};
use std::collections::BTreeMap;

/// What the rules may look at about instances in one run.
pub(super) struct Ctx<'a> {
    /// instance id -> health; a missing instance is `Health::Unknown`.
    pub(super) health: &'a BTreeMap<String, Health>,
    /// Instance -> the drain in effect.
    pub(super) drains: BTreeMap<&'a str, &'a Override>,
    /// The run's current time.
    pub(super) now: UnixMillis,
}

static UNKNOWN: Health = Health::Unknown;

impl Ctx<'_> {
    pub(super) fn health(&self, inst: &str) -> &Health {
        self.health.get(inst).unwrap_or(&UNKNOWN)
    }

    pub(super) fn up_since(&self, inst: &str) -> Option<UnixMillis> {
        match self.health(inst) {
            Health::Up { since } => Some(*since),
            _ => None,
        }
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

    /// "hangzhou down (timeout)", "hangzhou up", "hangzhou health unknown".
    pub(super) fn describe(&self, inst: &str) -> String {
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
