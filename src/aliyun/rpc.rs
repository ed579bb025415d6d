//! One signed Alibaba Cloud RPC call, shared by every product client (PrivateZone, Container
//! Registry): `POST /?<canonical query>` with an empty body, signed with V3
//! ([`super::sign::sign_v3`]), answered with JSON (`docs/providers/alibaba-cloud-api.md#4-signing-acs3-hmac-sha256`,
//! `docs/providers/alibaba-cloud-api.md#1-rpc-style-and-endpoints`). Product differences (host, `x-acs-version`, a default `Lang`) are the caller's
//! business; this module adds no parameter of its own.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use super::credentials::{Clock, Credentials, system_clock};
use super::sign::{SignInput, new_nonce, sign_v3};

pub use crate::retry::ErrorKind;

/// Classifies a service error on its code (not the status); the `x-acs-retry-after`
/// header (milliseconds) makes any answer a throttling error.
pub fn classify(code: &str, http_status: Option<u16>, retry_after: Option<Duration>) -> ErrorKind {
    if retry_after.is_some() || code.starts_with("Throttling") {
        return ErrorKind::Throttled { retry_after };
    }
    const TRANSIENT: [&str; 4] = [
        "InternalError",
        "UnknownError",
        "ServiceUnavailable",
        "ServiceTimeout",
    ];
    const AUTH: [&str; 8] = [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidSecurityToken",
        "Forbidden",
        "NoPermission",
        "InvalidAccessKeySecret",
        "MissingSecurityToken",
    ];
    const CLOCK: [&str; 2] = ["InvalidTimeStamp", "SignatureNonceUsed"];
    let has = |list: &[&str]| {
        list.iter().any(|p| {
            code == *p
                || code
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    };
    if has(&TRANSIENT) {
        ErrorKind::Transient
    } else if has(&AUTH) {
        ErrorKind::Auth
    } else if has(&CLOCK) {
        ErrorKind::Clock
    } else if code.is_empty() && http_status.is_some_and(|s| s >= 500) {
        ErrorKind::Transient
    } else if http_status.is_some_and(|s| s >= 500) && !code.contains('.') {
        // An unknown gateway error on a 5xx.
        ErrorKind::Transient
    } else {
        ErrorKind::Config
    }
}

/// A failed call, before the product client adds its context. Never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcFailure {
    /// How the caller should handle it.
    pub kind: ErrorKind,
    /// The service's `Code`, `HTTP<status>` when it gave none, or a local code (`Transport`,
    /// `Timeout`, `InvalidResponse`).
    pub code: String,
    /// Message from the service, or a local description.
    pub message: String,
    /// `RequestId`, when the service answered with one.
    pub request_id: Option<String>,
    /// HTTP status, when the service answered.
    pub http_status: Option<u16>,
}

/// A product endpoint: one HTTP connection pool, the signed `host`, and the clock that dates
/// the requests.
#[derive(Clone)]
pub struct RpcClient {
    http: reqwest::Client,
    /// `scheme://host[:port]`, no trailing slash.
    base: String,
    /// `host[:port]` as connected to: the signed `host` header.
    host: String,
    clock: Clock,
}

impl fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcClient")
            .field("endpoint", &self.base)
            .finish_non_exhaustive()
    }
}

pub use crate::error_chain::error_chain;

/// Case-insensitive lookup of a string field in a JSON object.
pub fn field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

