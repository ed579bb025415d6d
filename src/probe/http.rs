//! The HTTP client of one instance and the `v2` / extra checks, with failure
//! classification (walks the `source()` chain: reqwest → hyper → io/rustls).

use std::collections::{BTreeMap, HashMap};
use std::error::Error as StdError;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{HOST, HeaderMap, HeaderValue};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

use super::challenge::{Challenge, challenges_of};
use super::{CheckResult, ExtraCheck, InstanceSpec, ProbeError};

/// Bodies are read up to this many bytes, then the response is dropped.
pub const BODY_CAP: usize = 64 * 1024;

/// What the reqwest connector's own timeout (TCP + TLS) is set below the
/// probe deadline, so that a hang during connect is told from one while
/// waiting for response headers.
const CONNECT_MARGIN: Duration = Duration::from_millis(25);

/// Longest extra wait spent telling a TCP hang from a TLS hang.
const DIAG_BUDGET: Duration = Duration::from_millis(500);

/// Short human form of a duration: `2s`, `1.5s`, `250ms`.
pub fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        // f64 Display: 2.0 → "2", 1.5 → "1.5".
        format!("{}s", d.as_millis() as f64 / 1000.0)
    }
}

/// Time allowed to resolve one name through `resolver`: three quarters of the check's
/// timeout, so that a silent DNS server is reported as such before the connection's own
/// timeout fires.
fn dns_timeout(timeout: Duration) -> Duration {
    (timeout * 3 / 4).max(Duration::from_millis(1))
}

/// The dial override: `connect = "host:port"` for the URL's host name, and for the
/// further names of `connect_hosts` (`*`: every name).
#[derive(Debug)]
struct Target {
    /// Lower-cased host name of the instance URL.
    host: String,
    connect: Option<(String, u16)>,
    /// Further host names dialled to `connect` (lower-cased, no trailing dot).
    connect_hosts: Vec<String>,
    /// `connect_hosts = ["*"]`: every host name.
    all_hosts: bool,
}

impl Target {
    /// Whether a connection to the host name `host` is dialled to `connect`: the URL's own
    /// name, or one of `connect_hosts`.
    fn dials_connect(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.connect.is_some() && (host.eq_ignore_ascii_case(&self.host) || self.listed(host))
    }

    /// Whether `connect_hosts` names `host` (or is `*`).
    fn listed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.all_hosts
            || self
                .connect_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host))
    }

    fn applies_to(&self, url: &url::Url) -> bool {
        match url.host() {
            Some(url::Host::Domain(d)) => self.dials_connect(d),
            _ => false,
        }
    }
}

/// Addresses last resolved per name; `None` while a resolution is running.
type Resolved = Arc<Mutex<HashMap<String, Option<Vec<SocketAddr>>>>>;

/// Names kept for the report of the names resolved through `resolver`.
const MAX_SHOWN_NAMES: usize = 32;

#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {query}")]
struct DnsError {
    query: String,
    cause: DnsCause,
}

/// Why a name did not resolve.
#[derive(Debug)]
enum DnsCause {
    /// The system resolver (`getaddrinfo`) failed, or gave nothing.
    System(Option<io::Error>),
    /// The instance's `resolver` failed.
    Via(super::dns::DnsQueryError),
}

/// The instance's `resolver`: the DNS server asked, the time allowed per name, and the
/// latest addresses of every name it resolved (shown in reports).
#[derive(Debug)]
struct Via {
    server: SocketAddr,
    timeout: Duration,
    seen: Mutex<BTreeMap<String, Vec<IpAddr>>>,
}

/// How names are turned into addresses: the system resolver, or the instance's `resolver`.
#[derive(Debug, Clone)]
struct Lookup {
    via: Option<Arc<Via>>,
}

