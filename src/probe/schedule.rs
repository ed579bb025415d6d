//! Rise/fall hysteresis and the per-instance probe loop.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::Rng;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use super::canary::{AcrSource, CanaryAuth, CanaryOutcome, read_credentials_file};
use super::http::Prober;
use super::{CheckResult, DigestSeen, InstanceSpec, ProbeReport, Transition, probe_once};

/// Probes running at once across all instances, by default.
pub const DEFAULT_MAX_CONCURRENT_PROBES: usize = 64;

/// Floor of the default fast interval.
const MIN_FAST_INTERVAL: Duration = Duration::from_millis(200);

/// interval/4, but at least 200 ms.
pub fn default_fast_interval(interval: Duration) -> Duration {
    (interval / 4).max(MIN_FAST_INTERVAL)
}

fn fast_interval(spec: &InstanceSpec) -> Duration {
    spec.fast_interval
        .filter(|d| !d.is_zero())
        .unwrap_or_else(|| default_fast_interval(spec.interval))
}

/// Random delay before an instance's first probe, in `[0, interval)`.
pub(crate) fn start_jitter(interval: Duration) -> Duration {
    if interval.is_zero() {
        return Duration::ZERO;
    }
    rand::rng().random_range(Duration::ZERO..interval)
}

/// Concluded health of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HealthState {
    /// No conclusion yet (before `rise` successes or `fall` failures).
    Unknown,
    /// Concluded healthy.
    Up,
    /// Concluded unhealthy.
    Down,
}

/// Pure rise/fall hysteresis: `rise` consecutive successes conclude Up,
/// `fall` consecutive failures conclude Down. The first conclusion from
/// Unknown is a transition too.
#[derive(Debug, Clone)]
pub struct HealthCounter {
    rise: u32,
    fall: u32,
    state: HealthState,
    oks: u32,
    fails: u32,
}

impl HealthCounter {
    /// `rise`/`fall` of 0 are taken as 1.
    pub fn new(rise: u32, fall: u32) -> Self {
        HealthCounter {
            rise: rise.max(1),
            fall: fall.max(1),
            state: HealthState::Unknown,
            oks: 0,
            fails: 0,
        }
    }

    /// Records one probe; returns the new up state on a transition.
    pub fn observe(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.fails = 0;
            self.oks = self.oks.saturating_add(1);
            if self.state != HealthState::Up && self.oks >= self.rise {
                self.state = HealthState::Up;
                return Some(true);
            }
        } else {
            self.oks = 0;
            self.fails = self.fails.saturating_add(1);
            if self.state != HealthState::Down && self.fails >= self.fall {
                self.state = HealthState::Down;
                return Some(false);
            }
        }
        None
    }

    /// Counters in motion towards a change (or a first conclusion): the
    /// scheduler then uses the fast interval.
    pub fn moving(&self) -> bool {
        (self.state != HealthState::Up && self.oks > 0)
            || (self.state != HealthState::Down && self.fails > 0)
    }

    /// The current concluded state.
    pub fn state(&self) -> HealthState {
        self.state
    }
}

/// What every instance task shares.
#[derive(Clone)]
pub struct SchedCtx {
    /// Where health transitions are sent (the controller).
    pub tx: mpsc::Sender<Transition>,
    /// Latest report of every instance, keyed by instance id.
    pub reports: Arc<watch::Sender<BTreeMap<String, ProbeReport>>>,
    /// Tasks stop when it turns true (or its sender is dropped).
    pub shutdown: watch::Receiver<bool>,
    /// Global bound on probes in flight.
    pub limit: Arc<Semaphore>,
    /// Where canary digests are sent (the controller), if anywhere.
    pub digests: Option<mpsc::Sender<DigestSeen>>,
}

impl SchedCtx {
    /// Builds a context allowing at most `max_concurrency` probes in flight
    /// (0 is taken as 1).
    pub fn new(
        tx: mpsc::Sender<Transition>,
        reports: watch::Sender<BTreeMap<String, ProbeReport>>,
        shutdown: watch::Receiver<bool>,
        max_concurrency: usize,
    ) -> Self {
        SchedCtx {
            tx,
            reports: Arc::new(reports),
            shutdown,
            limit: Arc::new(Semaphore::new(max_concurrency.max(1))),
            digests: None,
        }
    }

