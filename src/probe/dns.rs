//! A stub resolver for the checks of an instance with `resolver = "IP:port"`: the names a
//! probe, `auth_check`, an `extra` check or the canary contact are resolved by asking that
//! DNS server directly (A and AAAA, recursion desired) instead of the system resolver, so
//! that a probe can see the path a network's own resolver gives (and never the answer
//! regdns itself steers through the host's resolver).
//!
//! One query is [`query`]: UDP from an ephemeral port (resent once at half the budget when
//! nothing came back), again over TCP when the answer is truncated, all within the time
//! given; datagrams that are not the answer to this question are ignored. [`resolve`] asks A
//! and AAAA at once and follows the CNAME chain of the answer. Nothing here is cached: each
//! connection of a probe asks again, as the probe's own resolver does.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// CNAME records followed from the question's name to its addresses.
const MAX_CNAME_HOPS: usize = 8;

/// Why a query or a resolution through a DNS server failed. Each message names the server.
#[derive(Debug, thiserror::Error)]
pub enum DnsQueryError {
    /// A socket error (e.g. `connection refused`: an ICMP port unreachable answered).
    #[error("resolver {server}: {}", io_reason(.source))]
    Io {
        /// The DNS server asked.
        server: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// No answer within the time allowed.
    #[error("resolver {server}: no answer within {}", crate::probe::fmt_duration(*.after))]
    Timeout {
        /// The DNS server asked.
        server: SocketAddr,
        /// The time allowed.
        after: Duration,
    },
    /// The server answered with an error code (`NXDOMAIN`, `SERVFAIL`, `REFUSED`, ...).
    #[error("resolver {server}: {} for {name} {rtype}", rcode_name(*.rcode))]
    Rcode {
        /// The DNS server asked.
        server: SocketAddr,
        /// The name asked for.
        name: Name,
        /// The type asked for.
        rtype: RecordType,
        /// Its answer code.
        rcode: ResponseCode,
    },
    /// The name exists but has neither A nor AAAA records.
    #[error("resolver {server}: {name} has no A or AAAA records")]
    NoAddresses {
        /// The DNS server asked.
        server: SocketAddr,
        /// The name asked for.
        name: Name,
    },
    /// The query could not be built or the answer not read.
    #[error("resolver {server}: {reason}")]
    Bad {
        /// The DNS server asked.
        server: SocketAddr,
        /// What went wrong.
        reason: String,
    },
}

/// `NXDOMAIN`, `SERVFAIL`, ... (the RFC mnemonics operators know), else `RCODE n`.
fn rcode_name(r: ResponseCode) -> String {
    match r {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("RCODE {}", u16::from(other)),
    }
}

/// `connection refused`, or the error without its `(os error N)` suffix.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        std::io::ErrorKind::HostUnreachable => "host unreachable".into(),
        _ => {
            let s = e.to_string();
            match s.rfind(" (os error ") {
                Some(pos) if s.ends_with(')') => s[..pos].to_string(),
                _ => s,
            }
        }
    }
}

