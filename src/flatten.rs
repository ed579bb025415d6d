//! Apex CNAME flattening: a CNAME cannot sit at a zone apex, so for an apex endpoint whose
//! target is a CNAME regdns resolves the target through a recursive resolver and serves its
//! A/AAAA records instead. Each target is refreshed before its TTL runs out; when
//! resolution fails the last good addresses are kept. A tiny stub resolver over UDP (TCP on
//! truncation) built on hickory-proto; it never touches the serving path.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

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

/// One recursive query (RD set) to `upstream`: UDP, TCP when truncated, within 2 s.
pub async fn query(
    upstream: SocketAddr,
    name: &Name,
    t: RecordType,
) -> Result<Message, FlattenError> {
    let id: u16 = rand::random();
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name.clone(), t));
    let bytes = m
        .to_vec()
        .map_err(|e| FlattenError::Bad(upstream, e.to_string()))?;
    let io = |e| FlattenError::Io(upstream, e);
    let fut = async {
        let bind: SocketAddr = if upstream.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind).await.map_err(io)?;
        sock.connect(upstream).await.map_err(io)?;
        sock.send(&bytes).await.map_err(io)?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = sock.recv(&mut buf).await.map_err(io)?;
            let Ok(r) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if r.metadata.id != id {
                continue;
            }
            if !r.metadata.truncation {
                return Ok(r);
            }
            break;
        }
        // Truncated: ask again over TCP.
        let mut s = TcpStream::connect(upstream).await.map_err(io)?;
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        s.write_all(&framed).await.map_err(io)?;
        let len = s.read_u16().await.map_err(io)? as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await.map_err(io)?;
        Message::from_vec(&buf).map_err(|e| FlattenError::Bad(upstream, e.to_string()))
    };
    tokio::time::timeout(LOOKUP_TIMEOUT, fut)
        .await
        .map_err(|_| FlattenError::Timeout(upstream, LOOKUP_TIMEOUT))?
}

/// Keeps every name in `names` resolved, sending the full map on `tx` whenever it changes.
pub async fn run(
    upstream: SocketAddr,
    names: Vec<Name>,
    tx: mpsc::Sender<HashMap<Name, Flattened>>,
) {
    let mut cache: HashMap<Name, Flattened> = HashMap::new();
    let mut due: HashMap<Name, (tokio::time::Instant, Duration)> = names
        .iter()
        .map(|n| (n.clone(), (tokio::time::Instant::now(), RETRY)))
        .collect();
    loop {
        let now = tokio::time::Instant::now();
        let mut changed = false;
        for (name, (at, backoff)) in due.iter_mut() {
            if *at > now {
                continue;
            }
            match resolve(upstream, name).await {
                Ok((f, ttl)) => {
                    let refresh =
                        Duration::from_secs(u64::from(ttl) * 4 / 5).clamp(MIN_REFRESH, MAX_REFRESH);
                    *at = tokio::time::Instant::now() + refresh;
                    *backoff = RETRY;
                    if cache.get(name) != Some(&f) {
                        tracing::info!(target = %name, a = ?f.a, aaaa = ?f.aaaa, "apex CNAME flattened");
                        cache.insert(name.clone(), f);
                        changed = true;
                    }
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
