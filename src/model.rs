//! The resolved world: zones, views, instances, endpoints and their targets, built from a
//! [`LoadedConfig`] and the zone files. Immutable once built; a reload builds a new one.
//! All cross-references are checked here, and every error names the key path.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, RecordType};

use crate::config::endpoint::{PublishProvider, UpdateTransport};
use crate::config::{
    self, AlidnsConfig, ConfigError, FailbackMode, InstanceConfig, LoadedConfig,
    PrivateZoneBinding, PrivateZoneConfig, Rfc2136Config, ServerConfig,
};
use crate::zone::{self, ZoneError, ZoneRecord};

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

/// A public DNS binding of an endpoint (`[[endpoint.publish]]`), resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishTarget {
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
    /// PrivateZone bindings.
    pub privatezone: Vec<PrivateZoneBinding>,
    /// Public DNS bindings.
    pub publish: Vec<PublishTarget>,
    /// Longest time a target's canary digest may differ from the primary's.
    pub replication_max_lag: Option<std::time::Duration>,
}

impl Endpoint {
    /// True when the endpoint is its zone's apex (a CNAME answer is then flattened).
    pub fn is_apex(&self, model: &Model) -> bool {
        self.zone
            .is_some_and(|z| self.name == model.zones[z].origin)
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
}

impl std::fmt::Display for TargetAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetAnswer::Cname(n) => write!(f, "CNAME {n}"),
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

struct Checker<'a> {
    file: &'a str,
}

impl Checker<'_> {
    fn err(&self, key: impl Into<String>, msg: impl Into<String>) -> ModelError {
        ModelError::Invalid {
            file: self.file.to_string(),
            key: key.into(),
            msg: msg.into(),
        }
    }
}

fn parse_secondaries(
    c: &Checker<'_>,
    zone: usize,
    list: &[String],
) -> Result<Vec<Secondary>, ModelError> {
    let mut out = Vec::new();
    for (j, s) in list.iter().enumerate() {
        let mut parts = s.split_whitespace();
        let addr = parts
            .next()
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok());
        let key = match parts.next() {
            None => Some(None),
            Some(k) => k
                .strip_prefix("key:")
                .and_then(|k| Name::from_ascii(k).ok())
                .map(|mut n| {
                    n.set_fqdn(true);
                    Some(n.to_lowercase())
                }),
        };
        match (addr, key, parts.next()) {
            (Some(addr), Some(key), None) => out.push(Secondary { addr, key }),
            _ => {
                return Err(c.err(
                    format!("zone[{zone}].secondaries[{j}]"),
                    format!("{s:?} is not \"ADDR:PORT\" or \"ADDR:PORT key:NAME.\" (e.g. \"192.0.2.53:53 key:xfr-key.\")"),
                ));
            }
        }
    }
    Ok(out)
}

/// Parses a fully qualified domain name written in the config.
fn parse_fqdn(c: &Checker<'_>, key: &str, s: &str) -> Result<Name, ModelError> {
    if !s.ends_with('.') {
        return Err(c.err(
            key,
            format!("{s:?} must be fully qualified: write \"{s}.\" (with the trailing dot)"),
        ));
    }
    Name::from_ascii(s)
        .map(|n| n.to_lowercase())
        .map_err(|e| c.err(key, format!("{s:?} is not a valid domain name: {e}")))
}

