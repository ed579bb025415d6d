//! The publisher tasks, the same for every provider: one supervisor per provider builds it
//! (retrying until it works), then runs one task per binding, so a slow or failing binding
//! never delays another binding, another provider or DNS. Each binding task follows the
//! controller's `Published` watch (the latest decision wins: a sync in progress is
//! abandoned when the desired answer changes), retries failures with backoff until
//! converged, and re-reads its records every drift interval to repair manual edits (logged
//! and journaled). State goes to the `PublisherStatus` watch; metrics through a hook.
//!
//! Ownership: every task is owned by its parent through [`Owned`] (aborted when dropped),
//! so aborting the one handle returned by [`crate::publish::spawn`] stops all of them.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::provider::Provider;
use super::reconcile::{ReconcileOptions, ReconcileReport, reconcile};
use super::{BindingTarget, Desired, RecordInfo, clock_time};
use crate::clock::now_ms;
use crate::config::env::Env;
use crate::control::PublisherStatus;
use crate::decide::UnixMillis;
use crate::model::Model;
use crate::publish::Published;
use crate::state::journal::Entry;

/// Changes of the decisions closer together than this are synced once.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// Longest wait between two attempts of a failing binding (or of the setup).
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// First wait after a failure.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
/// How often the supervisor refreshes the provider's health entry.
const HEALTH_TICK: Duration = Duration::from_secs(5);

//------------ Metrics hook ------------------------------------------------------------

/// `(provider, binding, result)`.
pub type SyncHook = fn(&str, &str, &str);
static SYNC_HOOK: OnceLock<SyncHook> = OnceLock::new();

/// Installs the function [`on_sync_result`] forwards to (once per process).
pub fn set_sync_hook(hook: SyncHook) {
    let _ = SYNC_HOOK.set(hook);
}

/// Called after every sync of a binding with `ok`, `changed`, `drift`, `dry-run` or
/// `error`. Metrics are wired by the daemon through [`set_sync_hook`].
pub fn on_sync_result(provider: &str, binding: &str, result: &str) {
    tracing::trace!(provider, binding, result, "publisher sync");
    if let Some(hook) = SYNC_HOOK.get() {
        hook(provider, binding, result);
    }
}

//------------ Inputs, status board, ownership ---------------------------------------------

/// Inputs of the publishers.
pub struct PublisherInputs {
    /// Decisions after every decision run.
    pub published: watch::Receiver<Arc<Published>>,
    /// Where the publishers show their state (shown in `GET /status`).
    pub status: watch::Sender<BTreeMap<String, PublisherStatus>>,
    /// Journal entries for the controller to append (drift, changes); optional.
    pub journal: Option<mpsc::Sender<Entry>>,
    /// Environment the credential chain reads (`Env::from_process()` in the daemon).
    pub env: Env,
}

/// Shared writer of the publisher status watch: entries are replaced by name.
#[derive(Clone)]
pub struct Board(pub Arc<watch::Sender<BTreeMap<String, PublisherStatus>>>);

impl Board {
    /// Sets (replaces) one entry.
    pub fn set(&self, st: PublisherStatus) {
        self.0.send_if_modified(|m| {
            if m.get(&st.name) == Some(&st) {
                return false;
            }
            m.insert(st.name.clone(), st);
            true
        });
    }

    fn remove(&self, name: &str) {
        self.0.send_if_modified(|m| m.remove(name).is_some());
    }
}

/// A status entry with no success and no failure yet.
pub fn status(name: &str, state: &str, detail: String) -> PublisherStatus {
    PublisherStatus {
        name: name.to_string(),
        state: state.to_string(),
        detail,
        last_ok_ms: None,
        failures: 0,
    }
}

/// Aborts its task when dropped: the tree of publisher tasks dies with its root.
pub struct Owned(pub JoinHandle<()>);

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wait before retry number `failures` (1-based): doubling from 1 s to 60 s, ±20 %.
pub fn retry_delay(failures: u32) -> Duration {
    let base = FIRST_RETRY_DELAY
        .saturating_mul(1u32 << failures.saturating_sub(1).min(10))
        .min(MAX_RETRY_DELAY);
    let ms = base.as_millis() as u64;
    Duration::from_millis(rand::random_range(ms * 8 / 10..=ms * 12 / 10))
}

/// Retry policy of one sync: bounded, so that a failing call shows up as `failing` soon;
/// the binding task then retries the whole sync without limit.
pub fn reconcile_options(dry_run: bool) -> ReconcileOptions {
    ReconcileOptions {
        dry_run,
        max_attempts: 5,
        base_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(5),
    }
}

//------------ Supervisor -------------------------------------------------------------------

struct Shared<P: Provider> {
    provider: P,
    opts: ReconcileOptions,
    drift_interval: Duration,
    board: Board,
    journal: Option<mpsc::Sender<Entry>>,
}

