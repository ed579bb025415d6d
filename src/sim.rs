//! Simulated registries for `regdns demo` and the end-to-end tests: a minimal HTTP/1.1
//! server answering the Docker Registry API route `GET /v2/` like the real thing (200 with
//! the API-version header, or 401 with a Bearer challenge like ACR and Harbor, plus the
//! token endpoint), with one tiny canary image (`demo/canary:canary`: an OCI manifest, a
//! config blob and a layer, behind the Bearer token flow on a Bearer sim), that can be
//! broken at run time: connection refused, accept-then-hang, 503, a slow body, a 401
//! without challenge, storage broken behind a healthy `/v2/` (manifests and blobs 500), a
//! web page instead of a registry. Not used by the daemon itself.

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
    /// `/v2/` healthy, every manifest and blob `500` (storage unreadable).
    Storage,
    /// `200 text/html` on every route: a web server, not a registry.
    Html,
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
            "storage" => Mode::Storage,
            "html" | "web" => Mode::Html,
            other => {
                return Err(format!(
                    "unknown mode {other:?} (healthy, refuse, hang, 503, slow, no-challenge, storage, html)"
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
        let authorized = head.lines().any(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("authorization:")
                .is_some_and(|v| v.trim() == "bearer demo")
        });
        let api = "Docker-Distribution-Api-Version: registry/2.0\r\n";
        let json = "application/json";
        let (status, ctype, headers, body): (&str, &str, String, Vec<u8>) = match self.mode() {
            Mode::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Mode::Refuse => return,
            Mode::Unavailable => (
                "503 Service Unavailable",
                json,
                String::new(),
                b"storage backend unavailable\n".to_vec(),
            ),
            Mode::NoChallenge => ("401 Unauthorized", json, api.to_string(), b"{}".to_vec()),
            Mode::Html => (
                "200 OK",
                "text/html; charset=utf-8",
                String::new(),
                b"<html><body><h1>It works!</h1></body></html>\n".to_vec(),
            ),
            mode @ (Mode::Healthy | Mode::SlowBody | Mode::Storage) => {
                if path.starts_with("/token") {
                    (
                        "200 OK",
                        json,
                        String::new(),
                        b"{\"token\":\"demo\",\"expires_in\":300}".to_vec(),
                    )
                } else if path.starts_with("/v2/") && self.bearer && !authorized {
                    (
                        "401 Unauthorized",
                        json,
                        format!(
                            "{api}WWW-Authenticate: Bearer realm=\"http://{host}/token\",service=\"demo-registry\"\r\n"
                        ),
                        b"{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}".to_vec(),
                    )
                } else if path == "/v2/" {
                    ("200 OK", json, api.to_string(), b"{}".to_vec())
                } else if path.starts_with("/v2/") && mode == Mode::Storage {
                    (
                        "500 Internal Server Error",
                        json,
                        api.to_string(),
                        b"{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"unknown error\",\"detail\":{\"DriverName\":\"filesystem\"}}]}".to_vec(),
                    )
                } else if let Some(found) = canary_content(&path) {
                    let (ct, digest, bytes) = found;
                    (
                        "200 OK",
                        ct,
                        format!("{api}Docker-Content-Digest: {digest}\r\n"),
                        bytes,
                    )
                } else if path.starts_with("/v2/") {
                    (
                        "404 Not Found",
                        json,
                        api.to_string(),
                        b"{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}".to_vec(),
                    )
                } else {
                    (
                        "404 Not Found",
                        "text/plain",
                        String::new(),
                        b"not found\n".to_vec(),
                    )
                }
            }
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n",
            body.len()
        );
        if s.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        if self.mode() == Mode::SlowBody {
            for b in &body {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if s.write_all(&[*b]).await.is_err() {
                    return;
                }
            }
        } else {
            let _ = s.write_all(&body).await;
        }
        let _ = s.shutdown().await;
    }
}

/// The demo canary image: repository and tag.
pub const CANARY_REPOSITORY: &str = "demo/canary";
/// Tag of the demo canary image.
pub const CANARY_TAG: &str = "canary";

