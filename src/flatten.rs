//! Names regdns serves by resolving them upstream ([`crate::config::ServerConfig`]
//! `upstream`): apex CNAME flattening and passthrough targets.
//!
//! * A CNAME cannot sit at a zone apex, so for an apex endpoint whose target is a CNAME
//!   regdns resolves the target and serves its A/AAAA records instead; when resolution
//!   fails the last good addresses are kept.
//! * A passthrough target (docs/passthrough.md) serves the public answer of the endpoint's
//!   own name: its addresses as the upstream resolves them. When the upstream fails, the
//!   last answer is served until its TTL runs out, then the name answers SERVFAIL (so
//!   resolvers with `forward-first` recurse themselves). An upstream answer that carries
//!   one of the endpoint's other targets (a CNAME or an address regdns itself serves) came
//!   back through regdns: a loop, reported and counted, never served.
//!
//! Each name is refreshed before its TTL runs out. Queries go through the probe's stub
//! resolver ([`crate::probe::dns`]); nothing here touches the serving path.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::sync::{mpsc, watch};

use crate::control::PublisherStatus;

use crate::snapshot::build::Flattened;

/// Shortest and longest refresh interval.
const MIN_REFRESH: Duration = Duration::from_secs(5);
const MAX_REFRESH: Duration = Duration::from_secs(3600);
/// Retry spacing after a failure (doubles up to a minute).
const RETRY: Duration = Duration::from_secs(2);
/// Time allowed for one lookup.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a name could not be flattened.
#[derive(Debug, thiserror::Error)]
pub enum FlattenError {
    /// Network problem.
    #[error("resolver {0}: {1}")]
    Io(SocketAddr, std::io::Error),
    /// No answer in time.
    #[error("resolver {0}: no answer within {1:?}")]
    Timeout(SocketAddr, Duration),
    /// The answer was not usable.
    #[error("resolver {0}: {1}")]
    Bad(SocketAddr, String),
    /// The answer came back through regdns (a passthrough name the upstream forwards to
    /// regdns).
    #[error("resolver {0}: loop: {1}")]
    Loop(SocketAddr, String),
}

/// What regdns itself answers for a passthrough endpoint's other targets: an upstream answer
/// carrying one of these came back through regdns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnAnswers {
    /// CNAME targets of the other targets.
    pub cnames: Vec<Name>,
    /// Addresses of the other targets.
    pub addrs: Vec<IpAddr>,
}

/// A name kept resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// The name.
    pub name: Name,
    /// For a passthrough endpoint (its own name): its other answers, for loop detection.
    /// `None` for an apex CNAME target.
    pub passthrough: Option<OwnAnswers>,
}

/// Resolves the public answer of a passthrough endpoint's own `name`: its addresses and the
/// smallest TTL, or [`FlattenError::Loop`] when the answer carries one of `own`.
pub async fn resolve_public(
    upstream: SocketAddr,
    name: &Name,
    own: &OwnAnswers,
) -> Result<(Flattened, u32), FlattenError> {
    resolve_checked(upstream, name, |data| {
        let what = match data {
            RData::CNAME(c) if own.cnames.contains(&c.0) => format!("CNAME {}", c.0),
            RData::A(a) if own.addrs.contains(&IpAddr::V4(a.0)) => format!("A {}", a.0),
            RData::AAAA(a) if own.addrs.contains(&IpAddr::V6(a.0)) => format!("AAAA {}", a.0),
            _ => return Ok(()),
        };
        Err(FlattenError::Loop(
            upstream,
            format!(
                "the public answer of {name} is {what}, one of its own targets: the upstream forwards {name} back to regdns (set server.upstream to a resolver that recurses for it)"
            ),
        ))
    })
    .await
}

