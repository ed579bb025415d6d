//! PrivateZone publisher (design §8): makes the records at one `rr` of one zone equal the
//! active answer of a view.
//!
//! - [`sign`]: V3 request signing (pure).
//! - [`rpc`]: one signed RPC call, generic over the product (also used by the ACR login).
//! - [`client`]: the PrivateZone API calls and typed errors.
//! - [`credentials`]: the Alibaba Cloud credential chain and a refreshing provider.
//! - [`plan`]: the pure diff from actual records to API operations.
//! - [`reconcile`]: read → plan → apply with retries, idempotent.
//! - [`publisher`]: the daemon task that keeps every binding equal to its view's decision.

pub mod client;
pub mod credentials;
pub mod plan;
pub mod publisher;
pub mod rpc;
pub mod sign;

use std::time::Duration;

pub use client::{ClientConfig, ErrorKind, PvtzClient, PvtzError, RecordSpec};
pub use credentials::{ChainConfig, CredentialError, CredentialProvider, Credentials, Env};
pub use plan::{Conflict, Desired, Op, Plan, RecordInfo};

/// One `[[endpoint.privatezone]]` binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// PrivateZone zone id.
    pub zone_id: String,
    /// Host record relative to the zone (`@` for the apex).
    pub rr: String,
}

impl std::fmt::Display for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "zone {} rr {}", self.zone_id, self.rr)
    }
}

/// How [`reconcile`] behaves.
#[derive(Clone, Debug)]
pub struct ReconcileOptions {
    /// Plan only, change nothing.
    pub dry_run: bool,
    /// Attempts per API call (first try included) on throttling / transient errors.
    pub max_attempts: u32,
    /// Backoff base: attempt n waits a random time in `[0, min(max_backoff, base·2ⁿ⁻¹)]`.
    pub base_backoff: Duration,
    /// Upper bound of one wait (also caps an `x-acs-retry-after`).
    pub max_backoff: Duration,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        ReconcileOptions {
            dry_run: false,
            max_attempts: 6,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
        }
    }
}

/// A change that was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedChange {
    /// The op that was applied.
    pub op: Op,
    /// Human description (from [`Plan::describe_op`]).
    pub description: String,
    /// Id of the record changed (the new id for an add).
    pub record_id: u64,
    /// `RequestId` of the successful call.
    pub request_id: String,
    /// Attempts the call took (1 = no retry).
    pub attempts: u32,
}

/// What [`reconcile`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileReport {
    /// The binding reconciled.
    pub binding: Binding,
    /// True when nothing was written.
    pub dry_run: bool,
    /// How the records differed from the desired answer before this run (empty: in sync).
    pub drift: Vec<String>,
    /// The first plan, one line per op (also filled in dry-run).
    pub planned: Vec<String>,
    /// Changes made, in order.
    pub applied: Vec<AppliedChange>,
    /// Records at `rr` that regdns does not manage (left untouched).
    pub unmanaged: Vec<RecordInfo>,
    /// Unmanaged records blocking the answer (only returned in dry-run; otherwise an error).
    pub conflicts: Vec<Conflict>,
    /// The managed records after the run (a confirmed read when something changed).
    pub records: Vec<RecordInfo>,
    /// Every record at `rr` as first read, before any change (the caller compares it with
    /// what it last wrote to tell a manual edit from its own earlier answer).
    pub found: Vec<RecordInfo>,
    /// Values found by a confirming read that this run did not write (someone edited the
    /// records while the run was applying its changes); they were repaired by the run.
    pub foreign: Vec<String>,
}

impl ReconcileReport {
    /// True when something was changed.
    pub fn changed(&self) -> bool {
        !self.applied.is_empty()
    }
}

/// How many read-plan-apply rounds one reconcile may take (a conflict or a record that
/// vanished starts a new round).
const MAX_ROUNDS: u32 = 3;

fn cred_error(e: CredentialError) -> PvtzError {
    PvtzError::local(ErrorKind::Auth, "Regdns.Credentials", e.to_string())
}

fn config_error(binding: &Binding, code: &str, msg: String) -> PvtzError {
    PvtzError::local(ErrorKind::Config, code, format!("{binding}: {msg}"))
}

/// A client token: up to 64 ASCII characters, one per logical change.
pub fn new_client_token() -> String {
    format!("regdns-{}", sign::new_nonce())
}

/// Full-jitter exponential backoff for the given attempt (1-based), or `retry_after`.
fn backoff(opts: &ReconcileOptions, attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(ra) = retry_after {
        return ra.min(opts.max_backoff);
    }
    let cap = opts
        .base_backoff
        .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(20))
        .min(opts.max_backoff);
    let ms = cap.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::random_range(0..=ms))
}

