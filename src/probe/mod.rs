//! Health prober (docs/design.md#5-health-of-an-instance).
//!
//! An instance is healthy when every configured check passes:
//!
//! * `v2`: `GET url` answers 200, or 401 carrying a `WWW-Authenticate`
//!   challenge;
//! * `auth` (with `auth_check`): the Bearer realm named by that challenge
//!   answers 200/401/403 with a non-empty body (a Basic challenge, or no
//!   challenge at all, skips this check: it is then absent from the report);
//! * every `extra` check: HTTP 2xx/3xx/401/403, or a TCP connect;
//! * with `require_api_version` (the default), the 200 or 401 of `v2` carries
//!   `Docker-Distribution-API-Version: registry/2.0`, else it is not a registry;
//! * `canary` (optional, [`canary`]): a real pull of a small image on its own, slower
//!   interval, with its own rise/fall counter; the instance is up only when both `v2`
//!   and the canary are, and down as soon as either is. Each successful pull reports the
//!   manifest digest ([`DigestSeen`]) for replication awareness.
//!
//! [`probe_once`] runs one probe with a [`Prober`] (the HTTP client built once
//! per instance). [`HealthCounter`] is the pure rise/fall hysteresis and
//! [`spawn_prober`] runs one task per instance, sending only transitions to
//! the controller and every report to a watch map.

pub mod acr;
mod auth;
pub mod canary;
mod challenge;
pub mod dns;
mod http;
mod schedule;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use canary::{CanaryAuth, CanaryOutcome, CanarySpec, ManifestCheck};
pub use challenge::{Challenge, challenges_of, parse_challenge, parse_challenges};
pub use http::{BODY_CAP, Prober, ResolvedName, fmt_duration};
pub use schedule::{
    DEFAULT_MAX_CONCURRENT_PROBES, HealthCounter, HealthState, NoCanary, SchedCtx, combine,
    default_fast_interval, spawn_instance, spawn_instance_with_canary, spawn_prober,
    spawn_prober_with,
};

/// The checks of one probe run at several addresses, as one report: each check is named
/// `CHECK@ADDRESS` (`v2@10.1.0.5`), and the report passes only when every check passed at
/// every address.
pub fn merge_at_addresses(
    id: &str,
    reports: impl IntoIterator<Item = (std::net::IpAddr, ProbeReport)>,
) -> ProbeReport {
    let mut resolved: Vec<ResolvedName> = Vec::new();
    let mut checks = Vec::new();
    for (addr, r) in reports {
        checks.extend(r.checks.into_iter().map(|mut c| {
            c.check = format!("{}@{addr}", c.check);
            c
        }));
        for n in r.resolved {
            if !resolved.contains(&n) {
                resolved.push(n);
            }
        }
    }
    let mut report = ProbeReport::from_checks(id, checks);
    report.resolved = resolved;
    report
}

/// One registry instance to probe.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    /// Instance id, as used in reports, transitions and endpoint policies.
    pub id: String,
    /// The `/v2/` URL; its host name is used for SNI, `Host` and certificate
    /// verification even when `connect` overrides the dialled address.
    pub url: url::Url,
    /// `host:port` to dial instead of the URL's host (re-resolved every
    /// probe). Requires the URL host to be a name, not an IP literal.
    pub connect: Option<String>,
    /// Further host names whose connections are dialled to `connect` too (the token
    /// realm's, a blob redirect's; `"*"`: every name the checks contact), keeping each
    /// name for SNI, `Host` and certificate verification. Needs `connect`.
    pub connect_hosts: Vec<String>,
    /// The DNS server every name of the checks is resolved through (A and AAAA) instead
    /// of the system resolver.
    pub resolver: Option<std::net::SocketAddr>,
    /// Time between the starts of two probes while health is settled.
    pub interval: Duration,
    /// Per-check budget: connect, TLS and the whole (capped) body.
    pub timeout: Duration,
    /// Consecutive successful probes needed to conclude Up.
    pub rise: u32,
    /// Consecutive failed probes needed to conclude Down.
    pub fall: u32,
    /// Interval while the counters are in motion; `None` (or zero) means
    /// [`default_fast_interval`]: interval/4, at least 200 ms.
    pub fast_interval: Option<Duration>,
    /// PEM bundle of extra trusted roots (the built-in roots stay trusted).
    pub ca_file: Option<PathBuf>,
    /// Accept invalid TLS certificates (no verification at all).
    pub insecure_skip_verify: bool,
    /// Also run the `auth` check against the Bearer realm of the `v2`
    /// challenge.
    pub auth_check: bool,
    /// Further checks that must pass too.
    pub extra: Vec<ExtraCheck>,
    /// A 200 or 401 on `v2` must carry `Docker-Distribution-API-Version: registry/2.0`.
    pub require_api_version: bool,
    /// The canary pull, if configured.
    pub canary: Option<CanarySpec>,
    /// Probe at these addresses instead of the URL's host or `connect` (a view's
    /// `probe = "addresses"`): every check runs against each address, and the probe
    /// passes only when it passes at every one (clients may be given any of them).
    pub addresses: Vec<std::net::IpAddr>,
}

