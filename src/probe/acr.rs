//! Temporary pull credentials for a Container Registry Enterprise Edition instance
//! (`docs/providers/alibaba-cloud-api.md#9-container-registry-getauthorizationtoken`), so the canary pull needs no stored registry password.
//!
//! [`AcrLogin`] calls `GetAuthorizationToken` (API `2018-12-01`, host
//! `cr.<region>.aliyuncs.com`) with credentials from the same chain as PrivateZone
//! ([`crate::aliyun::credentials`]: environment, RRSA, credentials file, ECS RAM
//! role) and the same V3 signing ([`crate::aliyun::rpc`]); CR sends no `Lang`.
//! The answer (`TempUsername`, `AuthorizationToken`, `ExpireTime` in ms) becomes a
//! [`RegistryLogin`], cached per instance and fetched again when less than
//! min(15 minutes, half its lifetime) remains. Concurrent callers wait for one fetch.
//!
//! A 200 answer is only a login when `IsSuccess` is `true`, the token and user name are not
//! empty and `ExpireTime` lies in the future. The password never appears in logs, errors or
//! `Debug` output; logs carry `TempUsername`, `ExpireTime` and `RequestId` only.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;

use crate::aliyun::credentials::{
    ChainConfig, Clock, CredentialError, CredentialProvider, system_clock,
};
use crate::aliyun::rpc::{ErrorKind, RpcClient, RpcFailure};
use crate::aliyun::sign::format_acs_date;
use crate::config::env::Env;

/// `x-acs-version` of Container Registry.
pub const API_VERSION: &str = "2018-12-01";
/// The one action this module calls.
pub const ACTION: &str = "GetAuthorizationToken";
/// A login is fetched again when less than this (or half its lifetime, if smaller) remains.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(15 * 60);
/// A cached login this close to expiry is not handed out when a refresh fails.
const MIN_REMAINING_ON_FAILURE: Duration = Duration::from_secs(60);
const PRODUCT: &str = "Container Registry";

/// Which instance to log in to, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcrLoginConfig {
    /// Enterprise Edition instance id, `cri-…`.
    pub instance_id: String,
    /// Region of the instance, e.g. `cn-hangzhou`.
    pub region: String,
    /// `scheme://host[:port]`; default `https://cr.<region>.aliyuncs.com`. Tests use
    /// `http://127.0.0.1:PORT`.
    pub endpoint: Option<String>,
}

impl AcrLoginConfig {
    /// The endpoint called: the configured one, else `https://cr.<region>.aliyuncs.com`.
    pub fn endpoint(&self) -> String {
        match &self.endpoint {
            Some(e) => e.trim().to_string(),
            None => format!("https://cr.{}.aliyuncs.com", self.region),
        }
    }

    fn validate(&self) -> Result<(), AcrError> {
        let ok_chars = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        let id = &self.instance_id;
        if !id.starts_with("cri-") || id.len() == 4 || !ok_chars(id) {
            return Err(AcrError::Config(format!(
                "acr_instance {id:?} is not an Enterprise Edition instance id (cri-…, lower-case letters, digits and '-')"
            )));
        }
        if self.region.is_empty() || !ok_chars(&self.region) {
            return Err(AcrError::Config(format!(
                "region {:?} is not a region id like cn-hangzhou",
                self.region
            )));
        }
        Ok(())
    }
}

/// A temporary registry login: HTTP Basic `username:password` for the registry's token realm.
/// `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryLogin {
    /// `TempUsername`, as returned (it varies: never assume a constant).
    pub username: String,
    /// `AuthorizationToken`: the password. A secret; may contain `:`.
    pub password: String,
    /// `ExpireTime`: milliseconds since the Unix epoch.
    pub expires_ms: u64,
}

impl RegistryLogin {
    /// `expires_ms` as a time.
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.expires_ms)
    }
}

impl fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("expires", &format_acs_date(self.expires_at()))
            .finish()
    }
}

/// What the service answered, for error messages: `Code: Message (HTTP s, RequestId r)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceReply {
    /// The service's `Code`, or a local one (`Transport`, `Timeout`, `InvalidResponse`).
    pub code: String,
    /// The service's `Message`, or a local description.
    pub message: String,
    /// `RequestId`, when the service answered with one.
    pub request_id: Option<String>,
    /// HTTP status, when the service answered.
    pub http_status: Option<u16>,
    /// Calls made (1 = no retry).
    pub attempts: u32,
}

