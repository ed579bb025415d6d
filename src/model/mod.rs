//! The resolved world: zones, views, instances, endpoints and their targets, built from a
//! [`crate::config::LoadedConfig`] and the zone files. Immutable once built; a reload builds a new one.
//! All cross-references are checked here, and every error names the key path.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use hickory_proto::rr::Name;

pub use crate::config::ZoneKind;
use crate::config::{
    self, AlidnsConfig, ConfigError, FailbackMode, InstanceConfig, PrivateZoneBinding,
    PrivateZoneConfig, Rfc2136Config, ServerConfig,
};
use crate::zone::{ZoneError, ZoneRecord};

mod build;
mod checks;
mod endpoint;
mod publish;
mod rpz;

pub use build::build;
pub use checks::canary_interval;
pub use publish::relative_rr;

/// Name of the implicit view that answers every client no other view matches.
pub const DEFAULT_VIEW: &str = "default";

/// TTLs PrivateZone accepts for a record.
pub const PRIVATEZONE_TTLS: &[u32] = &[5, 30, 60, 3600, 43200, 86400];

/// Anything that stops a configuration from becoming a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The config file itself.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A zone file.
    #[error(transparent)]
    Zone(#[from] ZoneError),
    /// A TSIG key file.
    #[error(transparent)]
    KeyFile(#[from] crate::tsig::KeyFileError),
    /// A cross-reference or value check failed.
    #[error("{file}: {key}: {msg}")]
    Invalid {
        /// Config file.
        file: String,
        /// Key path.
        key: String,
        /// What is wrong and what would be valid.
        msg: String,
    },
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Model {
    /// `[server]` as configured.
    pub server: ServerConfig,
    /// Authoritative zones.
    pub zones: Vec<Zone>,
    /// Views in match order; the last one is always [`DEFAULT_VIEW`].
    pub views: Vec<View>,
    /// Registry instances.
    pub instances: Vec<InstanceConfig>,
    /// Failover endpoints.
    pub endpoints: Vec<Endpoint>,
    /// PrivateZone publisher settings.
    pub privatezone: Option<PrivateZoneConfig>,
    /// `[cluster]` with paths resolved, when the node shares state in etcd.
    pub cluster: Option<crate::config::ClusterConfig>,
    /// `[agent]`, read by `regdns agent` only.
    pub agent: Option<crate::config::AgentConfig>,
    /// The config file this came from.
    pub config_path: PathBuf,
    /// TSIG keys of `[[tsig_key]]`, each with the view its transfers carry.
    pub tsig_keys: Vec<TransferKey>,
    /// TSIG keys of `[[tsig_key]]` without a view: they sign RFC 2136 updates only.
    pub update_keys: Vec<crate::tsig::Key>,
    /// Alidns publisher settings (defaults when the section is absent).
    pub alidns: Option<AlidnsConfig>,
    /// RFC 2136 publisher settings (defaults when the section is absent).
    pub rfc2136: Option<Rfc2136Config>,
}

/// A binding that pushes an endpoint's decision into records kept elsewhere
/// (`[[endpoint.publish]]`, and `[[endpoint.privatezone]]` as its older spelling), resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishTarget {
    /// Alibaba Cloud PrivateZone (a VPC's zone).
    PrivateZone {
        /// View whose decision is pushed.
        view: String,
        /// PrivateZone zone id bound to that view's VPC.
        zone_id: String,
        /// Host record relative to the zone (`@` for the apex).
        rr: String,
    },
    /// Alibaba Cloud DNS.
    Alidns {
        /// View whose decision is pushed.
        view: String,
        /// Domain as registered (lower case, no trailing dot).
        domain: String,
        /// Host record relative to the domain (`@` for the apex).
        rr: String,
    },
    /// RFC 2136 dynamic updates to a primary.
    Rfc2136 {
        /// View whose decision is pushed.
        view: String,
        /// The primary.
        server: std::net::SocketAddr,
        /// The zone (lower case, fully qualified).
        zone: Name,
        /// Host record relative to the zone (`@` for the apex).
        rr: String,
        /// The key that signs the updates.
        key: Box<crate::tsig::Key>,
        /// TCP only (else UDP with TCP fallback).
        tcp: bool,
    },
}

/// A TSIG key and the view a secondary signing with it transfers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferKey {
    /// The key.
    pub key: crate::tsig::Key,
    /// Index into [`Model::views`].
    pub view: usize,
}

/// One authoritative zone.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Apex (lower case, fully qualified).
    pub origin: Name,
    /// Zone file.
    pub file: PathBuf,
    /// Records of the file.
    pub records: Vec<ZoneRecord>,
    /// Transfer ACL as written: CIDRs, addresses and `key:NAME.`.
    pub allow_transfer: Vec<String>,
    /// NOTIFY targets.
    pub secondaries: Vec<Secondary>,
    /// `zone`, or `rpz`: a response policy zone, answered only to its transfer clients.
    pub kind: ZoneKind,
}