/// Builds the model from a parsed config, loading zone files relative to the config file.
pub fn build(loaded: &LoadedConfig) -> Result<Model, ModelError> {
    let cfg = &loaded.config;
    let file = loaded.path.display().to_string();
    let c = Checker { file: &file };

    check_server(&c, &cfg.server)?;

    // Zones.
    let mut zones: Vec<Zone> = Vec::new();
    for (i, z) in cfg.zones.iter().enumerate() {
        let key = format!("zone[{i}].origin");
        let origin = parse_fqdn(&c, &key, &z.origin)?;
        if zones.iter().any(|o| o.origin == origin) {
            return Err(c.err(
                key,
                format!("duplicate zone {origin}; each origin may appear once"),
            ));
        }
        for (j, acl) in z.allow_transfer.iter().enumerate() {
            let ok = acl
                .strip_prefix("key:")
                .map(|k| Name::from_ascii(k).is_ok())
                .unwrap_or_else(|| {
                    acl.parse::<ipnet::IpNet>().is_ok() || acl.parse::<std::net::IpAddr>().is_ok()
                });
            if !ok {
                return Err(c.err(
                    format!("zone[{i}].allow_transfer[{j}]"),
                    format!("{acl:?} is neither a CIDR (192.0.2.0/24) nor a TSIG key (key:NAME.)"),
                ));
            }
        }
        let path = loaded.resolve(&z.file);
        check_file(&c, &format!("zone[{i}].file"), &path)?;
        let data = zone::load_zone(&path, &origin)?;
        zones.push(Zone {
            origin,
            file: path,
            records: data.records,
            allow_transfer: z.allow_transfer.clone(),
            secondaries: parse_secondaries(&c, i, &z.secondaries)?,
        });
    }
    if zones.is_empty() {
        return Err(c.err(
            "zone",
            "no [[zone]] configured; add at least one zone with origin and file",
        ));
    }

    // Views.
    let mut views: Vec<View> = Vec::new();
    for (i, v) in cfg.views.iter().enumerate() {
        let key = format!("view[{i}].name");
        if v.name == DEFAULT_VIEW {
            return Err(c.err(
                key,
                "\"default\" is the implicit view of unmatched clients; choose another name",
            ));
        }
        if v.name.is_empty()
            || !v
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            return Err(c.err(
                key,
                format!(
                    "{:?} is not a valid view name (letters, digits, '-', '_', '.')",
                    v.name
                ),
            ));
        }
        if views.iter().any(|o| o.name == v.name) {
            return Err(c.err(key, format!("duplicate view {:?}", v.name)));
        }
        if v.clients.is_empty() && v.ecs_from.is_empty() {
            return Err(c.err(
                format!("view[{i}].clients"),
                "a view needs at least one client network (e.g. [\"10.1.0.0/16\"])",
            ));
        }
        views.push(View {
            name: v.name.clone(),
            clients: v.clients.iter().map(|n| n.trunc()).collect(),
            ecs_from: v.ecs_from.iter().map(|n| n.trunc()).collect(),
        });
    }
    views.push(View {
        name: DEFAULT_VIEW.into(),
        clients: vec![],
        ecs_from: vec![],
    });

    // TSIG keys.
    let mut tsig_keys: Vec<TransferKey> = Vec::new();
    let mut update_keys: Vec<crate::tsig::Key> = Vec::new();
    for (i, k) in cfg.tsig_keys.iter().enumerate() {
        let view = match &k.view {
            None => None,
            Some(kv) => match views.iter().position(|v| &v.name == kv) {
                Some(v) => Some(v),
                None => {
                    let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
                    return Err(c.err(
                        format!("tsig_key[{i}].view"),
                        format!("no view {kv:?}; views are {}", names.join(", ")),
                    ));
                }
            },
        };
        let path = loaded.resolve(&k.file);
        check_file(&c, &format!("tsig_key[{i}].file"), &path)?;
        for key in crate::tsig::load_key_file(&path)? {
            if tsig_keys.iter().any(|t| t.key.name == key.name)
                || update_keys.iter().any(|u| u.name == key.name)
            {
                return Err(c.err(
                    format!("tsig_key[{i}].file"),
                    format!(
                        "key {} is defined twice; each key selects one view",
                        key.name
                    ),
                ));
            }
            match view {
                Some(view) => tsig_keys.push(TransferKey { key, view }),
                None => update_keys.push(key),
            }
        }
    }
    for (i, z) in zones.iter().enumerate() {
        for (j, sec) in z.secondaries.iter().enumerate() {
            if let Some(k) = &sec.key
                && !tsig_keys.iter().any(|t| &t.key.name == k)
            {
                return Err(c.err(
                    format!("zone[{i}].secondaries[{j}]"),
                    format!("no [[tsig_key]] defines key {k}"),
                ));
            }
        }
        for (j, acl) in z.allow_transfer.iter().enumerate() {
            if let Some(k) = acl.strip_prefix("key:") {
                let known = Name::from_ascii(k)
                    .map(|mut n| {
                        n.set_fqdn(true);
                        n.to_lowercase()
                    })
                    .map(|n| tsig_keys.iter().any(|t| t.key.name == n))
                    .unwrap_or(false);
                if !known {
                    return Err(c.err(
                        format!("zone[{i}].allow_transfer[{j}]"),
                        format!("no [[tsig_key]] defines key {k}"),
                    ));
                }
            }
        }
    }

    // Instances.
    let mut ids = BTreeSet::new();
    for (i, inst) in cfg.instances.iter().enumerate() {
        check_instance(&c, i, inst)?;
        if !ids.insert(inst.id.clone()) {
            return Err(c.err(
                format!("instance[{i}].id"),
                format!("duplicate instance id {:?}", inst.id),
            ));
        }
    }

    check_files(&c, loaded)?;

    // Endpoints.
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for (i, e) in cfg.endpoints.iter().enumerate() {
        let all_keys: Vec<&crate::tsig::Key> = tsig_keys
            .iter()
            .map(|t| &t.key)
            .chain(update_keys.iter())
            .collect();
        let ep = build_endpoint(
            &c,
            i,
            e,
            &zones,
            &views,
            &ids,
            cfg.privatezone.is_some(),
            &all_keys,
        )?;
        if endpoints.iter().any(|o| o.name == ep.name) {
            return Err(c.err(
                format!("endpoint[{i}].name"),
                format!("duplicate endpoint {}", ep.name),
            ));
        }
        check_replication(&c, i, &ep, &cfg.instances)?;
        endpoints.push(ep);
    }

    if let Some(a) = &cfg.alidns {
        for (k, v) in [
            ("endpoint", &a.endpoint),
            ("sts_endpoint", &a.sts_endpoint),
            ("metadata_endpoint", &a.metadata_endpoint),
        ] {
            if let Some(u) = v
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return Err(c.err(
                    format!("alidns.{k}"),
                    format!("{u:?} is not an http(s) URL"),
                ));
            }
        }
    }
    if let Some(p) = &cfg.privatezone {
        if p.region.trim().is_empty() {
            return Err(c.err(
                "privatezone.region",
                "empty region; write e.g. \"cn-hangzhou\"",
            ));
        }
        for (k, v) in [
            ("endpoint", &p.endpoint),
            ("sts_endpoint", &p.sts_endpoint),
            ("metadata_endpoint", &p.metadata_endpoint),
        ] {
            if let Some(u) = v
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return Err(c.err(
                    format!("privatezone.{k}"),
                    format!("{u:?} is not an http(s) URL"),
                ));
            }
        }
    }

    // Paths in the config are relative to the config file's directory.
    let mut server = cfg.server.clone();
    server.state_dir = loaded.resolve(&server.state_dir);
    server.admin_token_file = loaded.resolve(&server.admin_token_file);
    let mut instances = cfg.instances.clone();
    for (n, i) in instances.iter_mut().enumerate() {
        if let Some(ca) = &i.ca_file {
            i.ca_file = Some(loaded.resolve(ca));
        }
        if let Some(f) = &i.canary_credentials_file {
            let f = loaded.resolve(f);
            crate::config::instance::read_credentials_file(&f)
                .map_err(|e| c.err(format!("instance[{n}].canary_credentials_file"), e))?;
            i.canary_credentials_file = Some(f);
        }
    }

    let cluster = match &cfg.cluster {
        Some(cl) => {
            let mut cl = cl.clone();
            for p in [
                &mut cl.ca_file,
                &mut cl.cert_file,
                &mut cl.key_file,
                &mut cl.password_file,
            ]
            .into_iter()
            .flatten()
            {
                *p = loaded.resolve(p);
            }
            cl.validate().map_err(|e| c.err(e.key, e.msg))?;
            Some(cl)
        }
        None => None,
    };

    Ok(Model {
        cluster,
        server,
        zones,
        views,
        instances,
        endpoints,
        privatezone: cfg.privatezone.clone(),
        config_path: loaded.path.clone(),
        tsig_keys,
        update_keys,
        alidns: cfg.alidns.clone(),
        rfc2136: cfg.rfc2136.clone(),
    })
}