impl Lookup {
    /// The socket addresses of `host` (a name or an IP literal, `[v6]` too) on `port`.
    async fn addrs(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, DnsError> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let Some(via) = &self.via else {
            return match tokio::net::lookup_host((bare, port)).await {
                Ok(i) => {
                    let addrs: Vec<SocketAddr> = i.collect();
                    if addrs.is_empty() {
                        Err(DnsError {
                            query: host.to_string(),
                            cause: DnsCause::System(None),
                        })
                    } else {
                        Ok(addrs)
                    }
                }
                Err(e) => Err(DnsError {
                    query: host.to_string(),
                    cause: DnsCause::System(Some(e)),
                }),
            };
        };
        let key = bare.trim_end_matches('.').to_ascii_lowercase();
        let name = super::dns::host_name(bare).map_err(|reason| DnsError {
            query: host.to_string(),
            cause: DnsCause::Via(super::dns::DnsQueryError::Bad {
                server: via.server,
                reason,
            }),
        })?;
        let r = super::dns::resolve(via.server, &name, via.timeout).await;
        let mut seen = via.seen.lock().unwrap_or_else(|e| e.into_inner());
        match r {
            Ok(r) => {
                if seen.len() >= MAX_SHOWN_NAMES && !seen.contains_key(&key) {
                    seen.pop_first();
                }
                seen.insert(key, r.addrs.clone());
                Ok(r.addrs
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect())
            }
            Err(e) => {
                seen.remove(&key);
                Err(DnsError {
                    query: host.to_string(),
                    cause: DnsCause::Via(e),
                })
            }
        }
    }

    /// `host:port` (the `connect` form) resolved.
    async fn host_port(&self, hp: &str) -> Result<Vec<SocketAddr>, DnsError> {
        match hp
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        {
            Some((h, p)) => self.addrs(h, p).await.map_err(|e| DnsError {
                query: hp.to_string(),
                ..e
            }),
            None => Err(DnsError {
                query: hp.to_string(),
                cause: DnsCause::System(None),
            }),
        }
    }
}

/// Resolves every name at each connection (pooling is off, so at each probe) with the
/// system resolver or the instance's `resolver`; the instance's host name (and those of
/// `connect_hosts`) resolve to the `connect` address instead.
struct ProbeResolver {
    target: Arc<Target>,
    lookup: Lookup,
    resolved: Resolved,
}

impl reqwest::dns::Resolve for ProbeResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_ascii_lowercase();
        let connect = match &self.target.connect {
            Some((c, _)) if self.target.dials_connect(&name) => Some(c.clone()),
            _ => None,
        };
        let resolved = self.resolved.clone();
        let lookup = self.lookup.clone();
        resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), None);
        Box::pin(async move {
            let r = match connect {
                Some(c) => lookup.host_port(&c).await,
                None => lookup.addrs(&name, 0).await,
            };
            match r {
                Ok(addrs) => {
                    resolved
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(name, Some(addrs.clone()));
                    Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
                }
                Err(e) => Err(Box::new(e) as _),
            }
        })
    }
}

/// One name resolved through an instance's `resolver`, as last seen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResolvedName {
    /// The host name (lower-cased, no trailing dot).
    pub name: String,
    /// Its addresses (IPv4 first).
    pub addresses: Vec<IpAddr>,
    /// The DNS server asked.
    pub resolver: SocketAddr,
}

/// A response read to the end (or to the cap).
#[derive(Debug)]
pub(super) struct HttpResponse {
    /// HTTP status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Body, at most the cap.
    pub body: Vec<u8>,
    /// The body went on past the cap (what was read is in `body`).
    pub truncated: bool,
}

/// Authorization sent with a request.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Auth {
    /// None.
    None,
    /// HTTP Basic: user, password.
    Basic(String, String),
    /// A Bearer token.
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::Basic(..) => "Basic(<redacted>)",
            Auth::Bearer(_) => "Bearer(<redacted>)",
        })
    }
}

