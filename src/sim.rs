//! Simulated registries for `regdns demo` and the end-to-end tests: a minimal HTTP/1.1
//! server answering the Docker Registry API route `GET /v2/` like the real thing (200 with
//! the API-version header, or 401 with a Bearer challenge like ACR and Harbor, plus the
//! token endpoint), that can be broken at run time: connection refused, accept-then-hang,
//! 503, a slow body, a 401 without challenge. Not used by the daemon itself.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How the simulated registry behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Healthy.
    Healthy,
    /// Port closed: connection refused.
    Refuse,
    /// Accepts connections and never answers.
    Hang,
    /// `503 Service Unavailable` on every route.
    Unavailable,
    /// Headers at once, then the body one byte per second.
    SlowBody,
    /// `401` without a `WWW-Authenticate` challenge (a proxy or a broken gateway).
    NoChallenge,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        Ok(match s {
            "healthy" | "heal" | "up" => Mode::Healthy,
            "refuse" | "down" | "kill" => Mode::Refuse,
            "hang" => Mode::Hang,
            "503" | "unavailable" => Mode::Unavailable,
            "slow" | "slow-body" => Mode::SlowBody,
            "401" | "no-challenge" => Mode::NoChallenge,
            other => {
                return Err(format!(
                    "unknown mode {other:?} (healthy, refuse, hang, 503, slow, no-challenge)"
                ));
            }
        })
    }
}

/// A running simulated registry.
#[derive(Debug, Clone)]
pub struct SimRegistry {
    /// Address it listens on (kept across `Refuse`).
    pub addr: SocketAddr,
    /// Answer `/v2/` with a Bearer challenge (token auth) instead of 200.
    pub bearer: bool,
    mode: Arc<Mutex<Mode>>,
    changed: watch::Sender<Mode>,
}

impl SimRegistry {
    /// Starts a simulated registry on `addr` (port 0 picks one).
    pub async fn start(addr: SocketAddr, bearer: bool) -> std::io::Result<SimRegistry> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (changed, rx) = watch::channel(Mode::Healthy);
        let sim = SimRegistry {
            addr,
            bearer,
            mode: Arc::new(Mutex::new(Mode::Healthy)),
            changed,
        };
        tokio::spawn(sim.clone().serve(Some(listener), rx));
        Ok(sim)
    }

    /// Current mode.
    pub fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the behaviour.
    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
        self.changed.send_replace(mode);
    }

    async fn serve(self, mut listener: Option<TcpListener>, mut rx: watch::Receiver<Mode>) {
        loop {
            let mode = *rx.borrow_and_update();
            match (mode, listener.is_some()) {
                (Mode::Refuse, true) => listener = None, // close the port
                (Mode::Refuse, false) => {}
                (_, false) => match TcpListener::bind(self.addr).await {
                    Ok(l) => listener = Some(l),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ => {}
            }
            let Some(l) = &listener else {
                if rx.changed().await.is_err() {
                    return;
                }
                continue;
            };
            tokio::select! {
                a = l.accept() => if let Ok((s, _)) = a {
                    tokio::spawn(self.clone().handle(s));
                },
                r = rx.changed() => if r.is_err() { return },
            }
        }
    }

    async fn handle(self, mut s: TcpStream) {
        let mut buf = vec![0u8; 8192];
        let mut n = 0;
        // Read the request head (bounded).
        loop {
            match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf[n..])).await {
                Ok(Ok(0)) | Err(_) | Ok(Err(_)) => return,
                Ok(Ok(k)) => n += k,
            }
            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") || n == buf.len() {
                break;
            }
        }
        let head = String::from_utf8_lossy(&buf[..n]);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let host = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("Host: ")
                    .or_else(|| l.strip_prefix("host: "))
            })
            .unwrap_or("127.0.0.1")
            .trim()
            .to_string();
        let api = "Docker-Distribution-Api-Version: registry/2.0\r\n";
        let (status, headers, body): (&str, String, &str) = match self.mode() {
            Mode::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Mode::Refuse => return,
            Mode::Unavailable => (
                "503 Service Unavailable",
                String::new(),
                "storage backend unavailable\n",
            ),
            Mode::NoChallenge => ("401 Unauthorized", api.to_string(), "{}"),
            Mode::Healthy | Mode::SlowBody => {
                if path.starts_with("/token") {
                    (
                        "200 OK",
                        String::new(),
                        "{\"token\":\"demo\",\"expires_in\":300}",
                    )
                } else if path.starts_with("/v2/") && self.bearer {
                    (
                        "401 Unauthorized",
                        format!(
                            "{api}WWW-Authenticate: Bearer realm=\"http://{host}/token\",service=\"demo-registry\"\r\n"
                        ),
                        "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}",
                    )
                } else if path.starts_with("/v2/") {
                    ("200 OK", api.to_string(), "{}")
                } else {
                    ("404 Not Found", String::new(), "not found\n")
                }
            }
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n",
            body.len()
        );
        if s.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        if self.mode() == Mode::SlowBody {
            for b in body.as_bytes() {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if s.write_all(&[*b]).await.is_err() {
                    return;
                }
            }
        } else {
            let _ = s.write_all(body.as_bytes()).await;
        }
        let _ = s.shutdown().await;
    }
}
