//! The engine's policies against an in-memory provider: retries and their bounds, the one
//! credential refresh, re-read rounds, atomic execution, non-convergence, dry run; under
//! paused time. The real providers are tested end to end against Knot and the strict API
//! fakes (`tests/publish_*.rs`, `tests/pvtz*.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use super::reconcile::*;
use super::*;
use crate::config::env::Env;
use crate::decide::Decision;
use crate::model::Model;

static MEM: Service = Service {
    name: "Memory",
    ram: None,
};

/// Records in memory. Scripted failures are returned (once each) by the next reads or
/// executes before they act.
#[derive(Default)]
struct Mem<const ATOMIC: bool> {
    records: Mutex<Vec<RecordInfo>>,
    read_failures: Mutex<VecDeque<PublishError>>,
    exec_failures: Mutex<VecDeque<PublishError>>,
    /// Called after every successful execute: someone else editing the records.
    meddle: Option<fn(&mut Vec<RecordInfo>)>,
    reads: Mutex<u32>,
    /// Number of ops of each execute call that acted.
    executes: Mutex<Vec<usize>>,
    refreshes: Mutex<u32>,
    next_id: Mutex<u64>,
}

fn rec(id: &str, t: &str, v: &str) -> RecordInfo {
    RecordInfo {
        record_id: id.into(),
        rr: "@".into(),
        rtype: t.into(),
        value: v.into(),
        ttl: 30,
        status: None,
        line: None,
        weight: None,
        priority: None,
    }
}

fn fail(kind: ErrorKind, code: &str, reread: bool) -> PublishError {
    PublishError {
        reread,
        action: "Call".into(),
        ..PublishError::local(kind, code, "scripted").of(&MEM)
    }
}

impl<const A: bool> Provider for Mem<A> {
    type Binding = String;
    const NAME: &'static str = "memory";
    const SERVICE: &'static str = "Memory";
    const ATOMIC: bool = A;

    fn service() -> &'static Service {
        &MEM
    }
    fn targets(_: &Model, _: &BTreeMap<(String, String), Decision>) -> Vec<BindingTarget<String>> {
        Vec::new()
    }
    async fn connect(_: &Model, _: &Env) -> Result<Self, String> {
        Err("not used".into())
    }
    async fn read(&self, _: &String) -> Result<Vec<RecordInfo>, PublishError> {
        *self.reads.lock().unwrap() += 1;
        if let Some(e) = self.read_failures.lock().unwrap().pop_front() {
            return Err(e);
        }
        Ok(self.records.lock().unwrap().clone())
    }
    async fn execute(
        &self,
        _: &String,
        ops: &[Op],
        _: &[RecordInfo],
        _: &str,
    ) -> Result<Vec<Change>, PublishError> {
        if let Some(e) = self.exec_failures.lock().unwrap().pop_front() {
            return Err(e);
        }
        self.executes.lock().unwrap().push(ops.len());
        let mut recs = self.records.lock().unwrap();
        let mut out = Vec::new();
        for op in ops {
            let id = match op {
                Op::Add { rtype, value, .. } => {
                    let mut n = self.next_id.lock().unwrap();
                    *n += 1;
                    let id = format!("n{n}");
                    recs.push(rec(&id, rtype, value));
                    id
                }
                Op::Update {
                    record_id,
                    rtype,
                    value,
                    ttl,
                } => {
                    let r = recs.iter_mut().find(|r| &r.record_id == record_id).unwrap();
                    r.rtype = rtype.clone();
                    r.value = value.clone();
                    r.ttl = *ttl;
                    record_id.clone()
                }
                Op::Delete { record_id } => {
                    recs.retain(|r| &r.record_id != record_id);
                    record_id.clone()
                }
            };
            out.push(Change {
                record_id: id,
                request_id: "R".into(),
            });
        }
        if let Some(m) = self.meddle {
            m(&mut recs);
        }
        Ok(out)
    }
    async fn refresh_credentials(&self) -> Result<bool, String> {
        *self.refreshes.lock().unwrap() += 1;
        Ok(true)
    }
    fn dry_run(_: &Model) -> bool {
        false
    }
    fn drift_interval(_: &Model) -> Duration {
        Duration::from_secs(60)
    }
}

fn opts() -> ReconcileOptions {
    ReconcileOptions {
        dry_run: false,
        max_attempts: 4,
        base_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
    }
}

fn want_a() -> Desired {
    Desired::new("@", "A", &["10.0.0.1", "10.0.0.2"], 30)
}

/// A CNAME in place; `exec_failures` scripted.
fn mem<const A: bool>(exec_failures: Vec<PublishError>) -> Mem<A> {
    let m = Mem::<A>::default();
    m.records
        .lock()
        .unwrap()
        .push(rec("1", "CNAME", "a.example.com"));
    *m.exec_failures.lock().unwrap() = exec_failures.into();
    m
}

fn values<const A: bool>(m: &Mem<A>) -> Vec<String> {
    let mut v: Vec<String> = m
        .records
        .lock()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r.rtype, r.value))
        .collect();
    v.sort();
    v
}