    /// Sends every canary digest to `tx` as well.
    pub fn with_digests(mut self, tx: mpsc::Sender<DigestSeen>) -> Self {
        self.digests = Some(tx);
        self
    }
}

/// One task per instance running the real HTTP probe, at most
/// [`DEFAULT_MAX_CONCURRENT_PROBES`] probes at once.
pub fn spawn_prober(
    specs: Vec<InstanceSpec>,
    tx: mpsc::Sender<Transition>,
    reports: watch::Sender<BTreeMap<String, ProbeReport>>,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    spawn_prober_with(
        specs,
        SchedCtx::new(tx, reports, shutdown, DEFAULT_MAX_CONCURRENT_PROBES),
    )
}

/// [`spawn_prober`] with a caller-built context. An instance whose
/// [`Prober`] cannot be built (bad `ca_file`, …) still gets a task, whose
/// every report fails with a `config` check naming the problem. A spec with
/// `addresses` runs every check (canary included) at each address and reports them
/// together ([`merge_at_addresses`](super::merge_at_addresses)); its canary reports no
/// digest (replication is judged on the instance's own canary).
pub fn spawn_prober_with(specs: Vec<InstanceSpec>, ctx: SchedCtx) -> Vec<JoinHandle<()>> {
    specs
        .into_iter()
        .map(|spec| match Dialled::build(&spec) {
            Ok(dialled) => {
                let dialled = Arc::new(dialled);
                let canary = spec.canary.is_some().then(|| {
                    let d = dialled.clone();
                    move || {
                        let d = d.clone();
                        async move { d.canary().await }
                    }
                });
                let d = dialled.clone();
                let probe = move || {
                    let d = d.clone();
                    async move { d.probe().await }
                };
                spawn_instance_with_canary(spec, probe, canary, ctx.clone())
            }
            Err(e) => {
                tracing::error!(instance = %spec.id, error = %e, "cannot build prober");
                let detail = e.to_string();
                let id = spec.id.clone();
                let probe = move || {
                    let id = id.clone();
                    let detail = detail.clone();
                    async move {
                        ProbeReport::from_checks(
                            id,
                            vec![CheckResult {
                                check: "config".into(),
                                ok: false,
                                latency: Duration::ZERO,
                                detail,
                            }],
                        )
                    }
                };
                spawn_instance(spec, probe, ctx.clone())
            }
        })
        .collect()
}

/// One way of reaching an instance: its spec (dialled at one address, or as written),
/// the HTTP client and the ACR login of its canary.
struct Dial {
    spec: InstanceSpec,
    prober: Prober,
    acr: Option<AcrSource>,
}

/// Every way a subject is probed: the instance as written, or each of a view's addresses.
struct Dialled {
    id: String,
    /// `None`: the instance as written; else one entry per address.
    at: Vec<(Option<std::net::IpAddr>, Dial)>,
}

impl Dialled {
    fn build(spec: &InstanceSpec) -> Result<Dialled, super::ProbeError> {
        let dial = |s: InstanceSpec| -> Result<Dial, super::ProbeError> {
            let prober = Prober::new(&s)?;
            let acr = s.canary.as_ref().and_then(|c| AcrSource::for_auth(&c.auth));
            Ok(Dial {
                spec: s,
                prober,
                acr,
            })
        };
        let at = if spec.addresses.is_empty() {
            vec![(None, dial(spec.clone())?)]
        } else {
            spec.addresses
                .iter()
                .map(|a| Ok((Some(*a), dial(spec.at(*a))?)))
                .collect::<Result<_, super::ProbeError>>()?
        };
        Ok(Dialled {
            id: spec.id.clone(),
            at,
        })
    }

    async fn probe(&self) -> ProbeReport {
        if let [(None, d)] = &self.at[..] {
            return probe_once(&d.spec, &d.prober).await;
        }
        let runs = self.at.iter().map(|(a, d)| async move {
            (
                a.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
                probe_once(&d.spec, &d.prober).await,
            )
        });
        super::merge_at_addresses(&self.id, futures_util::future::join_all(runs).await)
    }