/// Everything needed to probe one instance: the reqwest client (built once:
/// trust roots, resolver with the `connect` override, no pooling, no proxy,
/// no redirects) and the per-check timeout.
pub struct Prober {
    client: reqwest::Client,
    target: Arc<Target>,
    lookup: Lookup,
    resolved: Resolved,
    timeout: Duration,
    /// What the canary remembers between runs (`manifest = "head"`, `blob_every`).
    pub(super) canary_memo: Mutex<super::canary::Memo>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Prober {
    /// Builds the client for `spec`; fails on configuration errors only
    /// (unreadable `ca_file`, bad `connect`, …).
    pub fn new(spec: &InstanceSpec) -> Result<Prober, ProbeError> {
        if !matches!(spec.url.scheme(), "http" | "https") {
            return Err(ProbeError::Scheme(spec.url.clone()));
        }
        let host = spec
            .url
            .host()
            .ok_or_else(|| ProbeError::NoHost(spec.url.clone()))?;
        let connect = match &spec.connect {
            None => None,
            Some(c) => {
                if !matches!(host, url::Host::Domain(_)) {
                    return Err(ProbeError::ConnectNeedsName {
                        connect: c.clone(),
                        host: host.to_string(),
                    });
                }
                let port = c
                    .rsplit_once(':')
                    .and_then(|(h, p)| (!h.is_empty()).then_some(p))
                    .and_then(|p| p.parse::<u16>().ok())
                    .filter(|p| *p != 0)
                    .ok_or_else(|| ProbeError::ConnectSyntax(c.clone()))?;
                Some((c.clone(), port))
            }
        };
        if connect.is_none()
            && let Some(h) = spec.connect_hosts.first()
        {
            return Err(ProbeError::ConnectHostsWithoutConnect(h.clone()));
        }
        let all_hosts = spec.connect_hosts.iter().any(|h| h == "*");
        let target = Arc::new(Target {
            host: host.to_string().to_ascii_lowercase(),
            connect,
            connect_hosts: spec
                .connect_hosts
                .iter()
                .filter(|h| *h != "*")
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            all_hosts,
        });
        let lookup = Lookup {
            via: spec.resolver.map(|server| {
                Arc::new(Via {
                    server,
                    timeout: dns_timeout(spec.timeout),
                    seen: Mutex::default(),
                })
            }),
        };
        let resolved: Resolved = Arc::default();
        let tls = tls_config(spec)?;
        let b = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .connect_timeout(spec.timeout.saturating_sub(CONNECT_MARGIN).max(
                // Tiny timeouts (tests): keep some connector budget.
                spec.timeout / 2,
            ))
            .dns_resolver(Arc::new(ProbeResolver {
                target: target.clone(),
                lookup: lookup.clone(),
                resolved: resolved.clone(),
            }))
            .user_agent(concat!("regdns-probe/", env!("CARGO_PKG_VERSION")));
        Ok(Prober {
            client: b.build()?,
            target,
            lookup,
            resolved,
            timeout: spec.timeout,
            canary_memo: Mutex::default(),
        })
    }

    /// The names resolved through the instance's `resolver`, with their latest addresses
    /// (name order; empty without a `resolver`). A name whose last resolution failed is
    /// left out: the failing check says why.
    pub fn resolved_names(&self) -> Vec<ResolvedName> {
        let Some(via) = &self.lookup.via else {
            return Vec::new();
        };
        via.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(name, addrs)| ResolvedName {
                name: name.clone(),
                addresses: addrs.clone(),
                resolver: via.server,
            })
            .collect()
    }