/// Context one supervisor gets from [`crate::publish::spawn`].
pub struct SupervisorInputs {
    /// Decisions.
    pub published: watch::Receiver<Arc<Published>>,
    /// Status board shared by every provider.
    pub board: Board,
    /// Journal channel.
    pub journal: Option<mpsc::Sender<Entry>>,
    /// Environment for credentials.
    pub env: Env,
}

fn names<P: Provider>(p: &Published) -> Vec<String> {
    P::targets(&p.model, &p.decisions)
        .into_iter()
        .map(|t| t.name)
        .collect()
}

/// True when the model has at least one binding of provider `P`.
pub fn has_bindings<P: Provider>(model: &Model) -> bool {
    !P::targets(model, &BTreeMap::new()).is_empty()
}

/// Runs provider `P`: builds it (retrying; DNS is served meanwhile), then one task per
/// binding, added and removed as reloads change the bindings. Returns when the decision
/// watch closes.
pub async fn supervise<P: Provider>(inputs: SupervisorInputs) {
    let SupervisorInputs {
        mut published,
        board,
        journal,
        env,
    } = inputs;
    let model = published.borrow().model.clone();
    let dry_run = P::dry_run(&model);
    let mode = if dry_run { "dry-run" } else { "pending" };
    for n in names::<P>(&published.borrow()) {
        board.set(status(
            &n,
            mode,
            format!("waiting for the {} client", P::SERVICE),
        ));
    }
    tracing::info!(provider = P::NAME, dry_run, "publisher starting");

    let mut failures = 0u32;
    let provider = loop {
        let model = published.borrow().model.clone();
        match P::connect(&model, &env).await {
            Ok(p) => break p,
            Err(e) => {
                failures += 1;
                let wait = retry_delay(failures);
                tracing::error!(provider = P::NAME, error = %e, retry_in = ?wait, "{} publisher cannot start; DNS is unaffected, retrying", P::SERVICE);
                board.set(PublisherStatus {
                    failures,
                    ..status(&format!("{}:credentials", P::NAME), "failing", e.clone())
                });
                for n in names::<P>(&published.borrow()) {
                    board.set(PublisherStatus {
                        failures,
                        ..status(&n, "failing", format!("no {} client: {e}", P::SERVICE))
                    });
                }
                tokio::time::sleep(wait).await;
            }
        }
    };
    let _background = provider.spawn_background().map(Owned);
    let shared = Arc::new(Shared {
        provider,
        opts: reconcile_options(dry_run),
        drift_interval: P::drift_interval(&model),
        board: board.clone(),
        journal,
    });
    if let Some(h) = shared.provider.health() {
        board.set(h);
    }

    let mut workers: BTreeMap<String, Owned> = BTreeMap::new();
    let mut tick = tokio::time::interval(HEALTH_TICK);
    loop {
        let want = names::<P>(&published.borrow_and_update());
        workers.retain(|n, _| {
            let keep = want.contains(n);
            if !keep {
                tracing::info!(provider = P::NAME, binding = %n, "binding removed from the configuration; no longer synced");
                board.remove(n);
            }
            keep
        });
        for n in want {
            if let std::collections::btree_map::Entry::Vacant(slot) = workers.entry(n) {
                let task = run_binding(shared.clone(), slot.key().clone(), published.clone());
                slot.insert(Owned(tokio::spawn(task)));
            }
        }
        tokio::select! {
            r = published.changed() => if r.is_err() { return },
            _ = tick.tick() => if let Some(h) = shared.provider.health() { board.set(h) },
        }
    }
}

//------------ One binding ------------------------------------------------------------------

fn current<P: Provider>(
    published: &watch::Receiver<Arc<Published>>,
    name: &str,
) -> Option<BindingTarget<P::Binding>> {
    let p = published.borrow();
    P::targets(&p.model, &p.decisions)
        .into_iter()
        .find(|t| t.name == name)
}

/// What a binding task remembers between syncs.
struct Progress {
    /// The desired answer last confirmed in place (None: never, or failing since).
    synced: Option<Desired>,
    /// What regdns itself last wrote and confirmed at the binding (None: unknown, e.g.
    /// before the first sync, after a failure or an abandoned sync, or in dry run). A
    /// reconcile that reads anything else found a manual edit: drift, whatever triggered it.
    written: Option<Desired>,
    failures: u32,
    last_ok_ms: Option<UnixMillis>,
    /// Time and request id(s) of the last change made.
    last_change: Option<(UnixMillis, String)>,
}

