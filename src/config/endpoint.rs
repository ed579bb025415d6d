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
    /// default view) for longer than this is not eligible (docs/design.md#5-health-of-an-instance).
    #[serde(default, deserialize_with = "super::duration::de_opt")]
    pub replication_max_lag: Option<Duration>,
    /// Targets per view in priority order; `default` is required.
    #[serde(default)]
    pub targets: BTreeMap<String, Vec<TargetConfig>>,
    /// PrivateZone records kept equal to a view's answer.
    #[serde(default)]
    pub privatezone: Vec<PrivateZoneBinding>,
    /// Public DNS (and PrivateZone) records kept equal to a view's answer (docs/design.md#8-publishers).
    #[serde(default)]
    pub publish: Vec<PublishBinding>,
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
    /// "This name as the public DNS answers it" (no `cname`/`a`/`aaaa`): for names in zones
    /// the operator does not own (docs/passthrough.md).
    #[serde(default)]
    pub passthrough: bool,
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

/// `provider` of an `[[endpoint.publish]]` binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishProvider {
    /// Alibaba Cloud DNS (public zones): `domain`, optional `rr`.
    Alidns,
    /// RFC 2136 dynamic updates: `server`, `zone`, `tsig_key`, optional `transport`.
    Rfc2136,
    /// Alibaba Cloud PrivateZone: `zone_id`, optional `rr` (as `[[endpoint.privatezone]]`).
    Privatezone,
}

/// `transport` of an RFC 2136 binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UpdateTransport {
    /// UDP, retried over TCP when truncated.
    #[default]
    Udp,
    /// TCP only.
    Tcp,
}

/// `[[endpoint.publish]]`: one provider record kept equal to a view's answer. Which keys
/// apply depends on `provider`; the model rejects the others with the key path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishBinding {
    /// `alidns`, `rfc2136` or `privatezone`.
    pub provider: PublishProvider,
    /// View whose decision is pushed.
    pub view: String,
    /// alidns: the domain as registered in Alibaba Cloud DNS (`registry.io`).
    #[serde(default)]
    pub domain: Option<String>,
    /// alidns / privatezone: host record relative to the domain / zone (default: computed
    /// from the endpoint name for alidns, `@` for privatezone).
    #[serde(default)]
    pub rr: Option<String>,
    /// privatezone: the zone id.
    #[serde(default)]
    pub zone_id: Option<String>,
    /// rfc2136: the primary, `ADDR:PORT` (port 53 when omitted).
    #[serde(default)]
    pub server: Option<String>,
    /// rfc2136: the zone the primary serves (`example.net.`).
    #[serde(default)]
    pub zone: Option<String>,
    /// rfc2136: name of a `[[tsig_key]]` that signs the updates (`update-key.`).
    #[serde(default)]
    pub tsig_key: Option<String>,
    /// rfc2136: `udp` (TCP fallback when truncated; the default) or `tcp`.
    #[serde(default)]
    pub transport: Option<UpdateTransport>,
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