    /// The per-check timeout (the spec's `timeout`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `host:port` named in failure messages for `url`.
    fn authority(&self, url: &url::Url) -> String {
        if self.target.applies_to(url)
            && let Some((c, _)) = &self.target.connect
        {
            return c.clone();
        }
        format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        )
    }

    /// The URL actually requested and the `Host` header to send: with
    /// `connect`, the port becomes the connect port (reqwest lets an explicit
    /// URL port override resolved ports) while `Host`, SNI and certificate
    /// verification keep the URL's name.
    fn rewrite(&self, url: &url::Url) -> (url::Url, Option<HeaderValue>) {
        match &self.target.connect {
            Some((_, port)) if self.target.applies_to(url) => {
                let mut u = url.clone();
                let mut host = url.host_str().unwrap_or_default().to_string();
                if let Some(p) = url.port() {
                    host = format!("{host}:{p}");
                }
                let _ = u.set_port(Some(*port));
                (u, HeaderValue::from_str(&host).ok())
            }
            _ => (url.clone(), None),
        }
    }

    /// GET `url`, reading the body up to [`BODY_CAP`], all within the
    /// timeout. The error is the human failure reason.
    pub(super) async fn get(&self, url: &url::Url) -> Result<HttpResponse, String> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        self.fetch(url, &Auth::None, None, deadline, self.timeout, BODY_CAP)
            .await
    }

    /// GET `url` with `auth` and `accept`, reading the body up to `cap` bytes, all before
    /// `deadline` (`budget` is the timeout named in a failure reason). Redirects are
    /// returned, not followed. The error is the human failure reason.
    pub(super) async fn fetch(
        &self,
        url: &url::Url,
        auth: &Auth,
        accept: Option<&str>,
        deadline: tokio::time::Instant,
        budget: Duration,
        cap: usize,
    ) -> Result<HttpResponse, String> {
        self.request(
            reqwest::Method::GET,
            url,
            auth,
            accept,
            deadline,
            budget,
            cap,
        )
        .await
    }

    /// [`Self::fetch`] with any method (`HEAD`: the body is empty).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn request(
        &self,
        method: reqwest::Method,
        url: &url::Url,
        auth: &Auth,
        accept: Option<&str>,
        deadline: tokio::time::Instant,
        budget: Duration,
        cap: usize,
    ) -> Result<HttpResponse, String> {
        let timed_out = |phase: &str| format!("timeout after {} ({phase})", fmt_duration(budget));
        let (req_url, host) = self.rewrite(url);
        let mut req = self.client.request(method, req_url.clone());
        if let Some(h) = host {
            req = req.header(HOST, h);
        }
        if let Some(a) = accept {
            req = req.header(reqwest::header::ACCEPT, a);
        }
        req = match auth {
            Auth::None => req,
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
            Auth::Bearer(t) => req.bearer_auth(t),
        };
        let mut resp = match timeout_at(deadline, req.send()).await {
            Err(_) => return Err(timed_out("response headers")),
            Ok(Err(e)) => {
                return Err(match self.classify_now(url, &e) {
                    Some(reason) => reason,
                    None => timed_out(self.connect_phase(&req_url).await),
                });
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        let headers = std::mem::take(resp.headers_mut());
        let mut body = Vec::new();
        let mut truncated = false;
        loop {
            match timeout_at(deadline, resp.chunk()).await {
                Err(_) => return Err(timed_out("body")),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(c))) => {
                    if body.len() + c.len() > cap {
                        body.extend_from_slice(&c[..cap - body.len()]);
                        truncated = true;
                        break;
                    }
                    body.extend_from_slice(&c);
                }
                Ok(Err(e)) => {
                    return Err(format!(
                        "reading body: {}",
                        self.classify(url, &req_url, &e).await
                    ));
                }
            }
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
            truncated,
        })
    }

    fn timed_out(&self, phase: &str) -> String {
        format!("timeout after {} ({phase})", fmt_duration(self.timeout))
    }

    async fn classify(&self, url: &url::Url, req_url: &url::Url, e: &reqwest::Error) -> String {
        match self.classify_now(url, e) {
            Some(reason) => reason,
            None => {
                let phase = self.connect_phase(req_url).await;
                self.timed_out(phase)
            }
        }
    }

    /// The failure reason, or `None` for a connector timeout (whose phase
    /// [`Self::connect_phase`] finds out).
    fn classify_now(&self, url: &url::Url, e: &reqwest::Error) -> Option<String> {
        let chain = source_chain(e);
        let host = url.host_str().unwrap_or_default();
        if let Some(t) = chain.iter().find_map(|e| e.downcast_ref::<rustls::Error>()) {
            return Some(tls_reason(t, host));
        }
        if let Some(d) = chain.iter().find_map(|e| e.downcast_ref::<DnsError>()) {
            return Some(d.reason());
        }
        let authority = self.authority(url);
        for io_err in chain.iter().filter_map(|e| e.downcast_ref::<io::Error>()) {
            use io::ErrorKind as K;
            match io_err.kind() {
                K::ConnectionRefused => return Some(format!("connection refused ({authority})")),
                K::ConnectionReset => return Some(format!("connection reset ({authority})")),
                K::ConnectionAborted => return Some(format!("connection aborted ({authority})")),
                K::NetworkUnreachable => return Some(format!("network unreachable ({authority})")),
                K::HostUnreachable => return Some(format!("host unreachable ({authority})")),
                K::AddrNotAvailable => return Some(format!("address not available ({authority})")),
                K::TimedOut => return Some(self.timed_out("connect")),
                K::UnexpectedEof if e.is_connect() && url.scheme() == "https" => {
                    return Some(format!(
                        "TLS: connection closed during handshake ({authority})"
                    ));
                }
                _ => {}
            }
        }
        if e.is_timeout() {
            return None; // connector timeout: see connect_phase
        }
        if let Some(h) = chain.iter().find_map(|e| e.downcast_ref::<hyper::Error>()) {
            if h.is_incomplete_message() {
                return Some(format!(
                    "connection closed before a complete response ({authority})"
                ));
            }
            if h.is_parse() || h.is_parse_status() {
                return Some(format!("invalid HTTP response ({h})"));
            }
        }
        let inner = chain.last().map(|e| e.to_string()).unwrap_or_default();
        Some(if e.is_connect() {
            format!("connect {authority}: {inner}")
        } else {
            inner
        })
    }

    /// The connector timed out: was it DNS, TCP or the TLS handshake? DNS is
    /// known from the resolver; for https a quick TCP connect tells the rest.
    async fn connect_phase(&self, req_url: &url::Url) -> &'static str {
        let port = req_url.port_or_known_default().unwrap_or(0);
        let addr = match req_url.host() {
            Some(url::Host::Domain(d)) => {
                match self
                    .resolved
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&d.to_ascii_lowercase())
                {
                    Some(None) => return "dns",
                    None => return "connect",
                    Some(Some(a)) => a.first().map(|a| SocketAddr::new(a.ip(), port)),
                }
            }
            Some(url::Host::Ipv4(ip)) => Some(SocketAddr::new(ip.into(), port)),
            Some(url::Host::Ipv6(ip)) => Some(SocketAddr::new(ip.into(), port)),
            None => None,
        };
        let Some(addr) = addr else { return "connect" };
        if req_url.scheme() != "https" {
            return "connect";
        }
        let budget = (self.timeout / 2).min(DIAG_BUDGET);
        match tokio::time::timeout(budget, TcpStream::connect(addr)).await {
            Ok(Ok(_)) => "tls",
            _ => "connect",
        }
    }

    /// The `v2` check; also returns the challenge of a 401 (Bearer preferred). With
    /// `require_api_version`, a 200 or 401 must carry `Docker-Distribution-API-Version:
    /// registry/2.0`, or it is not a registry (a default web page, a captive portal).
    pub async fn check_v2(
        &self,
        url: &url::Url,
        require_api_version: bool,
    ) -> (CheckResult, Option<Challenge>) {
        let start = Instant::now();
        let (ok, detail, challenge) = match self.get(url).await {
            Err(reason) => (false, reason, None),
            Ok(resp) if require_api_version && matches!(resp.status.as_u16(), 200 | 401) => {
                match not_a_registry(&resp.headers) {
                    Some(why) => (false, why, None),
                    None => v2_verdict(&resp),
                }
            }
            Ok(resp) => v2_verdict(&resp),
        };
        (
            CheckResult {
                check: "v2".into(),
                ok,
                latency: start.elapsed(),
                detail,
            },
            challenge,
        )
    }

    /// An extra check: HTTP (2xx/3xx/401/403 up) or TCP connect.
    pub async fn check_extra(&self, check: &ExtraCheck) -> CheckResult {
        let start = Instant::now();
        let (ok, detail) = match check {
            ExtraCheck::Http { url, .. } => match self.get(url).await {
                Err(reason) => (false, reason),
                Ok(resp) => {
                    let code = resp.status.as_u16();
                    let up = (200..400).contains(&code) || code == 401 || code == 403;
                    (up, format!("HTTP {code}"))
                }
            },
            ExtraCheck::Tcp { addr, .. } => self.tcp(addr).await,
        };
        CheckResult {
            check: check.name().to_string(),
            ok,
            latency: start.elapsed(),
            detail,
        }
    }

    /// The TCP check of `addr` (`host:port`): dialled to `connect` instead when
    /// `connect_hosts` names its host (or is `*`).
    async fn tcp(&self, addr: &str) -> (bool, String) {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let addr = match (&self.target.connect, addr.rsplit_once(':')) {
            (Some((c, _)), Some((h, _)))
                if !h.starts_with('[') && h.parse::<IpAddr>().is_err() && self.target.listed(h) =>
            {
                c.as_str()
            }
            _ => addr,
        };
        let addrs = match timeout_at(deadline, self.lookup.host_port(addr)).await {
            Err(_) => return (false, self.timed_out("dns")),
            Ok(Err(e)) => return (false, e.reason()),
            Ok(Ok(a)) => a,
        };
        let mut last = String::new();
        for a in addrs {
            match timeout_at(deadline, TcpStream::connect(a)).await {
                Err(_) => return (false, self.timed_out("connect")),
                Ok(Ok(_)) => return (true, format!("connected to {a}")),
                Ok(Err(e)) => {
                    last = match e.kind() {
                        io::ErrorKind::ConnectionRefused => format!("connection refused ({addr})"),
                        io::ErrorKind::NetworkUnreachable => {
                            format!("network unreachable ({addr})")
                        }
                        io::ErrorKind::HostUnreachable => format!("host unreachable ({addr})"),
                        _ => format!("connect {addr}: {e}"),
                    }
                }
            }
        }
        (false, last)
    }
}

