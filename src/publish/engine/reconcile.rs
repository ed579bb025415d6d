//! One reconcile of one binding, for every provider: read → plan → execute → confirm, with
//! the retry policy (backoff with jitter on throttling and transient errors, one credential
//! refresh on an auth error, one immediate retry on a clock error) and re-read rounds after
//! a conflict (an "already exists", a vanished record, a failed UPDATE prerequisite).

use std::time::Duration;

use super::plan::{self, Conflict, Desired, Op, RecordInfo};
use super::provider::Provider;
use super::{ErrorKind, PublishError};

/// How [`reconcile`] behaves.
#[derive(Clone, Debug)]
pub struct ReconcileOptions {
    /// Plan only, change nothing.
    pub dry_run: bool,
    /// Attempts per call (first try included) on throttling / transient errors.
    pub max_attempts: u32,
    /// Backoff base: attempt n waits a random time in `[0, min(max_backoff, base·2ⁿ⁻¹)]`.
    pub base_backoff: Duration,
    /// Upper bound of one wait (also caps a service's retry-after).
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
    /// Human description (from [`plan::Plan::describe_op`]).
    pub description: String,
    /// Id of the record changed (the new id for an add).
    pub record_id: String,
    /// Request id of the successful call.
    pub request_id: String,
    /// Attempts the call took (1 = no retry).
    pub attempts: u32,
}

/// What [`reconcile`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileReport<B> {
    /// The binding reconciled.
    pub binding: B,
    /// True when nothing was written.
    pub dry_run: bool,
    /// How the records differed from the desired answer before this run (empty: in sync).
    pub drift: Vec<String>,
    /// The first plan, one line per op (also filled in dry-run).
    pub planned: Vec<String>,
    /// Changes made, in order.
    pub applied: Vec<AppliedChange>,
    /// Records at the name that regdns does not manage (left untouched).
    pub unmanaged: Vec<RecordInfo>,
    /// Unmanaged records blocking the answer (only returned in dry-run; otherwise an error).
    pub conflicts: Vec<Conflict>,
    /// The managed records after the run (a confirmed read when something changed).
    pub records: Vec<RecordInfo>,
    /// Every record at the name as first read, before any change (the caller compares it
    /// with what it last wrote to tell a manual edit from its own earlier answer).
    pub found: Vec<RecordInfo>,
    /// Values found by a confirming read that this run did not write (someone edited the
    /// records while the run was applying its changes); they were repaired by the run.
    pub foreign: Vec<String>,
}

impl<B> ReconcileReport<B> {
    /// True when something was changed.
    pub fn changed(&self) -> bool {
        !self.applied.is_empty()
    }
}

/// How many read-plan-apply rounds one reconcile may take (a conflict or a record that
/// vanished starts a new round).
pub const MAX_ROUNDS: u32 = 3;

fn local(
    service: &'static super::Service,
    binding: &dyn std::fmt::Display,
    code: &str,
    msg: String,
) -> PublishError {
    PublishError::local(ErrorKind::Config, code, format!("{binding}: {msg}")).of(service)
}

/// An idempotence token (`ClientToken`): up to 64 ASCII characters, one per logical change.
pub fn new_token() -> String {
    format!("regdns-{:032x}", rand::random::<u128>())
}