const CANARY_LAYER: &[u8] = b"regdns demo canary\n";
const CANARY_CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux","config":{"Labels":{"org.opencontainers.image.title":"regdns demo canary"}},"rootfs":{"type":"layers","diff_ids":[]}}"#;

/// The manifest of the demo canary image.
pub fn canary_manifest() -> String {
    use crate::probe::canary::sha256_digest;
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
        sha256_digest(CANARY_CONFIG),
        CANARY_CONFIG.len(),
        sha256_digest(CANARY_LAYER),
        CANARY_LAYER.len()
    )
}

/// Content type, digest and bytes of a canary manifest or blob path, if it is one.
fn canary_content(path: &str) -> Option<(&'static str, String, Vec<u8>)> {
    use crate::probe::canary::sha256_digest;
    let rest = path.strip_prefix("/v2/")?.strip_prefix(CANARY_REPOSITORY)?;
    let manifest = canary_manifest();
    let mdigest = sha256_digest(manifest.as_bytes());
    if let Some(r) = rest.strip_prefix("/manifests/") {
        return (r == CANARY_TAG || r == mdigest).then(|| {
            (
                crate::probe::canary::OCI_MANIFEST,
                mdigest.clone(),
                manifest.into_bytes(),
            )
        });
    }
    let d = rest.strip_prefix("/blobs/")?;
    [CANARY_CONFIG, CANARY_LAYER]
        .into_iter()
        .find(|b| sha256_digest(b) == d)
        .map(|b| ("application/octet-stream", d.to_string(), b.to_vec()))
}

/// Size of a generated scale configuration ([`scale_config`]).
#[derive(Debug, Clone, Copy)]
pub struct ScaleParams {
    /// Endpoints (`e0000.scale.test.` …), each with a default view (CNAME) and two VPC views
    /// (A records).
    pub endpoints: usize,
    /// Instances; the first half on registry A (every endpoint's primary), the second half
    /// on registry B (every endpoint's secondary).
    pub instances: usize,
}

impl Default for ScaleParams {
    fn default() -> Self {
        ScaleParams {
            endpoints: 1000,
            instances: 300,
        }
    }
}

/// Zone origin of the generated scale configuration.
pub const SCALE_ZONE: &str = "scale.test.";
/// Views of the generated scale configuration and the client address that selects each.
pub const SCALE_VIEWS: [(&str, &str); 3] = [
    ("vpc-a", "127.0.0.2"),
    ("vpc-b", "127.0.0.3"),
    ("default", "127.0.0.1"),
];

/// Name of endpoint `k`.
pub fn scale_endpoint(k: usize) -> String {
    format!("e{k:04}.{SCALE_ZONE}")
}

/// Primary and secondary instance index of endpoint `k`.
pub fn scale_targets(p: &ScaleParams, k: usize) -> (usize, usize) {
    let half = (p.instances / 2).max(1);
    (k % half, half + k % half)
}

/// The answer instance `i` gives in view `view` (index into [`SCALE_VIEWS`]): a CNAME in
/// `default`, an address per VPC view.
pub fn scale_answer(i: usize, view: usize) -> String {
    match view {
        0 => format!("10.1.{}.{}", i / 250, i % 250 + 1),
        1 => format!("10.2.{}.{}", i / 250, i % 250 + 1),
        _ => format!("i{i:03}.registries.example."),
    }
}

