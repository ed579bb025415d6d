//! `[[endpoint]]`: a name whose answer follows the failover decision, its targets per view
//! and its PrivateZone bindings.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::Deserialize;

/// Default TTL of endpoint answers.
pub const DEFAULT_ENDPOINT_TTL: u32 = 30;
/// Default time a recovered primary must stay up before automatic failback.
pub const DEFAULT_FAILBACK_HOLD: Duration = Duration::from_secs(120);

/// `failback = "auto" | "manual"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailbackMode {
    /// Return to a recovered higher-priority target after `failback_hold`.
    #[default]
    Auto,
    /// Stay until an operator confirms (`regdns failback`).
    Manual,
}

/// One `[[endpoint]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Fully qualified name inside one of the zones (may be the apex).
    pub name: String,
    /// TTL of the endpoint's answers.
    #[serde(default = "d_ttl")]
    pub ttl: u32,
    /// Failback policy.
    #[serde(default)]
    pub failback: FailbackMode,
    /// Hold before automatic failback.
    #[serde(default = "d_hold", deserialize_with = "super::duration::de")]
    pub failback_hold: Duration,
    /// A target whose canary digest differs from the primary's (the first target of the
    /// default view) for longer than this is not eligible (design §5).
    #[serde(default, deserialize_with = "super::duration::de_opt")]
    pub replication_max_lag: Option<Duration>,
    /// Targets per view in priority order; `default` is required.
    #[serde(default)]
    pub targets: BTreeMap<String, Vec<TargetConfig>>,
    /// PrivateZone records kept equal to a view's answer.
    #[serde(default)]
    pub privatezone: Vec<PrivateZoneBinding>,
}

/// One target: an instance and the answer that sends clients to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Instance id.
    pub instance: String,
    /// CNAME to the instance's public name (Internet path).
    #[serde(default)]
    pub cname: Option<String>,
    /// IPv4 addresses (VPC path).
    #[serde(default)]
    pub a: Option<Vec<Ipv4Addr>>,
    /// IPv6 addresses.
    #[serde(default)]
    pub aaaa: Option<Vec<Ipv6Addr>>,
}

/// `[[endpoint.privatezone]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateZoneBinding {
    /// View whose decision is pushed.
    pub view: String,
    /// PrivateZone zone id bound to that view's VPC.
    pub zone_id: String,
    /// Host record (`@` for the apex).
    #[serde(default = "d_rr")]
    pub rr: String,
}

fn d_ttl() -> u32 {
    DEFAULT_ENDPOINT_TTL
}
fn d_hold() -> Duration {
    DEFAULT_FAILBACK_HOLD
}
fn d_rr() -> String {
    "@".into()
}
