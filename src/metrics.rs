//! Prometheus metrics. Every metric name regdns exports is defined here, in one table of
//! constants, and every update goes through a function of this module.
//!
//! Two kinds of sources:
//! - the DNS hot path counts each answered query with two relaxed atomic increments into a
//!   fixed array ([`QueryCounters`], allocated once per set of views and carried by the
//!   snapshot); nothing is looked up or hashed per query. The array is rendered into
//!   `regdns_dns_queries_total` only when `/metrics` is scraped;
//! - everything else (probes, failovers, state writes, PrivateZone pushes) is counted when it
//!   happens, and the gauges that describe the current decisions are refreshed from the
//!   controller's status at scrape time ([`render`]);
//! - the process's own CPU time, resident memory and open files are read from the kernel
//!   when `/metrics` is scraped (the standard `process_*` names, Linux only).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::control::Status;
use crate::decide::OverrideKind;

//------------ Names ------------------------------------------------------------------------

/// DNS responses sent, by view, response code and transport.
pub const DNS_QUERIES_TOTAL: &str = "regdns_dns_queries_total";
/// Probe results by instance, check and result (`ok`/`fail`).
pub const PROBE_RESULTS_TOTAL: &str = "regdns_probe_results_total";
/// Probe check latency.
pub const PROBE_DURATION_SECONDS: &str = "regdns_probe_duration_seconds";
/// 1 when the instance is up, 0 when down or unknown.
pub const INSTANCE_UP: &str = "regdns_instance_up";
/// 1 for the active instance of an endpoint in a view (one series per target).
pub const ACTIVE_TARGET: &str = "regdns_active_target";
/// Gauge (view, target): 1 when the target is up in that view (health as that view's
/// observers see it), 0 otherwise.
pub const VIEW_TARGET_UP: &str = "regdns_view_target_up";
/// Counter (name, reason): a passthrough target's public answer could not be resolved
/// (`error`) or came back through regdns (`loop`).
pub const PASSTHROUGH_ERRORS_TOTAL: &str = "regdns_passthrough_errors_total";
/// Histogram (view), `regdns agent` only: seconds from a switch until the agent's network
/// resolver answered the new target.
pub const PROPAGATION_SECONDS: &str = "regdns_propagation_seconds";
/// Counter (view), `regdns agent` only: switches the network resolver did not answer with
/// the new target within the limit.
pub const PROPAGATION_TIMEOUTS_TOTAL: &str = "regdns_propagation_timeouts_total";
/// 1 when no target of an endpoint in a view is up (fail-static).
pub const ENDPOINT_DEGRADED: &str = "regdns_endpoint_degraded";
/// 1 when a manual failback waits for an operator.
pub const FAILBACK_PENDING: &str = "regdns_failback_pending";
/// Changes of the active target, by reason class.
pub const FAILOVERS_TOTAL: &str = "regdns_failovers_total";
/// Overrides in force, by kind (`force`, `drain`).
pub const OVERRIDES: &str = "regdns_overrides";
/// PrivateZone sync attempts by binding and result.
pub const PRIVATEZONE_SYNC_TOTAL: &str = "regdns_privatezone_sync_total";
/// Publisher sync attempts by provider, binding and result (every provider).
pub const PUBLISH_SYNC_TOTAL: &str = "regdns_publish_sync_total";
/// NOTIFY messages sent to secondaries, by zone, secondary and result (`ack`, `error`).
pub const NOTIFY_TOTAL: &str = "regdns_notify_total";
/// Failed writes of the state file.
pub const STATE_WRITE_ERRORS_TOTAL: &str = "regdns_state_write_errors_total";
/// Always 1, labelled with the version.
pub const BUILD_INFO: &str = "regdns_build_info";
/// Generation of the served snapshot.
pub const SNAPSHOT_GENERATION: &str = "regdns_snapshot_generation";
/// SOA serial served per zone and view.
pub const ZONE_SERIAL: &str = "regdns_zone_serial";
/// Gauge: how long an instance's canary digest has differed from its reference's.
pub const REPLICATION_LAG_SECONDS: &str = "regdns_replication_lag_seconds";
/// Decision rounds of the controller (one per batch of inputs).
pub const CONTROLLER_ROUNDS_TOTAL: &str = "regdns_controller_rounds_total";
/// CPU time of the controller's decision rounds (decide, journal, state, snapshot).
pub const CONTROLLER_CPU_SECONDS_TOTAL: &str = "regdns_controller_cpu_seconds_total";