/// 200 up; 401 up when it carries a challenge (Bearer preferred); anything else down.
fn v2_verdict(resp: &HttpResponse) -> (bool, String, Option<Challenge>) {
    match resp.status.as_u16() {
        200 => (true, "HTTP 200".to_string(), None),
        401 => {
            let challenges = challenges_of(&resp.headers);
            let ch = challenges
                .iter()
                .find(|c| c.is_bearer())
                .or(challenges.first())
                .cloned();
            match ch {
                None => (
                    false,
                    "HTTP 401 without WWW-Authenticate challenge".to_string(),
                    None,
                ),
                Some(c) => (true, format!("HTTP 401 {} challenge", c.scheme), Some(c)),
            }
        }
        code => (false, format!("HTTP {code}"), None),
    }
}

/// Why a `/v2/` answer is not the Docker Registry API: no (or a wrong)
/// `Docker-Distribution-API-Version` header. `None` when it is.
pub(super) fn not_a_registry(headers: &HeaderMap) -> Option<String> {
    let content_type = match headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        Some(ct) => format!("Content-Type {}", super::canary::bare_media_type(ct)),
        None => "no Content-Type".to_string(),
    };
    match headers.get(API_VERSION_HEADER) {
        None => Some(format!(
            "not a registry API: no Docker-Distribution-API-Version header ({content_type})"
        )),
        Some(v) => {
            let v = String::from_utf8_lossy(v.as_bytes()).trim().to_string();
            let ok = v
                .split(|c: char| c == ',' || c.is_ascii_whitespace())
                .any(|t| t.eq_ignore_ascii_case("registry/2.0"));
            (!ok).then(|| {
                format!(
                    "not a registry API: Docker-Distribution-API-Version is {v:?}, not registry/2.0 ({content_type})"
                )
            })
        }
    }
}

