//! Recent probe results per instance, for the status page's chart: a bounded in-memory ring
//! fed from the prober's report channel. Per instance it keeps one bucket per minute of the
//! last hour (probes, failures, latency) and the last [`RECENT`] probes verbatim, so memory
//! does not grow with the probe rate. Not persisted: a restart starts an empty chart.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::decide::UnixMillis;
use crate::probe::ProbeReport;

/// Width of one chart bucket.
pub const BUCKET_MS: u64 = 60_000;
/// Buckets kept per instance (one hour).
pub const BUCKETS: usize = 60;
/// Probes kept verbatim per instance.
pub const RECENT: usize = 10;

/// Probes of one instance within one minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Start of the minute (ms since epoch).
    pub start_ms: UnixMillis,
    /// Probes in it.
    pub probes: u32,
    /// Probes that failed.
    pub failed: u32,
    /// Slowest probe (ms).
    pub max_latency_ms: f64,
}

/// One probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When (ms since epoch).
    pub at_ms: UnixMillis,
    /// Every check passed.
    pub ok: bool,
    /// Slowest check (ms).
    pub latency_ms: f64,
    /// Failing checks, when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// History of one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceHistory {
    /// Instance id.
    pub id: String,
    /// Minutes of the last hour with probes, oldest first.
    pub buckets: Vec<Bucket>,
    /// The last probes, oldest first.
    pub recent: Vec<Sample>,
}

/// Answer of `GET /status/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryBody {
    /// Server time of the answer (ms since epoch).
    pub now_ms: UnixMillis,
    /// Width of a bucket.
    pub bucket_ms: u64,
    /// Instances, by id.
    pub instances: Vec<InstanceHistory>,
}

#[derive(Debug, Default)]
struct Ring {
    buckets: VecDeque<Bucket>,
    recent: VecDeque<Sample>,
}

/// The rings of every instance.
#[derive(Debug, Default)]
pub struct History {
    rings: Mutex<BTreeMap<String, Ring>>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Adds one probe of `instance`.
    pub fn record(&self, instance: &str, s: Sample) {
        let mut rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        let ring = rings.entry(instance.to_string()).or_default();
        let start = s.at_ms - s.at_ms % BUCKET_MS;
        match ring.buckets.back_mut() {
            Some(b) if b.start_ms == start => {
                b.probes += 1;
                b.failed += u32::from(!s.ok);
                b.max_latency_ms = b.max_latency_ms.max(s.latency_ms);
            }
            // A clock step backwards: keep the ring ordered, count it in the last bucket.
            Some(b) if b.start_ms > start => {
                b.probes += 1;
                b.failed += u32::from(!s.ok);
            }
            _ => ring.buckets.push_back(Bucket {
                start_ms: start,
                probes: 1,
                failed: u32::from(!s.ok),
                max_latency_ms: s.latency_ms,
            }),
        }
        while ring.buckets.len() > BUCKETS
            || ring
                .buckets
                .front()
                .is_some_and(|b| b.start_ms + BUCKETS as u64 * BUCKET_MS <= start)
        {
            ring.buckets.pop_front();
        }
        ring.recent.push_back(s);
        while ring.recent.len() > RECENT {
            ring.recent.pop_front();
        }
    }

    /// Everything, for `now`; buckets older than an hour are left out.
    pub fn body(&self, now: UnixMillis) -> HistoryBody {
        let rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = now.saturating_sub(BUCKETS as u64 * BUCKET_MS);
        HistoryBody {
            now_ms: now,
            bucket_ms: BUCKET_MS,
            instances: rings
                .iter()
                .map(|(id, r)| InstanceHistory {
                    id: id.clone(),
                    buckets: r
                        .buckets
                        .iter()
                        .filter(|b| b.start_ms + BUCKET_MS > oldest)
                        .cloned()
                        .collect(),
                    recent: r.recent.iter().cloned().collect(),
                })
                .collect(),
        }
    }

    /// Forgets instances that are no longer configured.
    pub fn retain(&self, ids: &[String]) {
        let mut rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        rings.retain(|id, _| ids.contains(id));
    }
}

/// The sample a probe report becomes.
pub fn sample_of(r: &ProbeReport) -> Sample {
    let at_ms =
        r.at.duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
    let latency = r
        .checks
        .iter()
        .map(|c| c.latency)
        .max()
        .unwrap_or(Duration::ZERO);
    Sample {
        at_ms,
        ok: r.ok,
        latency_ms: latency.as_secs_f64() * 1000.0,
        error: (!r.ok).then(|| r.summary()),
    }
}

/// Records every new report of `reports` into `history` until the channel closes. A report is
/// new when its time differs from the last one recorded for its instance (the channel keeps
/// only the latest report per instance, so a probe replaced before this task ran is skipped).
pub fn spawn_feeder(
    history: Arc<History>,
    mut reports: watch::Receiver<BTreeMap<String, ProbeReport>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen: HashMap<String, std::time::SystemTime> = HashMap::new();
        loop {
            let mut fresh: Vec<(String, Sample)> = Vec::new();
            for (id, r) in reports.borrow_and_update().iter() {
                if seen.get(id) != Some(&r.at) {
                    seen.insert(id.clone(), r.at);
                    fresh.push((id.clone(), sample_of(r)));
                }
            }
            for (id, s) in fresh {
                history.record(&id, s);
            }
            if reports.changed().await.is_err() {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at_ms: u64, ok: bool, lat: f64) -> Sample {
        Sample {
            at_ms,
            ok,
            latency_ms: lat,
            error: (!ok).then(|| "v2: HTTP 503".to_string()),
        }
    }

    #[test]
    fn buckets_per_minute_bounded_to_an_hour() {
        let h = History::new();
        let t0 = 1_700_000_000_000 - 1_700_000_000_000 % BUCKET_MS;
        h.record("a", s(t0, true, 3.0));
        h.record("a", s(t0 + 1000, false, 9.0));
        h.record("a", s(t0 + BUCKET_MS, true, 1.0));
        let b = h.body(t0 + BUCKET_MS);
        let a = &b.instances[0];
        assert_eq!(a.buckets.len(), 2);
        assert_eq!((a.buckets[0].probes, a.buckets[0].failed), (2, 1));
        assert_eq!(a.buckets[0].max_latency_ms, 9.0);
        assert_eq!(a.recent.len(), 3);
        assert_eq!(a.recent[1].error.as_deref(), Some("v2: HTTP 503"));
        // Two hours of probes every 10 s: at most an hour of buckets, RECENT samples.
        for i in 0..720 {
            h.record("a", s(t0 + 2 * BUCKET_MS + i * 10_000, true, 1.0));
        }
        let now = t0 + 2 * BUCKET_MS + 720 * 10_000;
        let a = &h.body(now).instances[0];
        assert!(a.buckets.len() <= BUCKETS, "{}", a.buckets.len());
        assert!(a.buckets[0].start_ms + BUCKET_MS > now - BUCKETS as u64 * BUCKET_MS);
        assert_eq!(a.recent.len(), RECENT);
        // A stale instance drops out of the answer's window and out of the map on retain.
        assert!(h.body(now + 2 * 3_600_000).instances[0].buckets.is_empty());
        h.retain(&[]);
        assert!(h.body(now).instances.is_empty());
    }
}
