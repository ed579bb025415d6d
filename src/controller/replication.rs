//! Replication: the canary digests the prober sees, how long an instance's digest has
//! differed from its endpoint's reference (the replication lag), and the journal entries
//! when an instance falls behind `replication_max_lag` or catches up.

use std::collections::{BTreeSet, HashMap};
use std::time::UNIX_EPOCH;

use super::Controller;
use crate::clock::now_ms;
use crate::decide::{self, ENGINE_ACTOR, SeenDigest, UnixMillis};
use crate::probe::DigestSeen;
use crate::state::journal::Entry;

impl Controller {
    /// A canary digest from the prober: recorded with the time it was first seen.
    pub fn on_digest(&mut self, d: DigestSeen) {
        let now = now_ms();
        let at =
            d.at.duration_since(UNIX_EPOCH)
                .map(|x| x.as_millis() as u64)
                .unwrap_or(now);
        let old = self.digests.get(&d.instance).map(|s| s.digest.clone());
        if old.as_deref() == Some(d.digest.as_str()) {
            return;
        }
        tracing::info!(instance = %d.instance, digest = %d.digest, "new canary digest");
        let mut e = Entry::new(
            "canary-digest",
            at,
            format!(
                "{} canary digest is now {}",
                d.instance,
                crate::probe::canary::short_digest(&d.digest)
            ),
            ENGINE_ACTOR,
        );
        e.instance = Some(d.instance.clone());
        e.from = old;
        e.to = Some(d.digest.clone());
        self.journal(vec![e]);
        self.digests.insert(
            d.instance,
            SeenDigest {
                digest: d.digest,
                first_seen: at,
            },
        );
        // The new digest must survive a restart even when no decision changed.
        self.unsaved_digests = true;
        self.decide_and_apply(now, &[], false);
    }

    /// Journal entries for instances that fell behind the replication limit of some
    /// endpoint, or caught up with it, between the current and the `new` lagging sets.
    pub(super) fn replication_entries(
        &self,
        new: &BTreeSet<(String, String)>,
        now: UnixMillis,
    ) -> Vec<Entry> {
        let instances = |set: &BTreeSet<(String, String)>| {
            set.iter()
                .map(|(_, i)| i.clone())
                .collect::<BTreeSet<String>>()
        };
        let (before, after) = (instances(&self.lagging), instances(new));
        let mut out = Vec::new();
        for inst in after.difference(&before) {
            let endpoints: Vec<&str> = new
                .iter()
                .filter(|(_, i)| i == inst)
                .map(|(e, _)| e.as_str())
                .collect();
            let (reference, lag) = self.replication_of(inst, now);
            let mut e = Entry::new(
                "replication-behind",
                now,
                format!(
                    "{inst} canary digest {} behind {}'s {} for {}; not eligible for {}",
                    self.short_digest_of(inst),
                    reference.as_deref().unwrap_or("?"),
                    reference
                        .as_deref()
                        .map(|r| self.short_digest_of(r))
                        .unwrap_or_default(),
                    decide::format_duration(lag.unwrap_or(0) / 1000 * 1000),
                    endpoints.join(", ")
                ),
                ENGINE_ACTOR,
            );
            e.instance = Some(inst.clone());
            tracing::warn!(instance = %inst, reason = %e.reason, "replication behind");
            out.push(e);
        }
        for inst in before.difference(&after) {
            let (reference, _) = self.replication_of(inst, now);
            let mut e = Entry::new(
                "replication-caught-up",
                now,
                format!(
                    "{inst} caught up with {} (canary digest {})",
                    reference.as_deref().unwrap_or("?"),
                    self.short_digest_of(inst)
                ),
                ENGINE_ACTOR,
            );
            e.instance = Some(inst.clone());
            tracing::info!(instance = %inst, reason = %e.reason, "replication caught up");
            out.push(e);
        }
        out
    }

    fn short_digest_of(&self, inst: &str) -> String {
        self.digests
            .get(inst)
            .map(|d| crate::probe::canary::short_digest(&d.digest))
            .unwrap_or_else(|| "unknown".into())
    }

    /// The replication reference of every instance listed by an endpoint with a
    /// replication rule (the first such endpoint's reference).
    pub(super) fn replication_references(&self) -> HashMap<&str, &str> {
        let mut refs = HashMap::new();
        for p in &self.policies {
            if let Some(r) = &p.replication {
                for t in p.views.values().flatten() {
                    refs.entry(t.as_str()).or_insert(r.reference.as_str());
                }
            }
        }
        refs
    }

    /// The replication reference of `inst` and how long its digest has differed from it.
    fn replication_of(&self, inst: &str, now: UnixMillis) -> (Option<String>, Option<u64>) {
        let reference = self
            .replication_references()
            .get(inst)
            .map(|r| r.to_string());
        let lag = reference
            .as_deref()
            .and_then(|r| self.lag_behind(inst, r, now));
        (reference, lag)
    }

    /// How long `inst`'s canary digest has differed from `reference`'s (0 when equal);
    /// `None` while either digest is unknown.
    pub(super) fn lag_behind(&self, inst: &str, reference: &str, now: UnixMillis) -> Option<u64> {
        let (rd, td) = (self.digests.get(reference), self.digests.get(inst));
        (rd.is_some() && td.is_some()).then(|| {
            decide::replication_lag(rd, td, now)
                .map(|(_, l)| l)
                .unwrap_or(0)
        })
    }
}
