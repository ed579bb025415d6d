//! `[alidns]` and `[rfc2136]`: settings of the public DNS publishers (docs/design.md#3-configuration, docs/design.md#8-publishers). Both
//! are optional (defaults apply) and hold no secret: Alidns uses the Alibaba Cloud
//! credential chain, RFC 2136 a `[[tsig_key]]` file.

use std::time::Duration;

use serde::Deserialize;

use super::privatezone::DEFAULT_DRIFT_INTERVAL;

/// Default Alidns API endpoint.
pub const DEFAULT_ALIDNS_ENDPOINT: &str = "https://alidns.aliyuncs.com";

/// `[alidns]` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AlidnsConfig {
    /// API endpoint (tests point it at a local fake).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Plan and log, never write.
    #[serde(default)]
    pub dry_run: bool,
    /// How often records are re-read and repaired (default 5 minutes).
    #[serde(default, deserialize_with = "super::duration::de_opt")]
    pub drift_interval: Option<Duration>,
    /// STS endpoint for RRSA (tests only).
    #[serde(default)]
    pub sts_endpoint: Option<String>,
    /// ECS metadata endpoint (tests only).
    #[serde(default)]
    pub metadata_endpoint: Option<String>,
}

impl AlidnsConfig {
    /// The drift-check interval in force.
    pub fn drift(&self) -> Duration {
        self.drift_interval.unwrap_or(DEFAULT_DRIFT_INTERVAL)
    }
}

/// `[rfc2136]` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Rfc2136Config {
    /// Plan and log, never send an UPDATE.
    #[serde(default)]
    pub dry_run: bool,
    /// How often records are re-read and repaired (default 5 minutes).
    #[serde(default, deserialize_with = "super::duration::de_opt")]
    pub drift_interval: Option<Duration>,
    /// Time allowed for one query or UPDATE exchange (default 5 s).
    #[serde(default, deserialize_with = "super::duration::de_opt")]
    pub timeout: Option<Duration>,
}

impl Rfc2136Config {
    /// The drift-check interval in force.
    pub fn drift(&self) -> Duration {
        self.drift_interval.unwrap_or(DEFAULT_DRIFT_INTERVAL)
    }
}
