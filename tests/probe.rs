//! Integration tests of the prober against real servers on 127.0.0.1.
//! No test resolves a real DNS name: names like `registry.test` are always
//! dialled through `connect = "127.0.0.1:PORT"`.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use regdns::probe::{
    ExtraCheck, InstanceSpec, ProbeReport, Prober, Transition, probe_once, spawn_prober,
};
use support::tls::{Pki, server_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------- helpers

async fn bind() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

fn serve(l: TcpListener, router: Router) {
    let router = as_registry(router);
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
}

async fn serve_router(router: Router) -> SocketAddr {
    let (l, a) = bind().await;
    serve(l, as_registry(router));
    a
}

/// Every response carries `Docker-Distribution-API-Version: registry/2.0`, as a registry's
/// do (the identity check is tested on servers without it, below).
fn as_registry(router: Router) -> Router {
    router.layer(axum::middleware::map_response(
        |mut r: axum::response::Response| async move {
            r.headers_mut()
                .entry("docker-distribution-api-version")
                .or_insert(axum::http::HeaderValue::from_static("registry/2.0"));
            r
        },
    ))
}

/// A port nothing listens on (bound, then released).
async fn free_port() -> u16 {
    let (l, a) = bind().await;
    drop(l);
    a.port()
}

fn spec(url: &str) -> InstanceSpec {
    let mut s = InstanceSpec::new("reg", url.parse().unwrap());
    s.timeout = TIMEOUT;
    s
}

async fn probe(s: &InstanceSpec) -> ProbeReport {
    let p = Prober::new(s).expect("prober");
    let r = probe_once(s, &p).await;
    eprintln!("{} → ok={} {}", s.url, r.ok, r.summary());
    r
}

fn v2(r: &ProbeReport) -> &str {
    &r.checks[0].detail
}

async fn accept_and_hang() -> SocketAddr {
    let (l, a) = bind().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s); // never read, never written
        }
    });
    a
}

/// Reads one request head; then runs `respond`.
async fn raw_server<F, Fut>(respond: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (l, a) = bind().await;
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let respond = respond.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                respond(s).await;
            });
        }
    });
    a
}

// ------------------------------------------------------------------- PKI

/// A self-signed certificate nobody trusts, as a server configuration.
fn self_signed(names: &[&str]) -> rustls::ServerConfig {
    server_config(support::tls::self_signed(names))
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

async fn serve_tls(cfg: rustls::ServerConfig, router: Router) -> SocketAddr {
    let (tcp, a) = bind().await;
    let l = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
    };
    let router = as_registry(router);
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    a
}

fn registry_ok() -> Router {
    Router::new().route(
        "/v2/",
        get(|| async { ([("Docker-Distribution-Api-Version", "registry/2.0")], "{}") }),
    )
}

// ------------------------------------------------------------ HTTP status

#[tokio::test]
async fn http_200_is_up() {
    let a = serve_router(registry_ok()).await;
    let r = probe(&spec(&format!("http://{a}/v2/"))).await;
    assert!(r.ok);
    assert_eq!(r.instance, "reg");
    assert_eq!(r.checks.len(), 1);
    assert_eq!(r.checks[0].check, "v2");
    assert_eq!(v2(&r), "HTTP 200");
}

