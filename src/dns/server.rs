//! DNS transports: UDP sockets (one or more per address with `SO_REUSEPORT`) answered on
//! dedicated threads in a tight receive/answer/send loop with no task or allocation per query, and TCP listeners
//! with a connection limit, idle timeout and pipelining (RFC 7766). Both read the current
//! snapshot and nothing else: a slow probe or API call can never delay an answer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::cache::PacketCache;
use super::respond::{Transport, respond, respond_cached};
use super::stream::{Frame, StreamBuffer};
use crate::snapshot::SnapshotHandle;

/// Transport settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// UDP sockets per address.
    pub udp_workers: usize,
    /// Idle TCP connections are closed after this.
    pub tcp_idle_timeout: Duration,
    /// Concurrent TCP connections.
    pub tcp_max_connections: usize,
}

/// Sockets bound before serving starts, so that bind errors surface at startup.
pub struct Bound {
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<std::net::TcpListener>,
}

impl Bound {
    /// Local addresses of the UDP sockets (one per listen address).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        let mut v: Vec<SocketAddr> = self
            .udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect();
        v.dedup();
        v
    }
}

/// Errors binding a listen address.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({proto}): {source}")]
pub struct BindError {
    /// Address.
    pub addr: SocketAddr,
    /// "udp" or "tcp".
    pub proto: &'static str,
    /// Cause.
    pub source: io::Error,
}

fn socket(addr: SocketAddr, ty: Type, reuse_port: bool) -> io::Result<Socket> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let proto = if ty == Type::DGRAM {
        Protocol::UDP
    } else {
        Protocol::TCP
    };
    let s = Socket::new(domain, ty, Some(proto))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?; // "[::]:53" next to "0.0.0.0:53"
    }
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Binds every address for UDP and TCP. Port 0 picks one port per address, shared by UDP
/// and TCP (useful for tests).
pub fn bind(addrs: &[SocketAddr], settings: &ServerSettings) -> Result<Bound, BindError> {
    let mut bound = Bound {
        udp: Vec::new(),
        tcp: Vec::new(),
    };
    for &want in addrs {
        let mut addr = want;
        let mut attempts = 0;
        'retry: loop {
            attempts += 1;
            let mut udp = Vec::new();
            let workers = settings.udp_workers.max(1);
            if workers > 1 && addr.port() != 0 {
                // SO_REUSEPORT would let a second server (another regdns, a stale one) share
                // the port silently and take part of the queries: refuse a port in use.
                let domain = if addr.is_ipv4() {
                    Domain::IPV4
                } else {
                    Domain::IPV6
                };
                let probe =
                    Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(|source| {
                        BindError {
                            addr,
                            proto: "udp",
                            source,
                        }
                    })?;
                if addr.is_ipv6() {
                    let _ = probe.set_only_v6(true);
                }
                probe.bind(&addr.into()).map_err(|source| BindError {
                    addr,
                    proto: "udp",
                    source,
                })?;
            }
            for _ in 0..workers {
                let s = socket(addr, Type::DGRAM, workers > 1).map_err(|source| BindError {
                    addr,
                    proto: "udp",
                    source,
                })?;
                let _ = s.set_recv_buffer_size(4 << 20);
                let _ = s.set_send_buffer_size(4 << 20);
                #[cfg(target_os = "linux")]
                {
                    use std::os::fd::AsRawFd;
                    if let Err(e) = super::mmsg::omit_path_mtu(s.as_raw_fd(), addr.is_ipv6()) {
                        tracing::warn!(%addr, error = %e, "cannot turn off path MTU discovery");
                    }
                }
                s.bind(&addr.into()).map_err(|source| BindError {
                    addr,
                    proto: "udp",
                    source,
                })?;
                if addr.port() == 0 {
                    addr = s
                        .local_addr()
                        .ok()
                        .and_then(|a| a.as_socket())
                        .unwrap_or(addr);
                }
                udp.push(s.into());
            }
            let t = socket(addr, Type::STREAM, false).map_err(|source| BindError {
                addr,
                proto: "tcp",
                source,
            })?;
            match t.bind(&addr.into()) {
                Ok(()) => {}
                Err(e)
                    if want.port() == 0
                        && attempts < 20
                        && e.kind() == io::ErrorKind::AddrInUse =>
                {
                    addr = want;
                    continue 'retry;
                }
                Err(source) => {
                    return Err(BindError {
                        addr,
                        proto: "tcp",
                        source,
                    });
                }
            }
            t.listen(1024).map_err(|source| BindError {
                addr,
                proto: "tcp",
                source,
            })?;
            bound.udp.extend(udp);
            bound.tcp.push(t.into());
            break;
        }
    }
    Ok(bound)
}