/// Full-jitter exponential backoff for the given attempt (1-based), or `retry_after`.
pub fn backoff(opts: &ReconcileOptions, attempt: u32, retry_after: Option<Duration>) -> Duration {
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

/// Runs one provider call with the retry policy: backoff on throttled/transient/transport
/// errors up to `max_attempts`, one credential refresh on an auth error, one immediate
/// retry on a clock error. `f` must be safe to repeat (same idempotence token if any).
pub async fn with_retry<P, T, F, Fut>(
    provider: &P,
    opts: &ReconcileOptions,
    mut f: F,
) -> Result<(T, u32), PublishError>
where
    P: Provider,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PublishError>>,
{
    let max = opts.max_attempts.max(1);
    let mut attempt = 0u32;
    let mut refreshed = false;
    let mut clock_retried = false;
    let service = P::SERVICE;
    loop {
        attempt += 1;
        let err = match f().await {
            Ok(v) => return Ok((v, attempt)),
            Err(e) => e,
        };
        match &err.kind {
            ErrorKind::Throttled { retry_after } if attempt < max => {
                let wait = backoff(opts, attempt, *retry_after);
                tracing::info!(service, action = %err.action, code = %err.code, attempt, wait_ms = wait.as_millis() as u64, "throttled; backing off");
                tokio::time::sleep(wait).await;
            }
            ErrorKind::Transient | ErrorKind::Transport if attempt < max => {
                let wait = backoff(opts, attempt, None);
                tracing::info!(service, action = %err.action, code = %err.code, attempt, wait_ms = wait.as_millis() as u64, "call failed; retrying");
                tokio::time::sleep(wait).await;
            }
            ErrorKind::Auth if !refreshed && !err.is_local() => {
                refreshed = true;
                match provider.refresh_credentials().await {
                    Ok(true) => {
                        tracing::warn!(service, action = %err.action, code = %err.code, "credentials rejected; refreshed them, retrying once");
                    }
                    Ok(false) => {
                        let mut e = err;
                        e.attempts = attempt.min(u32::from(u16::MAX)) as u16;
                        return Err(e);
                    }
                    Err(re) => {
                        let mut e = err;
                        e.message = format!("{}; credential refresh also failed: {re}", e.message);
                        e.attempts = attempt.min(u32::from(u16::MAX)) as u16;
                        return Err(e);
                    }
                }
            }
            ErrorKind::Clock if !clock_retried => {
                clock_retried = true;
                tracing::warn!(service, action = %err.action, code = %err.code, "timestamp or nonce rejected; retrying once with new ones");
            }
            ErrorKind::Clock => {
                let mut e = err;
                e.message = format!(
                    "{} (rejected twice: the host clock is probably skewed from the service's)",
                    e.message
                );
                e.attempts = attempt.min(u32::from(u16::MAX)) as u16;
                return Err(e);
            }
            _ => {
                let mut e = err;
                e.attempts = attempt.min(u32::from(u16::MAX)) as u16;
                return Err(e);
            }
        }
    }
}

/// Makes the managed records of `binding` equal `desired`: read, plan, execute, confirm.
///
/// Idempotent: when the records already match, it only reads. A conflict ("already
/// exists", a vanished record, a failed prerequisite) starts a new read-plan round (at most
/// [`MAX_ROUNDS`]), so a change that an earlier, seemingly failed attempt already made is
/// confirmed instead of repeated. After changes, a final read confirms convergence.
/// `dry_run` stops after the first plan. `desired.rr` is the binding's name.
pub async fn reconcile<P: Provider>(
    provider: &P,
    binding: &P::Binding,
    desired: &Desired,
    opts: &ReconcileOptions,
) -> Result<ReconcileReport<P::Binding>, PublishError> {
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
    let service = P::SERVICE;
    let svc = P::service();
    let mut last_conflict: Option<PublishError> = None;
    // True after a round that applied all its changes: the next read should be converged,
    // so any difference it shows was written by someone else in between.
    let mut applied_all = false;
    for round in 0..=MAX_ROUNDS {
        let (records, _) = with_retry(provider, opts, || provider.read(binding))
            .await
            .map_err(|mut e| {
                if e.kind == ErrorKind::Config {
                    e.message = format!("{binding}: {}", e.message);
                }
                e
            })?;
        let plan = plan::plan(desired, &records)
            .map_err(|e| local(svc, binding, "Regdns.InvalidDesired", e.to_string()))?;
        report.records = records
            .iter()
            .filter(|r| plan::is_managed_type(&r.rtype) && r.rr.eq_ignore_ascii_case(&desired.rr))
            .cloned()
            .collect();
        if round == 0 {
            report.found = records.clone();
            report.drift = plan.drift.clone();
            report.planned = plan.describe();
            report.unmanaged = plan.unmanaged.clone();
            report.conflicts = plan.conflicts.clone();
            if !plan.drift.is_empty() {
                tracing::info!(service, binding = %binding, drift = ?plan.drift, "records differ from the desired answer");
            }
        } else if applied_all && !plan.drift.is_empty() {
            tracing::info!(service, binding = %binding, drift = ?plan.drift, "records changed by someone else while regdns was writing them");
            report.foreign.extend(plan.drift.iter().cloned());
        }
        if !plan.conflicts.is_empty() {
            if opts.dry_run {
                return Ok(report);
            }
            let reasons: Vec<String> = plan.conflicts.iter().map(|c| c.reason.clone()).collect();
            return Err(local(svc, binding, "Regdns.Conflict", reasons.join("; ")));
        }
        if plan.ops.is_empty() || opts.dry_run {
            return Ok(report);
        }
        if round == MAX_ROUNDS {
            break;
        }
        // One call per op, or the whole plan in one atomic call.
        let batches: Vec<&[Op]> = if P::ATOMIC {
            vec![&plan.ops[..]]
        } else {
            plan.ops.chunks(1).collect()
        };
        let mut restart = false;
        for ops in batches {
            let what = ops
                .iter()
                .map(|op| plan.describe_op(op))
                .collect::<Vec<_>>()
                .join("; ");
            // One idempotence token per logical change, the same on every retry of it.
            let token = new_token();
            match with_retry(provider, opts, || {
                provider.execute(binding, ops, &records, &token)
            })
            .await
            {
                Ok((changes, attempts)) => {
                    for (op, change) in ops.iter().zip(changes) {
                        report.applied.push(AppliedChange {
                            op: op.clone(),
                            description: plan.describe_op(op),
                            record_id: change.record_id,
                            request_id: change.request_id,
                            attempts,
                        });
                    }
                }
                Err(e) if e.reread => {
                    tracing::info!(service, binding = %binding, op = %what, code = %e.code, request_id = e.request_id.as_deref().unwrap_or("-"), "change conflicted; re-reading to confirm");
                    last_conflict = Some(e);
                    restart = true;
                    break;
                }
                Err(mut e) => {
                    e.message = format!("{binding}: {what}: {}", e.message);
                    return Err(e);
                }
            }
        }
        applied_all = !restart;
        if !restart {
            last_conflict = None;
        }
    }
    let mut e =
        last_conflict.unwrap_or_else(|| local(svc, binding, "Regdns.NotConverged", String::new()));
    e.message = format!(
        "{binding}: records did not converge after {MAX_ROUNDS} rounds (someone else changing them?): {}",
        e.message
    );
    Err(e)
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
    }
}
