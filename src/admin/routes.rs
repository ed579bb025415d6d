//! Handlers of the admin API and the JSON shapes it reads and writes (the CLI uses the same
//! types). Handlers translate requests into [`crate::control`] commands and nothing else:
//! validation of names (endpoints, views, instances) is the controller's.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::AdminState;
use super::error::ApiError;
use crate::clock::now_ms;
use crate::control::{NewOverride, Release, Status};
use crate::decide::{Event, FailbackConfirmation, Override, OverrideKind, UnixMillis};
use crate::state::journal::{self, Entry};

//------------ Request and response bodies --------------------------------------------------

/// Kind of a new override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideType {
    /// Serve one instance for an endpoint.
    Force,
    /// Avoid one instance everywhere unless nothing else is up.
    Drain,
}

/// Body of `POST /overrides`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideRequest {
    /// `force` or `drain`.
    #[serde(rename = "type")]
    pub kind: OverrideType,
    /// Endpoint (force only); the trailing dot is optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// View (force only); every view when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// Instance to serve (force) or to drain.
    pub instance: String,
    /// Lifetime, e.g. `30m`; exclusive with `expires`.
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// End time, RFC 3339 (`2025-01-02T03:04:05Z`); exclusive with `for`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Why (required, journaled).
    #[serde(default)]
    pub reason: String,
    /// Who (required, journaled).
    #[serde(default)]
    pub actor: String,
}

/// Body of `POST /failback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailbackRequest {
    /// Endpoint; the trailing dot is optional.
    pub endpoint: String,
    /// View; every view with a pending failback when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// Who.
    #[serde(default)]
    pub actor: String,
}

/// Query of `DELETE /overrides[/{id}]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseQuery {
    /// Who (required).
    #[serde(default)]
    pub actor: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// Answer of `DELETE /overrides[/{id}]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    /// The overrides that were removed.
    pub released: Vec<Override>,
}

/// Answer of `POST /failback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailbackDone {
    /// The switches it caused.
    pub events: Vec<Event>,
}

/// Answer of `POST /reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reloaded {
    /// What was loaded.
    pub message: String,
}

/// Query of `GET /events`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsQuery {
    /// `1h` (ago), an RFC 3339 time, or milliseconds since the epoch; default 1h.
    #[serde(default)]
    pub since: Option<String>,
    /// At most this many (the newest); default 1000.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Answer of `GET /events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Events {
    /// The start of the window (ms since epoch).
    pub since_ms: UnixMillis,
    /// Journal entries, oldest first (newest last).
    pub events: Vec<Entry>,
}

/// Default window of `GET /events`.
pub const DEFAULT_EVENTS_SINCE: &str = "1h";
/// Default and largest number of entries `GET /events` returns.
pub const DEFAULT_EVENTS_LIMIT: usize = 1000;

//------------ Parsing helpers --------------------------------------------------------------

/// A JSON body, read whatever its Content-Type, with errors in the API's format.
pub(super) struct JsonBody<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(format!(
                    "request body larger than {} bytes",
                    super::BODY_LIMIT
                ))
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {}", r.body_text()))
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::BadRequest(
                "a JSON body is required (Content-Type: application/json)".into(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|r| ApiError::BadRequest(format!("invalid query string: {}", r.body_text())))
}

/// `cross-region.registry.io` → `cross-region.registry.io.`.
pub fn fqdn(name: &str) -> String {
    let n = name.trim();
    if n.ends_with('.') {
        n.to_string()
    } else {
        format!("{n}.")
    }
}

fn parse_rfc3339(s: &str) -> Option<UnixMillis> {
    let t = humantime::parse_rfc3339_weak(s.trim()).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as u64)
}

/// When an override ends: `for` (a duration from `now`) or `expires` (RFC 3339), or never.
pub fn parse_expiry(
    duration: Option<&str>,
    expires: Option<&str>,
    now: UnixMillis,
) -> Result<Option<UnixMillis>, ApiError> {
    match (duration, expires) {
        (Some(_), Some(_)) => Err(ApiError::Invalid(
            "give either \"for\" (a duration like 30m) or \"expires\" (an RFC 3339 time), not both"
                .into(),
        )),
        (Some(d), None) => {
            let d = humantime::parse_duration(d.trim()).map_err(|e| {
                ApiError::Invalid(format!(
                    "\"for\": {d:?} is not a duration ({e}); write e.g. 30m, 2h or 1h30m"
                ))
            })?;
            if d.is_zero() {
                return Err(ApiError::Invalid(
                    "\"for\" must be longer than 0s; omit it for an override without expiry".into(),
                ));
            }
            Ok(Some(now.saturating_add(d.as_millis() as u64)))
        }
        (None, Some(t)) => parse_rfc3339(t).map(Some).ok_or_else(|| {
            ApiError::Invalid(format!(
                "\"expires\": {t:?} is not an RFC 3339 time; write e.g. 2025-01-02T03:04:05Z"
            ))
        }),
        (None, None) => Ok(None),
    }
}

