//! `[[instance]]`: a regional registry instance and how to health-check it (docs/design.md#5-health-of-an-instance).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Default time allowed for the whole canary pull.
pub const DEFAULT_CANARY_TIMEOUT: Duration = Duration::from_secs(5);
/// Shortest default canary interval: a canary is heavier than `GET /v2/`.
pub const MIN_DEFAULT_CANARY_INTERVAL: Duration = Duration::from_secs(10);

/// Username and password of a canary.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct PullCredentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for PullCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Reads a credentials file: JSON `{"username": ..., "password": ...}`.
pub fn read_credentials_file(path: &std::path::Path) -> Result<PullCredentials, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let c: PullCredentials = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "{}: {e} (expected JSON {{\"username\": \"...\", \"password\": \"...\"}})",
            path.display()
        )
    })?;
    if c.username.is_empty() {
        return Err(format!("{}: empty username", path.display()));
    }
    Ok(c)
}

/// Default probe interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Default per-check timeout (connect, TLS and body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default consecutive successes to become up.
pub const DEFAULT_RISE: u32 = 2;
/// Default consecutive failures to become down.
pub const DEFAULT_FALL: u32 = 3;

/// One `[[instance]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// Unique id, referenced by `endpoint.targets`.
    pub id: String,
    /// What to GET, with the custom name (SNI and Host), e.g. `https://cross-region.registry.io/v2/`.
    pub url: String,
    /// Where to dial instead of the URL's host (`host:port`).
    #[serde(default)]
    pub connect: Option<String>,
    /// Probe interval.
    #[serde(default = "d_interval", deserialize_with = "super::duration::de")]
    pub interval: Duration,
    /// Per-check timeout.
    #[serde(default = "d_timeout", deserialize_with = "super::duration::de")]
    pub timeout: Duration,
    /// Consecutive successes to become up.
    #[serde(default = "d_rise")]
    pub rise: u32,
    /// Consecutive failures to become down.
    #[serde(default = "d_fall")]
    pub fall: u32,
    /// Probe spacing while counters move (default interval/4, at least 200 ms).
    #[serde(default, deserialize_with = "super::duration::de_opt")]
    pub fast_interval: Option<Duration>,
    /// Extra trusted CA certificates (PEM).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the certificate (lab use only).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Also probe the Bearer token realm.
    #[serde(default)]
    pub auth_check: bool,
    /// Further HTTP or TCP checks.
    #[serde(default)]
    pub extra: Vec<ExtraCheckConfig>,
    /// A 200 or 401 on `/v2/` must carry `Docker-Distribution-API-Version: registry/2.0`.
    #[serde(default = "d_true")]
    pub require_api_version: bool,
    /// A canary pull of a small image (docs/design.md#5-health-of-an-instance).
    #[serde(default)]
    pub canary: Option<CanaryConfig>,
    /// JSON `{"username": ..., "password": ...}` for the canary pull (never inline secrets).
    #[serde(default)]
    pub canary_credentials_file: Option<PathBuf>,
    /// Temporary pull credentials from the Container Registry API (ACR Enterprise Edition).
    #[serde(default)]
    pub canary_credentials: Option<AcrCredentialsConfig>,
}

/// `canary = { repository, reference, interval, timeout }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// Repository of the canary image, e.g. `ops/canary`.
    pub repository: String,
    /// Tag or digest of the canary image.
    pub reference: String,
    /// Time between canary pulls (default: the instance's interval, at least 10 s).
    #[serde(default, deserialize_with = "super::duration::de_opt")]
    pub interval: Option<Duration>,
    /// Time allowed for the whole pull (default 5 s).
    #[serde(default, deserialize_with = "super::duration::de_opt")]
    pub timeout: Option<Duration>,
}

/// `canary_credentials = { acr_instance, region }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcrCredentialsConfig {
    /// ACR Enterprise Edition instance id, `cri-…`.
    pub acr_instance: String,
    /// Region of the instance, e.g. `cn-hangzhou`.
    pub region: String,
    /// Container Registry API endpoint (default `https://cr.<region>.aliyuncs.com`).
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// One entry of `extra`: `{ name, url }` or `{ name, tcp = "host:port" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraCheckConfig {
    /// Name shown in status.
    pub name: String,
    /// HTTP(S) URL to GET.
    #[serde(default)]
    pub url: Option<String>,
    /// `host:port` to connect to.
    #[serde(default)]
    pub tcp: Option<String>,
}

fn d_true() -> bool {
    true
}
fn d_interval() -> Duration {
    DEFAULT_INTERVAL
}
fn d_timeout() -> Duration {
    DEFAULT_TIMEOUT
}
fn d_rise() -> u32 {
    DEFAULT_RISE
}
fn d_fall() -> u32 {
    DEFAULT_FALL
}