/// Runs one API call with the retry policy: backoff on throttled/transient/transport
/// errors up to `max_attempts`, one credential refresh on an auth error, one immediate
/// retry (new date and nonce) on a clock error. `f` must reuse the same ClientToken.
async fn with_retry<T, F, Fut>(
    creds: &CredentialProvider,
    opts: &ReconcileOptions,
    mut f: F,
) -> Result<(T, u32), PvtzError>
where
    F: FnMut(Credentials) -> Fut,
    Fut: std::future::Future<Output = Result<T, PvtzError>>,
{
    let max = opts.max_attempts.max(1);
    let mut attempt = 0u32;
    let mut refreshed = false;
    let mut clock_retried = false;
    loop {
        attempt += 1;
        let c = creds.get().await.map_err(cred_error)?;
        let err = match f(c).await {
            Ok(v) => return Ok((v, attempt)),
            Err(e) => e,
        };
        match &err.kind {
            ErrorKind::Throttled { retry_after } if attempt < max => {
                let wait = backoff(opts, attempt, *retry_after);
                tracing::info!(action = %err.action, code = %err.code, attempt, wait_ms = wait.as_millis() as u64, "PrivateZone throttled; backing off");
                tokio::time::sleep(wait).await;
            }
            ErrorKind::Transient | ErrorKind::Transport if attempt < max => {
                let wait = backoff(opts, attempt, None);
                tracing::info!(action = %err.action, code = %err.code, attempt, wait_ms = wait.as_millis() as u64, "PrivateZone call failed; retrying");
                tokio::time::sleep(wait).await;
            }
            ErrorKind::Auth if !refreshed => {
                refreshed = true;
                tracing::warn!(action = %err.action, code = %err.code, source = creds.source_name(), "PrivateZone rejected the credentials; refreshing them once");
                if let Err(re) = creds.force_refresh().await {
                    let mut e = err;
                    e.message = format!("{}; credential refresh also failed: {re}", e.message);
                    e.attempts = attempt;
                    return Err(e);
                }
            }
            ErrorKind::Clock if !clock_retried => {
                clock_retried = true;
                tracing::warn!(action = %err.action, code = %err.code, "PrivateZone rejected the timestamp or nonce; retrying once with new ones");
            }
            ErrorKind::Clock => {
                let mut e = err;
                e.message = format!(
                    "{} (rejected twice: the host clock is probably skewed from the service's)",
                    e.message
                );
                e.attempts = attempt;
                return Err(e);
            }
            _ => {
                let mut e = err;
                e.attempts = attempt;
                return Err(e);
            }
        }
    }
}

/// `DescribeZoneInfo` with the retry policy of [`reconcile`].
pub async fn describe_zone(
    client: &PvtzClient,
    creds: &CredentialProvider,
    zone_id: &str,
    opts: &ReconcileOptions,
) -> Result<client::ZoneInfo, PvtzError> {
    with_retry(creds, opts, |c| async move {
        client.describe_zone_info(&c, zone_id).await
    })
    .await
    .map(|(z, _)| z)
}