/// A registry answering 401 with a Bearer challenge, and a token endpoint
/// answering `token_status` with `token_body`; records token queries.
async fn bearer_registry(
    token_status: u16,
    token_body: &'static str,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let (l, a) = bind().await;
    let queries = Arc::new(Mutex::new(Vec::new()));
    let q = queries.clone();
    let challenge = format!(r#"Bearer realm="http://{a}/token",service="registry""#);
    let router = Router::new()
        .route(
            "/v2/",
            get(move || {
                let c = challenge.clone();
                async move { (StatusCode::UNAUTHORIZED, [("Www-Authenticate", c)], "{}") }
            }),
        )
        .route(
            "/token",
            get(move |uri: axum::http::Uri, h: HeaderMap| {
                assert!(h.get("authorization").is_none(), "anonymous");
                q.lock()
                    .unwrap()
                    .push(uri.query().unwrap_or_default().to_string());
                async move { (StatusCode::from_u16(token_status).unwrap(), token_body) }
            }),
        );
    serve(l, router);
    (a, queries)
}

#[tokio::test]
async fn bearer_401_is_up_without_auth_check() {
    let (a, queries) = bearer_registry(502, "").await;
    let r = probe(&spec(&format!("http://{a}/v2/"))).await;
    assert!(r.ok);
    assert_eq!(v2(&r), "HTTP 401 Bearer challenge");
    assert!(queries.lock().unwrap().is_empty());
}

#[tokio::test]
async fn auth_check_token_200_is_up() {
    let (a, queries) = bearer_registry(200, r#"{"token":"t"}"#).await;
    let mut s = spec(&format!("http://{a}/v2/"));
    s.auth_check = true;
    let r = probe(&s).await;
    assert!(r.ok);
    assert_eq!(
        r.summary(),
        "v2: HTTP 401 Bearer challenge, auth: token service 200"
    );
    assert_eq!(*queries.lock().unwrap(), vec!["service=registry&scope="]);
}

#[tokio::test]
async fn auth_check_token_401_with_body_is_up() {
    let (a, _) = bearer_registry(401, r#"{"errors":[]}"#).await;
    let mut s = spec(&format!("http://{a}/v2/"));
    s.auth_check = true;
    assert!(probe(&s).await.ok);
}

#[tokio::test]
async fn auth_check_token_502_is_down() {
    let (a, _) = bearer_registry(502, "bad gateway").await;
    let mut s = spec(&format!("http://{a}/v2/"));
    s.auth_check = true;
    let r = probe(&s).await;
    assert!(!r.ok);
    assert!(r.checks[0].ok);
    assert_eq!(r.checks[1].check, "auth");
    assert_eq!(
        r.checks[1].detail,
        format!("token service http://{a}/token answered 502")
    );
    assert_eq!(
        r.summary(),
        format!("auth: token service http://{a}/token answered 502")
    );
}

#[tokio::test]
async fn auth_check_token_empty_body_is_down() {
    let (a, _) = bearer_registry(200, "").await;
    let mut s = spec(&format!("http://{a}/v2/"));
    s.auth_check = true;
    let r = probe(&s).await;
    assert!(!r.ok);
    assert!(
        r.checks[1]
            .detail
            .ends_with("answered 200 with an empty body")
    );
}

#[tokio::test]
async fn auth_check_token_service_refused_is_down() {
    let port = free_port().await;
    let router = Router::new().route(
        "/v2/",
        get(move || async move {
            (
                StatusCode::UNAUTHORIZED,
                [(
                    "Www-Authenticate",
                    format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="r""#),
                )],
            )
        }),
    );
    let a = serve_router(router).await;
    let mut s = spec(&format!("http://{a}/v2/"));
    s.auth_check = true;
    let r = probe(&s).await;
    assert!(!r.ok);
    assert_eq!(
        r.checks[1].detail,
        format!(
            "token service http://127.0.0.1:{port}/token: connection refused (127.0.0.1:{port})"
        )
    );
}

#[tokio::test]
async fn basic_challenge_skips_auth_check() {
    let router = Router::new().route(
        "/v2/",
        get(|| async {
            (
                StatusCode::UNAUTHORIZED,
                [("WWW-Authenticate", r#"Basic realm="Registry Realm""#)],
            )
        }),
    );
    let a = serve_router(router).await;
    let mut s = spec(&format!("http://{a}/v2/"));
    s.auth_check = true;
    let r = probe(&s).await;
    assert!(r.ok);
    assert_eq!(r.checks.len(), 1);
    assert_eq!(v2(&r), "HTTP 401 Basic challenge");
}

#[tokio::test]
async fn http_401_without_challenge_is_down() {
    let router = Router::new().route("/v2/", get(|| async { StatusCode::UNAUTHORIZED }));
    let a = serve_router(router).await;
    let r = probe(&spec(&format!("http://{a}/v2/"))).await;
    assert!(!r.ok);
    assert_eq!(v2(&r), "HTTP 401 without WWW-Authenticate challenge");
}

#[tokio::test]
async fn http_503_is_down() {
    let router = Router::new().route(
        "/v2/",
        get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "maintenance") }),
    );
    let a = serve_router(router).await;
    let r = probe(&spec(&format!("http://{a}/v2/"))).await;
    assert!(!r.ok);
    assert_eq!(v2(&r), "HTTP 503");
    assert_eq!(r.summary(), "v2: HTTP 503");
}

#[tokio::test]
async fn redirect_is_not_followed_for_v2() {
    let router = Router::new().route(
        "/v2/",
        get(|| async { (StatusCode::FOUND, [("Location", "/elsewhere")]) }),
    );
    let a = serve_router(router).await;
    let r = probe(&spec(&format!("http://{a}/v2/"))).await;
    assert!(!r.ok);
    assert_eq!(v2(&r), "HTTP 302");
}

// ------------------------------------------------------- registry identity

/// A server answering `/v2/` with `status`, `Content-Type` and optional API-version value.
async fn plain_server(
    status: &'static str,
    ct: &'static str,
    api: Option<&'static str>,
) -> SocketAddr {
    raw_server(move |mut s| async move {
        let api = api
            .map(|v| format!("Docker-Distribution-Api-Version: {v}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\n{api}WWW-Authenticate: Bearer realm=\"http://x/token\"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        );
        let _ = s.write_all(head.as_bytes()).await;
    })
    .await
}

#[tokio::test]
async fn a_web_page_is_not_a_registry() {
    let a = plain_server("200 OK", "text/html; charset=utf-8", None).await;
    let r = probe(&spec(&format!("http://{a}/v2/"))).await;
    assert!(!r.ok);
    assert_eq!(
        r.summary(),
        "v2: not a registry API: no Docker-Distribution-API-Version header (Content-Type text/html)"
    );
    // A 401 from something that is not a registry (a proxy's login) is not one either.
    let a = plain_server("401 Unauthorized", "text/html", None).await;
    let r = probe(&spec(&format!("http://{a}/v2/"))).await;
    assert!(!r.ok);
    assert!(v2(&r).starts_with("not a registry API"), "{}", v2(&r));
    // A wrong value says what came.
    let a = plain_server("200 OK", "application/json", Some("registry/1.0")).await;
    let r = probe(&spec(&format!("http://{a}/v2/"))).await;
    assert_eq!(
        v2(&r),
        "not a registry API: Docker-Distribution-API-Version is \"registry/1.0\", not registry/2.0 (Content-Type application/json)"
    );
}

#[tokio::test]
async fn api_version_header_is_matched_case_insensitively_and_can_be_waived() {
    let a = plain_server("200 OK", "application/json", Some("Registry/2.0")).await;
    assert!(probe(&spec(&format!("http://{a}/v2/"))).await.ok);
    let a = plain_server("200 OK", "text/html", None).await;
    let mut s = spec(&format!("http://{a}/v2/"));
    s.require_api_version = false;
    let r = probe(&s).await;
    assert!(r.ok, "{}", r.summary());
    assert_eq!(v2(&r), "HTTP 200");
}

#[tokio::test]
async fn large_body_is_capped() {
    let router = Router::new().route("/v2/", get(|| async { vec![b'x'; 4 << 20] }));
    let a = serve_router(router).await;
    let r = probe(&spec(&format!("http://{a}/v2/"))).await;
    assert!(r.ok, "{}", r.summary());
}

// ------------------------------------------------------ transport failures

#[tokio::test]
async fn connection_refused() {
    let port = free_port().await;
    let r = probe(&spec(&format!("http://127.0.0.1:{port}/v2/"))).await;
    assert!(!r.ok);
    assert_eq!(v2(&r), format!("connection refused (127.0.0.1:{port})"));
}

#[tokio::test]
async fn accept_then_hang_times_out_waiting_for_headers() {
    let a = accept_and_hang().await;
    let start = std::time::Instant::now();
    let r = probe(&spec(&format!("http://{a}/v2/"))).await;
    assert!(!r.ok);
    assert_eq!(v2(&r), "timeout after 1s (response headers)");
    assert!(start.elapsed() < Duration::from_millis(1900));
}

#[tokio::test]
async fn accept_then_hang_on_https_times_out_in_tls() {
    let a = accept_and_hang().await;
    let start = std::time::Instant::now();
    let r = probe(&spec(&format!("https://{a}/v2/"))).await;
    assert!(!r.ok);
    assert_eq!(v2(&r), "timeout after 1s (tls)");
    assert!(start.elapsed() < Duration::from_millis(1900));
}

#[tokio::test]
async fn slow_body_times_out() {
    let a = raw_server(|mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            .await;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if s.write_all(b"x").await.is_err() {
                return;
            }
        }
    })
    .await;
    let start = std::time::Instant::now();
    let r = probe(&spec(&format!("http://{a}/v2/"))).await;
    assert!(!r.ok);
    assert_eq!(v2(&r), "timeout after 1s (body)");
    assert!(start.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn connection_closed_before_response() {
    let a = raw_server(|s| async move { drop(s) }).await;
    let r = probe(&spec(&format!("http://{a}/v2/"))).await;
    assert!(!r.ok);
    assert_eq!(
        v2(&r),
        format!("connection closed before a complete response ({a})")
    );
}

#[tokio::test]
async fn plain_http_on_https_url() {
    let a = serve_router(registry_ok()).await;
    let r = probe(&spec(&format!("https://{a}/v2/"))).await;
    assert!(!r.ok);
    assert!(v2(&r).starts_with("TLS: "), "{}", v2(&r));
}

// --------------------------------------------------------------------- TLS

#[tokio::test]
async fn tls_name_mismatch() {
    let pki = Pki::new();
    let a = serve_tls(
        server_config(pki.leaf(&["registry.test"], false)),
        registry_ok(),
    )
    .await;
    let mut s = spec(&format!(
        "https://cross-region.registry.io:{}/v2/",
        a.port()
    ));
    s.connect = Some(a.to_string());
    s.ca_file = Some(pki.ca_file());
    let r = probe(&s).await;
    assert!(!r.ok);
    assert_eq!(
        v2(&r),
        "TLS: certificate is not valid for cross-region.registry.io (it names registry.test)"
    );
}

#[tokio::test]
async fn tls_untrusted_self_signed() {
    let a = serve_tls(self_signed(&["registry.test"]), registry_ok()).await;
    let mut s = spec(&format!("https://registry.test:{}/v2/", a.port()));
    s.connect = Some(a.to_string());
    let r = probe(&s).await;
    assert!(!r.ok);
    assert_eq!(v2(&r), "TLS: unknown issuer");
}

#[tokio::test]
async fn tls_insecure_skip_verify_accepts_untrusted() {
    let a = serve_tls(self_signed(&["other.test"]), registry_ok()).await;
    let mut s = spec(&format!("https://registry.test:{}/v2/", a.port()));
    s.connect = Some(a.to_string());
    s.insecure_skip_verify = true;
    assert!(probe(&s).await.ok);
}

#[tokio::test]
async fn tls_expired() {
    let pki = Pki::new();
    let a = serve_tls(
        server_config(pki.leaf(&["registry.test"], true)),
        registry_ok(),
    )
    .await;
    let mut s = spec(&format!("https://registry.test:{}/v2/", a.port()));
    s.connect = Some(a.to_string());
    s.ca_file = Some(pki.ca_file());
    let r = probe(&s).await;
    assert!(!r.ok);
    assert_eq!(v2(&r), "TLS: certificate expired (2001-01-01)");
}

/// Serves 200 only when `Host` is exactly `host`.
fn registry_expecting_host(host: String) -> Router {
    Router::new().route(
        "/v2/",
        get(move |h: HeaderMap| {
            let want = host.clone();
            async move {
                let got = h.get("host").and_then(|v| v.to_str().ok()).unwrap_or("");
                if got == want {
                    (StatusCode::OK, String::from("{}"))
                } else {
                    (StatusCode::BAD_REQUEST, format!("Host {got:?}"))
                }
            }
        }),
    )
}

#[tokio::test]
async fn connect_override_keeps_url_name_for_sni_host_and_verification() {
    let pki = Pki::new();
    let (tcp, a) = bind().await;
    let host = format!("registry.test:{}", a.port());
    let l = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server_config(
            pki.leaf(&["registry.test"], false),
        ))),
    };
    let router = registry_expecting_host(host.clone());
    let router = as_registry(router);
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    let mut s = spec(&format!("https://{host}/v2/"));
    s.connect = Some(format!("127.0.0.1:{}", a.port()));
    s.ca_file = Some(pki.ca_file());
    let r = probe(&s).await;
    assert!(r.ok, "{}", r.summary());
    assert_eq!(v2(&r), "HTTP 200");
}

#[tokio::test]
async fn connect_override_port_differs_from_url_port() {
    let pki = Pki::new();
    let a = serve_tls(
        server_config(pki.leaf(&["registry.test"], false)),
        registry_expecting_host("registry.test:5443".into()),
    )
    .await;
    let mut s = spec("https://registry.test:5443/v2/");
    s.connect = Some(a.to_string());
    s.ca_file = Some(pki.ca_file());
    let r = probe(&s).await;
    assert!(r.ok, "{}", r.summary());

    // Default port: Host carries no port.
    let a = serve_tls(
        server_config(pki.leaf(&["registry.test"], false)),
        registry_expecting_host("registry.test".into()),
    )
    .await;
    let mut s = spec("https://registry.test/v2/");
    s.connect = Some(a.to_string());
    s.ca_file = Some(pki.ca_file());
    assert!(probe(&s).await.ok);
}

#[tokio::test]
async fn connect_override_refused_names_the_connect_address() {
    let port = free_port().await;
    let mut s = spec("https://registry.test/v2/");
    s.connect = Some(format!("127.0.0.1:{port}"));
    let r = probe(&s).await;
    assert_eq!(v2(&r), format!("connection refused (127.0.0.1:{port})"));
}

// ------------------------------------------------------------------ extras

#[tokio::test]
async fn extra_tcp_down_makes_instance_down() {
    let a = serve_router(registry_ok()).await;
    let port = free_port().await;
    let mut s = spec(&format!("http://{a}/v2/"));
    s.extra = vec![
        ExtraCheck::Tcp {
            name: "self".into(),
            addr: a.to_string(),
        },
        ExtraCheck::Tcp {
            name: "redis".into(),
            addr: format!("127.0.0.1:{port}"),
        },
    ];
    let r = probe(&s).await;
    assert!(!r.ok);
    assert!(r.checks[0].ok);
    assert!(r.checks[1].ok, "{:?}", r.checks[1]);
    assert_eq!(r.checks[1].detail, format!("connected to {a}"));
    assert_eq!(
        r.summary(),
        format!("redis: connection refused (127.0.0.1:{port})")
    );
}

#[tokio::test]
async fn extra_http_statuses() {
    let router = registry_ok()
        .route("/ok", get(|| async { "ok" }))
        .route("/forbidden", get(|| async { StatusCode::FORBIDDEN }))
        .route(
            "/moved",
            get(|| async { (StatusCode::MOVED_PERMANENTLY, [("Location", "/gone")]) }),
        )
        .route("/broken", get(|| async { StatusCode::BAD_GATEWAY }));
    let a = serve_router(router).await;
    let extra = |name: &str, path: &str| ExtraCheck::Http {
        name: name.into(),
        url: format!("http://{a}{path}").parse().unwrap(),
    };
    let mut s = spec(&format!("http://{a}/v2/"));
    s.extra = vec![
        extra("ok", "/ok"),
        extra("forbidden", "/forbidden"),
        extra("moved", "/moved"),
    ];
    let r = probe(&s).await;
    assert!(r.ok, "{}", r.summary());
    assert_eq!(r.checks.len(), 4);

    for (path, want) in [("/missing", "HTTP 404"), ("/broken", "HTTP 502")] {
        s.extra = vec![extra("x", path)];
        let r = probe(&s).await;
        assert!(!r.ok);
        assert_eq!(r.summary(), format!("x: {want}"));
    }
}

// ---------------------------------------------------------- the scheduler

#[tokio::test]
async fn spawn_prober_sends_transitions_and_reports() {
    let healthy = Arc::new(AtomicBool::new(true));
    let h = healthy.clone();
    let router = Router::new().route(
        "/v2/",
        get(move || {
            let ok = h.load(Ordering::SeqCst);
            async move {
                if ok {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let a = serve_router(router).await;
    let mut s = spec(&format!("http://{a}/v2/"));
    s.interval = Duration::from_millis(300);
    s.rise = 2;
    s.fall = 2;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Transition>(8);
    let (rtx, rrx) = tokio::sync::watch::channel(BTreeMap::new());
    let (stop, srx) = tokio::sync::watch::channel(false);
    let tasks = spawn_prober(vec![s], tx, rtx, srx);

    let wait = Duration::from_secs(3);
    let up = tokio::time::timeout(wait, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(up.up);
    assert_eq!(up.instance, "reg");
    assert_eq!(up.reason, "v2: HTTP 200");
    assert!(rrx.borrow()["reg"].ok);

    healthy.store(false, Ordering::SeqCst);
    let down = tokio::time::timeout(wait, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(!down.up);
    assert_eq!(down.reason, "v2: HTTP 503");
    assert!(!rrx.borrow()["reg"].ok);

    stop.send(true).unwrap();
    for t in tasks {
        tokio::time::timeout(wait, t).await.unwrap().unwrap();
    }
}

// ------------------------------------------- the real Debian docker-registry

#[tokio::test]
async fn real_docker_registry() {
    let bin = std::path::Path::new("/usr/bin/docker-registry");
    if !bin.exists() {
        eprintln!("SKIP real_docker_registry: /usr/bin/docker-registry is missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().await;
    let cfg = dir.path().join("config.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: x\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(bin)
        .arg("serve")
        .arg(&cfg)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    eprintln!("docker-registry pid {:?} on port {port}", child.id());

    let mut s = spec(&format!("http://127.0.0.1:{port}/v2/"));
    s.timeout = Duration::from_millis(500);
    let prober = Prober::new(&s).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut r = probe_once(&s, &prober).await;
    while !r.ok && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        r = probe_once(&s, &prober).await;
    }
    assert!(r.ok, "registry did not come up: {}", r.summary());
    assert_eq!(v2(&r), "HTTP 200");

    child.kill().await.unwrap();
    let r = probe_once(&s, &prober).await;
    assert!(!r.ok);
    assert_eq!(v2(&r), format!("connection refused (127.0.0.1:{port})"));
}

#[tokio::test]
async fn dns_failure_of_connect_address() {
    // A NUL byte fails resolution locally: no DNS query leaves the machine.
    let mut s = spec("https://registry.test/v2/");
    s.connect = Some("bad\0name:5000".into());
    let r = probe(&s).await;
    assert!(!r.ok);
    assert!(
        v2(&r).starts_with("DNS: cannot resolve bad\0name:5000"),
        "{}",
        v2(&r)
    );

    s.connect = None;
    s.extra = vec![ExtraCheck::Tcp {
        name: "db".into(),
        addr: "bad\0name:5432".into(),
    }];
    let r = probe(&s).await;
    assert!(
        r.checks[1]
            .detail
            .starts_with("DNS: cannot resolve bad\0name:5432")
    );
}