/// Start of an events window: `1h` (ago), an RFC 3339 time, or ms since the epoch.
pub fn parse_since(s: &str, now: UnixMillis) -> Result<UnixMillis, ApiError> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now.saturating_sub(d.as_millis() as u64));
    }
    parse_rfc3339(s).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "since={s:?}: give a duration ago (1h, 30m), an RFC 3339 time (2025-01-02T03:04:05Z) or milliseconds since the epoch"
        ))
    })
}

impl OverrideRequest {
    /// The controller command this request asks for.
    pub fn to_new_override(&self, now: UnixMillis) -> Result<NewOverride, ApiError> {
        let expires = parse_expiry(self.duration.as_deref(), self.expires.as_deref(), now)?;
        let instance = self.instance.trim().to_string();
        if instance.is_empty() {
            return Err(ApiError::Invalid("\"instance\" must not be empty".into()));
        }
        let kind = match self.kind {
            OverrideType::Force => {
                let Some(endpoint) = self.endpoint.as_deref().filter(|e| !e.trim().is_empty())
                else {
                    return Err(ApiError::Invalid(
                        "\"endpoint\" is required for a force override".into(),
                    ));
                };
                OverrideKind::Force {
                    endpoint: fqdn(endpoint),
                    view: self.view.clone(),
                    instance,
                }
            }
            OverrideType::Drain => {
                if self.endpoint.is_some() || self.view.is_some() {
                    return Err(ApiError::Invalid(
                        "a drain applies to an instance everywhere: remove \"endpoint\" and \"view\""
                            .into(),
                    ));
                }
                OverrideKind::Drain { instance }
            }
        };
        Ok(NewOverride {
            kind,
            reason: self.reason.trim().to_string(),
            actor: self.actor.trim().to_string(),
            expires,
        })
    }
}

//------------ Handlers ---------------------------------------------------------------------

pub(super) async fn status(State(s): State<AdminState>) -> Result<Json<Status>, ApiError> {
    Ok(Json(s.control.status().await?))
}

pub(super) async fn history(State(s): State<AdminState>) -> Json<super::history::HistoryBody> {
    Json(s.history.body(now_ms()))
}

