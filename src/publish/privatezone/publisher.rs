//! The PrivateZone publisher task (design §8): keeps the records of every
//! `[[endpoint.privatezone]]` binding equal to its view's active answer.
//!
//! One supervisor builds the API client and the credential provider (retrying until they
//! work), then runs one task per binding, so a slow or failing binding never delays another
//! binding or DNS. Each binding task follows the controller's `Published` watch (the latest
//! decision wins: a sync in progress is abandoned when the desired answer changes), retries
//! failures with backoff until converged, and re-reads its records every `drift_interval`
//! to repair manual edits. State goes to the `PublisherStatus` watch; the task never blocks
//! the controller.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{
    Binding, ChainConfig, ClientConfig, CredentialProvider, Desired, Env, PvtzClient,
    ReconcileOptions, ReconcileReport, describe_zone, reconcile,
};
use crate::config::PrivateZoneConfig;
use crate::control::PublisherStatus;
use crate::controller::{Published, now_ms};
use crate::decide::{Decision, UnixMillis};
use crate::model::{Model, TargetAnswer};
use crate::publish::dns::{ActiveTargets, active_answer};
use crate::state::journal::Entry;

/// Name of the status entry that shows the credentials in use.
pub const CREDENTIALS_STATUS: &str = "privatezone:credentials";
/// Actor of the journal entries the publisher writes.
pub const ACTOR: &str = "privatezone";
/// Changes of the decisions closer together than this are synced once.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// How often the credential provider checks whether a refresh is due.
pub const CREDENTIAL_REFRESH_CHECK: Duration = Duration::from_secs(60);
/// Longest wait between two attempts of a failing binding (or of the setup).
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// First wait after a failure.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);

//------------ Metrics hook ------------------------------------------------------------

type SyncHook = fn(&str, &str);
static SYNC_HOOK: OnceLock<SyncHook> = OnceLock::new();

/// Installs the function [`on_sync_result`] forwards to (once per process).
pub fn set_sync_hook(hook: SyncHook) {
    let _ = SYNC_HOOK.set(hook);
}

/// Called after every sync of a binding with `ok`, `changed`, `drift`, `dry-run` or
/// `error`. Metrics are wired by the daemon through [`set_sync_hook`].
pub fn on_sync_result(binding: &str, result: &str) {
    tracing::trace!(binding, result, "privatezone sync");
    if let Some(hook) = SYNC_HOOK.get() {
        hook(binding, result);
    }
}

//------------ What each binding should hold ----------------------------------------------

/// One binding and the answer it should hold under the given decisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingTarget {
    /// Status name: `privatezone:<zone_id>/<rr>`.
    pub name: String,
    /// Endpoint name (fully qualified).
    pub endpoint: String,
    /// View whose decision is pushed.
    pub view: String,
    /// Active instance of that view.
    pub instance: String,
    /// Zone and record.
    pub binding: Binding,
    /// The records wanted.
    pub desired: Desired,
}

/// Status name of a binding.
pub fn status_name(b: &Binding) -> String {
    format!("privatezone:{}/{}", b.zone_id, b.rr)
}

/// The records of a target answer: a CNAME (without the trailing dot), or A and AAAA.
pub fn desired_records(answer: &TargetAnswer) -> Vec<(String, String)> {
    match answer {
        TargetAnswer::Cname(n) => {
            let s = n.to_string();
            vec![("CNAME".into(), s.trim_end_matches('.').to_string())]
        }
        TargetAnswer::Addrs { a, aaaa } => a
            .iter()
            .map(|x| ("A".to_string(), x.to_string()))
            .chain(aaaa.iter().map(|x| ("AAAA".to_string(), x.to_string())))
            .collect(),
    }
}