/// The resolver to use: the configured one, else the first `nameserver` in resolv.conf.
pub fn default_upstream(configured: Option<SocketAddr>) -> SocketAddr {
    configured
        .or_else(|| {
            std::fs::read_to_string("/etc/resolv.conf")
                .ok()
                .and_then(|t| {
                    t.lines().find_map(|l| {
                        let mut w = l.split_whitespace();
                        (w.next() == Some("nameserver"))
                            .then(|| w.next()?.parse::<IpAddr>().ok())
                            .flatten()
                            .map(|ip| SocketAddr::new(ip, 53))
                    })
                })
        })
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 53)))
}

/// Resolves A and AAAA of `name`; returns the addresses and the smallest TTL seen.
pub async fn resolve(upstream: SocketAddr, name: &Name) -> Result<(Flattened, u32), FlattenError> {
    resolve_checked(upstream, name, |_| Ok(())).await
}

/// [`resolve`], with `check` run on every answer record first (an error ends it).
async fn resolve_checked(
    upstream: SocketAddr,
    name: &Name,
    check: impl Fn(&RData) -> Result<(), FlattenError>,
) -> Result<(Flattened, u32), FlattenError> {
    let mut out = Flattened::default();
    let mut ttl = u32::MAX;
    for t in [RecordType::A, RecordType::AAAA] {
        let m = query(upstream, name, t).await?;
        if !matches!(m.metadata.response_code, ResponseCode::NoError) {
            return Err(FlattenError::Bad(
                upstream,
                format!("{name} {t}: {}", m.metadata.response_code),
            ));
        }
        for r in &m.answers {
            check(&r.data)?;
            ttl = ttl.min(r.ttl);
            match &r.data {
                RData::A(a) => out.a.push(a.0),
                RData::AAAA(a) => out.aaaa.push(a.0),
                _ => {}
            }
        }
    }
    if out.a.is_empty() && out.aaaa.is_empty() {
        return Err(FlattenError::Bad(
            upstream,
            format!("{name} has no A or AAAA records"),
        ));
    }
    out.a.sort();
    out.a.dedup();
    out.aaaa.sort();
    out.aaaa.dedup();
    Ok((out, if ttl == u32::MAX { 60 } else { ttl }))
}

/// One recursive query (RD set) to `upstream` within 2 s: the probe's stub resolver
/// ([`crate::probe::dns::query`]: UDP, resent once, TCP when truncated).
pub async fn query(
    upstream: SocketAddr,
    name: &Name,
    t: RecordType,
) -> Result<Message, FlattenError> {
    use crate::probe::dns::DnsQueryError as E;
    crate::probe::dns::query(upstream, name, t, LOOKUP_TIMEOUT)
        .await
        .map_err(|e| match e {
            E::Io { source, .. } => FlattenError::Io(upstream, source),
            E::Timeout { .. } => FlattenError::Timeout(upstream, LOOKUP_TIMEOUT),
            other => FlattenError::Bad(upstream, other.to_string()),
        })
}