/// 1 when the node runs with `[cluster]` (the other cluster gauges mean something).
pub const CLUSTER_ENABLED: &str = "regdns_cluster_enabled";
/// 1 while etcd answers this node (`[cluster]`), 0 while the cluster is degraded.
pub const CLUSTER_CONNECTED: &str = "regdns_cluster_connected";
/// 1 while this node is the cluster leader (its publishers run).
pub const CLUSTER_LEADER: &str = "regdns_cluster_leader";
/// Live nodes registered in etcd, as this node last saw them.
pub const CLUSTER_NODES: &str = "regdns_cluster_nodes";

/// CPU time (user and system) of the whole process, in seconds (standard name).
pub const PROCESS_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";
/// Resident memory of the process, in bytes (standard name).
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";
/// Open file descriptors of the process (standard name).
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";

/// Reason classes of [`FAILOVERS_TOTAL`].
pub const FAILOVER_CLASSES: &[&str] = &["health", "force", "release", "failback", "drain"];

/// prometheus-client appends `_total` to counters itself.
fn base(name: &'static str) -> &'static str {
    name.strip_suffix("_total").unwrap_or(name)
}

//------------ Query counters (hot path) -----------------------------------------------------

/// Response-code buckets of [`DNS_QUERIES_TOTAL`].
const RCODES: [&str; 9] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "NOTAUTH", "BADVERS",
    "other",
];
const PROTOCOLS: [&str; 2] = ["udp", "tcp"];
const CELLS: usize = RCODES.len() * PROTOCOLS.len();
/// View label of queries answered before a view was chosen (FORMERR, NOTIMP).
pub const NO_VIEW: &str = "-";

#[inline]
fn rcode_bucket(rcode: u16) -> usize {
    match rcode {
        0..=5 => rcode as usize,
        9 => 6,
        16 => 7,
        _ => 8,
    }
}

/// Counters of one view name; shared by every snapshot whose model has that view, so totals
/// survive reloads and stay monotonic.
#[derive(Debug)]
struct ViewCounters {
    cells: [AtomicU64; CELLS],
}