/// Every binding of the model with its desired records; views without a decision use
/// their first target (as DNS does).
pub fn binding_targets(
    model: &Model,
    decisions: &BTreeMap<(String, String), Decision>,
) -> Vec<BindingTarget> {
    let active: ActiveTargets = decisions
        .iter()
        .map(|(k, d)| (k.clone(), d.active.clone()))
        .collect();
    let mut out = Vec::new();
    for ep in &model.endpoints {
        for b in &ep.privatezone {
            let Some(vi) = model.view_index(&b.view) else {
                continue; // the model checked every binding's view; nothing to do otherwise
            };
            let endpoint = ep.name.to_string();
            let answer = active_answer(ep, vi, &b.view, &active);
            let instance = active
                .get(&(endpoint.clone(), b.view.clone()))
                .cloned()
                .or_else(|| ep.targets[vi].first().map(|t| t.instance.clone()))
                .unwrap_or_default();
            let binding = Binding {
                zone_id: b.zone_id.clone(),
                rr: b.rr.clone(),
            };
            out.push(BindingTarget {
                name: status_name(&binding),
                desired: Desired {
                    rr: b.rr.clone(),
                    records: desired_records(answer),
                    ttl: ep.ttl,
                },
                endpoint,
                view: b.view.clone(),
                instance,
                binding,
            });
        }
    }
    out
}

/// The fully qualified name a binding's record has, given the zone's name.
pub fn bound_name(zone_name: &str, rr: &str) -> String {
    let zone = zone_name.trim_end_matches('.').to_ascii_lowercase();
    if rr == "@" {
        format!("{zone}.")
    } else {
        format!("{}.{zone}.", rr.to_ascii_lowercase())
    }
}

