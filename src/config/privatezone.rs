//! `[privatezone]`: the Alibaba Cloud PrivateZone publisher (docs/design.md#8-publishers). Holds no secret:
//! credentials come from the standard Alibaba Cloud chain.

use std::time::Duration;

use serde::Deserialize;

/// Default PrivateZone API endpoint.
pub const DEFAULT_PVTZ_ENDPOINT: &str = "https://pvtz.aliyuncs.com";
/// Default drift-check interval.
pub const DEFAULT_DRIFT_INTERVAL: Duration = Duration::from_secs(300);

/// `[privatezone]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateZoneConfig {
    /// Region id, e.g. `cn-hangzhou`.
    pub region: String,
    /// API endpoint (tests point it at a local fake).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Plan and log, never write.
    #[serde(default)]
    pub dry_run: bool,
    /// How often records are re-read and repaired.
    #[serde(default = "d_drift", deserialize_with = "super::duration::de")]
    pub drift_interval: Duration,
    /// STS endpoint for RRSA (tests only).
    #[serde(default)]
    pub sts_endpoint: Option<String>,
    /// ECS metadata endpoint (tests only).
    #[serde(default)]
    pub metadata_endpoint: Option<String>,
}

fn d_drift() -> Duration {
    DEFAULT_DRIFT_INTERVAL
}