fn check_server(c: &Checker<'_>, s: &ServerConfig) -> Result<(), ModelError> {
    if s.listen.is_empty() {
        return Err(c.err(
            "server.listen",
            "no listen address; write e.g. [\"0.0.0.0:53\", \"[::]:53\"]",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, a) in s.listen.iter().enumerate() {
        if !seen.insert(*a) {
            return Err(c.err(
                format!("server.listen[{i}]"),
                format!("duplicate address {a}"),
            ));
        }
    }
    if !(512..=4096).contains(&s.max_udp_payload) {
        return Err(c.err(
            "server.max_udp_payload",
            format!(
                "{} is outside 512..=4096 (1232 is recommended)",
                s.max_udp_payload
            ),
        ));
    }
    if s.tcp_max_connections == 0 {
        return Err(c.err("server.tcp_max_connections", "must be at least 1"));
    }
    if s.udp_workers == Some(0) {
        return Err(c.err("server.udp_workers", "must be at least 1"));
    }
    Ok(())
}

fn check_instance(c: &Checker<'_>, i: usize, inst: &InstanceConfig) -> Result<(), ModelError> {
    let k = |f: &str| format!("instance[{i}].{f}");
    if inst.id.is_empty()
        || !inst
            .id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
    {
        return Err(c.err(
            k("id"),
            format!(
                "{:?} is not a valid id (letters, digits, '-', '_', '.')",
                inst.id
            ),
        ));
    }
    let url_ok = url::Url::parse(&inst.url).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    });
    if !url_ok {
        return Err(c.err(
            k("url"),
            format!(
                "{:?} is not an http(s) URL; write e.g. \"https://cross-region.registry.io/v2/\"",
                inst.url
            ),
        ));
    }
    if let Some(conn) = &inst.connect {
        check_host_port(c, &k("connect"), conn)?;
    }
    if inst.rise == 0 {
        return Err(c.err(k("rise"), "must be at least 1"));
    }
    if inst.fall == 0 {
        return Err(c.err(k("fall"), "must be at least 1"));
    }
    if inst.interval.is_zero() {
        return Err(c.err(k("interval"), "must be longer than 0s"));
    }
    if inst.timeout.is_zero() {
        return Err(c.err(k("timeout"), "must be longer than 0s"));
    }
    if inst.timeout > inst.interval {
        return Err(c.err(k("timeout"), format!(
            "{} is longer than interval {}; probes of one instance never overlap, so keep timeout <= interval",
            humantime::format_duration(inst.timeout), humantime::format_duration(inst.interval))));
    }
    for (j, x) in inst.extra.iter().enumerate() {
        let key = format!("instance[{i}].extra[{j}]");
        match (&x.url, &x.tcp) {
            (Some(u), None) => {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(c.err(format!("{key}.url"), format!("{u:?} is not an http(s) URL")));
                }
            }
            (None, Some(t)) => check_host_port(c, &format!("{key}.tcp"), t)?,
            _ => {
                return Err(c.err(
                    key,
                    "give exactly one of url = \"https://...\" or tcp = \"host:port\"",
                ));
            }
        }
    }
    check_canary(c, i, inst)
}