impl ViewCounters {
    fn new() -> Self {
        ViewCounters {
            cells: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Query counters of one set of views, indexed by the snapshot's view index. Built off the
/// serving path (once per snapshot), read on it.
#[derive(Debug)]
pub struct QueryCounters {
    views: Box<[Arc<ViewCounters>]>,
    none: Arc<ViewCounters>,
}

impl QueryCounters {
    /// Counts one response: `view` is the snapshot's view index (None before a view was
    /// chosen), `rcode` the (extended) response code. One relaxed increment, no lookup.
    #[inline]
    pub fn count(&self, view: Option<usize>, rcode: u16, tcp: bool) {
        let v = match view.and_then(|i| self.views.get(i)) {
            Some(v) => v,
            None => &self.none,
        };
        let cell = rcode_bucket(rcode) * PROTOCOLS.len() + usize::from(tcp);
        v.cells[cell].fetch_add(1, Ordering::Relaxed);
    }
}

/// Every view name ever served, with its counters: the scrape-time source of
/// [`DNS_QUERIES_TOTAL`].
#[derive(Debug, Default)]
struct QueryBook {
    by_view: Mutex<BTreeMap<String, Arc<ViewCounters>>>,
}

impl QueryBook {
    fn counters_for(&self, name: &str) -> Arc<ViewCounters> {
        let mut m = self.by_view.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(name.to_string())
            .or_insert_with(|| Arc::new(ViewCounters::new()))
            .clone()
    }
}

impl Collector for QueryBook {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let m = self.by_view.lock().unwrap_or_else(|e| e.into_inner());
        let mut metric = encoder.encode_descriptor(
            base(DNS_QUERIES_TOTAL),
            "DNS responses sent, by view, response code and transport",
            None,
            MetricType::Counter,
        )?;
        for (view, c) in m.iter() {
            for (ri, rcode) in RCODES.iter().enumerate() {
                for (pi, proto) in PROTOCOLS.iter().enumerate() {
                    let n = c.cells[ri * PROTOCOLS.len() + pi].load(Ordering::Relaxed);
                    if n == 0 {
                        continue;
                    }
                    let labels = [
                        ("view", view.as_str()),
                        ("rcode", *rcode),
                        ("protocol", *proto),
                    ];
                    let enc = metric.encode_family(&labels)?;
                    ConstCounter::new(n).encode(enc)?;
                }
            }
        }
        Ok(())
    }
}

/// The `process_*` metrics, read from the kernel at scrape time (Linux; a value the kernel
/// does not give is left out).
#[derive(Debug)]
struct ProcessCollector;

impl ProcessCollector {
    /// User + system CPU seconds of every thread of the process.
    fn cpu_seconds() -> Option<f64> {
        // SAFETY: zeroed is a valid rusage (plain integers); getrusage writes into the one we own.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above; RUSAGE_SELF with a valid pointer.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
            return None;
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Some(secs(ru.ru_utime) + secs(ru.ru_stime))
    }

    /// Resident set size in bytes (`/proc/self/statm`, second field, in pages).
    fn resident_bytes() -> Option<i64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        (page > 0).then(|| pages * page as i64)
    }

    /// Entries of `/proc/self/fd` (the directory handle itself not counted).
    fn open_fds() -> Option<i64> {
        let n = std::fs::read_dir("/proc/self/fd").ok()?.count() as i64;
        Some((n - 1).max(0))
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        if let Some(cpu) = Self::cpu_seconds() {
            let metric = encoder.encode_descriptor(
                base(PROCESS_CPU_SECONDS_TOTAL),
                "Total user and system CPU time spent in seconds",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(cpu).encode(metric)?;
        }
        if let Some(rss) = Self::resident_bytes() {
            let metric = encoder.encode_descriptor(
                PROCESS_RESIDENT_MEMORY_BYTES,
                "Resident memory size in bytes",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(rss).encode(metric)?;
        }
        if let Some(fds) = Self::open_fds() {
            let metric = encoder.encode_descriptor(
                PROCESS_OPEN_FDS,
                "Number of open file descriptors",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(fds).encode(metric)?;
        }
        Ok(())
    }
}

/// Counters for a snapshot serving `views` (in the snapshot's order).
pub fn query_counters<'a>(views: impl IntoIterator<Item = &'a str>) -> Arc<QueryCounters> {
    let m = global();
    Arc::new(QueryCounters {
        views: views
            .into_iter()
            .map(|v| m.queries.counters_for(v))
            .collect(),
        none: m.queries.counters_for(NO_VIEW),
    })
}

//------------ The registry ------------------------------------------------------------------

type L2 = [(&'static str, String); 2];
type L3 = [(&'static str, String); 3];
type L1 = [(&'static str, String); 1];

/// All metric families.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    queries: Arc<QueryBook>,
    probe_results: Family<L3, Counter>,
    probe_duration: Family<L2, Histogram, fn() -> Histogram>,
    instance_up: Family<L1, Gauge>,
    active_target: Family<L3, Gauge>,
    view_target_up: Family<L2, Gauge>,
    passthrough_errors: Family<L2, Counter>,
    propagation: Family<L1, Histogram, fn() -> Histogram>,
    propagation_timeouts: Family<L1, Counter>,
    endpoint_degraded: Family<L2, Gauge>,
    failback_pending: Family<L2, Gauge>,
    failovers: Family<L3, Counter>,
    overrides: Family<L1, Gauge>,
    privatezone_sync: Family<L2, Counter>,
    publish_sync: Family<L3, Counter>,
    notify: Family<L3, Counter>,
    state_write_errors: Counter,
    snapshot_generation: Gauge,
    zone_serial: Family<L2, Gauge>,
    replication_lag: Family<L2, Gauge<f64, std::sync::atomic::AtomicU64>>,
    controller_rounds: Counter,
    controller_cpu: Counter<f64, AtomicU64>,
    cluster_enabled: Gauge,
    cluster_connected: Gauge,
    cluster_leader: Gauge,
    cluster_nodes: Gauge,
    /// Serialises refresh + encode of concurrent scrapes.
    scrape: Mutex<()>,
}

fn propagation_histogram() -> Histogram {
    // 0.25 s .. ~4 min: a switch is seen within the endpoint's TTL (5 s .. minutes).
    Histogram::new(exponential_buckets(0.25, 2.0, 11))
}

fn probe_histogram() -> Histogram {
    // 5 ms .. ~10 s
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let queries = Arc::new(QueryBook::default());
        registry.register_collector(Box::new(queries.clone()));
        registry.register_collector(Box::new(ProcessCollector));
        let m = Metrics {
            registry: Registry::default(),
            queries,
            probe_results: Family::default(),
            probe_duration: Family::new_with_constructor(probe_histogram as fn() -> Histogram),
            instance_up: Family::default(),
            active_target: Family::default(),
            view_target_up: Family::default(),
            passthrough_errors: Family::default(),
            propagation: Family::new_with_constructor(propagation_histogram as fn() -> Histogram),
            propagation_timeouts: Family::default(),
            endpoint_degraded: Family::default(),
            failback_pending: Family::default(),
            failovers: Family::default(),
            overrides: Family::default(),
            privatezone_sync: Family::default(),
            publish_sync: Family::default(),
            notify: Family::default(),
            state_write_errors: Counter::default(),
            snapshot_generation: Gauge::default(),
            zone_serial: Family::default(),
            replication_lag: Family::default(),
            controller_rounds: Counter::default(),
            controller_cpu: Counter::default(),
            cluster_enabled: Gauge::default(),
            cluster_connected: Gauge::default(),
            cluster_leader: Gauge::default(),
            cluster_nodes: Gauge::default(),
            scrape: Mutex::new(()),
        };
        let r = &mut registry;
        r.register(
            base(PROBE_RESULTS_TOTAL),
            "Probe check results by instance, check and result (ok, fail)",
            m.probe_results.clone(),
        );
        r.register(
            PROBE_DURATION_SECONDS,
            "Probe check latency in seconds",
            m.probe_duration.clone(),
        );
        r.register(
            INSTANCE_UP,
            "1 when the instance is up, 0 when it is down or its health is unknown",
            m.instance_up.clone(),
        );
        r.register(
            ACTIVE_TARGET,
            "1 for the instance an endpoint currently answers with in a view, 0 for its other targets",
            m.active_target.clone(),
        );
        r.register(
            VIEW_TARGET_UP,
            "1 when the target is up in the view (as the view's observers see it), 0 when it is down or unknown",
            m.view_target_up.clone(),
        );
        r.register(
            base(PASSTHROUGH_ERRORS_TOTAL),
            "Passthrough targets whose public answer could not be resolved (error) or came back through regdns (loop)",
            m.passthrough_errors.clone(),
        );
        r.register(
            PROPAGATION_SECONDS,
            "Seconds from a switch until the agent's network resolver answered the new target (regdns agent)",
            m.propagation.clone(),
        );
        r.register(
            base(PROPAGATION_TIMEOUTS_TOTAL),
            "Switches the agent's network resolver did not answer with the new target within the limit (regdns agent)",
            m.propagation_timeouts.clone(),
        );
        r.register(
            ENDPOINT_DEGRADED,
            "1 when no target of the endpoint is up in the view (fail-static answer)",
            m.endpoint_degraded.clone(),
        );
        r.register(
            FAILBACK_PENDING,
            "1 when a manual failback waits for an operator (regdns failback)",
            m.failback_pending.clone(),
        );
        r.register(
            base(FAILOVERS_TOTAL),
            "Changes of the active target, by reason class (health, force, release, failback, drain)",
            m.failovers.clone(),
        );
        r.register(
            OVERRIDES,
            "Operator overrides in force, by kind",
            m.overrides.clone(),
        );
        r.register(
            base(PRIVATEZONE_SYNC_TOTAL),
            "PrivateZone sync attempts by binding and result",
            m.privatezone_sync.clone(),
        );
        r.register(
            base(PUBLISH_SYNC_TOTAL),
            "Publisher sync attempts by provider, binding and result",
            m.publish_sync.clone(),
        );
        r.register(
            base(NOTIFY_TOTAL),
            "NOTIFY messages sent to secondaries, by zone, secondary and result (ack, error)",
            m.notify.clone(),
        );
        r.register(
            base(STATE_WRITE_ERRORS_TOTAL),
            "State file writes that failed (the change was not acknowledged)",
            m.state_write_errors.clone(),
        );
        r.register(
            CLUSTER_ENABLED,
            "1 when this node runs with [cluster] (shares its state in etcd)",
            m.cluster_enabled.clone(),
        );
        r.register(
            CLUSTER_CONNECTED,
            "1 while etcd answers this node ([cluster]); 0 while the cluster is degraded",
            m.cluster_connected.clone(),
        );
        r.register(
            CLUSTER_LEADER,
            "1 while this node is the cluster leader (its publishers run)",
            m.cluster_leader.clone(),
        );
        r.register(
            CLUSTER_NODES,
            "Live regdns nodes registered in etcd, as this node last saw them",
            m.cluster_nodes.clone(),
        );
        let build: Family<L1, Gauge> = Family::default();
        build
            .get_or_create(&[("version", env!("CARGO_PKG_VERSION").to_string())])
            .set(1);
        r.register(BUILD_INFO, "regdns build information", build);
        r.register(
            SNAPSHOT_GENERATION,
            "Generation of the DNS snapshot being served",
            m.snapshot_generation.clone(),
        );
        r.register(
            ZONE_SERIAL,
            "SOA serial served per zone and view",
            m.zone_serial.clone(),
        );
        r.register(
            REPLICATION_LAG_SECONDS,
            "Seconds the instance's canary digest has differed from its reference's (0 when equal; absent when unknown)",
            m.replication_lag.clone(),
        );
        r.register(
            base(CONTROLLER_ROUNDS_TOTAL),
            "Decision rounds of the controller (each handles every input waiting)",
            m.controller_rounds.clone(),
        );
        r.register(
            base(CONTROLLER_CPU_SECONDS_TOTAL),
            "CPU seconds spent in the controller's decision rounds",
            m.controller_cpu.clone(),
        );
        Metrics { registry, ..m }
    }
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

//------------ Updates -----------------------------------------------------------------------

/// One check of one probe finished.
pub fn probe_check(instance: &str, check: &str, ok: bool, seconds: f64) {
    let m = global();
    m.probe_results
        .get_or_create(&[
            ("instance", instance.to_string()),
            ("check", check.to_string()),
            ("result", if ok { "ok" } else { "fail" }.to_string()),
        ])
        .inc();
    m.probe_duration
        .get_or_create(&[
            ("instance", instance.to_string()),
            ("check", check.to_string()),
        ])
        .observe(seconds);
}

/// A passthrough name's public answer failed (`reason`: `error` or `loop`).
pub fn passthrough_error(name: &str, reason: &str) {
    global()
        .passthrough_errors
        .get_or_create(&[("name", name.to_string()), ("reason", reason.to_string())])
        .inc();
}

/// An agent's network resolver answered a switch of `view` after `seconds` (`None`: not
/// within the limit).
pub fn propagation(view: &str, seconds: Option<f64>) {
    let m = global();
    let l = [("view", view.to_string())];
    match seconds {
        Some(s) => m.propagation.get_or_create(&l).observe(s),
        None => {
            m.propagation_timeouts.get_or_create(&l).inc();
        }
    }
}

/// The active target of an endpoint in a view changed, for `cause` (see
/// [`crate::decide::Cause`]).
pub fn failover(endpoint: &str, view: &str, cause: crate::decide::Cause) {
    global()
        .failovers
        .get_or_create(&[
            ("endpoint", endpoint.to_string()),
            ("view", view.to_string()),
            ("reason", cause.as_str().to_string()),
        ])
        .inc();
}

/// A publisher sync of `binding` (status name, `provider:...`) ended with `result` (`ok`,
/// `changed`, `drift`, `dry-run`, `error`): `regdns_publish_sync_total{provider,binding,result}`,
/// and for PrivateZone also the older `regdns_privatezone_sync_total{binding,result}`.
pub fn publish_sync(provider: &str, binding: &str, result: &str) {
    global()
        .publish_sync
        .get_or_create(&[
            ("provider", provider.to_string()),
            ("binding", binding.to_string()),
            ("result", result.to_string()),
        ])
        .inc();
    if provider == "privatezone" {
        privatezone_sync(binding, result);
    }
}

/// A PrivateZone sync attempt of `binding` ended with `result` (`ok`, `error`, `throttled`,
/// `dry_run`, …).
pub fn privatezone_sync(binding: &str, result: &str) {
    global()
        .privatezone_sync
        .get_or_create(&[
            ("binding", binding.to_string()),
            ("result", result.to_string()),
        ])
        .inc();
}

/// One decision round of the controller took `cpu_seconds` of CPU.
pub fn controller_round(cpu_seconds: f64) {
    let m = global();
    m.controller_rounds.inc();
    m.controller_cpu.inc_by(cpu_seconds);
}

/// CPU time of the calling thread, in seconds (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// A NOTIFY to `secondary` for `zone` ended with `result` (`ack` or `error`).
pub fn notify(zone: &str, secondary: &str, result: &str) {
    global()
        .notify
        .get_or_create(&[
            ("zone", zone.to_string()),
            ("secondary", secondary.to_string()),
            ("result", result.to_string()),
        ])
        .inc();
}

/// Cluster connectivity and leadership of this node.
pub fn cluster_state(connected: bool, leader: bool) {
    let m = global();
    m.cluster_connected.set(connected as i64);
    m.cluster_leader.set(leader as i64);
}

/// This node runs with `[cluster]`.
pub fn cluster_enabled() {
    global().cluster_enabled.set(1);
}

/// Live nodes seen in etcd.
pub fn cluster_nodes(n: usize) {
    global().cluster_nodes.set(n as i64);
}

/// A state file write failed.
pub fn state_write_error() {
    global().state_write_errors.inc();
}

//------------ Scrape ------------------------------------------------------------------------

/// The Content-Type of [`render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Refreshes the gauges that describe the current decisions from `status` (when the
/// controller answered) and renders every metric in the Prometheus text format.
pub fn render(status: Option<&Status>) -> String {
    let m = global();
    let _guard = m.scrape.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = status {
        refresh(m, s);
    }
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry) {
        tracing::error!(error = %e, "metrics not encoded");
    }
    out
}

fn refresh(m: &Metrics, s: &Status) {
    m.instance_up.clear();
    for i in &s.instances {
        m.instance_up
            .get_or_create(&[("instance", i.id.clone())])
            .set(i64::from(i.state == "up"));
    }
    m.view_target_up.clear();
    for t in &s.view_health {
        m.view_target_up
            .get_or_create(&[("view", t.view.clone()), ("target", t.target.clone())])
            .set(i64::from(t.state == "up"));
    }
    m.active_target.clear();
    m.endpoint_degraded.clear();
    m.failback_pending.clear();
    for e in &s.endpoints {
        // Every reason class exists from the first scrape on, at 0: `increase()` (the
        // failover alert, the dashboard) cannot see the first switch of a series that
        // appears with the value 1.
        for reason in FAILOVER_CLASSES {
            let _ = m.failovers.get_or_create(&[
                ("endpoint", e.endpoint.clone()),
                ("view", e.view.clone()),
                ("reason", reason.to_string()),
            ]);
        }
        let ev = [("endpoint", e.endpoint.clone()), ("view", e.view.clone())];
        m.endpoint_degraded
            .get_or_create(&ev)
            .set(i64::from(e.degraded));
        m.failback_pending
            .get_or_create(&ev)
            .set(i64::from(e.failback_pending.is_some()));
        m.active_target
            .get_or_create(&[
                ("endpoint", e.endpoint.clone()),
                ("view", e.view.clone()),
                ("instance", e.active.clone()),
            ])
            .set(1);
    }
    m.overrides.clear();
    let forces = s
        .overrides
        .iter()
        .filter(|o| matches!(o.kind, OverrideKind::Force { .. }))
        .count();
    let drains = s.overrides.len() - forces;
    m.overrides
        .get_or_create(&[("kind", "force".to_string())])
        .set(forces as i64);
    m.overrides
        .get_or_create(&[("kind", "drain".to_string())])
        .set(drains as i64);
    m.snapshot_generation.set(s.generation as i64);
    m.replication_lag.clear();
    for i in &s.instances {
        if let (Some(reference), Some(lag)) = (&i.replication_reference, i.replication_lag_ms) {
            m.replication_lag
                .get_or_create(&[("instance", i.id.clone()), ("reference", reference.clone())])
                .set(lag as f64 / 1000.0);
        }
    }
    m.zone_serial.clear();
    for z in &s.zones {
        m.zone_serial
            .get_or_create(&[("zone", z.zone.clone()), ("view", z.view.clone())])
            .set(i64::from(z.serial));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_counters_render_by_view_rcode_and_protocol() {
        let c = query_counters(["metrics-test-view", "default"]);
        c.count(Some(0), 0, false);
        c.count(Some(0), 0, false);
        c.count(Some(0), 3, true);
        c.count(Some(7), 16, false); // unknown index: the no-view bucket
        c.count(None, 1, false);
        let text = render(None);
        assert!(
            text.contains(
                "regdns_dns_queries_total{view=\"metrics-test-view\",rcode=\"NOERROR\",protocol=\"udp\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "regdns_dns_queries_total{view=\"metrics-test-view\",rcode=\"NXDOMAIN\",protocol=\"tcp\"} 1"
        ));
        assert!(text.contains("regdns_dns_queries_total{view=\"-\",rcode=\"BADVERS\""));
        // A later snapshot with the same view name keeps counting into the same series.
        let again = query_counters(["metrics-test-view"]);
        again.count(Some(0), 0, false);
        assert!(render(None).contains(
            "regdns_dns_queries_total{view=\"metrics-test-view\",rcode=\"NOERROR\",protocol=\"udp\"} 3"
        ));
    }

    #[test]
    fn failover_counters_start_at_zero_for_every_endpoint_view_and_class() {
        let status = Status {
            version: "t".into(),
            started_ms: 0,
            generation: 1,
            instances: Vec::new(),
            endpoints: vec![crate::control::EndpointStatus {
                endpoint: "zero.example.".into(),
                view: "default".into(),
                active: "hz".into(),
                answer: "A 192.0.2.1".into(),
                reason: "r".into(),
                since_ms: 0,
                degraded: false,
                forced_by: None,
                failback_pending: None,
            }],
            overrides: Vec::new(),
            view_health: Vec::new(),
            zones: Vec::new(),
            publishers: Vec::new(),
            cluster: None,
        };
        let text = render(Some(&status));
        for class in FAILOVER_CLASSES {
            let line = format!(
                "regdns_failovers_total{{endpoint=\"zero.example.\",view=\"default\",reason=\"{class}\"}} 0"
            );
            assert!(text.contains(&line), "{line}:\n{text}");
        }
    }

    #[test]
    fn names_are_exported_as_defined() {
        privatezone_sync("zone-1/@", "ok");
        publish_sync("rfc2136", "rfc2136:192.0.2.1:53/cr.example.net.", "changed");
        state_write_error();
        failover("e.", "default", crate::decide::Cause::Force);
        probe_check("hz", "v2", true, 0.01);
        let text = render(None);
        for name in [
            PRIVATEZONE_SYNC_TOTAL,
            PUBLISH_SYNC_TOTAL,
            STATE_WRITE_ERRORS_TOTAL,
            FAILOVERS_TOTAL,
            PROBE_RESULTS_TOTAL,
            PROBE_DURATION_SECONDS,
            BUILD_INFO,
            SNAPSHOT_GENERATION,
            PROCESS_CPU_SECONDS_TOTAL,
            PROCESS_RESIDENT_MEMORY_BYTES,
            PROCESS_OPEN_FDS,
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}:\n{text}");
        }
        assert!(text.contains(
            "regdns_failovers_total{endpoint=\"e.\",view=\"default\",reason=\"force\"} 1"
        ));
        assert!(text.contains(
            "regdns_publish_sync_total{provider=\"rfc2136\",binding=\"rfc2136:192.0.2.1:53/cr.example.net.\",result=\"changed\"} 1"
        ));
    }

    #[test]
    fn process_metrics_are_read_at_scrape() {
        let text = render(None);
        let value = |name: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} sample:\n{text}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert!(value(PROCESS_CPU_SECONDS_TOTAL) > 0.0);
        // A test binary is resident with at least 1 MiB.
        assert!(value(PROCESS_RESIDENT_MEMORY_BYTES) > 1_048_576.0);
        assert!(value(PROCESS_OPEN_FDS) >= 3.0);
    }

    #[test]
    fn failover_classes_name_every_cause() {
        use crate::decide::Cause;
        for c in [
            Cause::Health,
            Cause::Force,
            Cause::Release,
            Cause::Failback,
            Cause::Drain,
        ] {
            assert!(FAILOVER_CLASSES.contains(&c.as_str()), "{c:?}");
        }
    }
}