#[tokio::test(start_paused = true)]
async fn throttling_and_transient_errors_back_off_then_converge() {
    let m = mem::<false>(vec![
        fail(
            ErrorKind::Throttled { retry_after: None },
            "Throttling",
            false,
        ),
        fail(ErrorKind::Transient, "InternalError", false),
    ]);
    let t0 = tokio::time::Instant::now();
    let r = reconcile(&m, &"b".to_string(), &want_a(), &opts())
        .await
        .unwrap();
    assert_eq!(r.applied.len(), 2, "{r:?}");
    assert_eq!(r.applied[0].attempts, 3, "two failures, then success");
    assert_eq!(*m.executes.lock().unwrap(), vec![1, 1], "one call per op");
    // Two full-jitter backoffs, at most 100 ms and 200 ms (virtual time).
    assert!(t0.elapsed() <= Duration::from_millis(300));
    assert_eq!(values(&m), vec!["A 10.0.0.1", "A 10.0.0.2"]);
    // Read, and the confirming read.
    assert_eq!(*m.reads.lock().unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn retries_are_bounded_and_auth_refreshes_once() {
    let many = (0..10)
        .map(|_| fail(ErrorKind::Transport, "Transport", false))
        .collect();
    let e = reconcile(&mem::<false>(many), &"b".to_string(), &want_a(), &opts())
        .await
        .unwrap_err();
    assert_eq!(e.attempts, 4);
    assert!(e.to_string().contains("gave up after 4 attempts"), "{e}");

    let m = mem::<false>(vec![fail(ErrorKind::Auth, "InvalidKey", false)]);
    reconcile(&m, &"b".to_string(), &want_a(), &opts())
        .await
        .unwrap();
    assert_eq!(*m.refreshes.lock().unwrap(), 1);

    let m = mem::<false>(vec![
        fail(ErrorKind::Auth, "InvalidKey", false),
        fail(ErrorKind::Auth, "InvalidKey", false),
    ]);
    let e = reconcile(&m, &"b".to_string(), &want_a(), &opts())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(
        *m.refreshes.lock().unwrap(),
        1,
        "refreshed once, then reported"
    );
    assert_eq!(values(&m), vec!["CNAME a.example.com"], "nothing written");

    // A fatal error is not retried.
    let m = mem::<false>(vec![fail(ErrorKind::Config, "Invalid", false)]);
    let e = reconcile(&m, &"b".to_string(), &want_a(), &opts())
        .await
        .unwrap_err();
    assert_eq!((e.code.as_str(), e.attempts), ("Invalid", 1));
}

#[tokio::test(start_paused = true)]
async fn a_reread_error_starts_a_new_round() {
    // The first execute answers "re-read" (e.g. NXRRSET, DomainRecordDuplicate): the
    // engine reads again, plans again, and converges.
    let m = mem::<false>(vec![fail(ErrorKind::Config, "Duplicate", true)]);
    let r = reconcile(&m, &"b".to_string(), &want_a(), &opts())
        .await
        .unwrap();
    assert!(r.changed());
    assert_eq!(values(&m), vec!["A 10.0.0.1", "A 10.0.0.2"]);
    assert_eq!(
        *m.reads.lock().unwrap(),
        3,
        "first read, re-read, confirming read"
    );
}

#[tokio::test(start_paused = true)]
async fn an_atomic_provider_gets_the_whole_plan_in_one_call() {
    let m = mem::<true>(Vec::new());
    let r = reconcile(&m, &"b".to_string(), &want_a(), &opts())
        .await
        .unwrap();
    assert_eq!(*m.executes.lock().unwrap(), vec![2]);
    assert_eq!(r.applied.len(), 2);
    assert_eq!(values(&m), vec!["A 10.0.0.1", "A 10.0.0.2"]);
}

#[tokio::test(start_paused = true)]
async fn records_rewritten_by_someone_else_do_not_converge() {
    let m = Mem::<true> {
        meddle: Some(|recs: &mut Vec<RecordInfo>| {
            recs.clear();
            recs.push(rec("x", "CNAME", "manual.example.com"));
        }),
        ..mem::<true>(Vec::new())
    };
    let e = reconcile(&m, &"b".to_string(), &want_a(), &opts())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("did not converge"), "{e}");
    assert_eq!(m.executes.lock().unwrap().len(), MAX_ROUNDS as usize);
}

#[tokio::test(start_paused = true)]
async fn dry_run_only_reads() {
    let m = mem::<false>(Vec::new());
    let r = reconcile(
        &m,
        &"b".to_string(),
        &want_a(),
        &ReconcileOptions {
            dry_run: true,
            ..opts()
        },
    )
    .await
    .unwrap();
    assert_eq!(r.planned.len(), 2, "{r:?}");
    assert!(m.executes.lock().unwrap().is_empty());
    assert_eq!(values(&m), vec!["CNAME a.example.com"]);
}