impl fmt::Display for ServiceReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        let mut extra = Vec::new();
        if let Some(s) = self.http_status {
            extra.push(format!("HTTP {s}"));
        }
        if let Some(r) = &self.request_id {
            extra.push(format!("RequestId {r}"));
        }
        if self.attempts > 1 {
            extra.push(format!("{} attempts", self.attempts));
        }
        if !extra.is_empty() {
            write!(f, " ({})", extra.join(", "))?;
        }
        Ok(())
    }
}

impl ServiceReply {
    fn from_failure(f: RpcFailure, attempts: u32) -> Box<Self> {
        Box::new(ServiceReply {
            code: f.code,
            message: f.message,
            request_id: f.request_id,
            http_status: f.http_status,
            attempts,
        })
    }
}

/// Why no login could be obtained. Never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcrError {
    /// The login configuration is unusable (instance id, region, endpoint).
    #[error("Container Registry login: {0}")]
    Config(String),
    /// The credential chain gave no usable credentials.
    #[error("Container Registry login for {instance}: {error}")]
    Credentials {
        /// The instance id.
        instance: String,
        /// What the chain reported.
        error: CredentialError,
    },
    /// The identity is not allowed to call `GetAuthorizationToken` (`Forbidden.RAM`,
    /// `NoPermission`, ...).
    #[error(
        "Container Registry denied {ACTION} for {instance}: {reply}; the RAM identity needs cr:GetAuthorizationToken (and pull permission on the canary repository)"
    )]
    Denied {
        /// The instance id.
        instance: String,
        /// What the service answered.
        reply: Box<ServiceReply>,
    },
    /// The credentials were rejected (unknown AccessKey, wrong secret, missing or bad STS
    /// token), also after one refresh.
    #[error(
        "Container Registry rejected the credentials for {instance}: {reply}; check the AccessKey id and secret (or STS token) provided by the credential source {source_name}"
    )]
    Auth {
        /// The instance id.
        instance: String,
        /// Credential source in use (e.g. `environment`, `rrsa`).
        source_name: String,
        /// What the service answered.
        reply: Box<ServiceReply>,
    },
    /// The request time or nonce was rejected twice.
    #[error(
        "Container Registry rejected the request time or nonce for {instance}: {reply}; check that the host clock is NTP-synchronised"
    )]
    Clock {
        /// The instance id.
        instance: String,
        /// What the service answered.
        reply: Box<ServiceReply>,
    },
    /// Flow control (`Throttling*`), after the retries. Retryable later.
    #[error("Container Registry throttled {ACTION} for {instance}: {reply}")]
    Throttled {
        /// The instance id.
        instance: String,
        /// What the service answered.
        reply: Box<ServiceReply>,
    },
    /// 5xx, timeout, connection failure or a non-JSON answer, after the retries. Retryable
    /// later.
    #[error("Container Registry unavailable for {instance}: {reply}")]
    Unavailable {
        /// The instance id.
        instance: String,
        /// What went wrong.
        reply: Box<ServiceReply>,
    },
    /// Any other error answer (unknown instance, wrong region, invalid parameter): a
    /// configuration error, not retried.
    #[error(
        "Container Registry rejected {ACTION} for {instance} at {endpoint}: {reply}; check acr_instance and region (an Enterprise Edition instance, called in its own region)"
    )]
    Rejected {
        /// The instance id.
        instance: String,
        /// The endpoint called.
        endpoint: String,
        /// What the service answered.
        reply: Box<ServiceReply>,
    },
    /// HTTP 200 but no usable login (`IsSuccess` not true, empty token or user name,
    /// `ExpireTime` missing or in the past).
    #[error(
        "Container Registry returned no usable login for {instance}: {reason} (RequestId {request_id})"
    )]
    InvalidLogin {
        /// The instance id.
        instance: String,
        /// What was wrong with the answer.
        reason: String,
        /// `RequestId` of the answer (`-` when absent).
        request_id: String,
    },
}

impl AcrError {
    /// Throttling and unavailability pass; calling again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            AcrError::Throttled { .. } | AcrError::Unavailable { .. }
        )
    }
}

/// True for codes that mean "authenticated but not allowed".
fn is_denied(code: &str) -> bool {
    code.starts_with("Forbidden") || code.starts_with("NoPermission")
}