impl Zone {
    /// True for a response policy zone (`kind = "rpz"`).
    pub fn is_rpz(&self) -> bool {
        self.kind == ZoneKind::Rpz
    }
}

/// A secondary of a zone: where NOTIFY goes, and the key that signs it and selects the
/// view whose serial it follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secondary {
    /// Address and port.
    pub addr: std::net::SocketAddr,
    /// TSIG key name (lower case).
    pub key: Option<Name>,
}

/// A client network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// Name.
    pub name: String,
    /// Source networks.
    pub clients: Vec<ipnet::IpNet>,
    /// Resolvers whose ECS option is trusted.
    pub ecs_from: Vec<ipnet::IpNet>,
    /// What judges a target's health in this view.
    pub probe: crate::config::ViewProbe,
    /// How this view's observers combine (None: the cluster's `health_quorum`).
    pub health_quorum: Option<crate::config::HealthQuorum>,
}

/// A failover endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Owner name (lower case, fully qualified).
    pub name: Name,
    /// Index into [`Model::zones`]; None for an endpoint that is published only (its name
    /// is in no `[[zone]]`: PrivateZone and public DNS bindings, no DNS answers).
    pub zone: Option<usize>,
    /// TTL of its answers.
    pub ttl: u32,
    /// Failback policy.
    pub failback: FailbackMode,
    /// Hold before automatic failback.
    pub failback_hold: std::time::Duration,
    /// Targets per view, indexed like [`Model::views`], in priority order.
    pub targets: Vec<Vec<Target>>,
    /// Publish bindings of every provider: `[[endpoint.privatezone]]` first, then
    /// `[[endpoint.publish]]` in the order written.
    pub publish: Vec<PublishTarget>,
    /// Longest time a target's canary digest may differ from the primary's.
    pub replication_max_lag: Option<std::time::Duration>,
}

impl PublishTarget {
    /// The view whose decision the binding pushes.
    pub fn view(&self) -> &str {
        match self {
            PublishTarget::PrivateZone { view, .. }
            | PublishTarget::Alidns { view, .. }
            | PublishTarget::Rfc2136 { view, .. } => view,
        }
    }
}

impl Endpoint {
    /// True when the endpoint is its zone's apex (a CNAME answer is then flattened).
    pub fn is_apex(&self, model: &Model) -> bool {
        self.zone
            .is_some_and(|z| self.name == model.zones[z].origin)
    }

    /// True when the endpoint is in a response policy zone (a QNAME trigger).
    pub fn in_rpz(&self, model: &Model) -> bool {
        self.zone.is_some_and(|z| model.zones[z].is_rpz())
    }

    /// The name an endpoint of a response policy zone overrides: its own name without the
    /// zone's origin (`registry-1.docker.io.rpz.regdns.` in `rpz.regdns.` overrides
    /// `registry-1.docker.io.`). `None` for an endpoint of any other zone.
    pub fn rpz_trigger(&self, model: &Model) -> Option<Name> {
        let zone = &model.zones[self.zone?];
        zone.is_rpz()
            .then(|| rpz::trigger(&self.name, &zone.origin))
            .flatten()
    }
}

/// One target of an endpoint in one view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Instance id.
    pub instance: String,
    /// What is answered while this target is active.
    pub answer: TargetAnswer,
}

/// The answer of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetAnswer {
    /// CNAME to the instance's public name.
    Cname(Name),
    /// Addresses (VPC-internal path).
    Addrs {
        /// A records.
        a: Vec<Ipv4Addr>,
        /// AAAA records.
        aaaa: Vec<Ipv6Addr>,
    },
    /// The endpoint's own name as the public DNS answers it (`passthrough = true`).
    Passthrough,
}

impl std::fmt::Display for TargetAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetAnswer::Cname(n) => write!(f, "CNAME {n}"),
            TargetAnswer::Passthrough => f.write_str("passthrough (the public answer)"),
            TargetAnswer::Addrs { a, aaaa } => {
                let all: Vec<String> = a
                    .iter()
                    .map(|x| format!("A {x}"))
                    .chain(aaaa.iter().map(|x| format!("AAAA {x}")))
                    .collect();
                f.write_str(&all.join(", "))
            }
        }
    }
}

impl Model {
    /// Index of a view by name.
    pub fn view_index(&self, name: &str) -> Option<usize> {
        self.views.iter().position(|v| v.name == name)
    }

    /// An instance by id.
    pub fn instance(&self, id: &str) -> Option<&InstanceConfig> {
        self.instances.iter().find(|i| i.id == id)
    }
}

/// Reads the config file and the zone files and builds the model.
pub fn load(path: &std::path::Path) -> Result<Model, ModelError> {
    let loaded = config::load(path)?;
    build(&loaded)
}