/// Keeps every name in `names` resolved, sending the full map on `tx` whenever it changes
/// and the state of each passthrough name to `status` (rows `passthrough:NAME`).
pub async fn run(
    upstream: SocketAddr,
    names: Vec<Watched>,
    tx: mpsc::Sender<HashMap<Name, Flattened>>,
    status: Option<watch::Sender<BTreeMap<String, PublisherStatus>>>,
) {
    let mut cache: HashMap<Name, Flattened> = HashMap::new();
    // Until when the last public answer of a passthrough name may be served.
    let mut valid_until: HashMap<Name, tokio::time::Instant> = HashMap::new();
    let mut due: HashMap<Name, (tokio::time::Instant, Duration)> = names
        .iter()
        .map(|n| (n.name.clone(), (tokio::time::Instant::now(), RETRY)))
        .collect();
    let watched: HashMap<Name, Option<OwnAnswers>> =
        names.into_iter().map(|w| (w.name, w.passthrough)).collect();
    loop {
        let now = tokio::time::Instant::now();
        let mut changed = false;
        for (name, (at, backoff)) in due.iter_mut() {
            if *at > now {
                continue;
            }
            let own = watched.get(name).cloned().flatten();
            let result = match &own {
                Some(own) => resolve_public(upstream, name, own).await,
                None => resolve(upstream, name).await,
            };
            match result {
                Ok((f, ttl)) => {
                    let refresh =
                        Duration::from_secs(u64::from(ttl) * 4 / 5).clamp(MIN_REFRESH, MAX_REFRESH);
                    *at = tokio::time::Instant::now() + refresh;
                    *backoff = RETRY;
                    valid_until.insert(
                        name.clone(),
                        tokio::time::Instant::now() + Duration::from_secs(u64::from(ttl)),
                    );
                    if own.is_some() {
                        report(
                            &status,
                            name,
                            "ok",
                            format!("public answer {}", show(&f)),
                            0,
                        );
                    }
                    if cache.get(name) != Some(&f) {
                        if own.is_some() {
                            tracing::info!(name = %name, a = ?f.a, aaaa = ?f.aaaa, "passthrough: public answer resolved");
                        } else {
                            tracing::info!(target = %name, a = ?f.a, aaaa = ?f.aaaa, "apex CNAME flattened");
                        }
                        cache.insert(name.clone(), f);
                        changed = true;
                    }
                }
                Err(e) if own.is_some() => {
                    let reason = if matches!(e, FlattenError::Loop(..)) {
                        "loop"
                    } else {
                        "error"
                    };
                    crate::metrics::passthrough_error(&name.to_string(), reason);
                    let expired = valid_until
                        .get(name)
                        .is_none_or(|t| *t <= tokio::time::Instant::now());
                    // A loop is never served, not even the last answer.
                    let drop = reason == "loop" || expired;
                    tracing::warn!(name = %name, error = %e, serving = if drop { "SERVFAIL" } else { "the last public answer until its TTL ends" }, "passthrough: public answer not resolved");
                    report(
                        &status,
                        name,
                        reason,
                        format!(
                            "{e}; {}",
                            if drop {
                                "answering SERVFAIL"
                            } else {
                                "serving the last public answer until its TTL ends"
                            }
                        ),
                        1,
                    );
                    if drop && cache.remove(name).is_some() {
                        changed = true;
                    }
                    *at = tokio::time::Instant::now() + *backoff;
                    *backoff = (*backoff * 2).min(Duration::from_secs(60));
                }
                Err(e) => {
                    tracing::warn!(target = %name, error = %e, kept = cache.contains_key(name), "apex CNAME flattening failed; keeping the last good answer");
                    *at = tokio::time::Instant::now() + *backoff;
                    *backoff = (*backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
        if changed && tx.send(cache.clone()).await.is_err() {
            return;
        }
        let next = due
            .values()
            .map(|(at, _)| *at)
            .min()
            .unwrap_or(now + MAX_REFRESH);
        tokio::time::sleep_until(next).await;
    }
}

/// `192.0.2.1, 2001:db8::1`.
fn show(f: &Flattened) -> String {
    f.a.iter()
        .map(|a| a.to_string())
        .chain(f.aaaa.iter().map(|a| a.to_string()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The status row of a passthrough name.
fn report(
    status: &Option<watch::Sender<BTreeMap<String, PublisherStatus>>>,
    name: &Name,
    state: &str,
    detail: String,
    failed: u32,
) {
    let Some(tx) = status else { return };
    let key = format!("passthrough:{name}");
    tx.send_modify(|m| {
        let failures = match m.get(&key) {
            Some(p) if failed > 0 => p.failures + 1,
            _ => 0,
        };
        let last_ok_ms = match (failed, m.get(&key)) {
            (0, _) => Some(crate::clock::now_ms()),
            (_, Some(p)) => p.last_ok_ms,
            _ => None,
        };
        m.insert(
            key.clone(),
            PublisherStatus {
                name: key.clone(),
                state: state.to_string(),
                detail,
                last_ok_ms,
                failures,
            },
        );
    });
}