/// The header every Docker Registry API v2 server sends (names are case-insensitive).
const API_VERSION_HEADER: &str = "docker-distribution-api-version";

/// The `source()` chain, with the custom payload of each `io::Error` listed
/// too (`io::Error::source` skips it, and that is where rustls errors sit,
/// sometimes in an `io::Error` nested in another).
fn source_chain<'a>(e: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        if out.len() >= 32 {
            break;
        }
        out.push(err);
        // io::Error::source() is its payload's source(): visit the payload
        // itself instead, which leads on to the same source.
        cur = match err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => err.source(),
        };
    }
    out
}

fn tls_reason(e: &rustls::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::NotValidForName => format!("TLS: certificate is not valid for {host}"),
            C::NotValidForNameContext { presented, .. } if !presented.is_empty() => {
                let names: Vec<String> = presented.iter().map(|n| presented_name(n)).collect();
                format!(
                    "TLS: certificate is not valid for {host} (it names {})",
                    names.join(", ")
                )
            }
            C::NotValidForNameContext { .. } => {
                format!("TLS: certificate is not valid for {host}")
            }
            C::ExpiredContext { not_after, .. } => format!(
                "TLS: certificate expired ({})",
                civil_date(not_after.as_secs())
            ),
            C::Expired => "TLS: certificate expired".into(),
            C::NotValidYetContext { not_before, .. } => format!(
                "TLS: certificate not yet valid (from {})",
                civil_date(not_before.as_secs())
            ),
            C::NotValidYet => "TLS: certificate not yet valid".into(),
            C::UnknownIssuer => "TLS: unknown issuer".into(),
            C::BadSignature => "TLS: bad certificate signature".into(),
            C::Revoked => "TLS: certificate revoked".into(),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "TLS: certificate not valid for server authentication".into()
            }
            C::BadEncoding => "TLS: malformed certificate".into(),
            other => format!("TLS: invalid certificate ({other:?})"),
        },
        rustls::Error::AlertReceived(a) => format!("TLS: server sent alert {a:?}"),
        rustls::Error::NoCertificatesPresented => "TLS: server presented no certificate".into(),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            format!("TLS: handshake failed, is the port speaking TLS? ({e})")
        }
        other => format!("TLS: {other}"),
    }
}