/// `canary`, `canary_credentials_file` and `canary_credentials` of one instance.
fn check_canary(c: &Checker<'_>, i: usize, inst: &InstanceConfig) -> Result<(), ModelError> {
    let k = |f: &str| format!("instance[{i}].{f}");
    let Some(cy) = &inst.canary else {
        for (key, set) in [
            (
                "canary_credentials_file",
                inst.canary_credentials_file.is_some(),
            ),
            ("canary_credentials", inst.canary_credentials.is_some()),
        ] {
            if set {
                return Err(c.err(
                    k(key),
                    "credentials without a canary; add canary = { repository = \"...\", reference = \"...\" }",
                ));
            }
        }
        return Ok(());
    };
    let repo_ok = !cy.repository.is_empty()
        && cy.repository.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        });
    if !repo_ok {
        return Err(c.err(
            k("canary.repository"),
            format!(
                "{:?} is not a repository name (lower-case path components of [a-z0-9._-], e.g. \"ops/canary\")",
                cy.repository
            ),
        ));
    }
    let tag_ok = |t: &str| {
        !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .next()
                .is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            && t.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
    };
    let digest_ok = |d: &str| {
        d.strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if !(tag_ok(&cy.reference) || digest_ok(&cy.reference)) {
        return Err(c.err(
            k("canary.reference"),
            format!(
                "{:?} is neither a tag nor a sha256 digest (e.g. \"canary\" or \"sha256:<64 hex>\")",
                cy.reference
            ),
        ));
    }
    let interval = canary_interval(inst);
    let timeout = cy
        .timeout
        .unwrap_or(crate::config::instance::DEFAULT_CANARY_TIMEOUT);
    if interval.is_zero() {
        return Err(c.err(k("canary.interval"), "must be longer than 0s"));
    }
    if timeout.is_zero() {
        return Err(c.err(k("canary.timeout"), "must be longer than 0s"));
    }
    if timeout > interval {
        return Err(c.err(
            k("canary.timeout"),
            format!(
                "{} is longer than the canary interval {}; keep timeout <= interval",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
        ));
    }
    if inst.canary_credentials_file.is_some() && inst.canary_credentials.is_some() {
        return Err(c.err(
            k("canary_credentials"),
            "give canary_credentials_file or canary_credentials, not both",
        ));
    }
    if let Some(acr) = &inst.canary_credentials {
        if !acr.acr_instance.starts_with("cri-") {
            return Err(c.err(
                k("canary_credentials.acr_instance"),
                format!(
                    "{:?} is not an ACR Enterprise Edition instance id (cri-...)",
                    acr.acr_instance
                ),
            ));
        }
        if acr.region.trim().is_empty() {
            return Err(c.err(
                k("canary_credentials.region"),
                "empty region; write e.g. \"cn-hangzhou\"",
            ));
        }
        if let Some(u) = &acr.endpoint
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(c.err(
                k("canary_credentials.endpoint"),
                format!("{u:?} is not an http(s) URL"),
            ));
        }
    }
    Ok(())
}

/// The canary interval in force: as configured, else the instance's interval but at
/// least 10 s.
pub fn canary_interval(inst: &InstanceConfig) -> std::time::Duration {
    inst.canary
        .as_ref()
        .and_then(|c| c.interval)
        .unwrap_or_else(|| {
            inst.interval
                .max(crate::config::instance::MIN_DEFAULT_CANARY_INTERVAL)
        })
}

/// `replication_max_lag` needs a canary on every target of the endpoint.
fn check_replication(
    c: &Checker<'_>,
    i: usize,
    ep: &Endpoint,
    instances: &[InstanceConfig],
) -> Result<(), ModelError> {
    let Some(lag) = ep.replication_max_lag else {
        return Ok(());
    };
    if lag.is_zero() {
        return Err(c.err(
            format!("endpoint[{i}].replication_max_lag"),
            "must be longer than 0s (e.g. \"10m\")",
        ));
    }
    for t in ep.targets.iter().flatten() {
        if let Some((n, _)) = instances
            .iter()
            .enumerate()
            .find(|(_, x)| x.id == t.instance && x.canary.is_none())
        {
            return Err(c.err(
                format!("endpoint[{i}].replication_max_lag"),
                format!(
                    "needs a canary on every target, and instance {:?} (instance[{n}]) has none; add canary = {{ repository = \"...\", reference = \"...\" }} to it",
                    t.instance
                ),
            ));
        }
    }
    Ok(())
}