/// The query parameters of `GetAuthorizationToken`: only `InstanceId` (no `Lang`, no
/// `RegionId`; `ExpiresInHours` is not sent because whether it is honoured is unverified).
pub fn request_params(instance_id: &str) -> Vec<(String, String)> {
    vec![("InstanceId".to_string(), instance_id.to_string())]
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TokenResponse {
    #[serde(default)]
    is_success: Option<bool>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    temp_username: Option<String>,
    #[serde(default)]
    authorization_token: Option<String>,
    #[serde(default)]
    expire_time: Option<Value>,
    #[serde(default)]
    request_id: Option<String>,
}

/// Checks a 200 answer (`docs/providers/alibaba-cloud-api.md#9-container-registry-getauthorizationtoken`) at time `now_ms`; the error is the reason and the
/// `RequestId`.
fn parse_login(v: &Value, now_ms: u64) -> Result<(RegistryLogin, String), (String, String)> {
    let r = TokenResponse::deserialize(v)
        .map_err(|e| (format!("unexpected response shape: {e}"), "-".to_string()))?;
    let rid = r.request_id.clone().unwrap_or_else(|| "-".into());
    let fail = |why: String| Err((why, rid.clone()));
    if r.is_success != Some(true) {
        return fail(format!(
            "IsSuccess is {} (Code {})",
            r.is_success
                .map_or("missing".to_string(), |b| b.to_string()),
            r.code.as_deref().unwrap_or("-")
        ));
    }
    let password = r.authorization_token.unwrap_or_default();
    if password.is_empty() {
        return fail("AuthorizationToken is empty".into());
    }
    let username = r.temp_username.unwrap_or_default();
    if username.is_empty() || username.contains(':') {
        return fail(format!(
            "TempUsername {username:?} is not usable as a Basic user name"
        ));
    }
    let expires_ms = match &r.expire_time {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    let Some(expires_ms) = expires_ms else {
        return fail(format!(
            "ExpireTime {} is not milliseconds since the epoch",
            r.expire_time.map_or("missing".into(), |v| v.to_string())
        ));
    };
    if expires_ms <= now_ms {
        return fail(format!(
            "ExpireTime {} is not in the future",
            format_acs_date(UNIX_EPOCH + Duration::from_millis(expires_ms))
        ));
    }
    Ok((
        RegistryLogin {
            username,
            password,
            expires_ms,
        },
        rid,
    ))
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Clone)]
struct Cached {
    login: RegistryLogin,
    /// When the fetch that produced it started (ms).
    obtained_ms: u64,
}

impl Cached {
    /// Less than min(15 minutes, half the lifetime) left.
    fn needs_refresh(&self, now_ms: u64) -> bool {
        let lifetime = self.login.expires_ms.saturating_sub(self.obtained_ms);
        let margin = (REFRESH_BEFORE_EXPIRY.as_millis() as u64).min(lifetime / 2);
        now_ms.saturating_add(margin) >= self.login.expires_ms
    }
}

/// The cached `GetAuthorizationToken` login of one instance. Share it (e.g. in an `Arc`);
/// [`login`](Self::login) takes `&self`.
pub struct AcrLogin {
    cfg: AcrLoginConfig,
    endpoint: String,
    rpc: RpcClient,
    creds: CredentialProvider,
    clock: Clock,
    max_attempts: u32,
    base_backoff: Duration,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

impl fmt::Debug for AcrLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcrLogin")
            .field("instance_id", &self.cfg.instance_id)
            .field("region", &self.cfg.region)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.creds.source_name())
            .finish_non_exhaustive()
    }
}

impl AcrLogin {
    /// Walks the default credential chain (as PrivateZone does) and builds the login.
    pub async fn from_chain(cfg: AcrLoginConfig, env: &Env) -> Result<AcrLogin, AcrError> {
        Self::from_chain_with(cfg, env, &ChainConfig::default()).await
    }

    /// [`from_chain`](Self::from_chain) with explicit STS / metadata endpoints and clock.
    pub async fn from_chain_with(
        cfg: AcrLoginConfig,
        env: &Env,
        chain: &ChainConfig,
    ) -> Result<AcrLogin, AcrError> {
        cfg.validate()?;
        let creds = CredentialProvider::from_chain(env, chain)
            .await
            .map_err(|error| AcrError::Credentials {
                instance: cfg.instance_id.clone(),
                error,
            })?;
        Self::with_provider(cfg, creds)
    }