impl DnsError {
    /// `DNS: cannot resolve NAME (Name or service not known)`, or with `resolver`:
    /// `DNS: cannot resolve NAME (resolver 223.5.5.5:53: NXDOMAIN for NAME. A)`.
    fn reason(&self) -> String {
        let query = &self.query;
        match &self.cause {
            DnsCause::System(Some(e)) => {
                let msg = e.to_string();
                let msg = msg
                    .strip_prefix("failed to lookup address information: ")
                    .unwrap_or(&msg);
                format!("DNS: cannot resolve {query} ({msg})")
            }
            DnsCause::System(None) => format!("DNS: cannot resolve {query}"),
            DnsCause::Via(e) => format!("DNS: cannot resolve {query} ({e})"),
        }
    }
}

/// `DnsName("a.example")` → `a.example` (webpki's debug form of SAN entries).
fn presented_name(n: &str) -> String {
    n.strip_prefix("DnsName(\"")
        .and_then(|s| s.strip_suffix("\")"))
        .or_else(|| {
            n.strip_prefix("IpAddress(")
                .and_then(|s| s.strip_suffix(')'))
        })
        .unwrap_or(n)
        .to_string()
}

/// `YYYY-MM-DD` (UTC) of Unix seconds (the date part of the RFC 3339 form; times past
/// year 9999 are shown as that year's last day, which no certificate reaches).
fn civil_date(secs: u64) -> String {
    const MAX: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let t = std::time::UNIX_EPOCH + Duration::from_secs(secs.min(MAX));
    humantime::format_rfc3339_seconds(t).to_string()[..10].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(Duration::from_secs(2)), "2s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(978_307_200), "2001-01-01");
        assert_eq!(civil_date(1_709_164_800), "2024-02-29");
    }

    #[test]
    fn presented_names() {
        assert_eq!(presented_name("DnsName(\"a.test\")"), "a.test");
        assert_eq!(presented_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(presented_name("x"), "x");
    }

    fn spec(url: &str, connect: Option<&str>) -> InstanceSpec {
        let mut s = InstanceSpec::new("t", url.parse().unwrap());
        s.connect = connect.map(str::to_string);
        s
    }

    #[test]
    fn rewrite_keeps_name_and_uses_connect_port() {
        let p = Prober::new(&spec(
            "https://Registry.Test:5443/v2/",
            Some("127.0.0.1:6000"),
        ))
        .unwrap();
        let (u, h) = p.rewrite(&"https://registry.test:5443/v2/".parse().unwrap());
        assert_eq!(u.as_str(), "https://registry.test:6000/v2/");
        assert_eq!(h.unwrap(), "registry.test:5443");
        // Other hosts are left alone.
        let (u, h) = p.rewrite(&"https://auth.test/token".parse().unwrap());
        assert_eq!(u.as_str(), "https://auth.test/token");
        assert!(h.is_none());
        // Default port: Host has no port.
        let p = Prober::new(&spec("https://r.test/v2/", Some("10.0.0.1:443"))).unwrap();
        let (u, h) = p.rewrite(&"https://r.test/v2/".parse().unwrap());
        assert_eq!(u.as_str(), "https://r.test/v2/");
        assert_eq!(h.unwrap(), "r.test");
        assert_eq!(
            p.authority(&"https://r.test/v2/".parse().unwrap()),
            "10.0.0.1:443"
        );
    }

    #[test]
    fn connect_hosts_are_dialled_to_connect_too() {
        let mut s = spec("https://registry-1.docker.io/v2/", Some("10.0.0.7:443"));
        s.connect_hosts = vec![
            "Auth.Docker.IO".into(),
            "production.cloudflare.docker.com.".into(),
        ];
        let p = Prober::new(&s).unwrap();
        let (u, h) = p.rewrite(&"https://auth.docker.io/token?service=x".parse().unwrap());
        assert_eq!(u.as_str(), "https://auth.docker.io/token?service=x");
        assert_eq!(h.unwrap(), "auth.docker.io");
        assert_eq!(
            p.authority(
                &"https://production.cloudflare.docker.com/x"
                    .parse()
                    .unwrap()
            ),
            "10.0.0.7:443"
        );
        // A name not listed, and an IP literal, are dialled as written.
        let other: url::Url = "https://docker-images-prod.r2.example/blob"
            .parse()
            .unwrap();
        assert_eq!(p.rewrite(&other), (other.clone(), None));
        assert_eq!(p.authority(&other), "docker-images-prod.r2.example:443");
        assert!(!p.target.applies_to(&"https://10.0.0.9/x".parse().unwrap()));
        assert!(p.target.listed("auth.docker.io."));
        assert!(
            !p.target.listed("registry-1.docker.io"),
            "the URL's own name is not listed"
        );

        // `*`: every name, with an explicit port replaced by connect's.
        s.connect_hosts = vec!["*".into()];
        let p = Prober::new(&s).unwrap();
        let (u, h) = p.rewrite(&"https://blobs.example:8443/b".parse().unwrap());
        assert_eq!(u.as_str(), "https://blobs.example/b");
        assert_eq!(h.unwrap(), "blobs.example:8443");
        assert!(p.target.listed("anything.example"));

        // connect_hosts without connect is a configuration error.
        let mut s = spec("https://registry-1.docker.io/v2/", None);
        s.connect_hosts = vec!["auth.docker.io".into()];
        assert_eq!(
            Prober::new(&s).unwrap_err().to_string(),
            "connect_hosts \"auth.docker.io\": needs connect (the address these names are dialled to)"
        );
    }

    #[tokio::test]
    async fn a_tcp_check_on_a_listed_host_is_dialled_to_connect() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = l.local_addr().unwrap();
        let mut s = spec("https://registry.path.test/v2/", Some(&at.to_string()));
        s.connect_hosts = vec!["auth.path.test".into()];
        let p = Prober::new(&s).unwrap();
        let (ok, detail) = p.tcp("auth.path.test:443").await;
        assert!(ok, "{detail}");
        assert_eq!(detail, format!("connected to {at}"));
        // The URL's own name is not listed: a TCP check of it is dialled as written (and
        // the name does not resolve here).
        let (ok, detail) = p.tcp("bad\0name:443").await;
        assert!(!ok);
        assert!(
            detail.starts_with("DNS: cannot resolve bad\0name:443"),
            "{detail}"
        );
    }

    #[test]
    fn config_errors() {
        assert!(matches!(
            Prober::new(&spec("https://127.0.0.1/v2/", Some("10.0.0.1:443"))),
            Err(ProbeError::ConnectNeedsName { .. })
        ));
        assert!(matches!(
            Prober::new(&spec("https://r.test/v2/", Some("10.0.0.1"))),
            Err(ProbeError::ConnectSyntax(_))
        ));
        assert!(matches!(
            Prober::new(&spec("ftp://r.test/v2/", None)),
            Err(ProbeError::Scheme(_))
        ));
        let mut s = spec("https://r.test/v2/", None);
        s.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(matches!(
            Prober::new(&s),
            Err(ProbeError::CaFileRead { .. })
        ));
        let dir = std::env::temp_dir().join(format!("probe-ca-{}", std::process::id()));
        std::fs::write(&dir, "not a pem").unwrap();
        s.ca_file = Some(dir.clone());
        let r = Prober::new(&s);
        std::fs::remove_file(&dir).unwrap();
        assert!(matches!(r, Err(ProbeError::CaFileParse { .. })), "{r:?}");
    }
}