/// One recursive query (RD set) for `name`/`t` to `server`: UDP (resent once at half the
/// budget), then TCP if the answer is truncated, all within `timeout`. Returns the answer
/// whatever its response code; a datagram that is not a response to this question (wrong
/// id, opcode or question) is ignored.
pub async fn query(
    server: SocketAddr,
    name: &Name,
    t: RecordType,
    timeout: Duration,
) -> Result<Message, DnsQueryError> {
    let id: u16 = rand::random();
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name.clone(), t));
    let bytes = m.to_vec().map_err(|e| DnsQueryError::Bad {
        server,
        reason: e.to_string(),
    })?;
    let io = |source| DnsQueryError::Io { server, source };
    let is_answer = |r: &Message| {
        r.metadata.id == id
            && r.metadata.message_type == MessageType::Response
            && r.metadata.op_code == OpCode::Query
            && r.queries.len() == 1
            && r.queries[0].query_type() == t
            && r.queries[0].name() == name
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let udp = async {
        let bind: SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind).await.map_err(io)?;
        sock.connect(server).await.map_err(io)?;
        sock.send(&bytes).await.map_err(io)?;
        let resend_at = tokio::time::Instant::now() + timeout / 2;
        let mut resent = false;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = if resent {
                sock.recv(&mut buf).await.map_err(io)?
            } else {
                match tokio::time::timeout_at(resend_at, sock.recv(&mut buf)).await {
                    Ok(r) => r.map_err(io)?,
                    Err(_) => {
                        resent = true;
                        sock.send(&bytes).await.map_err(io)?;
                        continue;
                    }
                }
            };
            let Ok(r) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if is_answer(&r) {
                return Ok(r);
            }
        }
    };
    let answer =
        tokio::time::timeout_at(deadline, udp)
            .await
            .map_err(|_| DnsQueryError::Timeout {
                server,
                after: timeout,
            })??;
    if !answer.metadata.truncation {
        return Ok(answer);
    }
    let tcp = async {
        let mut s = TcpStream::connect(server).await.map_err(io)?;
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        s.write_all(&framed).await.map_err(io)?;
        let len = s.read_u16().await.map_err(io)? as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await.map_err(io)?;
        let r = Message::from_vec(&buf).map_err(|e| DnsQueryError::Bad {
            server,
            reason: format!("invalid answer over TCP: {e}"),
        })?;
        if !is_answer(&r) {
            return Err(DnsQueryError::Bad {
                server,
                reason: "the TCP answer is not for the question asked".into(),
            });
        }
        Ok(r)
    };
    tokio::time::timeout_at(deadline, tcp)
        .await
        .map_err(|_| DnsQueryError::Timeout {
            server,
            after: timeout,
        })?
}

/// The A (or AAAA) addresses `m` gives for `name`, following its CNAME chain within the
/// answer section; and the smallest TTL on the way.
fn addresses_of(m: &Message, name: &Name) -> (Vec<IpAddr>, u32) {
    let mut owner = name.clone();
    let mut ttl = u32::MAX;
    for _ in 0..=MAX_CNAME_HOPS {
        let mut ips = Vec::new();
        let mut next = None;
        for r in m.answers.iter().filter(|r| r.name == owner) {
            match &r.data {
                RData::A(a) => ips.push((IpAddr::V4(a.0), r.ttl)),
                RData::AAAA(a) => ips.push((IpAddr::V6(a.0), r.ttl)),
                RData::CNAME(c) => next = Some((c.0.clone(), r.ttl)),
                _ => {}
            }
        }
        if !ips.is_empty() {
            let min = ips.iter().map(|(_, t)| *t).min().unwrap_or(ttl);
            return (ips.into_iter().map(|(ip, _)| ip).collect(), ttl.min(min));
        }
        match next {
            Some((n, t)) => {
                owner = n;
                ttl = ttl.min(t);
            }
            None => break,
        }
    }
    (Vec::new(), ttl)
}

/// The addresses of one name, as [`resolve`] found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// IPv4 addresses first, then IPv6, each in the order of the answer, without repeats.
    pub addrs: Vec<IpAddr>,
    /// The smallest TTL of the records used (60 when the answer carried none).
    pub ttl: u32,
}