/// Every other file and directory the config names exists with the right type (so that
/// `check`, `serve` and `reload` reject what the daemon could not use), with its key path.
/// Files the daemon creates (the admin token, the state directory) need a place to be
/// created: an existing directory, or a path whose nearest existing ancestor is one.
fn check_files(c: &Checker<'_>, loaded: &LoadedConfig) -> Result<(), ModelError> {
    let cfg = &loaded.config;
    for (i, inst) in cfg.instances.iter().enumerate() {
        if let Some(ca) = &inst.ca_file {
            check_ca_file(c, &format!("instance[{i}].ca_file"), &loaded.resolve(ca))?;
        }
    }
    for (i, k) in cfg.tsig_keys.iter().enumerate() {
        check_file(c, &format!("tsig_key[{i}].file"), &loaded.resolve(&k.file))?;
    }
    let token = loaded.resolve(&cfg.server.admin_token_file);
    if token.is_dir() {
        return Err(c.err(
            "server.admin_token_file",
            format!("{}: is a directory; name the token file", token.display()),
        ));
    }
    if token.exists() {
        check_file(c, "server.admin_token_file", &token)?;
    } else if let Some(dir) = token.parent().filter(|d| !d.as_os_str().is_empty()) {
        check_creatable_dir(c, "server.admin_token_file", &token, dir)?;
    }
    let state = loaded.resolve(&cfg.server.state_dir);
    check_creatable_dir(c, "server.state_dir", &state, &state)?;
    Ok(())
}

/// An I/O error without the `(os error N)` suffix.
fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(pos) if s.ends_with(')') => s[..pos].to_string(),
        _ => s,
    }
}

/// A readable regular file.
fn check_file(c: &Checker<'_>, key: &str, path: &Path) -> Result<(), ModelError> {
    let f = std::fs::File::open(path)
        .map_err(|e| c.err(key, format!("{}: {}", path.display(), io_msg(&e))))?;
    let meta = f
        .metadata()
        .map_err(|e| c.err(key, format!("{}: {}", path.display(), io_msg(&e))))?;
    if !meta.is_file() {
        return Err(c.err(key, format!("{}: is not a regular file", path.display())));
    }
    Ok(())
}

