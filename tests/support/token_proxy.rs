//! A token-auth front for a real registry, as Harbor and ACR put one: every `/v2/` request
//! needs `Authorization: Bearer <token>`, else `401` with a Bearer challenge naming the
//! proxy's own token service (`/token`), which checks Basic credentials when configured
//! and records the scopes asked for. Blob GETs can be answered with a `307` redirect to a
//! separate "storage" server (like OSS/S3 pre-signed URLs), whose behaviour the test
//! switches (healthy, 500, hang). Everything else is forwarded to the registry.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The one token the proxy issues.
pub const TOKEN: &str = "regdns-test-token";

/// How the storage server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// Serves the blob (fetched from the registry).
    Healthy,
    /// `500` with an S3-like XML error.
    Error,
    /// Never answers.
    Hang,
}

struct Shared {
    upstream: String,
    token_addr: String,
    storage_addr: Option<String>,
    check: Option<AuthCheck>,
    scopes: Mutex<Vec<String>>,
    storage: Mutex<Storage>,
    storage_hits: Mutex<Vec<HeaderMap>>,
}

/// Decides whether the token service accepts an `Authorization` header value.
pub type AuthCheck = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// A running proxy (and its storage server when redirects are on).
#[derive(Clone)]
pub struct TokenProxy {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `127.0.0.1:PORT` of the storage server.
    pub storage_host: Option<String>,
    shared: Arc<Shared>,
}

impl TokenProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`). `creds`: the Basic
    /// credentials the token service wants (none: anonymous tokens). `redirect_blobs`:
    /// blob GETs are redirected to a storage server.
    pub async fn start(
        upstream: &str,
        creds: Option<(&str, &str)>,
        redirect_blobs: bool,
    ) -> TokenProxy {
        let check = creds.map(|(u, p)| {
            let want = format!("Basic {}", base64_encode(format!("{u}:{p}").as_bytes()));
            Arc::new(move |h: Option<&str>| h == Some(want.as_str())) as AuthCheck
        });
        TokenProxy::start_checked(upstream, check, redirect_blobs).await
    }

    /// [`TokenProxy::start`] with any check of the token request's `Authorization`.
    pub async fn start_checked(
        upstream: &str,
        check: Option<AuthCheck>,
        redirect_blobs: bool,
    ) -> TokenProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let storage_listener = if redirect_blobs {
            Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        } else {
            None
        };
        let storage_addr = storage_listener
            .as_ref()
            .map(|l| l.local_addr().unwrap().to_string());
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            token_addr: addr.to_string(),
            storage_addr: storage_addr.clone(),
            check,
            scopes: Mutex::new(Vec::new()),
            storage: Mutex::new(Storage::Healthy),
            storage_hits: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/token", get(token))
            .fallback(registry)
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        if let Some(l) = storage_listener {
            let app = axum::Router::new()
                .fallback(storage)
                .with_state(shared.clone());
            tokio::spawn(async move {
                let _ = axum::serve(l, app).await;
            });
        }
        TokenProxy {
            base: format!("http://{addr}"),
            storage_host: storage_addr,
            shared,
        }
    }

    /// Scopes the token service was asked for.
    pub fn scopes(&self) -> Vec<String> {
        self.shared.scopes.lock().unwrap().clone()
    }

    /// Switches the storage server.
    pub fn set_storage(&self, s: Storage) {
        *self.shared.storage.lock().unwrap() = s;
    }

    /// Headers of every request the storage server received.
    pub fn storage_hits(&self) -> Vec<HeaderMap> {
        self.shared.storage_hits.lock().unwrap().clone()
    }
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    #[serde(default)]
    service: String,
    #[serde(default)]
    scope: String,
}

async fn token(
    State(s): State<Arc<Shared>>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    s.scopes.lock().unwrap().push(q.scope.clone());
    if q.service != "regdns-test" {
        return (StatusCode::BAD_REQUEST, "unknown service").into_response();
    }
    if let Some(check) = &s.check
        && !check(headers.get("authorization").and_then(|v| v.to_str().ok()))
    {
        return (
            StatusCode::UNAUTHORIZED,
            [("content-type", "application/json")],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
            .into_response();
    }
    (
        [("content-type", "application/json")],
        format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#),
    )
        .into_response()
}

async fn registry(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_string();
    let bearer = format!("Bearer {TOKEN}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(bearer.as_str()) {
        let mut h = HeaderMap::new();
        h.insert(
            "www-authenticate",
            HeaderValue::from_str(&format!(
                r#"Bearer realm="http://{}/token",service="regdns-test""#,
                s.token_addr
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
    if let Some(storage) = &s.storage_addr
        && path.contains("/blobs/sha256:")
    {
        let digest = path.rsplit('/').next().unwrap_or_default();
        let repo = path
            .trim_start_matches("/v2/")
            .split("/blobs/")
            .next()
            .unwrap_or_default();
        return (
            StatusCode::TEMPORARY_REDIRECT,
            [(
                "location",
                format!("http://{storage}/{repo}/{digest}?Signature=abc&Expires=9999999999"),
            )],
        )
            .into_response();
    }
    forward(&s.upstream, &path, uri.query(), &headers).await
}

async fn storage(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    s.storage_hits.lock().unwrap().push(headers);
    let mode = *s.storage.lock().unwrap();
    match mode {
        Storage::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Storage::Error => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "application/xml")],
            "<Error><Code>InternalError</Code><Message>storage failure</Message></Error>",
        )
            .into_response(),
        Storage::Healthy => {
            // /<repo...>/<digest>: fetch the blob from the registry itself.
            let path = uri.path().trim_start_matches('/');
            let (repo, digest) = path.rsplit_once('/').unwrap_or(("", path));
            forward(
                &s.upstream,
                &format!("/v2/{repo}/blobs/{digest}"),
                None,
                &HeaderMap::new(),
            )
            .await
        }
    }
}

async fn forward(upstream: &str, path: &str, query: Option<&str>, headers: &HeaderMap) -> Response {
    let url = match query {
        Some(q) => format!("{upstream}{path}?{q}"),
        None => format!("{upstream}{path}"),
    };
    let mut req = reqwest::Client::new().get(url);
    if let Some(a) = headers.get("accept") {
        req = req.header("accept", a.as_bytes());
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
    let body: Bytes = r.bytes().await.unwrap_or_default();
    (status, h, body).into_response()
}

/// Standard base64 (RFC 4648) with padding.
pub fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}