/// Serves the bound sockets until `shutdown` turns true. UDP loops stop at once; TCP stops
/// accepting, and open connections finish the query in progress.
pub fn spawn(
    bound: Bound,
    snap: SnapshotHandle,
    settings: ServerSettings,
    shutdown: watch::Receiver<bool>,
) -> io::Result<JoinSet<()>> {
    let mut set = JoinSet::new();
    for s in bound.udp {
        // UDP is answered on a dedicated blocking thread per socket: one recvfrom, one
        // synchronous answer, one sendto, no task, no wakeup, no allocation per query.
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(UDP_STOP_CHECK))?;
        let snap = snap.clone();
        let stop = shutdown.clone();
        set.spawn_blocking(move || serve_udp(s, snap, stop));
    }
    let limit = Arc::new(Semaphore::new(settings.tcp_max_connections));
    for l in bound.tcp {
        let listener = TcpListener::from_std(l)?;
        let snap = snap.clone();
        let limit = limit.clone();
        let idle = settings.tcp_idle_timeout;
        let stop = shutdown.clone();
        set.spawn(serve_tcp(listener, snap, limit, idle, stop));
    }
    Ok(set)
}

/// How often a blocked UDP receive wakes up to check for shutdown.
const UDP_STOP_CHECK: Duration = Duration::from_millis(200);

/// Linux: batched `recvmmsg`/`sendmmsg`.
#[cfg(target_os = "linux")]
fn serve_udp(sock: std::net::UdpSocket, snap: SnapshotHandle, stop: watch::Receiver<bool>) {
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    let mut batch = super::mmsg::Batch::default();
    let mut cache = PacketCache::default();
    loop {
        let n = match batch.recv(fd) {
            Ok(n) => n,
            Err(e) => {
                if *stop.borrow() {
                    return;
                }
                if !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) {
                    tracing::debug!(error = %e, "udp receive error");
                }
                continue;
            }
        };
        let current = snap.load();
        let sent = batch.answer_and_send(fd, n, |pkt, src, out| {
            match respond_cached(&current, pkt, src, Transport::Udp, out, &mut cache) {
                Some(done) => {
                    current.queries.count(done.view, done.rcode, false);
                    true
                }
                None => false, // not a DNS query: no answer at all
            }
        });
        if let Err(e) = sent {
            tracing::debug!(error = %e, "udp send error");
        }
    }
}

/// Elsewhere: one `recvfrom` and one `sendto` per query.
#[cfg(not(target_os = "linux"))]
fn serve_udp(sock: std::net::UdpSocket, snap: SnapshotHandle, stop: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    let mut cache = PacketCache::default();
    loop {
        let (n, src) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if *stop.borrow() {
                    return;
                }
                continue;
            }
            Err(e) => {
                if *stop.borrow() {
                    return;
                }
                tracing::debug!(error = %e, "udp receive error");
                continue;
            }
        };
        let current = snap.load();
        let Some(done) = respond_cached(
            &current,
            &buf[..n],
            src.ip(),
            Transport::Udp,
            &mut out,
            &mut cache,
        ) else {
            continue; // not a DNS query: no answer at all
        };
        current.queries.count(done.view, done.rcode, false);
        if let Err(e) = sock.send_to(&out, src) {
            tracing::debug!(error = %e, %src, "udp send error");
        }
    }
}