/// A generated configuration for the scale benchmark and test: `(regdns.toml, zone file)`.
/// The zone file is to be written as `scale.test.zone` next to the config; `listen`,
/// `admin` and the state directory are given; instances probe `http://{a}/v2/` (first
/// half) and `http://{b}/v2/` (second half) every second (timeout 500 ms, rise 1, fall 2).
pub fn scale_config(
    p: &ScaleParams,
    listen: SocketAddr,
    admin: SocketAddr,
    state_dir: &std::path::Path,
    a: SocketAddr,
    b: SocketAddr,
) -> (String, String) {
    use std::fmt::Write;
    let mut c = String::new();
    let _ = writeln!(
        c,
        "[server]\nlisten = [\"{listen}\"]\nadmin = \"{admin}\"\nadmin_token_file = \"{}\"\nstate_dir = \"{}\"\n",
        state_dir.join("admin.token").display(),
        state_dir.display()
    );
    let _ = writeln!(
        c,
        "[[zone]]\norigin = \"{SCALE_ZONE}\"\nfile = \"scale.test.zone\"\n"
    );
    for (name, client) in &SCALE_VIEWS[..2] {
        let _ = writeln!(
            c,
            "[[view]]\nname = \"{name}\"\nclients = [\"{client}/32\"]\n"
        );
    }
    let half = (p.instances / 2).max(1);
    for i in 0..p.instances {
        let reg = if i < half { a } else { b };
        let _ = writeln!(
            c,
            "[[instance]]\nid = \"i{i:03}\"\nurl = \"http://{reg}/v2/\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nrise = 1\nfall = 2\n"
        );
    }
    for k in 0..p.endpoints {
        let (pri, sec) = scale_targets(p, k);
        let _ = writeln!(
            c,
            "[[endpoint]]\nname = \"{}\"\nttl = 5\n[endpoint.targets]",
            scale_endpoint(k)
        );
        for (vi, (view, _)) in SCALE_VIEWS.iter().enumerate() {
            let t = |i: usize| {
                if vi == 2 {
                    format!(
                        "{{ instance = \"i{i:03}\", cname = \"{}\" }}",
                        scale_answer(i, vi)
                    )
                } else {
                    format!(
                        "{{ instance = \"i{i:03}\", a = [\"{}\"] }}",
                        scale_answer(i, vi)
                    )
                }
            };
            let _ = writeln!(c, "{view} = [{}, {}]", t(pri), t(sec));
        }
        c.push('\n');
    }
    let zone = format!(
        "$ORIGIN {SCALE_ZONE}\n$TTL 300\n@ IN SOA ns1 hostmaster 2026112901 3600 600 86400 60\n  IN NS ns1\nns1 IN A 127.0.0.1\nalias IN CNAME e0000\n@ IN MX 10 e0001\n"
    );
    (c, zone)
}

/// A stand-in for the public DNS in the demo: a UDP responder that answers A queries for a
/// few names (authoritative, TTL 5) and NXDOMAIN for the rest, so a passthrough target has a
/// public answer to pass through to on a machine without Internet access.
#[derive(Debug, Clone)]
pub struct PublicDns {
    /// Where it answers.
    pub addr: SocketAddr,
}

impl PublicDns {
    /// Starts answering `names` (lower-case, fully qualified) on `addr` (port 0 picks one).
    pub async fn start(
        addr: SocketAddr,
        names: Vec<(hickory_proto::rr::Name, std::net::Ipv4Addr)>,
    ) -> std::io::Result<PublicDns> {
        let sock = tokio::net::UdpSocket::bind(addr).await?;
        let addr = sock.local_addr()?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(reply) = public_answer(&buf[..n], &names) {
                    let _ = sock.send_to(&reply, from).await;
                }
            }
        });
        Ok(PublicDns { addr })
    }
}

/// The reply of [`PublicDns`] to one query (None for garbage).
fn public_answer(
    query: &[u8],
    names: &[(hickory_proto::rr::Name, std::net::Ipv4Addr)],
) -> Option<Vec<u8>> {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::{RData, Record, RecordType, rdata::A};
    let q = Message::from_vec(query).ok()?;
    let question = q.queries.first()?.clone();
    let mut m = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
    m.metadata.authoritative = true;
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    let name = question.name().to_lowercase();
    let found = names.iter().find(|(n, _)| *n == name);
    match found {
        Some((n, ip)) if question.query_type() == RecordType::A => {
            m.add_answer(Record::from_rdata(n.clone(), 5, RData::A(A(*ip))));
        }
        Some(_) => {}
        None => m.metadata.response_code = ResponseCode::NXDomain,
    }
    m.add_query(question);
    m.to_vec().ok()
}