/// The TLS client configuration of a probe: Mozilla's roots (webpki-roots) plus `ca_file`,
/// and **no session resumption**, so that every probe verifies the certificate the
/// instance presents now (a resumed TLS 1.3 session would skip verification and hide a
/// certificate that was replaced by an expired or wrong one).
fn tls_config(spec: &InstanceSpec) -> Result<rustls::ClientConfig, ProbeError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &spec.ca_file {
        let pem = std::fs::read(path).map_err(|source| ProbeError::CaFileRead {
            path: path.clone(),
            source,
        })?;
        let mut n = 0;
        for c in CertificateDer::pem_slice_iter(&pem) {
            let c = c.map_err(|e| ProbeError::CaFileParse {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            roots.add(c).map_err(|e| ProbeError::CaFileParse {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            n += 1;
        }
        if n == 0 {
            return Err(ProbeError::CaFileParse {
                path: path.clone(),
                reason: "no PEM certificate found".into(),
            });
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.resumption = rustls::client::Resumption::disabled();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    if spec.insecure_skip_verify {
        cfg.dangerous()
            .set_certificate_verifier(Arc::new(NoVerification(provider)));
    }
    Ok(cfg)
}

/// `insecure_skip_verify`: accepts any certificate (lab use only; signatures are still
/// checked so the handshake is sound).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