pub(super) async fn events(
    State(s): State<AdminState>,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Events>, ApiError> {
    let q = query(q)?;
    let since_ms = parse_since(q.since.as_deref().unwrap_or(DEFAULT_EVENTS_SINCE), now_ms())?;
    let limit = q
        .limit
        .unwrap_or(DEFAULT_EVENTS_LIMIT)
        .clamp(1, DEFAULT_EVENTS_LIMIT);
    let events = read_events(&s, since_ms, limit).await?;
    Ok(Json(Events { since_ms, events }))
}

/// The newest `limit` journal entries since `since_ms`, oldest first: with `[cluster]` from the
/// shared journal in etcd (this node's when etcd does not answer), else this node's. What
/// `GET /events` answers and the status page shows.
pub(super) async fn read_events(
    s: &AdminState,
    since_ms: UnixMillis,
    limit: usize,
) -> Result<Vec<Entry>, ApiError> {
    if let Some((client, keys)) = &s.cluster_events {
        let start = keys.event(since_ms, "", 0);
        let end = crate::cluster::etcd::prefix_end(&keys.events());
        match client.range(&start, &end, limit as i64, true).await {
            Ok(kvs) => {
                return Ok(kvs
                    .iter()
                    .filter_map(|kv| serde_json::from_slice::<journal::Entry>(&kv.value).ok())
                    .collect());
            }
            Err(e) => {
                tracing::warn!(error = %e, "shared journal unreadable: answering from this node's journal");
            }
        }
    }
    let dir = s.state_dir.clone();
    let mut events = tokio::task::spawn_blocking(move || {
        journal::read_since(&dir, since_ms, journal::DEFAULT_KEEP)
    })
    .await
    .map_err(|_| ApiError::Control(crate::control::ControlError::Unavailable))?;
    if events.len() > limit {
        events.drain(..events.len() - limit);
    }
    Ok(events)
}

pub(super) async fn add_override(
    State(s): State<AdminState>,
    JsonBody(req): JsonBody<OverrideRequest>,
) -> Result<(StatusCode, Json<Override>), ApiError> {
    let new = req.to_new_override(now_ms())?;
    let o = s.control.add_override(new).await?;
    Ok((StatusCode::CREATED, Json(o)))
}

fn release_args(q: ReleaseQuery) -> Result<ReleaseQuery, ApiError> {
    if q.actor.trim().is_empty() {
        return Err(ApiError::Invalid(
            "?actor= is required (who releases; it is journaled)".into(),
        ));
    }
    Ok(q)
}

pub(super) async fn release_one(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    q: Result<Query<ReleaseQuery>, QueryRejection>,
) -> Result<Json<Released>, ApiError> {
    let q = release_args(query(q)?)?;
    let released = s
        .control
        .release(Release {
            id: Some(id),
            actor: q.actor,
            reason: q.reason,
        })
        .await?;
    Ok(Json(Released { released }))
}

pub(super) async fn release_all(
    State(s): State<AdminState>,
    q: Result<Query<ReleaseQuery>, QueryRejection>,
) -> Result<Json<Released>, ApiError> {
    let q = release_args(query(q)?)?;
    let released = s
        .control
        .release(Release {
            id: None,
            actor: q.actor,
            reason: q.reason,
        })
        .await?;
    Ok(Json(Released { released }))
}

pub(super) async fn failback(
    State(s): State<AdminState>,
    JsonBody(req): JsonBody<FailbackRequest>,
) -> Result<Json<FailbackDone>, ApiError> {
    let events = s
        .control
        .failback(FailbackConfirmation {
            endpoint: fqdn(&req.endpoint),
            view: req.view,
            actor: req.actor.trim().to_string(),
            reason: req.reason.trim().to_string(),
        })
        .await?;
    Ok(Json(FailbackDone { events }))
}

pub(super) async fn reload(State(s): State<AdminState>) -> Result<Json<Reloaded>, ApiError> {
    let message = s.control.reload().await?;
    Ok(Json(Reloaded { message }))
}

pub(super) async fn metrics(State(s): State<AdminState>) -> Response {
    // A stopping controller still lets the counters be scraped.
    let status = s.control.status().await.ok();
    let body = crate::metrics::render(status.as_ref());
    ([(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
}

pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

pub(super) async fn readyz(State(s): State<AdminState>) -> Result<&'static str, ApiError> {
    if s.is_ready() {
        Ok("ready\n")
    } else {
        Err(ApiError::NotReady(
            "not ready: the first snapshot is not published or the DNS sockets are not bound (or regdns is stopping)".into(),
        ))
    }
}

pub(super) async fn no_route(req: Request) -> ApiError {
    ApiError::NoRoute(format!(
        "no such endpoint: {} {} (see GET /, /status, /status/history, /status/fragments, /events, /metrics, /healthz, /readyz, /api/openapi.json; POST /overrides, /failback, /reload; DELETE /overrides[/ID])",
        req.method(),
        req.uri().path()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn since_accepts_durations_times_and_millis() {
        assert_eq!(parse_since("1h", NOW).unwrap(), NOW - 3_600_000);
        assert_eq!(parse_since("1234", NOW).unwrap(), 1234);
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z", NOW).unwrap(),
            1_700_000_000_000
        );
        let e = parse_since("yesterday", NOW).unwrap_err().to_string();
        assert!(e.contains("give a duration ago"), "{e}");
    }

    #[test]
    fn expiry_rules() {
        assert_eq!(parse_expiry(None, None, NOW).unwrap(), None);
        assert_eq!(
            parse_expiry(Some("30m"), None, NOW).unwrap(),
            Some(NOW + 1_800_000)
        );
        assert!(parse_expiry(Some("30m"), Some("2023-11-14T22:13:20Z"), NOW).is_err());
        let e = parse_expiry(Some("soon"), None, NOW)
            .unwrap_err()
            .to_string();
        assert!(e.contains("write e.g. 30m"), "{e}");
        assert!(parse_expiry(Some("0s"), None, NOW).is_err());
        let e = parse_expiry(None, Some("tomorrow"), NOW)
            .unwrap_err()
            .to_string();
        assert!(e.contains("RFC 3339"), "{e}");
    }

    #[test]
    fn override_requests_become_commands() {
        let r: OverrideRequest = serde_json::from_str(
            r#"{"type":"force","endpoint":"a.example","instance":"hz","for":"1m","reason":"r","actor":"me"}"#,
        )
        .unwrap();
        let n = r.to_new_override(NOW).unwrap();
        assert_eq!(
            n.kind,
            OverrideKind::Force {
                endpoint: "a.example.".into(),
                view: None,
                instance: "hz".into()
            }
        );
        assert_eq!(n.expires, Some(NOW + 60_000));
        let r: OverrideRequest =
            serde_json::from_str(r#"{"type":"force","instance":"hz","reason":"r","actor":"me"}"#)
                .unwrap();
        assert!(r.to_new_override(NOW).is_err());
        let bad = serde_json::from_str::<OverrideRequest>(
            r#"{"type":"force","instance":"hz","colour":"red"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("unknown field `colour`"), "{bad}");
    }
}