/// A readable file of PEM certificates (at least one), as the prober loads it.
fn check_ca_file(c: &Checker<'_>, key: &str, path: &Path) -> Result<(), ModelError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    check_file(c, key, path)?;
    let pem = std::fs::read(path)
        .map_err(|e| c.err(key, format!("{}: {}", path.display(), io_msg(&e))))?;
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| c.err(key, format!("{}: invalid PEM: {e}", path.display())))?;
        n += 1;
    }
    if n == 0 {
        return Err(c.err(
            key,
            format!(
                "{}: no PEM certificate in the file (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// A directory that exists, or can be created: its nearest existing ancestor is a directory.
/// `shown` is the configured path (the directory itself, or the file to create in it).
fn check_creatable_dir(
    c: &Checker<'_>,
    key: &str,
    shown: &Path,
    dir: &Path,
) -> Result<(), ModelError> {
    let mut p = Some(dir);
    while let Some(d) = p {
        match std::fs::metadata(d) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) if d == shown => {
                return Err(c.err(key, format!("{}: not a directory", shown.display())));
            }
            Ok(_) => {
                return Err(c.err(
                    key,
                    format!("{}: {} is not a directory", shown.display(), d.display()),
                ));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                p = d.parent().filter(|x| !x.as_os_str().is_empty());
            }
            Err(e) => {
                return Err(c.err(
                    key,
                    format!("{}: {}: {}", shown.display(), d.display(), io_msg(&e)),
                ));
            }
        }
    }
    Ok(())
}

fn check_host_port(c: &Checker<'_>, key: &str, s: &str) -> Result<(), ModelError> {
    let ok = s
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(())
    } else {
        Err(c.err(
            key,
            format!("{s:?} is not host:port (e.g. \"a-registry.cn-hangzhou.cr.aliyuncs.com:443\")"),
        ))
    }
}

/// Names of the zone index that contains `name` (the longest origin wins).
/// What one `[[endpoint.publish]]` binding resolves to.
enum Built {
    Public(PublishTarget),
    PrivateZone(PrivateZoneBinding),
}

fn check_privatezone_binding(
    c: &Checker<'_>,
    bk: &str,
    ttl_key: &str,
    b: &PrivateZoneBinding,
    ttl: u32,
    view_names: &[&str],
    has_privatezone: bool,
) -> Result<(), ModelError> {
    if !has_privatezone {
        return Err(c.err(
            bk,
            "a PrivateZone binding needs a [privatezone] section (region = \"cn-hangzhou\")",
        ));
    }
    check_view(c, bk, &b.view, view_names)?;
    if b.zone_id.trim().is_empty() {
        return Err(c.err(
            format!("{bk}.zone_id"),
            "empty zone id; copy it from the PrivateZone console or `aliyun pvtz DescribeZones`",
        ));
    }
    if b.rr.is_empty() || b.rr.ends_with('.') {
        return Err(c.err(format!("{bk}.rr"), format!("{:?} is not a host record; write \"@\" for the zone apex or a relative name like \"cr\"", b.rr)));
    }
    if !PRIVATEZONE_TTLS.contains(&ttl) {
        return Err(c.err(ttl_key, format!("{ttl} is not a TTL PrivateZone accepts ({PRIVATEZONE_TTLS:?}); this endpoint is pushed to PrivateZone")));
    }
    Ok(())
}

fn check_view(
    c: &Checker<'_>,
    bk: &str,
    view: &str,
    view_names: &[&str],
) -> Result<(), ModelError> {
    if view_names.contains(&view) {
        return Ok(());
    }
    Err(c.err(
        format!("{bk}.view"),
        format!("unknown view {view:?} (known: {})", view_names.join(", ")),
    ))
}

/// Resolves one `[[endpoint.publish]]` binding; keys of another provider are errors.
#[allow(clippy::too_many_arguments)]
fn build_publish(
    c: &Checker<'_>,
    bk: &str,
    b: &config::PublishBinding,
    name: &Name,
    ttl: u32,
    view_names: &[&str],
    keys: &[&crate::tsig::Key],
    has_privatezone: bool,
) -> Result<Built, ModelError> {
    check_view(c, bk, &b.view, view_names)?;
    let (provider, allowed): (&str, &[&str]) = match b.provider {
        PublishProvider::Alidns => ("alidns", &["domain", "rr"]),
        PublishProvider::Rfc2136 => ("rfc2136", &["server", "zone", "tsig_key", "transport"]),
        PublishProvider::Privatezone => ("privatezone", &["zone_id", "rr"]),
    };
    let given = [
        ("domain", b.domain.is_some()),
        ("rr", b.rr.is_some()),
        ("zone_id", b.zone_id.is_some()),
        ("server", b.server.is_some()),
        ("zone", b.zone.is_some()),
        ("tsig_key", b.tsig_key.is_some()),
        ("transport", b.transport.is_some()),
    ];
    for (key, set) in given {
        if set && !allowed.contains(&key) {
            return Err(c.err(
                format!("{bk}.{key}"),
                format!(
                    "not a key of provider \"{provider}\" (its keys: provider, view, {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    let need = |key: &str, v: &Option<String>, example: &str| -> Result<String, ModelError> {
        match v.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(c.err(
                format!("{bk}.{key}"),
                format!("provider \"{provider}\" needs {key} (e.g. {key} = \"{example}\")"),
            )),
        }
    };
    match b.provider {
        PublishProvider::Privatezone => {
            let p = PrivateZoneBinding {
                view: b.view.clone(),
                zone_id: need("zone_id", &b.zone_id, "zone-0123abcd")?,
                rr: b.rr.clone().unwrap_or_else(|| "@".into()),
            };
            check_privatezone_binding(
                c,
                bk,
                &format!("{bk}.view"),
                &p,
                ttl,
                view_names,
                has_privatezone,
            )?;
            Ok(Built::PrivateZone(p))
        }
        PublishProvider::Alidns => {
            let domain = need("domain", &b.domain, "registry.io")?
                .trim_end_matches('.')
                .to_ascii_lowercase();
            if Name::from_ascii(&domain).is_err() || !domain.contains('.') {
                return Err(c.err(format!("{bk}.domain"), format!("{domain:?} is not a domain name; write the domain as registered in Alibaba Cloud DNS, e.g. \"registry.io\"")));
            }
            let computed = crate::publish::engine::relative_rr(&name.to_string(), &domain);
            let rr = match (&b.rr, computed) {
                (Some(rr), _) if rr.is_empty() || rr.ends_with('.') => {
                    return Err(c.err(format!("{bk}.rr"), format!("{rr:?} is not a host record; write \"@\" for the apex or a relative name like \"cr\"")));
                }
                (Some(rr), Some(comp)) if !rr.eq_ignore_ascii_case(&comp) => {
                    return Err(c.err(format!("{bk}.rr"), format!("{rr:?} in domain {domain} is not the endpoint {name} (that is rr = \"{comp}\"); omit rr to compute it")));
                }
                (Some(rr), _) => rr.to_ascii_lowercase(),
                (None, Some(comp)) => comp,
                (None, None) => {
                    return Err(c.err(
                        format!("{bk}.domain"),
                        format!("the endpoint {name} is not inside domain {domain}"),
                    ));
                }
            };
            Ok(Built::Public(PublishTarget::Alidns {
                view: b.view.clone(),
                domain,
                rr,
            }))
        }
        PublishProvider::Rfc2136 => {
            let server_s = need("server", &b.server, "192.0.2.1:53")?;
            let server = server_s
                .parse::<std::net::SocketAddr>()
                .or_else(|_| {
                    server_s
                        .parse::<std::net::IpAddr>()
                        .map(|ip| std::net::SocketAddr::new(ip, 53))
                })
                .map_err(|_| {
                    c.err(
                        format!("{bk}.server"),
                        format!("{server_s:?} is not an address; write \"ADDR:PORT\" (e.g. \"192.0.2.1:53\" or \"[2001:db8::1]:53\")"),
                    )
                })?;
            let zone_s = need("zone", &b.zone, "example.net.")?;
            let zone = parse_fqdn(c, &format!("{bk}.zone"), &zone_s)?.to_lowercase();
            if !zone.zone_of(name) {
                return Err(c.err(
                    format!("{bk}.zone"),
                    format!("the endpoint {name} is not inside zone {zone}"),
                ));
            }
            let rr = crate::publish::engine::relative_rr(&name.to_string(), &zone.to_string())
                .unwrap_or_else(|| "@".into());
            let key_s = need("tsig_key", &b.tsig_key, "update-key.")?;
            let key_name = Name::from_ascii(&key_s).map(|mut n| {
                n.set_fqdn(true);
                n.to_lowercase()
            });
            let Some(key) = key_name
                .ok()
                .and_then(|n| keys.iter().find(|k| k.name == n))
            else {
                let known: Vec<String> = keys.iter().map(|k| k.name.to_string()).collect();
                return Err(c.err(
                    format!("{bk}.tsig_key"),
                    format!(
                        "no [[tsig_key]] defines key {key_s} (known: {}); add [[tsig_key]] file = \"keys/update.key\" (a key without view signs updates only)",
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ),
                ));
            };
            Ok(Built::Public(PublishTarget::Rfc2136 {
                view: b.view.clone(),
                server,
                zone,
                rr,
                key: Box::new((*key).clone()),
                tcp: b.transport == Some(UpdateTransport::Tcp),
            }))
        }
    }
}

fn zone_of(zones: &[Zone], name: &Name) -> Option<usize> {
    zones
        .iter()
        .enumerate()
        .filter(|(_, z)| z.origin.zone_of(name))
        .max_by_key(|(_, z)| z.origin.num_labels())
        .map(|(i, _)| i)
}

#[allow(clippy::too_many_arguments)]
fn build_endpoint(
    c: &Checker<'_>,
    i: usize,
    e: &config::EndpointConfig,
    zones: &[Zone],
    views: &[View],
    instances: &BTreeSet<String>,
    has_privatezone: bool,
    keys: &[&crate::tsig::Key],
) -> Result<Endpoint, ModelError> {
    let k = |f: &str| format!("endpoint[{i}].{f}");
    let name = parse_fqdn(c, &k("name"), &e.name)?;
    let zi = zone_of(zones, &name);
    if zi.is_none() && e.privatezone.is_empty() && e.publish.is_empty() {
        let known: Vec<String> = zones.iter().map(|z| z.origin.to_string()).collect();
        return Err(c.err(
            k("name"),
            format!(
                "{name} is not inside any configured zone (zones: {}) and has no [[endpoint.publish]] or [[endpoint.privatezone]] binding; an endpoint is served (in a [[zone]]), published, or both",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ),
        ));
    }
    let empty_zone = Zone {
        origin: Name::root(),
        file: PathBuf::new(),
        records: Vec::new(),
        allow_transfer: Vec::new(),
        secondaries: Vec::new(),
    };
    let zone = zi.map(|z| &zones[z]).unwrap_or(&empty_zone);
    if e.ttl > i32::MAX as u32 {
        return Err(c.err(k("ttl"), "must be at most 2147483647"));
    }
    // Data at the endpoint name or a delegation above it.
    for r in &zone.records {
        let rr = &r.record;
        if rr.record_type() == RecordType::NS && rr.name != zone.origin && rr.name.zone_of(&name) {
            return Err(c.err(k("name"), format!(
                "{name} is at or below the delegation {} ({}:{}); regdns is not authoritative there",
                rr.name, r.pos.file.display(), r.pos.line)));
        }
    }
    let is_apex = zi.is_some() && name == zone.origin;

    if !e.targets.contains_key(DEFAULT_VIEW) {
        return Err(c.err(k("targets"), "no \"default\" targets; every endpoint needs targets.default, used by clients no view matches"));
    }
    let view_names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
    let mut per_view: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    for (view, list) in &e.targets {
        let vk = format!("endpoint[{i}].targets.{view}");
        if !view_names.contains(&view.as_str()) {
            return Err(c.err(
                vk,
                format!("unknown view {view:?} (known: {})", view_names.join(", ")),
            ));
        }
        if list.is_empty() {
            return Err(c.err(
                vk,
                "empty target list; give at least one { instance = ..., cname = ... | a = [...] }",
            ));
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (j, t) in list.iter().enumerate() {
            let tk = format!("{vk}[{j}]");
            if !instances.contains(&t.instance) {
                let known: Vec<&str> = instances.iter().map(String::as_str).collect();
                return Err(c.err(
                    format!("{tk}.instance"),
                    format!(
                        "unknown instance {:?} (known: {})",
                        t.instance,
                        known.join(", ")
                    ),
                ));
            }
            if !seen.insert(t.instance.clone()) {
                return Err(c.err(
                    format!("{tk}.instance"),
                    format!("instance {:?} listed twice in this view", t.instance),
                ));
            }
            let answer = match (&t.cname, &t.a, &t.aaaa) {
                (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                    return Err(c.err(tk, "both cname and a/aaaa given; a target answers either cname = \"public.name.\" (Internet path) or a = [\"10.x.x.x\"] (VPC path)"));
                }
                (None, None, None) => {
                    return Err(c.err(tk, "neither cname nor a given; a target answers either cname = \"public.name.\" (Internet path) or a = [\"10.x.x.x\"] (VPC path)"));
                }
                (Some(cn), None, None) => {
                    let target = parse_fqdn(c, &format!("{tk}.cname"), cn)?;
                    if target == name {
                        return Err(c.err(
                            format!("{tk}.cname"),
                            "a CNAME to the endpoint itself would loop",
                        ));
                    }
                    TargetAnswer::Cname(target)
                }
                (None, a, aaaa) => {
                    let a = a.clone().unwrap_or_default();
                    let aaaa = aaaa.clone().unwrap_or_default();
                    if a.is_empty() && aaaa.is_empty() {
                        return Err(c.err(format!("{tk}.a"), "empty address list"));
                    }
                    TargetAnswer::Addrs { a, aaaa }
                }
            };
            if matches!(answer, TargetAnswer::Cname(_))
                && !is_apex
                && let Some(r) = zone.records.iter().find(|r| {
                    r.record.name == name
                        && !matches!(
                            r.record.record_type(),
                            RecordType::A | RecordType::AAAA | RecordType::CNAME
                        )
                })
            {
                return Err(c.err(format!("{tk}.cname"), format!(
                        "{name} also has {} data ({}:{}); a CNAME cannot coexist with other data (RFC 1034 §3.6.2): remove it from the zone file or answer with a = [...]",
                        r.record.record_type(), r.pos.file.display(), r.pos.line)));
            }
            out.push(Target {
                instance: t.instance.clone(),
                answer,
            });
        }
        per_view.insert(view.clone(), out);
    }
    let default = per_view[DEFAULT_VIEW].clone();
    let targets: Vec<Vec<Target>> = views
        .iter()
        .map(|v| {
            per_view
                .get(&v.name)
                .cloned()
                .unwrap_or_else(|| default.clone())
        })
        .collect();

    for (j, b) in e.privatezone.iter().enumerate() {
        let bk = format!("endpoint[{i}].privatezone[{j}]");
        check_privatezone_binding(c, &bk, &k("ttl"), b, e.ttl, &view_names, has_privatezone)?;
    }

    let mut privatezone = e.privatezone.clone();
    let mut publish = Vec::new();
    for (j, b) in e.publish.iter().enumerate() {
        let bk = format!("endpoint[{i}].publish[{j}]");
        match build_publish(c, &bk, b, &name, e.ttl, &view_names, keys, has_privatezone)? {
            Built::Public(PublishTarget::Rfc2136 { rr, view, zone, .. })
                if rr == "@"
                    && view_names
                        .iter()
                        .position(|v| *v == view)
                        .is_some_and(|vi| {
                            targets[vi]
                                .iter()
                                .any(|t| matches!(t.answer, TargetAnswer::Cname(_)))
                        }) =>
            {
                return Err(c.err(
                    format!("{bk}.zone"),
                    format!("{name} is the apex of {zone}, where a CNAME cannot sit (SOA and NS live there), and view {view} answers with a CNAME; publish a name below the apex or give that view a = [...] targets"),
                ));
            }
            Built::Public(p) => {
                if publish.contains(&p) {
                    return Err(c.err(bk, "the same binding is listed twice"));
                }
                publish.push(p)
            }
            Built::PrivateZone(p) => privatezone.push(p),
        }
    }

    Ok(Endpoint {
        name,
        zone: zi,
        ttl: e.ttl,
        failback: e.failback,
        failback_hold: e.failback_hold,
        targets,
        privatezone,
        publish,
        replication_max_lag: e.replication_max_lag,
    })
}