impl InstanceSpec {
    /// A spec with the usual defaults (interval 10 s, timeout 2 s, rise 2,
    /// fall 3, no extras); handy for tests and tools.
    pub fn new(id: impl Into<String>, url: url::Url) -> Self {
        InstanceSpec {
            id: id.into(),
            url,
            connect: None,
            connect_hosts: Vec::new(),
            resolver: None,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            rise: 2,
            fall: 3,
            fast_interval: None,
            ca_file: None,
            insecure_skip_verify: false,
            auth_check: false,
            extra: Vec::new(),
            require_api_version: true,
            canary: None,
            addresses: Vec::new(),
        }
    }

    /// This spec dialled at `addr` on the URL's port, keeping its scheme, `Host`, SNI and
    /// certificate checks: with a host name, `connect = "addr:port"`; with an IP literal,
    /// the URL (and every extra URL on the same host) names `addr` instead.
    pub fn at(&self, addr: std::net::IpAddr) -> InstanceSpec {
        let mut s = self.clone();
        s.addresses = Vec::new();
        match self.url.host() {
            Some(url::Host::Domain(_)) => {
                let port = self.url.port_or_known_default().unwrap_or(443);
                s.connect = Some(std::net::SocketAddr::new(addr, port).to_string());
            }
            _ => {
                let host = self.url.host_str().map(str::to_string);
                let retarget = |u: &mut url::Url| {
                    if u.host_str().map(str::to_string) == host {
                        let _ = u.set_ip_host(addr);
                    }
                };
                retarget(&mut s.url);
                for x in &mut s.extra {
                    if let ExtraCheck::Http { url, .. } = x {
                        retarget(url);
                    }
                }
            }
        }
        s
    }
}

/// A further check of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraCheck {
    /// HTTP GET: 2xx, 3xx (redirects are not followed), 401 and 403 are up.
    /// A URL on the instance's host name is dialled through `connect` too.
    Http {
        /// Check name, as shown in reports.
        name: String,
        /// URL to GET.
        url: url::Url,
    },
    /// TCP connect to `host:port` (dialled to `connect` only when `connect_hosts` names
    /// its host or is `*`).
    Tcp {
        /// Check name, as shown in reports.
        name: String,
        /// `host:port` to connect to.
        addr: String,
    },
}

impl ExtraCheck {
    /// The check's name, as shown in reports.
    pub fn name(&self) -> &str {
        match self {
            ExtraCheck::Http { name, .. } | ExtraCheck::Tcp { name, .. } => name,
        }
    }
}

/// Outcome of one check within a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// `"v2"`, `"auth"` or the extra check's name.
    pub check: String,
    /// Whether the check passed.
    pub ok: bool,
    /// Time the check took.
    pub latency: Duration,
    /// e.g. `"HTTP 401 Bearer challenge"`, or the failure reason.
    pub detail: String,
}

/// Outcome of one probe of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// Id of the probed instance.
    pub instance: String,
    /// Whether every check passed (false when there are none).
    pub ok: bool,
    /// Result of each check.
    pub checks: Vec<CheckResult>,
    /// When the report was built (wall-clock time).
    pub at: SystemTime,
    /// The names resolved through the instance's `resolver`, with their latest addresses
    /// (empty without one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<ResolvedName>,
}