/// The API client and the credential provider for a `[privatezone]` section.
pub async fn connect(
    cfg: &PrivateZoneConfig,
    env: &Env,
) -> Result<(PvtzClient, CredentialProvider), String> {
    let client = PvtzClient::new(&ClientConfig {
        endpoint: cfg
            .endpoint
            .clone()
            .unwrap_or_else(|| crate::config::DEFAULT_PVTZ_ENDPOINT.to_string()),
        ..Default::default()
    })
    .map_err(|e| format!("PrivateZone client: {e}"))?;
    let creds = CredentialProvider::from_chain(
        env,
        &ChainConfig {
            sts_endpoint: cfg.sts_endpoint.clone(),
            metadata_endpoint: cfg.metadata_endpoint.clone(),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok((client, creds))
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

//------------ Status -----------------------------------------------------------------------

/// Shared writer of the publisher status watch: entries are replaced by name.
#[derive(Clone)]
struct Board(Arc<watch::Sender<BTreeMap<String, PublisherStatus>>>);

impl Board {
    fn set(&self, st: PublisherStatus) {
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

    fn get(&self, name: &str) -> Option<PublisherStatus> {
        self.0.borrow().get(name).cloned()
    }
}

fn status(name: &str, state: &str, detail: String) -> PublisherStatus {
    PublisherStatus {
        name: name.to_string(),
        state: state.to_string(),
        detail,
        last_ok_ms: None,
        failures: 0,
    }
}

/// `HH:MM:SS` (UTC) of a time in ms since the epoch.
pub fn clock_time(ms: UnixMillis) -> String {
    let s = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// Wait before retry number `failures` (1-based): doubling from 1 s to 60 s, ±20 %.
fn retry_delay(failures: u32) -> Duration {
    let base = FIRST_RETRY_DELAY
        .saturating_mul(1u32 << failures.saturating_sub(1).min(10))
        .min(MAX_RETRY_DELAY);
    let ms = base.as_millis() as u64;
    Duration::from_millis(rand::random_range(ms * 8 / 10..=ms * 12 / 10))
}

//------------ Supervisor -------------------------------------------------------------------

/// Inputs of the publisher.
pub struct PublisherInputs {
    /// Decisions after every decision run.
    pub published: watch::Receiver<Arc<Published>>,
    /// Where the publisher shows its state (shown in `GET /status`).
    pub status: watch::Sender<BTreeMap<String, PublisherStatus>>,
    /// Journal entries for the controller to append (drift, changes); optional.
    pub journal: Option<mpsc::Sender<Entry>>,
    /// Environment the credential chain reads (`Env::from_process()` in the daemon).
    pub env: Env,
}

/// Starts the publisher when the model has a `[privatezone]` section and at least one
/// binding; None otherwise. Aborting the handle stops every task of the publisher.
pub fn spawn(model: &Model, inputs: PublisherInputs) -> Option<JoinHandle<()>> {
    let cfg = model.privatezone.clone()?;
    if !model.endpoints.iter().any(|e| !e.privatezone.is_empty()) {
        return None;
    }
    Some(tokio::spawn(supervise(cfg, inputs)))
}

/// Aborts its task when dropped.
struct Owned(JoinHandle<()>);

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Shared {
    client: PvtzClient,
    creds: CredentialProvider,
    opts: ReconcileOptions,
    drift_interval: Duration,
    board: Board,
    journal: Option<mpsc::Sender<Entry>>,
}

async fn supervise(cfg: PrivateZoneConfig, inputs: PublisherInputs) {
    let PublisherInputs {
        mut published,
        status: status_tx,
        journal,
        env,
    } = inputs;
    let board = Board(Arc::new(status_tx));
    let mode = if cfg.dry_run { "dry-run" } else { "pending" };
    let names = |p: &Published| -> Vec<String> {
        binding_targets(&p.model, &p.decisions)
            .into_iter()
            .map(|t| t.name)
            .collect()
    };
    for n in names(&published.borrow()) {
        board.set(status(
            &n,
            mode,
            "waiting for PrivateZone credentials".into(),
        ));
    }
    tracing::info!(
        region = %cfg.region,
        endpoint = cfg.endpoint.as_deref().unwrap_or(crate::config::DEFAULT_PVTZ_ENDPOINT),
        dry_run = cfg.dry_run,
        drift_interval = ?cfg.drift_interval,
        "PrivateZone publisher starting"
    );

    // Client and credentials: retried until they work; DNS is served meanwhile.
    let mut failures = 0u32;
    let (client, creds) = loop {
        match connect(&cfg, &env).await {
            Ok(c) => break c,
            Err(e) => {
                failures += 1;
                let wait = retry_delay(failures);
                tracing::error!(error = %e, retry_in = ?wait, "PrivateZone publisher cannot start: no client or credentials; DNS is unaffected, retrying");
                board.set(PublisherStatus {
                    failures,
                    ..status(CREDENTIALS_STATUS, "failing", e.clone())
                });
                for n in names(&published.borrow()) {
                    board.set(PublisherStatus {
                        failures,
                        ..status(&n, "failing", format!("no PrivateZone credentials: {e}"))
                    });
                }
                tokio::time::sleep(wait).await;
            }
        }
    };
    let _refresher = Owned(creds.spawn_refresher(CREDENTIAL_REFRESH_CHECK));
    let shared = Arc::new(Shared {
        client,
        creds,
        opts: reconcile_options(cfg.dry_run),
        drift_interval: cfg.drift_interval,
        board: board.clone(),
        journal,
    });
    show_credentials(&shared);

    let mut workers: BTreeMap<String, Owned> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        let want = names(&published.borrow_and_update());
        workers.retain(|n, _| {
            let keep = want.contains(n);
            if !keep {
                tracing::info!(binding = %n, "PrivateZone binding removed from the configuration; no longer synced");
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
            _ = tick.tick() => show_credentials(&shared),
        }
    }
}

fn show_credentials(shared: &Shared) {
    let st = shared.creds.status();
    let expired = st
        .expiration
        .is_some_and(|e| e <= std::time::SystemTime::now());
    let state = if expired { "failing" } else { "ok" };
    let detail = if expired {
        format!("credentials expired: {st}")
    } else {
        st.to_string()
    };
    let prev = shared.board.get(CREDENTIALS_STATUS);
    shared.board.set(PublisherStatus {
        name: CREDENTIALS_STATUS.into(),
        state: state.into(),
        detail,
        last_ok_ms: if expired {
            prev.and_then(|p| p.last_ok_ms)
        } else {
            Some(now_ms())
        },
        failures: u32::from(expired),
    });
}

//------------ One binding ------------------------------------------------------------------

fn current(published: &watch::Receiver<Arc<Published>>, name: &str) -> Option<BindingTarget> {
    let p = published.borrow();
    binding_targets(&p.model, &p.decisions)
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
    /// Time and RequestId(s) of the last change made.
    last_change: Option<(UnixMillis, String)>,
    last_error: Option<String>,
}

async fn run_binding(
    shared: Arc<Shared>,
    name: String,
    mut published: watch::Receiver<Arc<Published>>,
) {
    let Some(first) = current(&published, &name) else {
        return;
    };
    // The zone check only logs: it must not delay the first sync.
    let check = shared.clone();
    tokio::spawn(async move { check_zone(&check, &first).await });

    let mut p = Progress {
        synced: None,
        written: None,
        failures: 0,
        last_ok_ms: None,
        last_change: None,
        last_error: None,
    };
    let mut next_drift = Instant::now() + shared.drift_interval;
    let mut retry_at: Option<Instant> = None;
    loop {
        let Some(target) = current(&published, &name) else {
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
                &shared.client,
                &shared.creds,
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
                        if current(&published, &name).map(|t| t.desired) != Some(target.desired.clone()) {
                            break None;
                        }
                    }
                }
            };
            match result {
                None => {
                    tracing::info!(binding = %name, abandoned = %target.desired.summary(), "decision changed during a PrivateZone sync; syncing the new answer");
                    // Possibly half applied: what is in place is no longer known.
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
                        binding = %name,
                        desired = %target.desired.summary(),
                        error = %e,
                        request_id = e.request_id.as_deref().unwrap_or("-"),
                        failures = p.failures,
                        retry_in = ?wait,
                        "PrivateZone sync failed; DNS is unaffected, retrying"
                    );
                    let detail = format!("{}: {e}", target.desired.summary());
                    p.last_error = Some(detail.clone());
                    shared.board.set(PublisherStatus {
                        last_ok_ms: p.last_ok_ms,
                        failures: p.failures,
                        ..status(&name, "failing", detail)
                    });
                    on_sync_result(&name, "error");
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
                if current(&published, &name).map(|t| t.desired) != Some(target.desired.clone()) {
                    retry_at = None;
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

fn on_success(
    shared: &Shared,
    name: &str,
    target: &BindingTarget,
    p: &mut Progress,
    report: ReconcileReport,
    drift_check: bool,
) {
    let now = now_ms();
    let summary = target.desired.summary();
    if !report.unmanaged.is_empty() && p.synced.is_none() {
        let other: Vec<String> = report.unmanaged.iter().map(|r| r.to_string()).collect();
        tracing::info!(binding = %name, unmanaged = ?other, "PrivateZone records at the name that regdns does not manage (left untouched)");
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
            tracing::info!(binding = %name, desired = %summary, planned = ?report.planned, conflicts = ?report.conflicts.iter().map(|c| &c.reason).collect::<Vec<_>>(), "PrivateZone dry run: changes not made");
        }
        p.synced = Some(target.desired.clone());
        p.failures = 0;
        shared.board.set(PublisherStatus {
            last_ok_ms: p.last_ok_ms,
            ..status(name, "dry-run", detail)
        });
        on_sync_result(name, "dry-run");
        return;
    }
    // Drift is whatever regdns finds that it did not write: compared with what it last
    // wrote when known (so a manual edit is caught by the reconcile of a decision too), with
    // the desired answer on a drift check otherwise; plus edits made while it was writing.
    let mut drift = match &p.written {
        Some(w) => drift_from(w, &target.binding.rr, &report.found),
        None if drift_check => report.drift.clone(),
        None => Vec::new(),
    };
    drift.extend(report.foreign.iter().cloned());
    let drifted = !drift.is_empty();
    if report.changed() {
        let ids: Vec<String> = report
            .applied
            .iter()
            .map(|c| c.request_id.clone())
            .collect();
        p.last_change = Some((now, ids.join(", ")));
        for c in &report.applied {
            tracing::info!(binding = %name, change = %c.description, request_id = %c.request_id, attempts = c.attempts, "PrivateZone record changed");
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
            if drifted {
                "privatezone-drift"
            } else {
                "privatezone"
            },
            format!("{name}: {reason}: {}", changes.join("; ")),
        );
    }
    if drifted && !report.changed() {
        journal(
            shared,
            target,
            "privatezone-drift",
            format!(
                "{name}: found values regdns did not write: {}; they already are the desired answer ({summary})",
                drift.join("; ")
            ),
        );
    }
    if drifted {
        tracing::warn!(binding = %name, drift = ?drift, "PrivateZone records were changed outside regdns; repaired");
    }
    if p.failures > 0 {
        tracing::info!(binding = %name, failures = p.failures, desired = %summary, "PrivateZone sync recovered");
    }
    p.synced = Some(target.desired.clone());
    p.written = Some(target.desired.clone());
    p.failures = 0;
    p.last_error = None;
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

/// How `found` differs from the answer regdns last wrote at `rr` (empty: it is that answer).
fn drift_from(written: &Desired, rr: &str, found: &[super::RecordInfo]) -> Vec<String> {
    let written = Desired {
        rr: rr.to_string(),
        ..written.clone()
    };
    super::plan::plan(&written, found)
        .map(|p| p.drift)
        .unwrap_or_default()
}

fn journal(shared: &Shared, target: &BindingTarget, kind: &str, reason: String) {
    let Some(tx) = &shared.journal else { return };
    let mut e = Entry::new(kind, now_ms(), reason, ACTOR);
    e.endpoint = Some(target.endpoint.clone());
    e.view = Some(target.view.clone());
    e.to = Some(target.instance.clone());
    if tx.try_send(e).is_err() {
        tracing::debug!("journal channel full or closed: PrivateZone entry not journaled");
    }
}

/// Startup check of a binding's zone: logs its name and bound VPCs, warns when the record
/// it would write is not the endpoint's name. Failures are logged; syncing goes on.
async fn check_zone(shared: &Shared, target: &BindingTarget) {
    let opts = ReconcileOptions {
        max_attempts: 2,
        ..shared.opts.clone()
    };
    match describe_zone(
        &shared.client,
        &shared.creds,
        &target.binding.zone_id,
        &opts,
    )
    .await
    {
        Ok(z) => {
            let vpcs: Vec<String> = z
                .bind_vpcs
                .iter()
                .map(|v| format!("{}/{}", v.region_id, v.vpc_id))
                .collect();
            tracing::info!(binding = %target.name, zone_name = %z.zone_name, vpcs = ?vpcs, endpoint = %target.endpoint, view = %target.view, "PrivateZone zone found");
            let name = bound_name(&z.zone_name, &target.binding.rr);
            if name != target.endpoint.to_ascii_lowercase() {
                tracing::warn!(binding = %target.name, zone_name = %z.zone_name, rr = %target.binding.rr, record = %name, endpoint = %target.endpoint, "PrivateZone record name differs from the endpoint's name: check zone_id and rr");
            }
            if vpcs.is_empty() {
                tracing::warn!(binding = %target.name, zone_name = %z.zone_name, "PrivateZone zone is bound to no VPC: its records are not resolved anywhere");
            }
        }
        Err(e) => {
            tracing::warn!(binding = %target.name, error = %e, "PrivateZone DescribeZoneInfo failed; syncing anyway");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_times() {
        assert_eq!(bound_name("Registry.io", "@"), "registry.io.");
        assert_eq!(bound_name("registry.io.", "cr"), "cr.registry.io.");
        assert_eq!(clock_time(1_767_322_801_000), "03:00:01");
        for f in 1..20 {
            let d = retry_delay(f);
            assert!(d >= Duration::from_millis(800) && d <= Duration::from_secs(72));
        }
    }

    #[test]
    fn records_of_answers() {
        let n = hickory_proto::rr::Name::from_ascii("b-registry.example.com.").unwrap();
        assert_eq!(
            desired_records(&TargetAnswer::Cname(n)),
            vec![("CNAME".to_string(), "b-registry.example.com".to_string())]
        );
        let r = desired_records(&TargetAnswer::Addrs {
            a: vec!["10.1.3.4".parse().unwrap()],
            aaaa: vec!["2001:db8::1".parse().unwrap()],
        });
        assert_eq!(
            r,
            vec![
                ("A".to_string(), "10.1.3.4".to_string()),
                ("AAAA".to_string(), "2001:db8::1".to_string())
            ]
        );
    }
}
