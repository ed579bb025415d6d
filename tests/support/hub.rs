//! A Docker-Hub-shaped registry on one TLS address: the registry API, its token realm and
//! its blob storage on three different host names (`registry.`, `auth.` and `blobs.` under
//! a `.test` domain that resolves nowhere), told apart by `Host` as Docker Hub's edge does,
//! with one certificate (from a test CA) naming all three. The registry API needs a Bearer
//! token from the realm (`401` with a challenge naming `https://auth.DOMAIN[:port]/token`),
//! redirects blob GETs to `https://blobs.DOMAIN[:port]/…` and forwards everything else
//! (`GET` and `HEAD`) to a real `docker-registry`. Every TLS handshake's SNI and every
//! request (`Host`, method, path) is recorded, so a test can count manifest GETs and HEADs,
//! blob GETs and the names a client sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};

use super::tls::Pki;

/// The token the realm issues.
pub const TOKEN: &str = "regdns-hub-token";

/// One request the hub answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The `Host` header, as sent.
    pub host: String,
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The path (no query).
    pub path: String,
}

struct Shared {
    domain: String,
    /// `:PORT` in the realm and redirect URLs, or nothing (port 443).
    port_suffix: String,
    upstream: String,
    hits: Mutex<Vec<Hit>>,
    sni: Arc<Mutex<Vec<String>>>,
}

/// A running hub (its tasks end with the test's runtime).
#[derive(Clone)]
pub struct Hub {
    /// Where it listens (TLS).
    pub addr: SocketAddr,
    /// `registry.DOMAIN`.
    pub registry_host: String,
    /// `auth.DOMAIN`.
    pub auth_host: String,
    /// `blobs.DOMAIN`.
    pub blobs_host: String,
    shared: Arc<Shared>,
}

/// Records the SNI of every handshake, then serves the one certificate.
#[derive(Debug)]
struct RecordingCert {
    cert: Arc<CertifiedKey>,
    sni: Arc<Mutex<Vec<String>>>,
}

impl ResolvesServerCert for RecordingCert {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.sni
            .lock()
            .unwrap()
            .push(hello.server_name().unwrap_or("").to_string());
        Some(self.cert.clone())
    }
}

/// axum over TLS: handshakes are done in `accept` (failed ones skipped).
struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((s, a)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(Ok(t)) =
                tokio::time::timeout(Duration::from_secs(2), self.acceptor.accept(s)).await
            {
                return (t, a);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

impl Hub {
    /// Starts a hub for `domain` (e.g. `gapath.test`) in front of the registry at
    /// `upstream` (`http://127.0.0.1:PORT`), with a certificate from `pki`. With
    /// `port_in_urls`, the realm and redirect URLs carry the hub's own port (clients dial
    /// them as written); without, they name port 443 (clients dial them through `connect`).
    pub async fn start(pki: &Pki, domain: &str, upstream: &str, port_in_urls: bool) -> Hub {
        let registry_host = format!("registry.{domain}");
        let auth_host = format!("auth.{domain}");
        let blobs_host = format!("blobs.{domain}");
        let cert = pki.leaf(&[&registry_host, &auth_host, &blobs_host], false);
        let sni = Arc::new(Mutex::new(Vec::new()));
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(RecordingCert {
            cert,
            sni: sni.clone(),
        }));
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let shared = Arc::new(Shared {
            domain: domain.to_string(),
            port_suffix: if port_in_urls {
                format!(":{}", addr.port())
            } else {
                String::new()
            },
            upstream: upstream.trim_end_matches('/').to_string(),
            hits: Mutex::new(Vec::new()),
            sni,
        });
        let app = axum::Router::new()
            .fallback(route)
            .with_state(shared.clone());
        let l = TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
        };
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        Hub {
            addr,
            registry_host,
            auth_host,
            blobs_host,
            shared,
        }
    }

    /// Every request answered so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// The SNI of every TLS handshake so far.
    pub fn sni(&self) -> Vec<String> {
        self.shared.sni.lock().unwrap().clone()
    }

    /// Requests with `method` on `host` whose path contains `part` (`/manifests/`,
    /// `/blobs/`).
    pub fn count(&self, method: &str, host: &str, part: &str) -> usize {
        self.hits()
            .iter()
            .filter(|h| h.method == method && h.host == host && h.path.contains(part))
            .count()
    }

    /// Forgets the requests and handshakes seen so far.
    pub fn clear(&self) {
        self.shared.hits.lock().unwrap().clear();
        self.shared.sni.lock().unwrap().clear();
    }
}

async fn route(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let path = uri.path().to_string();
    s.hits.lock().unwrap().push(Hit {
        host: host.clone(),
        method: method.to_string(),
        path: path.clone(),
    });
    let name = host.split(':').next().unwrap_or("");
    let label = name
        .strip_suffix(&format!(".{}", s.domain))
        .unwrap_or("(other)");
    match label {
        "auth" if path == "/token" => (
            [("content-type", "application/json")],
            format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#),
        )
            .into_response(),
        "registry" => registry(&s, method, &path, &headers).await,
        "blobs" if method == Method::GET => {
            // /<repo...>/<digest>
            let p = path.trim_start_matches('/');
            let (repo, digest) = p.rsplit_once('/').unwrap_or(("", p));
            forward(
                &s.upstream,
                Method::GET,
                &format!("/v2/{repo}/blobs/{digest}"),
                None,
            )
            .await
        }
        _ => (StatusCode::MISDIRECTED_REQUEST, "unknown host").into_response(),
    }
}

async fn registry(s: &Shared, method: Method, path: &str, headers: &HeaderMap) -> Response {
    let bearer = format!("Bearer {TOKEN}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(bearer.as_str()) {
        let mut h = HeaderMap::new();
        h.insert(
            "www-authenticate",
            HeaderValue::from_str(&format!(
                r#"Bearer realm="https://auth.{}{}/token",service="regdns-hub""#,
                s.domain, s.port_suffix
            ))
            .unwrap(),
        );
        h.insert(
            "docker-distribution-api-version",
            HeaderValue::from_static("registry/2.0"),
        );
        h.insert("content-type", HeaderValue::from_static("application/json"));
        return (
            StatusCode::UNAUTHORIZED,
            h,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
            .into_response();
    }
    if method == Method::GET
        && let Some((repo, digest)) = path
            .strip_prefix("/v2/")
            .and_then(|p| p.split_once("/blobs/"))
    {
        return (
            StatusCode::TEMPORARY_REDIRECT,
            [(
                "location",
                format!(
                    "https://blobs.{}{}/{repo}/{digest}?X-Amz-Signature=abc",
                    s.domain, s.port_suffix
                ),
            )],
        )
            .into_response();
    }
    forward(
        &s.upstream,
        method,
        path,
        headers.get("accept").and_then(|v| v.to_str().ok()),
    )
    .await
}

async fn forward(upstream: &str, method: Method, path: &str, accept: Option<&str>) -> Response {
    let m = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
    let mut req = reqwest::Client::new().request(m, format!("{upstream}{path}"));
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let r = match req.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
    let mut h = HeaderMap::new();
    for name in [
        "content-type",
        "docker-content-digest",
        "docker-distribution-api-version",
    ] {
        if let Some(v) = r.headers().get(name) {
            h.insert(name, HeaderValue::from_bytes(v.as_bytes()).unwrap());
        }
    }
    if method == Method::HEAD {
        if let Some(v) = r.headers().get("content-length") {
            h.insert(
                "content-length",
                HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        return (status, h).into_response();
    }
    let body: Bytes = r.bytes().await.unwrap_or_default();
    (status, h, body).into_response()
}
