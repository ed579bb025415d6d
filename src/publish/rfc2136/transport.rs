//! One DNS exchange with a primary: UDP (retried over TCP when the answer is truncated) or
//! TCP (two-byte length prefix). Answers are matched on the message id; anything else on
//! the socket is ignored. No retries here: the engine retries.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Socket error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn is_answer(r: &[u8], id: u16) -> bool {
    r.len() >= 12 && u16::from_be_bytes([r[0], r[1]]) == id && r[2] & 0x80 != 0
}

/// Over UDP; over TCP when the UDP answer has TC set.
pub async fn udp_then_tcp(
    server: SocketAddr,
    wire: &[u8],
    id: u16,
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    let r = udp(server, wire, id, timeout).await?;
    if r[2] & 0x02 != 0 {
        return tcp(server, wire, id, timeout).await;
    }
    Ok(r)
}

/// One UDP exchange.
pub async fn udp(
    server: SocketAddr,
    wire: &[u8],
    id: u16,
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(server).await?;
    sock.send(wire).await?;
    let mut buf = vec![0u8; 65535];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .map_err(|_| ExchangeError::Timeout(timeout))??;
        if is_answer(&buf[..n], id) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

/// One TCP exchange.
pub async fn tcp(
    server: SocketAddr,
    wire: &[u8],
    id: u16,
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    tokio::time::timeout(timeout, async {
        let mut s = TcpStream::connect(server).await?;
        let mut out = (wire.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(wire);
        s.write_all(&out).await?;
        loop {
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await?;
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut buf).await?;
            if is_answer(&buf, id) {
                return Ok(buf);
            }
        }
    })
    .await
    .map_err(|_| ExchangeError::Timeout(timeout))?
}