/// A and AAAA of `name` through `server`, asked at once, within `timeout`. Succeeds when
/// either gives an address (a server that fails only AAAA still resolves an IPv4 name);
/// otherwise the A query's error comes first (`NXDOMAIN for registry.example. A`), then the
/// AAAA query's, else "no A or AAAA records".
pub async fn resolve(
    server: SocketAddr,
    name: &Name,
    timeout: Duration,
) -> Result<Resolved, DnsQueryError> {
    let (a, aaaa) = tokio::join!(
        query(server, name, RecordType::A, timeout),
        query(server, name, RecordType::AAAA, timeout)
    );
    let mut addrs: Vec<IpAddr> = Vec::new();
    let mut ttl = u32::MAX;
    let mut first_err = None;
    for (t, r) in [(RecordType::A, a), (RecordType::AAAA, aaaa)] {
        match r {
            Ok(m) if m.metadata.response_code == ResponseCode::NoError => {
                let (ips, t) = addresses_of(&m, name);
                for ip in ips {
                    if !addrs.contains(&ip) {
                        addrs.push(ip);
                    }
                }
                ttl = ttl.min(t);
            }
            Ok(m) => {
                first_err.get_or_insert(DnsQueryError::Rcode {
                    server,
                    name: name.clone(),
                    rtype: t,
                    rcode: m.metadata.response_code,
                });
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if !addrs.is_empty() {
        return Ok(Resolved {
            addrs,
            ttl: if ttl == u32::MAX { 60 } else { ttl },
        });
    }
    Err(first_err.unwrap_or(DnsQueryError::NoAddresses {
        server,
        name: name.clone(),
    }))
}

/// The fully qualified DNS name of a URL host (`registry.example` → `registry.example.`).
pub fn host_name(host: &str) -> Result<Name, String> {
    let mut n = Name::from_ascii(host.trim_end_matches('.'))
        .map_err(|e| format!("{host:?} is not a DNS name: {e}"))?;
    n.set_fqdn(true);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn n(s: &str) -> Name {
        host_name(s).unwrap()
    }

    /// A tiny authoritative responder on loopback UDP (and TCP on the same port): answers
    /// from `records` (CNAME chains included), NXDOMAIN for unknown names; with `truncate`,
    /// every UDP answer is empty with TC set, so only TCP gives the records. Counts UDP
    /// queries.
    async fn responder(
        records: Vec<Record>,
        truncate: bool,
        drop_first: usize,
    ) -> (SocketAddr, Arc<AtomicUsize>) {
        // A free UDP port whose TCP twin is free too (another process may hold it).
        let mut tries = 0;
        let (udp, addr, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            match tokio::net::TcpListener::bind(addr).await {
                Ok(tcp) => break (udp, addr, tcp),
                Err(e) => {
                    tries += 1;
                    assert!(tries < 100, "no UDP+TCP port pair: {e}");
                }
            }
        };
        let count = Arc::new(AtomicUsize::new(0));
        let records = Arc::new(records);
        let answer = {
            let records = records.clone();
            move |q: &Message, udp: bool| -> Vec<u8> {
                let mut r = Message::response(q.metadata.id, OpCode::Query);
                r.metadata.recursion_desired = q.metadata.recursion_desired;
                let query = q.queries[0].clone();
                r.add_query(query.clone());
                let mut owner = query.name().clone();
                let mut found = false;
                for _ in 0..4 {
                    let here: Vec<&Record> = records.iter().filter(|x| x.name == owner).collect();
                    if here.is_empty() {
                        break;
                    }
                    found = true;
                    let mut next = None;
                    for x in here {
                        if x.record_type() == query.query_type() {
                            r.add_answer(x.clone());
                        } else if let RData::CNAME(c) = &x.data {
                            r.add_answer(x.clone());
                            next = Some(c.0.clone());
                        }
                    }
                    match next {
                        Some(nx) => owner = nx,
                        None => break,
                    }
                }
                if !found {
                    r.metadata.response_code = ResponseCode::NXDomain;
                }
                if udp && truncate {
                    r.answers.clear();
                    r.metadata.truncation = true;
                }
                r.to_vec().unwrap()
            }
        };
        let a2 = answer.clone();
        let c2 = count.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut seen = 0;
            while let Ok((len, from)) = udp.recv_from(&mut buf).await {
                c2.fetch_add(1, Ordering::SeqCst);
                seen += 1;
                if seen <= drop_first {
                    continue;
                }
                let q = Message::from_vec(&buf[..len]).unwrap();
                // A stray datagram with another id first: must be ignored.
                let mut stray = Message::response(q.metadata.id.wrapping_add(1), OpCode::Query);
                stray.add_query(q.queries[0].clone());
                let _ = udp.send_to(&stray.to_vec().unwrap(), from).await;
                let _ = udp.send_to(&a2(&q, true), from).await;
            }
        });
        tokio::spawn(async move {
            while let Ok((mut s, _)) = tcp.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let len = s.read_u16().await.unwrap() as usize;
                    let mut buf = vec![0u8; len];
                    s.read_exact(&mut buf).await.unwrap();
                    let q = Message::from_vec(&buf).unwrap();
                    let out = answer(&q, false);
                    let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&out);
                    let _ = s.write_all(&framed).await;
                });
            }
        });
        (addr, count)
    }

    fn zone() -> Vec<Record> {
        vec![
            Record::from_rdata(n("registry.path.test"), 300, RData::A(A::new(10, 0, 0, 1))),
            Record::from_rdata(n("registry.path.test"), 60, RData::A(A::new(10, 0, 0, 2))),
            Record::from_rdata(
                n("registry.path.test"),
                300,
                RData::AAAA(AAAA::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            ),
            Record::from_rdata(
                n("auth.path.test"),
                120,
                RData::CNAME(CNAME(n("edge.cdn.test"))),
            ),
            Record::from_rdata(n("edge.cdn.test"), 30, RData::A(A::new(10, 0, 0, 9))),
            Record::from_rdata(
                n("txt-only.path.test"),
                30,
                RData::CNAME(CNAME(n("x.test"))),
            ),
        ]
    }

    const T: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn a_and_aaaa_and_cname_chains() {
        let (server, _) = responder(zone(), false, 0).await;
        let r = resolve(server, &n("registry.path.test"), T).await.unwrap();
        assert_eq!(
            r.addrs,
            [
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "10.0.0.2".parse().unwrap(),
                "fd00::1".parse().unwrap()
            ]
        );
        assert_eq!(r.ttl, 60);
        let r = resolve(server, &n("AUTH.path.test"), T).await.unwrap();
        assert_eq!(r.addrs, ["10.0.0.9".parse::<IpAddr>().unwrap()]);
        assert_eq!(r.ttl, 30);
        let e = resolve(server, &n("txt-only.path.test"), T)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("resolver {server}: txt-only.path.test. has no A or AAAA records")
        );
        let e = resolve(server, &n("missing.path.test"), T)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("resolver {server}: NXDOMAIN for missing.path.test. A")
        );
    }

    #[tokio::test]
    async fn truncated_answers_are_asked_again_over_tcp() {
        let (server, udp) = responder(zone(), true, 0).await;
        let m = query(server, &n("registry.path.test"), RecordType::A, T)
            .await
            .unwrap();
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 2);
        assert_eq!(udp.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_lost_datagram_is_sent_again() {
        let (server, udp) = responder(zone(), false, 1).await;
        let m = query(
            server,
            &n("registry.path.test"),
            RecordType::A,
            Duration::from_millis(400),
        )
        .await
        .unwrap();
        assert_eq!(m.answers.len(), 2);
        assert_eq!(udp.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn silence_and_refusal_are_told_apart() {
        // Bound and silent: a timeout.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server = silent.local_addr().unwrap();
        let e = resolve(server, &n("registry.path.test"), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("resolver {server}: no answer within 200ms")
        );
        // Nothing listening: the ICMP port unreachable is a refusal.
        drop(silent);
        let e = resolve(server, &n("registry.path.test"), T)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("resolver {server}: connection refused")
        );
    }

    #[test]
    fn names_and_codes() {
        assert_eq!(n("Registry.Example").to_string(), "Registry.Example.");
        assert!(n("a.example.").is_fqdn());
        assert!(host_name("bad..name").is_err());
        assert_eq!(rcode_name(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(rcode_name(ResponseCode::YXRRSet), "RCODE 7");
    }
}