impl ProbeReport {
    /// Builds a report whose `ok` is the conjunction of the checks (false
    /// when there are none).
    pub fn from_checks(instance: impl Into<String>, checks: Vec<CheckResult>) -> Self {
        let ok = !checks.is_empty() && checks.iter().all(|c| c.ok);
        ProbeReport {
            instance: instance.into(),
            ok,
            checks,
            at: SystemTime::now(),
            resolved: Vec::new(),
        }
    }

    /// `"v2: connection refused (…)"` when down (every failing check),
    /// `"v2: HTTP 401 Bearer challenge, auth: token service 200"` when up.
    pub fn summary(&self) -> String {
        self.checks
            .iter()
            .filter(|c| self.ok || !c.ok)
            .map(|c| format!("{}: {}", c.check, c.detail))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A change of an instance's health, the only thing sent to the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// Id of the instance whose health changed.
    pub instance: String,
    /// New health: `true` for up, `false` for down.
    pub up: bool,
    /// When the change was concluded (wall-clock time).
    pub at: SystemTime,
    /// The report summary of the probe that concluded the change.
    pub reason: String,
}

impl Transition {
    /// The health this transition concludes, since its time (`now` when that time is
    /// before the epoch).
    pub fn health(&self, now: crate::clock::UnixMillis) -> crate::decide::Health {
        let at = self
            .at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(now);
        if self.up {
            crate::decide::Health::Up { since: at }
        } else {
            crate::decide::Health::Down {
                since: at,
                reason: self.reason.clone(),
            }
        }
    }
}

/// Whether two conclusions are the same state (up and up, down and down), whatever their
/// times and reasons: a transition to the same state changes nothing.
pub fn same_state(a: &crate::decide::Health, b: &crate::decide::Health) -> bool {
    use crate::decide::Health::{Down, Up};
    matches!((a, b), (Up { .. }, Up { .. }) | (Down { .. }, Down { .. }))
}

/// A canary pull resolved the manifest to a digest (sent when it differs from the
/// previous pull's, and after every start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestSeen {
    /// Id of the instance.
    pub instance: String,
    /// `sha256:…` of the canary's manifest (the index, for a multi-platform image).
    pub digest: String,
    /// When the pull finished (wall-clock time).
    pub at: SystemTime,
}