async fn serve_tcp(
    listener: TcpListener,
    snap: SnapshotHandle,
    limit: Arc<Semaphore>,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.wait_for(|s| *s) => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let snap = snap.clone();
                let stop = stop.clone();
                conns.spawn(async move {
                    let _permit = permit;
                    if let Err(e) = serve_conn(stream, peer, snap, idle, stop).await {
                        tracing::debug!(error = %e, %peer, "tcp connection ended");
                    }
                });
            }
            Err(e) => {
                tracing::debug!(error = %e, "tcp accept error");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    // Let open connections finish what they are doing.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

/// How late an idle connection may be closed, at most (a quarter of the timeout if less).
const IDLE_SLACK: Duration = Duration::from_secs(1);
/// Responses are written once this much is pending, or when the input runs dry.
const WRITE_BATCH: usize = 64 * 1024;

/// Serves one TCP connection (RFC 7766): reads as much as the socket has, answers every
/// complete query in it in order, and writes the answers back with one write per read, so
/// a client pipelining queries costs about one read and one write per batch, not per query.
async fn serve_conn(
    mut stream: TcpStream,
    peer: SocketAddr,
    snap: SnapshotHandle,
    idle: Duration,
    stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut input = StreamBuffer::new();
    let mut out = Vec::with_capacity(4096);
    let mut pending = Vec::with_capacity(4096);
    // One idle timer per connection, pushed back at most once per IDLE_SLACK: arming a timer
    // for every read costs a timer-wheel insertion and removal per query at a low rate.
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    let mut armed_at = tokio::time::Instant::now();
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let read = tokio::select! {
            biased;
            r = stream.read(input.spare()) => r,
            _ = &mut idle_timer => return Ok(()), // idle
        };
        let n = read?;
        if n == 0 {
            return Ok(()); // closed by the client (a partial query is dropped)
        }
        let now = tokio::time::Instant::now();
        if now.duration_since(armed_at) >= IDLE_SLACK.min(idle / 4) {
            idle_timer.as_mut().reset(now + idle);
            armed_at = now;
        }
        input.filled(n);
        let current = snap.load();
        loop {
            let query = match input.next_frame() {
                Frame::Query(q) => q,
                Frame::Incomplete => break,
                Frame::Close => {
                    write_pending(&mut stream, &mut pending, idle).await?;
                    return Ok(());
                }
            };
            if let Some((msgs, done)) = super::xfr::transfer(&current, query, peer.ip()) {
                current.queries.count(done.view, done.rcode, true);
                for m in msgs {
                    push_framed(&mut pending, &m);
                    if pending.len() >= WRITE_BATCH {
                        write_pending(&mut stream, &mut pending, idle).await?;
                    }
                }
                continue;
            }
            let Some(done) = respond(&current, query, peer.ip(), Transport::Tcp, &mut out) else {
                // Garbage on a stream: answer what came before it, then close.
                write_pending(&mut stream, &mut pending, idle).await?;
                return Ok(());
            };
            current.queries.count(done.view, done.rcode, true);
            push_framed(&mut pending, &out);
            if pending.len() >= WRITE_BATCH {
                write_pending(&mut stream, &mut pending, idle).await?;
            }
        }
        write_pending(&mut stream, &mut pending, idle).await?;
    }
}

fn push_framed(pending: &mut Vec<u8>, msg: &[u8]) {
    pending.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    pending.extend_from_slice(msg);
}

async fn write_pending(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    idle: Duration,
) -> io::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let r = tokio::time::timeout(idle, stream.write_all(pending))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?;
    pending.clear();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;
    use arc_swap::ArcSwap;
    use std::io::{Read, Write};

    /// A connection that keeps asking stays open past the idle timeout; once silent it is
    /// closed, within the timeout plus its slack (bounded here by a generous limit).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_connections_are_closed_and_busy_ones_kept() {
        let settings = ServerSettings {
            udp_workers: 1,
            tcp_idle_timeout: Duration::from_secs(1),
            tcp_max_connections: 8,
        };
        let bound = bind(&["127.0.0.1:0".parse().unwrap()], &settings).unwrap();
        let addr = bound.local_addrs()[0];
        let snap: SnapshotHandle = Arc::new(ArcSwap::from_pointee(Snapshot::empty(1232)));
        let (stop_tx, stop_rx) = watch::channel(false);
        let _set = spawn(bound, snap, settings, stop_rx).unwrap();
        let client = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            // A query (header + root SOA question), every 100 ms for 2.5 s.
            let q: [u8; 19] = [
                0, 17, 0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1,
            ];
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_millis(2500) {
                s.write_all(&q).unwrap();
                let mut len = [0u8; 2];
                s.read_exact(&mut len).expect("still open while busy");
                let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
                s.read_exact(&mut answer).unwrap();
                assert_eq!(&answer[..2], &[0xab, 0xcd]);
                std::thread::sleep(Duration::from_millis(100));
            }
            let silent = std::time::Instant::now();
            let mut rest = Vec::new();
            assert_eq!(s.read_to_end(&mut rest).unwrap(), 0);
            silent.elapsed()
        });
        let closed_after = client.await.unwrap();
        assert!(
            closed_after >= Duration::from_millis(500) && closed_after < Duration::from_secs(5),
            "closed {closed_after:?} after the last answer"
        );
        let _ = stop_tx.send(true);
    }
}
