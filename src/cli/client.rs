//! A small typed client for the admin API, built once per command. It speaks only the API's
//! request and response types ([`crate::admin`], [`crate::control`]) and never touches
//! daemon internals.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::admin::{
    ErrorBody, Events, FailbackDone, FailbackRequest, OverrideRequest, Released, Reloaded,
};
use crate::control::Status;
use crate::decide::Override;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon could not be reached (refused, timed out, not HTTP).
    #[error(
        "cannot reach regdns at {url}: {cause} (is `regdns serve` running? check server.admin / --admin)"
    )]
    Unreachable {
        /// What was called.
        url: String,
        /// Cause chain.
        cause: String,
    },
    /// The API answered with an error.
    #[error("{} ({status})", body.message)]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The API's error body.
        body: ErrorBody,
    },
    /// The answer was not what this CLI expects (version mismatch?).
    #[error("unexpected answer from {url} ({status}): {detail}")]
    Decode {
        /// What was called.
        url: String,
        /// HTTP status.
        status: StatusCode,
        /// The decode error, with its serde cause.
        detail: String,
    },
}

/// Admin API client.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl Client {
    /// A client for the API at `base` (e.g. `http://127.0.0.1:8053`).
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> Result<Client, String> {
        let mut base = Url::parse(base).map_err(|e| {
            format!("--admin {base:?} is not a URL ({e}); write e.g. http://127.0.0.1:8053")
        })?;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .user_agent(concat!("regdns-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", cause_chain(&e)))?;
        Ok(Client { http, base, token })
    }

    fn url(&self, path: &str) -> Result<Url, ClientError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ClientError::Unreachable {
                url: format!("{}{path}", self.base),
                cause: e.to_string(),
            })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&(dyn erased::Body + Sync)>,
    ) -> Result<T, ClientError> {
        let url = self.url(path)?;
        let mut req = self.http.request(method, url.clone());
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_json());
        }
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: url.to_string(),
            cause: cause_chain(&e),
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| ClientError::Unreachable {
            url: url.to_string(),
            cause: cause_chain(&e),
        })?;
        if !status.is_success() {
            let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| ErrorBody {
                error: "http".into(),
                message: String::from_utf8_lossy(&bytes).trim().to_string(),
            });
            return Err(ClientError::Api { status, body });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url: url.to_string(),
            status,
            detail: format!("{e:?}"),
        })
    }

    /// `GET /status`.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.call(Method::GET, "status", &[], None).await
    }

    /// `GET /events?since=`.
    pub async fn events(&self, since: &str) -> Result<Events, ClientError> {
        self.call(Method::GET, "events", &[("since", since)], None)
            .await
    }

    /// `POST /overrides`.
    pub async fn add_override(&self, r: &OverrideRequest) -> Result<Override, ClientError> {
        self.call(Method::POST, "overrides", &[], Some(r)).await
    }

    /// `DELETE /overrides/{id}`, or `DELETE /overrides` when `id` is None.
    pub async fn release(
        &self,
        id: Option<&str>,
        actor: &str,
        reason: &str,
    ) -> Result<Released, ClientError> {
        let path = match id {
            Some(id) => format!("overrides/{}", urlencode(id)),
            None => "overrides".to_string(),
        };
        self.call(
            Method::DELETE,
            &path,
            &[("actor", actor), ("reason", reason)],
            None,
        )
        .await
    }

    /// `POST /failback`.
    pub async fn failback(&self, r: &FailbackRequest) -> Result<FailbackDone, ClientError> {
        self.call(Method::POST, "failback", &[], Some(r)).await
    }

    /// `POST /reload`.
    pub async fn reload(&self) -> Result<Reloaded, ClientError> {
        self.call(Method::POST, "reload", &[], None).await
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Object-safe "serialize to JSON" for request bodies.
mod erased {
    pub(super) trait Body {
        fn to_json(&self) -> Vec<u8>;
    }
    impl<T: super::Serialize> Body for T {
        fn to_json(&self) -> Vec<u8> {
            // Serializing plain structs of strings cannot fail.
            serde_json::to_vec(self).unwrap_or_default()
        }
    }
}