    /// Uses `provider` (e.g. the one PrivateZone already holds, or fixed test credentials).
    pub fn with_provider(
        cfg: AcrLoginConfig,
        provider: CredentialProvider,
    ) -> Result<AcrLogin, AcrError> {
        cfg.validate()?;
        let endpoint = cfg.endpoint();
        let rpc = RpcClient::new(
            &endpoint,
            Duration::from_secs(5),
            Duration::from_secs(10),
            concat!("regdns/", env!("CARGO_PKG_VERSION")),
        )
        .map_err(AcrError::Config)?;
        Ok(AcrLogin {
            endpoint: rpc.endpoint().to_string(),
            cfg,
            rpc,
            creds: provider,
            clock: system_clock(),
            max_attempts: 4,
            base_backoff: Duration::from_millis(500),
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// Replaces the clock used for `x-acs-date` and for expiry decisions (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.rpc = self.rpc.with_clock(clock.clone());
        self.clock = clock;
        self
    }

    /// Calls per fetch (first included) on throttling / unavailability, and the backoff
    /// base (attempt n waits up to base·2ⁿ⁻¹, full jitter). Default 4 and 500 ms.
    pub fn with_retries(mut self, max_attempts: u32, base_backoff: Duration) -> Self {
        self.max_attempts = max_attempts.max(1);
        self.base_backoff = base_backoff;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &AcrLoginConfig {
        &self.cfg
    }

    /// A valid login: the cached one, or a new one when less than min(15 minutes, half its
    /// lifetime) remains. Concurrent callers wait for a single fetch. When a refresh fails
    /// while the cached login is still valid for more than a minute, that one is returned
    /// (and the failure logged).
    pub async fn login(&self) -> Result<RegistryLogin, AcrError> {
        let mut cached = self.cached.lock().await;
        let now_ms = millis((self.clock)());
        if let Some(c) = cached.as_ref()
            && !c.needs_refresh(now_ms)
        {
            return Ok(c.login.clone());
        }
        match self.fetch(now_ms).await {
            Ok(login) => {
                *cached = Some(Cached {
                    login: login.clone(),
                    obtained_ms: now_ms,
                });
                Ok(login)
            }
            Err(e) => match cached.as_ref() {
                Some(c)
                    if c.login.expires_ms
                        > now_ms + MIN_REMAINING_ON_FAILURE.as_millis() as u64 =>
                {
                    tracing::warn!(instance = %self.cfg.instance_id, error = %e, expire_time = %format_acs_date(c.login.expires_at()), "Container Registry login refresh failed; using the current login until it expires");
                    Ok(c.login.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// Drops the cached login, so the next [`login`](Self::login) fetches one (e.g. after the
    /// registry refused it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let cap = self
            .base_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(Duration::from_secs(20));
        if let Some(ra) = retry_after {
            return ra.min(Duration::from_secs(20));
        }
        let ms = cap.as_millis() as u64;
        if ms == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(rand::random_range(0..=ms))
    }

    /// One `GetAuthorizationToken` with retries: backoff on throttling and unavailability,
    /// one credential refresh on rejected credentials, one new date and nonce on a clock
    /// error.
    async fn fetch(&self, started_ms: u64) -> Result<RegistryLogin, AcrError> {
        let instance = &self.cfg.instance_id;
        let params = request_params(instance);
        let (mut attempt, mut refreshed, mut clock_retried) = (0u32, false, false);
        loop {
            attempt += 1;
            let creds = self
                .creds
                .get()
                .await
                .map_err(|error| AcrError::Credentials {
                    instance: instance.clone(),
                    error,
                })?;
            let f = match self
                .rpc
                .call(PRODUCT, &creds, ACTION, API_VERSION, &params)
                .await
            {
                Ok(v) => {
                    let now_ms = millis((self.clock)()).max(started_ms);
                    return match parse_login(&v, now_ms) {
                        Ok((login, rid)) => {
                            tracing::info!(instance = %instance, username = %login.username, expire_time = %format_acs_date(login.expires_at()), request_id = %rid, "Container Registry login obtained");
                            Ok(login)
                        }
                        Err((reason, request_id)) => {
                            tracing::warn!(instance = %instance, reason = %reason, request_id = %request_id, "Container Registry answered without a usable login");
                            Err(AcrError::InvalidLogin {
                                instance: instance.clone(),
                                reason,
                                request_id,
                            })
                        }
                    };
                }
                Err(f) => f,
            };
            let retry = attempt < self.max_attempts;
            match f.kind {
                ErrorKind::Throttled { retry_after } if retry => {
                    tokio::time::sleep(self.backoff(attempt, retry_after)).await;
                }
                ErrorKind::Transient | ErrorKind::Transport if retry => {
                    tokio::time::sleep(self.backoff(attempt, None)).await;
                }
                ErrorKind::Auth if !is_denied(&f.code) && !refreshed => {
                    refreshed = true;
                    tracing::warn!(instance = %instance, code = %f.code, source = self.creds.source_name(), "Container Registry rejected the credentials; refreshing them once");
                    if let Err(re) = self.creds.force_refresh().await {
                        let mut reply = ServiceReply::from_failure(f, attempt);
                        reply.message =
                            format!("{}; credential refresh also failed: {re}", reply.message);
                        return Err(self.auth_error(reply));
                    }
                }
                ErrorKind::Clock if !clock_retried => clock_retried = true,
                _ => return Err(self.classify(f, attempt)),
            }
        }
    }

    fn auth_error(&self, reply: Box<ServiceReply>) -> AcrError {
        AcrError::Auth {
            instance: self.cfg.instance_id.clone(),
            source_name: self.creds.source_name().to_string(),
            reply,
        }
    }

    fn classify(&self, f: RpcFailure, attempts: u32) -> AcrError {
        let instance = self.cfg.instance_id.clone();
        let kind = f.kind.clone();
        let denied = is_denied(&f.code);
        let reply = ServiceReply::from_failure(f, attempts);
        match kind {
            ErrorKind::Throttled { .. } => AcrError::Throttled { instance, reply },
            ErrorKind::Transient | ErrorKind::Transport => {
                AcrError::Unavailable { instance, reply }
            }
            ErrorKind::Auth if denied => AcrError::Denied { instance, reply },
            ErrorKind::Auth => self.auth_error(reply),
            ErrorKind::Clock => AcrError::Clock { instance, reply },
            ErrorKind::Config => AcrError::Rejected {
                instance,
                endpoint: self.endpoint.clone(),
                reply,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aliyun::sign::{SignInput, parse_acs_date, sha256_hex, sign_v3};
    use serde_json::json;

    const NOW_MS: u64 = 1_767_323_045_000;

    fn cfg() -> AcrLoginConfig {
        AcrLoginConfig {
            instance_id: "cri-test0001".into(),
            region: "cn-hangzhou".into(),
            endpoint: None,
        }
    }

    /// `docs/providers/alibaba-cloud-api.md#5-test-vectors`, vector CR-1: minimal signed headers, `docs/providers/alibaba-cloud-api.md#5-test-vectors` inputs.
    #[test]
    fn cr_1_signing_vector() {
        let params = request_params("cri-test0001");
        let s = sign_v3(&SignInput {
            method: "POST",
            path: "/",
            host: "cr.cn-hangzhou.aliyuncs.com",
            action: ACTION,
            version: API_VERSION,
            params: &params,
            body: b"",
            access_key_id: "testid",
            access_key_secret: "testsecret",
            security_token: None,
            date: parse_acs_date("2026-01-02T03:04:05Z").unwrap(),
            nonce: "6a1c4b7e2f3d4a5b9c8d7e6f5a4b3c2d",
            extra_headers: &[],
        });
        assert_eq!(s.query_string, "InstanceId=cri-test0001");
        assert_eq!(
            sha256_hex(s.canonical_request.as_bytes()),
            "9875370e3966fae8eb310243b9d2e1d0589c2c1cc8559323b48ce386d0ce30bb"
        );
        assert_eq!(
            s.authorization,
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=52113d59282110325f4dfb9af8204b13debbccb7a7797924cc7cfd7cbd56e88e"
        );
    }

    #[test]
    fn endpoint_and_validation() {
        assert_eq!(cfg().endpoint(), "https://cr.cn-hangzhou.aliyuncs.com");
        let local = AcrLoginConfig {
            endpoint: Some("http://127.0.0.1:8080".into()),
            ..cfg()
        };
        assert_eq!(local.endpoint(), "http://127.0.0.1:8080");
        assert!(cfg().validate().is_ok());
        for bad in ["", "cri-", "crp-abc", "cri-ABC", "cri-a b"] {
            let c = AcrLoginConfig {
                instance_id: bad.into(),
                ..cfg()
            };
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("not an Enterprise Edition instance id"), "{e}");
        }
        let c = AcrLoginConfig {
            region: "cn-hangzhou.evil.example/".into(),
            ..cfg()
        };
        assert!(c.validate().is_err());
    }

    fn ok_body(expire: Value) -> Value {
        json!({"RequestId": "RID-1", "IsSuccess": true, "Code": "success",
               "TempUsername": "temp_user_cr", "AuthorizationToken": "pa:ss", "ExpireTime": expire})
    }

    #[test]
    fn parses_the_documented_answer() {
        let (l, rid) = parse_login(&ok_body(json!(NOW_MS + 3_600_000)), NOW_MS).unwrap();
        assert_eq!(rid, "RID-1");
        assert_eq!(
            l,
            RegistryLogin {
                username: "temp_user_cr".into(),
                password: "pa:ss".into(),
                expires_ms: NOW_MS + 3_600_000
            }
        );
        // A numeric string is accepted too.
        let (l, _) = parse_login(&ok_body(json!("1767326645000")), NOW_MS).unwrap();
        assert_eq!(l.expires_ms, 1_767_326_645_000);
    }

    #[test]
    fn rejects_unusable_answers_even_on_200() {
        let reason = |v: Value| parse_login(&v, NOW_MS).unwrap_err().0;
        let future = json!(NOW_MS + 3_600_000);
        let mut v = ok_body(future.clone());
        v["IsSuccess"] = json!(false);
        v["Code"] = json!("INSTANCE_NOT_EXIST");
        assert_eq!(reason(v), "IsSuccess is false (Code INSTANCE_NOT_EXIST)");
        let mut v = ok_body(future.clone());
        v.as_object_mut().unwrap().remove("IsSuccess");
        assert!(reason(v).starts_with("IsSuccess is missing"));
        let mut v = ok_body(future.clone());
        v["AuthorizationToken"] = json!("");
        assert_eq!(reason(v), "AuthorizationToken is empty");
        let mut v = ok_body(future);
        v["TempUsername"] = json!("");
        assert!(reason(v).contains("TempUsername"));
        assert_eq!(
            reason(ok_body(json!(NOW_MS - 1000))),
            "ExpireTime 2026-01-02T03:04:04Z is not in the future"
        );
        assert!(reason(ok_body(json!(null))).contains("not milliseconds"));
    }

    #[test]
    fn refresh_margin_is_min_of_15_minutes_and_half_the_lifetime() {
        let c = |lifetime_ms: u64| Cached {
            login: RegistryLogin {
                username: "u".into(),
                password: "p".into(),
                expires_ms: NOW_MS + lifetime_ms,
            },
            obtained_ms: NOW_MS,
        };
        let hour = c(3_600_000);
        assert!(!hour.needs_refresh(NOW_MS + 45 * 60_000 - 1));
        assert!(hour.needs_refresh(NOW_MS + 45 * 60_000));
        let ten = c(600_000);
        assert!(!ten.needs_refresh(NOW_MS + 299_999));
        assert!(ten.needs_refresh(NOW_MS + 300_000));
    }

    #[test]
    fn debug_redacts_the_password() {
        let l = RegistryLogin {
            username: "temp_user_cr".into(),
            password: "s3cr3t-token".into(),
            expires_ms: NOW_MS,
        };
        let d = format!("{l:?}");
        assert!(!d.contains("s3cr3t"), "{d}");
        assert!(
            d.contains("temp_user_cr") && d.contains("<redacted>"),
            "{d}"
        );
    }

    #[test]
    fn denied_names_the_missing_action() {
        let e = AcrError::Denied {
            instance: "cri-test0001".into(),
            reply: Box::new(ServiceReply {
                code: "Forbidden.RAM".into(),
                message: "User not authorized to operate on the specified resource.".into(),
                request_id: Some("RID".into()),
                http_status: Some(403),
                attempts: 1,
            }),
        };
        assert_eq!(
            e.to_string(),
            "Container Registry denied GetAuthorizationToken for cri-test0001: Forbidden.RAM: User not authorized to operate on the specified resource. (HTTP 403, RequestId RID); the RAM identity needs cr:GetAuthorizationToken (and pull permission on the canary repository)"
        );
        assert!(!e.is_retryable());
        assert!(is_denied("Forbidden.RAM") && is_denied("NoPermission"));
        assert!(!is_denied("SignatureDoesNotMatch"));
    }
}