async fn run_binding<P: Provider>(
    shared: Arc<Shared<P>>,
    name: String,
    mut published: watch::Receiver<Arc<Published>>,
) {
    let Some(first) = current::<P>(&published, &name) else {
        return;
    };
    // The startup check only logs: it must not delay the first sync. Owned by this task.
    let check = shared.clone();
    let _check = Owned(tokio::spawn(
        async move { check.provider.check(&first).await },
    ));

    let mut p = Progress {
        synced: None,
        written: None,
        failures: 0,
        last_ok_ms: None,
        last_change: None,
    };
    let mut next_drift = Instant::now() + shared.drift_interval;
    let mut retry_at: Option<Instant> = None;
    loop {
        let Some(target) = current::<P>(&published, &name) else {
            return; // removed by a reload; the supervisor drops this task
        };
        let now = Instant::now();
        let out_of_sync = p.synced.as_ref() != Some(&target.desired);
        let retry_due = retry_at.is_none_or(|t| t <= now);
        let drift_due = next_drift <= now;
        if (out_of_sync && retry_due) || drift_due {
            let drift_check = !out_of_sync;
            if out_of_sync && p.failures == 0 {
                let mode = if shared.opts.dry_run {
                    "dry-run"
                } else {
                    "pending"
                };
                shared.board.set(PublisherStatus {
                    last_ok_ms: p.last_ok_ms,
                    ..status(
                        &name,
                        mode,
                        format!(
                            "syncing {} ({} in view {})",
                            target.desired.summary(),
                            target.instance,
                            target.view
                        ),
                    )
                });
            }
            let run = reconcile(
                &shared.provider,
                &target.binding,
                &target.desired,
                &shared.opts,
            );
            tokio::pin!(run);
            // Latest decision wins: a sync for an answer that is no longer wanted is
            // abandoned (the next one re-reads, so a half-applied change is fine).
            let result = loop {
                tokio::select! {
                    r = &mut run => break Some(r),
                    c = published.changed() => {
                        if c.is_err() {
                            return;
                        }
                        if current::<P>(&published, &name).map(|t| t.desired) != Some(target.desired.clone()) {
                            break None;
                        }
                    }
                }
            };
            match result {
                None => {
                    tracing::info!(provider = P::NAME, binding = %name, abandoned = %target.desired.summary(), "decision changed during a sync; syncing the new answer");
                    p.written = None;
                    retry_at = None;
                    tokio::time::sleep(DEBOUNCE).await;
                    continue;
                }
                Some(Ok(report)) => {
                    on_success(&shared, &name, &target, &mut p, report, drift_check);
                    retry_at = None;
                    next_drift = Instant::now() + shared.drift_interval;
                }
                Some(Err(e)) => {
                    p.failures += 1;
                    p.synced = None;
                    p.written = None;
                    let wait = retry_delay(p.failures);
                    retry_at = Some(Instant::now() + wait);
                    next_drift = Instant::now() + shared.drift_interval;
                    tracing::error!(
                        provider = P::NAME,
                        binding = %name,
                        desired = %target.desired.summary(),
                        error = %e,
                        request_id = e.request_id.as_deref().unwrap_or("-"),
                        failures = p.failures,
                        retry_in = ?wait,
                        "{} sync failed; DNS is unaffected, retrying",
                        P::SERVICE
                    );
                    let detail = format!("{}: {e}", target.desired.summary());
                    shared.board.set(PublisherStatus {
                        last_ok_ms: p.last_ok_ms,
                        failures: p.failures,
                        ..status(&name, "failing", detail)
                    });
                    on_sync_result(P::NAME, &name, "error");
                }
            }
        }
        // Sleep until the decision changes, a retry is due or the drift check is due.
        let wake = match retry_at {
            Some(t) if p.synced.is_none() => t.min(next_drift),
            _ => next_drift,
        };
        tokio::select! {
            c = published.changed() => {
                if c.is_err() {
                    return;
                }
                tokio::time::sleep(DEBOUNCE).await;
                // A new answer is synced at once, even while a failed one waits to retry.
                if current::<P>(&published, &name).map(|t| t.desired) != Some(target.desired.clone()) {
                    retry_at = None;
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

fn on_success<P: Provider>(
    shared: &Shared<P>,
    name: &str,
    target: &BindingTarget<P::Binding>,
    p: &mut Progress,
    report: ReconcileReport<P::Binding>,
    drift_check: bool,
) {
    let now = now_ms();
    let summary = target.desired.summary();
    let kind = P::NAME;
    if !report.unmanaged.is_empty() && p.synced.is_none() {
        let other: Vec<String> = report.unmanaged.iter().map(|r| r.to_string()).collect();
        tracing::info!(provider = kind, binding = %name, unmanaged = ?other, "records at the name that regdns does not manage (left untouched)");
    }
    if report.dry_run {
        let detail = if report.planned.is_empty() && report.conflicts.is_empty() {
            format!("{summary}: in sync (dry run, checked {})", clock_time(now))
        } else {
            let mut lines = report.planned.clone();
            lines.extend(report.conflicts.iter().map(|c| c.reason.clone()));
            format!("{summary}: would {}", lines.join("; "))
        };
        if !report.planned.is_empty() || !report.conflicts.is_empty() {
            tracing::info!(provider = kind, binding = %name, desired = %summary, planned = ?report.planned, conflicts = ?report.conflicts.iter().map(|c| &c.reason).collect::<Vec<_>>(), "{} dry run: changes not made", kind);
        }
        p.synced = Some(target.desired.clone());
        p.failures = 0;
        shared.board.set(PublisherStatus {
            last_ok_ms: p.last_ok_ms,
            ..status(name, "dry-run", detail)
        });
        on_sync_result(kind, name, "dry-run");
        return;
    }
    // Drift is whatever regdns finds that it did not write: compared with what it last
    // wrote when known (so a manual edit is caught by the reconcile of a decision too), with
    // the desired answer on a drift check otherwise; plus edits made while it was writing.
    let mut drift = match &p.written {
        Some(w) => drift_from(w, &report.found),
        None if drift_check => report.drift.clone(),
        None => Vec::new(),
    };
    drift.extend(report.foreign.iter().cloned());
    let drifted = !drift.is_empty();
    let drift_kind = format!("{kind}-drift");
    if report.changed() {
        let ids: Vec<String> = report
            .applied
            .iter()
            .map(|c| c.request_id.clone())
            .collect();
        p.last_change = Some((now, ids.join(", ")));
        for c in &report.applied {
            tracing::info!(provider = kind, binding = %name, change = %c.description, request_id = %c.request_id, attempts = c.attempts, "{} record changed", P::SERVICE);
        }
        let reason = if drifted && drift_check {
            format!("repaired drift: {}", drift.join("; "))
        } else if drifted {
            format!(
                "repaired drift: {} (while setting {summary} for {} in view {})",
                drift.join("; "),
                target.instance,
                target.view
            )
        } else {
            format!("{summary} for {} in view {}", target.instance, target.view)
        };
        let changes: Vec<String> = report
            .applied
            .iter()
            .map(|c| format!("{} (RequestId {})", c.description, c.request_id))
            .collect();
        journal(
            shared,
            target,
            if drifted { &drift_kind } else { kind },
            format!("{name}: {reason}: {}", changes.join("; ")),
        );
    }
    if drifted && !report.changed() {
        journal(
            shared,
            target,
            &drift_kind,
            format!(
                "{name}: found values regdns did not write: {}; they already are the desired answer ({summary})",
                drift.join("; ")
            ),
        );
    }
    if drifted {
        tracing::warn!(provider = kind, binding = %name, drift = ?drift, "{} records were changed outside regdns; repaired", P::SERVICE);
    }
    if p.failures > 0 {
        tracing::info!(provider = kind, binding = %name, failures = p.failures, desired = %summary, "{} sync recovered", P::SERVICE);
    }
    p.synced = Some(target.desired.clone());
    p.written = Some(target.desired.clone());
    p.failures = 0;
    p.last_ok_ms = Some(now);
    let since = p.last_change.as_ref().map(|(t, _)| *t).unwrap_or(now);
    let mut detail = format!("{summary} since {}", clock_time(since));
    if let Some((_, ids)) = &p.last_change {
        detail.push_str(&format!(" (RequestId {ids})"));
    }
    if drifted {
        detail.push_str(&format!(
            "; repaired drift at {}: {}",
            clock_time(now),
            drift.join("; ")
        ));
    }
    shared.board.set(PublisherStatus {
        last_ok_ms: Some(now),
        ..status(name, "ok", detail)
    });
    on_sync_result(
        kind,
        name,
        if drifted {
            "drift"
        } else if report.changed() {
            "changed"
        } else {
            "ok"
        },
    );
}

/// How `found` differs from the answer regdns last wrote (empty: it is that answer).
fn drift_from(written: &Desired, found: &[RecordInfo]) -> Vec<String> {
    super::plan::plan(written, found)
        .map(|p| p.drift)
        .unwrap_or_default()
}

fn journal<P: Provider>(
    shared: &Shared<P>,
    target: &BindingTarget<P::Binding>,
    kind: &str,
    reason: String,
) {
    let Some(tx) = &shared.journal else { return };
    let mut e = Entry::new(kind, now_ms(), reason, P::NAME);
    e.endpoint = Some(target.endpoint.clone());
    e.view = Some(target.view.clone());
    e.to = Some(target.instance.clone());
    if tx.try_send(e).is_err() {
        tracing::debug!(
            provider = P::NAME,
            "journal channel full or closed: entry not journaled"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays() {
        for f in 1..20 {
            let d = retry_delay(f);
            assert!(d >= Duration::from_millis(800) && d <= Duration::from_secs(72));
        }
    }
}
