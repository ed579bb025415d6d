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
    /// Further host names the checks contact (the token realm's, a blob redirect's) that
    /// are dialled to `connect` too; `["*"]`: every host name. Needs `connect`.
    #[serde(default)]
    pub connect_hosts: Vec<String>,
    /// The DNS server (`IP` or `IP:port`, port 53 by default) every name of the checks is
    /// resolved through, instead of the system resolver.
    #[serde(default)]
    pub resolver: Option<String>,
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

/// `canary = { repository, reference, interval, timeout, manifest, blob_every }`.
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
    /// How the manifest is checked: `get` (read it every run, the default) or `head`.
    #[serde(default)]
    pub manifest: CanaryManifest,
    /// Read a blob on the first run and every `blob_every`-th run after (default 1: every
    /// run; 0: never).
    #[serde(default)]
    pub blob_every: Option<u32>,
}

/// `canary.manifest`: how a canary checks the manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CanaryManifest {
    /// `GET` and parse it every run (a pull for Docker Hub's rate limit).
    #[default]
    Get,
    /// `HEAD` it (status, digest, media type); `GET` only when a blob is due and the
    /// digest changed.
    Head,
}

impl<'de> Deserialize<'de> for CanaryManifest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "get" => Ok(CanaryManifest::Get),
            "head" => Ok(CanaryManifest::Head),
            _ => Err(serde::de::Error::custom(format!(
                "{s:?} is not a way to check a manifest; write \"get\" (read it every run) or \"head\" (HEAD, a read only when a blob is due)"
            ))),
        }
    }
}

/// Default of `canary.blob_every`: a blob every run.
pub const DEFAULT_BLOB_EVERY: u32 = 1;

/// Port of a `resolver` written as a bare IP address.
pub const DEFAULT_RESOLVER_PORT: u16 = 53;

/// `resolver`: `223.5.5.5:53`, or `223.5.5.5` / `[fd00::53]` / `fd00::53` with port 53.
/// `None` for anything else (a name is refused: the resolver must not need a resolver) and
/// for port 0.
pub fn parse_resolver(s: &str) -> Option<std::net::SocketAddr> {
    let s = s.trim();
    if let Ok(a) = s.parse::<std::net::SocketAddr>() {
        return (a.port() != 0).then_some(a);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| std::net::SocketAddr::new(ip, DEFAULT_RESOLVER_PORT))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolver_addresses() {
        let p = |s: &str| parse_resolver(s).map(|a| a.to_string());
        assert_eq!(p("223.5.5.5:53").as_deref(), Some("223.5.5.5:53"));
        assert_eq!(p("223.5.5.5").as_deref(), Some("223.5.5.5:53"));
        assert_eq!(p("[fd00::53]:5353").as_deref(), Some("[fd00::53]:5353"));
        assert_eq!(p("fd00::53").as_deref(), Some("[fd00::53]:53"));
        assert_eq!(p("[fd00::53]").as_deref(), Some("[fd00::53]:53"));
        assert_eq!(p("dns.example:53"), None);
        assert_eq!(p("1.2.3.4:0"), None);
        assert_eq!(p(""), None);
    }
}