    async fn canary(&self) -> CanaryOutcome {
        if let [(None, d)] = &self.at[..] {
            return run_canary(&d.spec, &d.prober, d.acr.as_ref()).await;
        }
        let runs = self.at.iter().map(|(a, d)| async move {
            (*a, run_canary(&d.spec, &d.prober, d.acr.as_ref()).await)
        });
        let outcomes = futures_util::future::join_all(runs).await;
        let ok = outcomes.iter().all(|(_, o)| o.check.ok);
        let detail = outcomes
            .iter()
            .filter(|(_, o)| ok || !o.check.ok)
            .map(|(a, o)| match a {
                Some(a) => format!("{a}: {}", o.check.detail),
                None => o.check.detail.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        CanaryOutcome {
            check: CheckResult {
                check: "canary".into(),
                ok,
                latency: outcomes
                    .iter()
                    .map(|(_, o)| o.check.latency)
                    .max()
                    .unwrap_or_default(),
                detail,
            },
            digest: None,
        }
    }
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    // Err means the sender is gone: also a shutdown.
    let _ = rx.wait_for(|v| *v).await;
}

/// One canary pull of `spec` with the credentials its `canary.auth` names.
async fn run_canary(
    spec: &InstanceSpec,
    prober: &Prober,
    acr: Option<&AcrSource>,
) -> CanaryOutcome {
    let Some(c) = &spec.canary else {
        // Only scheduled for instances with a canary (spawn_prober_with).
        return CanaryOutcome {
            check: CheckResult {
                check: "canary".into(),
                ok: false,
                latency: Duration::ZERO,
                detail: "no canary configured".into(),
            },
            digest: None,
        };
    };
    let creds = match &c.auth {
        CanaryAuth::Anonymous => Ok(None),
        CanaryAuth::File(path) => read_credentials_file(path).map(Some),
        CanaryAuth::Acr { .. } => match acr {
            Some(a) => a.credentials().await,
            None => Err("ACR login: not configured".into()),
        },
    };
    prober.canary(&spec.url, c, creds).await
}

/// A probe function that is never called: the canary of an instance without one.
pub type NoCanary = fn() -> std::future::Ready<CanaryOutcome>;

/// Runs the probe loop of one instance with any probe function: first probe
/// after a random jitter in `[0, interval)`, then one probe every
/// `interval` (start to start; `fast_interval` while the counters move),
/// never two at once: a probe longer than the wait is followed immediately
/// by the next one.
pub fn spawn_instance<P, Fut>(spec: InstanceSpec, probe: P, ctx: SchedCtx) -> JoinHandle<()>
where
    P: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ProbeReport> + Send + 'static,
{
    spawn_instance_with_canary(spec, probe, None::<NoCanary>, ctx)
}

/// The combined health of the `v2` checks and the canary: up when both are, down as soon
/// as either is, unknown otherwise.
pub fn combine(v2: HealthState, canary: Option<HealthState>) -> HealthState {
    use HealthState::*;
    match (v2, canary) {
        (s, None) => s,
        (Down, _) | (_, Some(Down)) => Down,
        (Up, Some(Up)) => Up,
        _ => Unknown,
    }
}

type Boxed<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

/// `fut`, run once it holds a permit of the global probe limit.
fn with_permit<T: Send + 'static>(
    limit: &Arc<Semaphore>,
    fut: impl Future<Output = T> + Send + 'static,
) -> Boxed<T> {
    let limit = limit.clone();
    Box::pin(async move {
        let _permit = limit.acquire_owned().await;
        fut.await
    })
}

/// [`spawn_instance`] with a canary pull: it runs on its own interval (the spec's
/// `canary.interval`, `fast_interval` while its counter moves), concurrently with the
/// `v2` probes (never two canaries at once), with its own [`HealthCounter`] of the same
/// rise/fall. Transitions are sent when the combined health ([`combine`]) changes; every
/// report carries the latest canary check; each canary digest goes to `ctx.digests`.
pub fn spawn_instance_with_canary<P, Fut, C, CFut>(
    spec: InstanceSpec,
    mut probe: P,
    mut canary: Option<C>,
    ctx: SchedCtx,
) -> JoinHandle<()>
where
    P: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ProbeReport> + Send + 'static,
    C: FnMut() -> CFut + Send + 'static,
    CFut: Future<Output = CanaryOutcome> + Send + 'static,
{
    tokio::spawn(async move {
        let SchedCtx {
            tx,
            reports,
            mut shutdown,
            limit,
            digests,
        } = ctx;
        let fast = fast_interval(&spec);
        let canary_interval = spec
            .canary
            .as_ref()
            .map(|c| c.interval)
            .unwrap_or(spec.interval);
        let mut v2_counter = HealthCounter::new(spec.rise, spec.fall);
        let mut canary_counter = canary
            .is_some()
            .then(|| HealthCounter::new(spec.rise, spec.fall));
        let mut health = HealthState::Unknown;
        let mut last_canary: Option<CheckResult> = None;
        let mut last_digest: Option<String> = None;
        let mut last_v2_summary = String::new();
        let mut next_v2 = Instant::now() + start_jitter(spec.interval);
        // The first canary runs early: health is not concluded before it did.
        let mut next_canary = Instant::now() + start_jitter(spec.interval.min(canary_interval));
        let mut v2_running: Option<(Instant, Boxed<ProbeReport>)> = None;
        let mut canary_running: Option<(Instant, Boxed<CanaryOutcome>)> = None;
        let span = tracing::info_span!("probe", instance = %spec.id);
        loop {
            enum Step {
                StartV2,
                StartCanary,
                V2(ProbeReport),
                Canary(CanaryOutcome),
            }
            let step = tokio::select! {
                biased;
                _ = stopped(&mut shutdown) => return,
                r = async { v2_running.as_mut().map(|(_, f)| f).expect("guarded").await },
                    if v2_running.is_some() => Step::V2(r),
                c = async { canary_running.as_mut().map(|(_, f)| f).expect("guarded").await },
                    if canary_running.is_some() => Step::Canary(c),
                _ = tokio::time::sleep_until(next_v2), if v2_running.is_none() => Step::StartV2,
                _ = tokio::time::sleep_until(next_canary),
                    if canary_running.is_none() && canary.is_some() => Step::StartCanary,
            };
            let (up_change, reason) = match step {
                Step::StartV2 => {
                    let fut = probe().instrument(span.clone());
                    v2_running = Some((Instant::now(), with_permit(&limit, fut)));
                    continue;
                }
                Step::StartCanary => {
                    if let Some(c) = canary.as_mut() {
                        let fut = c().instrument(span.clone());
                        canary_running = Some((Instant::now(), with_permit(&limit, fut)));
                    }
                    continue;
                }
                Step::V2(mut report) => {
                    let started = v2_running
                        .take()
                        .map(|(s, _)| s)
                        .unwrap_or_else(Instant::now);
                    {
                        let _enter = span.enter();
                        tracing::debug!(ok = report.ok, summary = %report.summary(), "probe done");
                    }
                    v2_counter.observe(report.ok);
                    last_v2_summary = report.summary();
                    for c in &report.checks {
                        crate::metrics::probe_check(
                            &report.instance,
                            &c.check,
                            c.ok,
                            c.latency.as_secs_f64(),
                        );
                    }
                    if let Some(c) = &last_canary {
                        report.ok = report.ok && c.ok;
                        report.checks.push(c.clone());
                    }
                    reports.send_modify(|m| {
                        m.insert(spec.id.clone(), report);
                    });
                    let wait = if v2_counter.moving() {
                        fast
                    } else {
                        spec.interval
                    };
                    next_v2 = (started + wait).max(Instant::now());
                    conclude(
                        &mut health,
                        &v2_counter,
                        canary_counter.as_ref(),
                        &last_v2_summary,
                        last_canary.as_ref(),
                    )
                }
                Step::Canary(outcome) => {
                    let started = canary_running
                        .take()
                        .map(|(s, _)| s)
                        .unwrap_or_else(Instant::now);
                    {
                        let _enter = span.enter();
                        tracing::debug!(ok = outcome.check.ok, detail = %outcome.check.detail, "canary done");
                    }
                    let counter = canary_counter
                        .get_or_insert_with(|| HealthCounter::new(spec.rise, spec.fall));
                    counter.observe(outcome.check.ok);
                    // Counted with the checks, as `check="canary"`.
                    let c = &outcome.check;
                    crate::metrics::probe_check(&spec.id, &c.check, c.ok, c.latency.as_secs_f64());
                    let wait = if counter.moving() {
                        fast
                    } else {
                        canary_interval
                    };
                    next_canary = (started + wait).max(Instant::now());
                    let check = outcome.check.clone();
                    reports.send_modify(|m| {
                        if let Some(r) = m.get_mut(&spec.id) {
                            r.checks.retain(|c| c.check != "canary");
                            r.ok = r.checks.iter().all(|c| c.ok) && check.ok;
                            r.checks.push(check.clone());
                        }
                    });
                    last_canary = Some(check);
                    if let (Some(d), Some(dtx)) = (outcome.digest, digests.as_ref())
                        && last_digest.as_deref() != Some(d.as_str())
                    {
                        last_digest = Some(d.clone());
                        let seen = DigestSeen {
                            instance: spec.id.clone(),
                            digest: d,
                            at: SystemTime::now(),
                        };
                        tokio::select! {
                            biased;
                            _ = stopped(&mut shutdown) => return,
                            r = dtx.send(seen) => if r.is_err() { return },
                        }
                    }
                    conclude(
                        &mut health,
                        &v2_counter,
                        canary_counter.as_ref(),
                        &last_v2_summary,
                        last_canary.as_ref(),
                    )
                }
            };
            if let Some(up) = up_change {
                tracing::debug!(instance = %spec.id, up, %reason, "health transition");
                let t = Transition {
                    instance: spec.id.clone(),
                    up,
                    at: SystemTime::now(),
                    reason,
                };
                tokio::select! {
                    biased;
                    _ = stopped(&mut shutdown) => return,
                    r = tx.send(t) => if r.is_err() {
                        tracing::debug!(instance = %spec.id, "transition receiver gone, stopping");
                        return;
                    },
                }
            }
        }
    })
}

/// Updates the combined health; returns the new up state on a transition and its reason
/// (the failing parts when down, every part when up).
fn conclude(
    health: &mut HealthState,
    v2: &HealthCounter,
    canary: Option<&HealthCounter>,
    v2_summary: &str,
    last_canary: Option<&CheckResult>,
) -> (Option<bool>, String) {
    let new = combine(v2.state(), canary.map(HealthCounter::state));
    if new == *health || new == HealthState::Unknown {
        return (None, String::new());
    }
    *health = new;
    let canary_part = last_canary.map(|c| format!("{}: {}", c.check, c.detail));
    let reason = match new {
        HealthState::Up => match canary_part {
            Some(c) => format!("{v2_summary}, {c}"),
            None => v2_summary.to_string(),
        },
        _ => {
            let mut parts = Vec::new();
            if v2.state() == HealthState::Down {
                parts.push(v2_summary.to_string());
            }
            if canary.is_some_and(|c| c.state() == HealthState::Down)
                && let Some(c) = canary_part
            {
                parts.push(c);
            }
            parts.join(", ")
        }
    };
    (Some(new == HealthState::Up), reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn counter_rise_fall_edges() {
        let mut c = HealthCounter::new(2, 3);
        assert_eq!(c.state(), HealthState::Unknown);
        assert!(!c.moving());
        assert_eq!(c.observe(true), None);
        assert!(c.moving());
        assert_eq!(c.observe(true), Some(true));
        assert_eq!(c.state(), HealthState::Up);
        assert!(!c.moving());
        assert_eq!(c.observe(true), None);
        assert_eq!(c.observe(false), None);
        assert!(c.moving());
        assert_eq!(c.observe(false), None);
        assert_eq!(c.observe(false), Some(false));
        assert_eq!(c.state(), HealthState::Down);
        assert!(!c.moving());
        assert_eq!(c.observe(false), None);
        assert_eq!(c.observe(true), None);
        assert!(c.moving());
        assert_eq!(c.observe(true), Some(true));
    }

    #[test]
    fn first_conclusion_down_from_unknown() {
        let mut c = HealthCounter::new(2, 2);
        assert_eq!(c.observe(false), None);
        assert!(c.moving());
        assert_eq!(c.observe(false), Some(false));
        assert_eq!(c.state(), HealthState::Down);
    }

    #[test]
    fn single_lost_probe_does_not_flip() {
        let mut c = HealthCounter::new(2, 3);
        c.observe(true);
        c.observe(true);
        for _ in 0..10 {
            assert_eq!(c.observe(false), None);
            assert_eq!(c.observe(true), None);
            assert_eq!(c.observe(false), None);
            assert_eq!(c.observe(false), None);
            assert_eq!(c.observe(true), None);
            assert!(!c.moving());
        }
        assert_eq!(c.state(), HealthState::Up);
    }

    #[test]
    fn mixed_results_while_unknown_never_conclude() {
        let mut c = HealthCounter::new(3, 3);
        for _ in 0..10 {
            assert_eq!(c.observe(true), None);
            assert_eq!(c.observe(false), None);
        }
        assert_eq!(c.state(), HealthState::Unknown);
        assert!(c.moving());
    }

    #[test]
    fn zero_rise_fall_are_one() {
        let mut c = HealthCounter::new(0, 0);
        assert_eq!(c.observe(true), Some(true));
        assert_eq!(c.observe(false), Some(false));
    }

    #[test]
    fn fast_interval_default() {
        assert_eq!(
            default_fast_interval(Duration::from_secs(10)),
            Duration::from_millis(2500)
        );
        assert_eq!(
            default_fast_interval(Duration::from_millis(400)),
            Duration::from_millis(200)
        );
        let mut s = spec("a", 10, 1, 1);
        s.fast_interval = Some(Duration::from_secs(1));
        assert_eq!(fast_interval(&s), Duration::from_secs(1));
        s.fast_interval = Some(Duration::ZERO);
        assert_eq!(fast_interval(&s), Duration::from_millis(2500));
    }

    #[test]
    fn jitter_bounds() {
        let i = Duration::from_secs(10);
        let samples: Vec<_> = (0..1000).map(|_| start_jitter(i)).collect();
        assert!(samples.iter().all(|d| *d < i));
        assert!(samples.iter().any(|d| *d < i / 4));
        assert!(samples.iter().any(|d| *d > i * 3 / 4));
        assert_eq!(start_jitter(Duration::ZERO), Duration::ZERO);
    }

    // ---- scheduler on paused time, with scripted probes ----

    fn spec(id: &str, interval_s: u64, rise: u32, fall: u32) -> InstanceSpec {
        let mut s = InstanceSpec::new(id, "http://registry.test/v2/".parse().unwrap());
        s.interval = Duration::from_secs(interval_s);
        s.rise = rise;
        s.fall = fall;
        s
    }

    struct Harness {
        rx: mpsc::Receiver<Transition>,
        reports: watch::Receiver<BTreeMap<String, ProbeReport>>,
        stop: watch::Sender<bool>,
        ctx: SchedCtx,
    }

    fn harness(limit: usize) -> Harness {
        let (tx, rx) = mpsc::channel(16);
        let (rtx, reports) = watch::channel(BTreeMap::new());
        let (stop, srx) = watch::channel(false);
        Harness {
            rx,
            reports,
            stop,
            ctx: SchedCtx::new(tx, rtx, srx, limit),
        }
    }

    fn report(id: &str, ok: bool) -> ProbeReport {
        ProbeReport::from_checks(
            id,
            vec![CheckResult {
                check: "v2".into(),
                ok,
                latency: Duration::ZERO,
                detail: if ok { "HTTP 200" } else { "HTTP 503" }.into(),
            }],
        )
    }

    /// A probe whose result is `script(call_index)`; records each call time.
    #[allow(clippy::type_complexity)]
    fn scripted(
        id: &str,
        script: impl Fn(usize) -> bool + Send + Sync + 'static,
    ) -> (
        impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = ProbeReport> + Send>> + Send + 'static,
        Arc<Mutex<Vec<Instant>>>,
    ) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c = calls.clone();
        let id = id.to_string();
        let script = Arc::new(script);
        let f = move || {
            let n = {
                let mut v = c.lock().unwrap();
                v.push(Instant::now());
                v.len() - 1
            };
            let r = report(&id, script(n));
            Box::pin(async move { r }) as std::pin::Pin<Box<dyn Future<Output = _> + Send>>
        };
        (f, calls)
    }

    #[tokio::test(start_paused = true)]
    async fn time_to_down_is_interval_plus_fall_minus_one_fast() {
        let mut h = harness(64);
        // interval 8 s → fast 2 s; rise 2, fall 3. Calls 0..=2 ok, then fail.
        let (probe, calls) = scripted("a", |n| n <= 2);
        let t0 = Instant::now();
        let _task = spawn_instance(spec("a", 8, 2, 3), probe, h.ctx.clone());

        let up = h.rx.recv().await.unwrap();
        assert!(up.up);
        assert_eq!(up.reason, "v2: HTTP 200");
        let up_at = Instant::now();
        let first = calls.lock().unwrap()[0];
        assert!(
            first - t0 < Duration::from_secs(8),
            "jitter in [0, interval)"
        );
        // Unknown → Up after rise-1 fast intervals from the first probe.
        assert_eq!(up_at - first, Duration::from_secs(2));

        let down = h.rx.recv().await.unwrap();
        assert!(!down.up);
        assert_eq!(down.reason, "v2: HTTP 503");
        let last_ok = calls.lock().unwrap()[2];
        // Failure begins right after the last good probe.
        assert_eq!(Instant::now() - last_ok, Duration::from_secs(8 + 2 * 2));
        let v = calls.lock().unwrap().clone();
        assert_eq!(
            v[2] - v[1],
            Duration::from_secs(8),
            "steady interval when Up"
        );
        assert_eq!(v[4] - v[3], Duration::from_secs(2), "fast while moving");
        h.stop.send(true).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn rise_after_down_and_single_failure_does_not_flip() {
        let mut h = harness(64);
        // fall 2, rise 3: fail 0,1 (Down), ok 2 fail 3 (no change), ok 4.. (Up
        // at call 6), then one lost probe at 8 which must not flip.
        let (probe, calls) = scripted("b", |n| matches!(n, 2 | 4..=7 | 9..));
        let _task = spawn_instance(spec("b", 10, 3, 2), probe, h.ctx.clone());
        let d = h.rx.recv().await.unwrap();
        assert!(!d.up);
        let u = h.rx.recv().await.unwrap();
        assert!(u.up);
        let v = calls.lock().unwrap().clone();
        assert_eq!(v.len(), 7);
        // From the first good probe of the streak (4): rise-1 fast intervals.
        assert_eq!(Instant::now() - v[4], Duration::from_millis(2 * 2500));
        // Run well past the lost probe: no further transition.
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(h.rx.try_recv().is_err());
        assert!(calls.lock().unwrap().len() > 12);
        let rep = h.reports.borrow().get("b").cloned().unwrap();
        assert!(rep.ok);
        h.stop.send(true).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn no_overlap_when_probe_is_slower_than_interval() {
        let h = harness(64);
        let inflight = Arc::new(Mutex::new((0u32, 0u32))); // (now, max)
        let spans = Arc::new(Mutex::new(Vec::<(Instant, Instant)>::new()));
        let (i2, s2) = (inflight.clone(), spans.clone());
        let probe = move || {
            let (i, s) = (i2.clone(), s2.clone());
            async move {
                let start = Instant::now();
                {
                    let mut g = i.lock().unwrap();
                    g.0 += 1;
                    g.1 = g.1.max(g.0);
                }
                tokio::time::sleep(Duration::from_secs(15)).await;
                i.lock().unwrap().0 -= 1;
                s.lock().unwrap().push((start, Instant::now()));
                report("c", true)
            }
        };
        let task = spawn_instance(spec("c", 10, 1, 1), probe, h.ctx.clone());
        tokio::time::sleep(Duration::from_secs(200)).await;
        h.stop.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(inflight.lock().unwrap().1, 1);
        let s = spans.lock().unwrap().clone();
        assert!(s.len() >= 10, "{}", s.len());
        for w in s.windows(2) {
            assert!(w[1].0 >= w[0].1, "overlap: {w:?}");
            // Overrun: the next probe follows immediately.
            assert_eq!(w[1].0, w[0].1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn first_probes_are_jittered_within_interval() {
        let h = harness(64);
        let t0 = Instant::now();
        let firsts = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..40 {
            let f = firsts.clone();
            let mut done = false;
            let probe = move || {
                if !done {
                    f.lock().unwrap().push(Instant::now());
                    done = true;
                }
                async { report("x", true) }
            };
            tasks.push(spawn_instance(
                spec(&format!("i{i}"), 10, 1, 1),
                probe,
                h.ctx.clone(),
            ));
        }
        tokio::time::sleep(Duration::from_secs(11)).await;
        let f = firsts.lock().unwrap().clone();
        assert_eq!(f.len(), 40);
        // Jitter is in [0, interval); the timer wheel fires at millisecond ticks, so a
        // jitter just under 10 s can wake at 10 s + up to 1 ms (a rare flake before).
        assert!(
            f.iter()
                .all(|t| *t - t0 <= Duration::from_secs(10) + Duration::from_millis(1)),
            "{:?}",
            f.iter().map(|t| *t - t0).max()
        );
        let distinct: std::collections::BTreeSet<_> = f.iter().collect();
        assert!(distinct.len() > 30, "jitter spreads starts");
        h.stop.send(true).unwrap();
        for t in tasks {
            t.await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn global_concurrency_bound() {
        let h = harness(2);
        let inflight = Arc::new(Mutex::new((0u32, 0u32)));
        let mut tasks = Vec::new();
        for i in 0..6 {
            let inf = inflight.clone();
            let probe = move || {
                let inf = inf.clone();
                async move {
                    {
                        let mut g = inf.lock().unwrap();
                        g.0 += 1;
                        g.1 = g.1.max(g.0);
                    }
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    inf.lock().unwrap().0 -= 1;
                    report("x", true)
                }
            };
            let mut s = spec(&format!("i{i}"), 1, 1, 1);
            s.interval = Duration::from_millis(100);
            tasks.push(spawn_instance(s, probe, h.ctx.clone()));
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(inflight.lock().unwrap().1, 2);
        h.stop.send(true).unwrap();
        for t in tasks {
            t.await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_interrupts_a_hanging_probe_and_reports_every_probe() {
        let h = harness(64);
        let n = Arc::new(Mutex::new(0u32));
        let n2 = n.clone();
        let probe = move || {
            let k = {
                let mut g = n2.lock().unwrap();
                *g += 1;
                *g
            };
            async move {
                if k == 3 {
                    std::future::pending::<()>().await;
                }
                report("d", false)
            }
        };
        let mut reports = h.reports.clone();
        let task = spawn_instance(spec("d", 5, 1, 5), probe, h.ctx.clone());
        reports.changed().await.unwrap();
        reports.changed().await.unwrap();
        assert!(!reports.borrow()["d"].ok);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(*n.lock().unwrap(), 3);
        h.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("task stops on shutdown")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn config_error_reports_down() {
        let mut h = harness(64);
        let mut s = spec("e", 1, 1, 1);
        s.ca_file = Some("/nonexistent/ca.pem".into());
        let tasks = spawn_prober_with(vec![s], h.ctx.clone());
        let t = h.rx.recv().await.unwrap();
        assert!(!t.up);
        assert!(
            t.reason.starts_with("config: ca_file /nonexistent/ca.pem"),
            "{}",
            t.reason
        );
        h.stop.send(true).unwrap();
        for t in tasks {
            t.await.unwrap();
        }
    }
}
