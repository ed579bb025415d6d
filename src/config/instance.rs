//! `[[instance]]`: a regional registry instance and how to health-check it (design §5).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

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