/// Errors building a [`Prober`] (configuration problems).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The `ca_file` could not be read.
    #[error("ca_file {path}: {source}")]
    CaFileRead {
        /// Path of the `ca_file`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The `ca_file` holds no valid PEM certificate.
    #[error("ca_file {path}: {reason}")]
    CaFileParse {
        /// Path of the `ca_file`.
        path: PathBuf,
        /// Why parsing failed.
        reason: String,
    },
    /// The instance URL has no host.
    #[error("url {0}: has no host")]
    NoHost(url::Url),
    /// The instance URL's scheme is neither `http` nor `https`.
    #[error("url {0}: scheme must be http or https")]
    Scheme(url::Url),
    /// `connect` is set but the URL host is an IP literal.
    #[error("connect {connect:?}: the url host {host} must be a name, not an IP address")]
    ConnectNeedsName {
        /// The `connect` value.
        connect: String,
        /// The URL's host (an IP address).
        host: String,
    },
    /// `connect` is not a valid `host:port` (non-zero port).
    #[error("connect {0:?}: expected host:port")]
    ConnectSyntax(String),
    /// `connect_hosts` is set without `connect`.
    #[error("connect_hosts {0:?}: needs connect (the address these names are dialled to)")]
    ConnectHostsWithoutConnect(String),
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// reqwest failed to build the HTTP client.
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Runs every check of `spec` once (extras concurrently with `v2`+`auth`).
pub async fn probe_once(spec: &InstanceSpec, client: &Prober) -> ProbeReport {
    let main = async {
        let (v2, challenge) = client.check_v2(&spec.url, spec.require_api_version).await;
        let mut out = vec![v2];
        if spec.auth_check
            && let Some(ch) = challenge.filter(|c| c.is_bearer())
        {
            out.push(client.check_auth(&spec.url, &ch).await);
        }
        out
    };
    let extras = futures_util::future::join_all(spec.extra.iter().map(|e| client.check_extra(e)));
    let (mut checks, extra) = tokio::join!(main, extras);
    checks.extend(extra);
    let mut report = ProbeReport::from_checks(spec.id.clone(), checks);
    report.resolved = client.resolved_names();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(check: &str, ok: bool, detail: &str) -> CheckResult {
        CheckResult {
            check: check.into(),
            ok,
            latency: Duration::ZERO,
            detail: detail.into(),
        }
    }

    #[test]
    fn summary_up_lists_all_checks() {
        let r = ProbeReport::from_checks(
            "a",
            vec![
                cr("v2", true, "HTTP 401 Bearer challenge"),
                cr("auth", true, "token service 200"),
            ],
        );
        assert!(r.ok);
        assert_eq!(
            r.summary(),
            "v2: HTTP 401 Bearer challenge, auth: token service 200"
        );
    }

    #[test]
    fn summary_down_lists_failing_checks_only() {
        let r = ProbeReport::from_checks(
            "a",
            vec![
                cr("v2", true, "HTTP 200"),
                cr("redis", false, "connection refused (127.0.0.1:6379)"),
            ],
        );
        assert!(!r.ok);
        assert_eq!(r.summary(), "redis: connection refused (127.0.0.1:6379)");
    }

    #[test]
    fn a_spec_at_an_address_keeps_the_name_or_replaces_the_ip() {
        let mut named = InstanceSpec::new("hz", "https://r.registry.test/v2/".parse().unwrap());
        named.connect = Some("public.example:443".into());
        named.addresses = vec!["10.1.0.5".parse().unwrap()];
        let at = named.at("10.1.0.5".parse().unwrap());
        assert_eq!(at.url.as_str(), "https://r.registry.test/v2/");
        assert_eq!(at.connect.as_deref(), Some("10.1.0.5:443"));
        assert!(at.addresses.is_empty());
        let v6 = named.at("fd00::5".parse().unwrap());
        assert_eq!(v6.connect.as_deref(), Some("[fd00::5]:443"));

        let mut ip = InstanceSpec::new("hz", "http://127.0.0.1:5000/v2/".parse().unwrap());
        ip.extra = vec![
            ExtraCheck::Http {
                name: "same".into(),
                url: "http://127.0.0.1:5000/ping".parse().unwrap(),
            },
            ExtraCheck::Http {
                name: "other".into(),
                url: "http://127.0.0.9:80/".parse().unwrap(),
            },
        ];
        let at = ip.at("127.0.0.5".parse().unwrap());
        assert_eq!(at.url.as_str(), "http://127.0.0.5:5000/v2/");
        assert_eq!(at.connect, None);
        let urls: Vec<String> = at
            .extra
            .iter()
            .map(|x| match x {
                ExtraCheck::Http { url, .. } => url.to_string(),
                ExtraCheck::Tcp { addr, .. } => addr.clone(),
            })
            .collect();
        assert_eq!(urls, ["http://127.0.0.5:5000/ping", "http://127.0.0.9/"]);
    }

    #[test]
    fn reports_at_addresses_merge_into_one() {
        let a = "10.1.0.5".parse().unwrap();
        let b = "10.1.0.6".parse().unwrap();
        let r = merge_at_addresses(
            "hz@vpc",
            [
                (
                    a,
                    ProbeReport::from_checks("x", vec![cr("v2", true, "HTTP 200")]),
                ),
                (
                    b,
                    ProbeReport::from_checks("x", vec![cr("v2", false, "connection refused")]),
                ),
            ],
        );
        assert_eq!(r.instance, "hz@vpc");
        assert!(!r.ok, "one address down is down");
        assert_eq!(r.summary(), "v2@10.1.0.6: connection refused");
        assert_eq!(r.checks[0].check, "v2@10.1.0.5");
    }

    #[test]
    fn no_checks_is_not_ok() {
        assert!(!ProbeReport::from_checks("a", vec![]).ok);
    }
}