/// Makes the managed records of `binding` equal `desired`: read, plan, apply, confirm.
///
/// Idempotent: when the records already match, it only reads. Every change gets its own
/// ClientToken, reused on retries of that change. A conflict ("already exists") or a record
/// that vanished starts a new read-plan round (at most 3), so a change that an earlier,
/// seemingly failed attempt already made is confirmed instead of repeated. After changes,
/// a final read confirms convergence. `dry_run` stops after the first plan.
pub async fn reconcile(
    client: &PvtzClient,
    creds: &CredentialProvider,
    binding: &Binding,
    desired: &Desired,
    opts: &ReconcileOptions,
) -> Result<ReconcileReport, PvtzError> {
    let desired = Desired {
        rr: binding.rr.clone(),
        ..desired.clone()
    };
    let mut report = ReconcileReport {
        binding: binding.clone(),
        dry_run: opts.dry_run,
        drift: Vec::new(),
        planned: Vec::new(),
        applied: Vec::new(),
        unmanaged: Vec::new(),
        conflicts: Vec::new(),
        records: Vec::new(),
        found: Vec::new(),
        foreign: Vec::new(),
    };
    let mut last_conflict: Option<PvtzError> = None;
    // True after a round that applied all its changes: the next read should be converged,
    // so any difference it shows was written by someone else in between.
    let mut applied_all = false;
    for round in 0..=MAX_ROUNDS {
        let (records, _) = with_retry(creds, opts, |c| {
            let (zone, rr) = (binding.zone_id.clone(), binding.rr.clone());
            async move { client.describe_zone_records(&c, &zone, &rr).await }
        })
        .await
        .map_err(|mut e| {
            if e.kind == ErrorKind::Config {
                e.message = format!("{binding}: {}", e.message);
            }
            e
        })?;
        let plan = plan::plan(&desired, &records)
            .map_err(|e| config_error(binding, "Regdns.InvalidDesired", e.to_string()))?;
        report.records = records
            .iter()
            .filter(|r| plan::is_managed_type(&r.rtype))
            .cloned()
            .collect();
        if round == 0 {
            report.found = records.clone();
            report.drift = plan.drift.clone();
            report.planned = plan.describe();
            report.unmanaged = plan.unmanaged.clone();
            report.conflicts = plan.conflicts.clone();
            if !plan.drift.is_empty() {
                tracing::info!(binding = %binding, drift = ?plan.drift, "PrivateZone records differ from the desired answer");
            }
        } else if applied_all && !plan.drift.is_empty() {
            tracing::info!(binding = %binding, drift = ?plan.drift, "PrivateZone records changed by someone else while regdns was writing them");
            report.foreign.extend(plan.drift.iter().cloned());
        }
        if !plan.conflicts.is_empty() {
            if opts.dry_run {
                return Ok(report);
            }
            let reasons: Vec<String> = plan.conflicts.iter().map(|c| c.reason.clone()).collect();
            return Err(config_error(binding, "Regdns.Conflict", reasons.join("; ")));
        }
        if plan.ops.is_empty() {
            return Ok(report);
        }
        if opts.dry_run {
            return Ok(report);
        }
        if round == MAX_ROUNDS {
            break;
        }
        let mut restart = false;
        for op in &plan.ops {
            match apply_op(client, creds, binding, op, opts).await {
                Ok((change, attempts)) => report.applied.push(AppliedChange {
                    op: op.clone(),
                    description: plan.describe_op(op),
                    record_id: change.record_id,
                    request_id: change.request_id,
                    attempts,
                }),
                Err(e) if e.is_conflict() || e.is_unknown_record() => {
                    tracing::info!(binding = %binding, op = %plan.describe_op(op), code = %e.code, request_id = e.request_id.as_deref().unwrap_or("-"), "PrivateZone change conflicted; re-reading to confirm");
                    last_conflict = Some(e);
                    restart = true;
                    break;
                }
                Err(mut e) => {
                    e.message = format!("{binding}: {}: {}", plan.describe_op(op), e.message);
                    return Err(e);
                }
            }
        }
        applied_all = !restart;
        if !restart {
            last_conflict = None;
        }
    }
    let mut e = last_conflict
        .unwrap_or_else(|| config_error(binding, "Regdns.NotConverged", String::new()));
    e.message = format!(
        "{binding}: records did not converge after {MAX_ROUNDS} rounds (someone else changing them?): {}",
        e.message
    );
    Err(e)
}

async fn apply_op(
    client: &PvtzClient,
    creds: &CredentialProvider,
    binding: &Binding,
    op: &Op,
    opts: &ReconcileOptions,
) -> Result<(client::Change, u32), PvtzError> {
    // One token per logical change, the same on every retry of it.
    let token = new_client_token();
    match op {
        Op::Add { rtype, value, ttl } => {
            let spec = RecordSpec {
                rr: binding.rr.clone(),
                rtype: rtype.clone(),
                value: value.clone(),
                ttl: *ttl,
            };
            with_retry(creds, opts, |c| {
                let (spec, token) = (&spec, &token);
                async move {
                    client
                        .add_zone_record(&c, &binding.zone_id, spec, token)
                        .await
                }
            })
            .await
        }
        Op::Update {
            record_id,
            rtype,
            value,
            ttl,
        } => {
            let spec = RecordSpec {
                rr: binding.rr.clone(),
                rtype: rtype.clone(),
                value: value.clone(),
                ttl: *ttl,
            };
            with_retry(creds, opts, |c| {
                let (spec, token) = (&spec, &token);
                async move { client.update_zone_record(&c, *record_id, spec, token).await }
            })
            .await
        }
        Op::Delete { record_id } => {
            with_retry(creds, opts, |c| {
                let token = &token;
                async move { client.delete_zone_record(&c, *record_id, token).await }
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_bounds() {
        let o = ReconcileOptions {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..Default::default()
        };
        for attempt in 1..10 {
            let cap = Duration::from_millis(100 * (1 << (attempt - 1))).min(o.max_backoff);
            assert!(backoff(&o, attempt, None) <= cap);
        }
        assert_eq!(
            backoff(&o, 1, Some(Duration::from_millis(700))),
            Duration::from_millis(700)
        );
        assert_eq!(backoff(&o, 1, Some(Duration::from_secs(9))), o.max_backoff);
        let t = new_client_token();
        assert!(t.len() <= 64 && t.is_ascii());
    }
}