impl RpcClient {
    /// Builds the client (and its connection pool) for `endpoint`, which must be
    /// `scheme://host[:port]` (`https`, or `http` for a local fake). The error is a
    /// description of what is wrong with the endpoint.
    pub fn new(
        endpoint: &str,
        connect_timeout: Duration,
        timeout: Duration,
        user_agent: &str,
    ) -> Result<Self, String> {
        let url = reqwest::Url::parse(endpoint.trim())
            .map_err(|e| format!("endpoint {endpoint:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "endpoint {endpoint:?}: scheme must be https or http"
            ));
        }
        if url.path() != "/" || url.query().is_some() {
            return Err(format!(
                "endpoint {endpoint:?}: give only scheme://host[:port]"
            ));
        }
        let host_name = url
            .host_str()
            .ok_or_else(|| format!("endpoint {endpoint:?}: no host"))?;
        // Url::port() is None for the scheme's default port, like the Host header.
        let host = match url.port() {
            Some(p) => format!("{host_name}:{p}"),
            None => host_name.to_string(),
        };
        let base = format!("{}://{host}", url.scheme());
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .user_agent(user_agent)
            .build()
            .map_err(|e| format!("HTTP client: {}", error_chain(&e)))?;
        Ok(RpcClient {
            http,
            base,
            host,
            clock: system_clock(),
        })
    }

    /// Replaces the clock used for `x-acs-date` (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// `scheme://host[:port]`.
    pub fn endpoint(&self) -> &str {
        &self.base
    }

    /// `host[:port]`: the signed `host` header.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// One signed call of `action` (`x-acs-action`) at API `version` (`x-acs-version`) with
    /// exactly `params` in the query. Returns the JSON object of a 2xx answer; anything else
    /// is classified with [`classify`]. `product` only names the service in logs.
    pub async fn call(
        &self,
        product: &str,
        creds: &Credentials,
        action: &str,
        version: &str,
        params: &[(String, String)],
    ) -> Result<Value, RpcFailure> {
        let nonce = new_nonce();
        let signed = sign_v3(&SignInput {
            method: "POST",
            path: "/",
            host: &self.host,
            action,
            version,
            params,
            body: b"",
            access_key_id: &creds.access_key_id,
            access_key_secret: &creds.access_key_secret,
            security_token: creds.security_token.as_deref(),
            date: (self.clock)(),
            nonce: &nonce,
            extra_headers: &[("accept", "application/json")],
        });
        let url = if signed.query_string.is_empty() {
            format!("{}/", self.base)
        } else {
            format!("{}/?{}", self.base, signed.query_string)
        };
        let mut req = self.http.post(url);
        for (name, value) in &signed.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let err = |kind: ErrorKind, code: &str, message: String| RpcFailure {
            kind,
            code: code.into(),
            message,
            request_id: None,
            http_status: None,
        };
        let transport = |e: reqwest::Error| {
            let code = if e.is_timeout() {
                "Timeout"
            } else {
                "Transport"
            };
            let e = err(
                ErrorKind::Transport,
                code,
                format!("{}: {}", self.base, error_chain(&e)),
            );
            tracing::warn!(action, code = %e.code, error = %e.message, "{product} call failed");
            e
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("x-acs-retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        let body = resp.bytes().await.map_err(transport)?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let request_id = json
            .as_ref()
            .and_then(|j| field(j, "RequestId"))
            .map(str::to_string);
        if (200..300).contains(&status) && retry_after.is_none() {
            return match json {
                Some(j) if j.is_object() => Ok(j),
                _ => Err(RpcFailure {
                    http_status: Some(status),
                    ..err(
                        ErrorKind::Transient,
                        "InvalidResponse",
                        format!("HTTP {status} with a body that is not JSON"),
                    )
                }),
            };
        }
        let code = json
            .as_ref()
            .and_then(|j| field(j, "Code"))
            .unwrap_or("")
            .to_string();
        let message = json
            .as_ref()
            .and_then(|j| field(j, "Message"))
            .map(str::to_string)
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(&body);
                let text: String = text.chars().take(200).collect();
                if text.trim().is_empty() {
                    format!("HTTP {status} without a body")
                } else {
                    format!("HTTP {status}: {text}")
                }
            });
        let e = RpcFailure {
            kind: classify(&code, Some(status), retry_after),
            code: if code.is_empty() {
                format!("HTTP{status}")
            } else {
                code
            },
            message,
            request_id,
            http_status: Some(status),
        };
        tracing::warn!(
            action,
            code = %e.code,
            http_status = status,
            request_id = e.request_id.as_deref().unwrap_or("-"),
            message = %e.message,
            "{product} call failed"
        );
        Err(e)
    }
}
