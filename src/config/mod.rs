//! Configuration: TOML file plus `REGDNS_*` environment overrides (figment) → typed [`Config`].
//!
//! Precedence is file < environment (`REGDNS_SERVER__LISTEN='["127.0.0.1:5353"]'`, `__`
//! separates nesting levels; other `REGDNS_*` variables are not config, see [`env_provider`]). This module only parses and checks the shape of each value
//! (unknown keys, addresses, CIDRs, durations); cross-references between sections are
//! resolved and validated by the model (`crate::model`). Every error names the key path.

pub mod cluster;
pub mod endpoint;
pub mod env;
pub mod instance;
pub mod privatezone;
pub mod publish;
pub mod server;

pub use cluster::{ClusterConfig, HealthQuorum};
pub use endpoint::{
    EndpointConfig, FailbackMode, PrivateZoneBinding, PublishBinding, TargetConfig,
};
pub use instance::{ExtraCheckConfig, InstanceConfig};
pub use privatezone::{DEFAULT_PVTZ_ENDPOINT, PrivateZoneConfig};
pub use publish::{AlidnsConfig, DEFAULT_ALIDNS_ENDPOINT, Rfc2136Config};
pub use server::{LogFormat, ServerConfig};

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

/// Errors found while reading the configuration. Each names the key path or the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The config file.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A value has the wrong shape (unknown key, bad address, bad duration, ...).
    #[error("{file}: {key}: {msg}")]
    Value {
        /// The config file.
        file: String,
        /// Key path, e.g. `server.listen[0]`.
        key: String,
        /// What is wrong and what would be valid.
        msg: String,
    },
    /// A secret was found in the config file.
    #[error("{file}: {key}: {msg}")]
    Secret {
        /// The config file.
        file: String,
        /// Key path of the secret.
        key: String,
        /// Advice.
        msg: String,
    },
}

/// Advice printed when an AccessKey shows up in the config.
pub const CREDENTIAL_ADVICE: &str = "AccessKeys must not be stored in the config file; regdns reads the \
PrivateZone credential from the standard Alibaba Cloud chain: environment \
(ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET, ALIBABA_CLOUD_SECURITY_TOKEN), \
RRSA (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE), \
the credentials file (~/.alibabacloud/credentials.ini) or the ECS RAM role; remove this key";

/// The whole configuration file, as written (docs/design.md#3-configuration).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`: sockets, admin API, state.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[[zone]]`: authoritative zones.
    #[serde(default, rename = "zone")]
    pub zones: Vec<ZoneConfig>,
    /// `[[view]]`: client networks; first match wins, unmatched clients get `default`.
    #[serde(default, rename = "view")]
    pub views: Vec<ViewConfig>,
    /// `[[instance]]`: regional registry instances and their health checks.
    #[serde(default, rename = "instance")]
    pub instances: Vec<InstanceConfig>,
    /// `[[endpoint]]`: names whose answers follow the failover decision.
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<EndpointConfig>,
    /// `[[tsig_key]]`: TSIG keys: transfer keys (with a `view`) and RFC 2136 update keys.
    #[serde(default, rename = "tsig_key")]
    pub tsig_keys: Vec<TsigKeyConfig>,
    /// `[privatezone]`: the Alibaba Cloud PrivateZone publisher.
    #[serde(default)]
    pub privatezone: Option<PrivateZoneConfig>,
    /// `[alidns]`: the Alibaba Cloud DNS publisher (optional: defaults apply).
    #[serde(default)]
    pub alidns: Option<AlidnsConfig>,
    /// `[rfc2136]`: the RFC 2136 publisher (optional: defaults apply).
    #[serde(default)]
    pub rfc2136: Option<Rfc2136Config>,
    /// `[cluster]`: share overrides, health and leadership with other nodes in etcd.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    /// `[agent]`: what `regdns agent` observes (ignored by `regdns serve`).
    #[serde(default)]
    pub agent: Option<AgentConfig>,
}

/// `[[zone]]`: one authoritative zone loaded from an RFC 1035 file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// Zone apex, e.g. `registry.io.`.
    pub origin: String,
    /// Zone file, relative to the config file's directory.
    pub file: PathBuf,
    /// Who may transfer the zone (AXFR/IXFR): CIDRs and/or `key:NAME`.
    #[serde(default)]
    pub allow_transfer: Vec<String>,
    /// Secondaries sent NOTIFY on every serial change of the view they transfer:
    /// `"ADDR:PORT"` (the view of the address, unsigned) or `"ADDR:PORT key:NAME."` (the
    /// key's view, signed with it; as BIND's `also-notify { addr key name; }`).
    #[serde(default)]
    pub secondaries: Vec<String>,
    /// What the zone is: `zone` (answered to everyone) or `rpz` (a response policy zone,
    /// answered only to the resolvers `allow_transfer` admits).
    #[serde(default)]
    pub kind: ZoneKind,
}

/// `[[zone]] kind`: what a zone is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ZoneKind {
    /// An authoritative zone, answered to every client.
    #[default]
    Zone,
    /// A response policy zone (RPZ): its endpoints are QNAME triggers (the overridden name
    /// followed by the origin) whose records are the policy resolvers apply; answered only
    /// to the resolvers that transfer it.
    Rpz,
}

/// `[[view]]`: a client network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewConfig {
    /// View name, referenced by `endpoint.targets`.
    pub name: String,
    /// Source networks of the querying resolver.
    #[serde(default)]
    pub clients: Vec<ipnet::IpNet>,
    /// Resolvers whose EDNS Client Subnet option is trusted to select a view.
    #[serde(default)]
    pub ecs_from: Vec<ipnet::IpNet>,
    /// What judges a target's health in this view: the instance's checks as they are
    /// (`instance`), or the same checks run against the addresses this view is answered
    /// (`addresses`).
    #[serde(default)]
    pub probe: ViewProbe,
    /// How the observers of this view combine (default: `cluster.health_quorum`).
    #[serde(default)]
    pub health_quorum: Option<HealthQuorum>,
}

/// `[[view]] probe`: what judges a target's health in a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ViewProbe {
    /// The instance's own checks (its URL, or its `connect` address).
    #[default]
    Instance,
    /// The instance's checks run against each `a`/`aaaa` address this view is answered
    /// (scheme, port, Host, SNI and certificate checks of the instance URL kept).
    Addresses,
}

impl std::fmt::Display for ViewProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ViewProbe::Instance => "instance",
            ViewProbe::Addresses => "addresses",
        })
    }
}

/// `[agent]`: a vantage point inside a client network (`regdns agent -c FILE`). It joins
/// the cluster's etcd, probes the targets of `views` and reports what it sees; no DNS, no
/// admin mutations.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The views whose network this agent sits in.
    pub views: Vec<String>,
    /// The network's own resolver: after each switch of a view, the agent asks it for the
    /// endpoint until the new answer appears, and reports the propagation time.
    #[serde(default)]
    pub resolver: Option<std::net::SocketAddr>,
    /// Where to serve `/metrics` and `/healthz` (none: no HTTP listener).
    #[serde(default)]
    pub metrics: Option<std::net::SocketAddr>,
}

/// `[[tsig_key]]`: a TSIG key file (BIND format): with `view`, it selects the view a
/// secondary transfers; without, it only signs RFC 2136 updates (`endpoint.publish.tsig_key`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigKeyConfig {
    /// Key file.
    pub file: PathBuf,
    /// View transferred by secondaries signing with this key (none: updates only).
    #[serde(default)]
    pub view: Option<String>,
}

/// A loaded configuration with the file it came from (paths are relative to its directory).
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The parsed configuration.
    pub config: Config,
    /// Path of the file.
    pub path: PathBuf,
    /// Directory that relative paths in the file are resolved against.
    pub base_dir: PathBuf,
}

impl LoadedConfig {
    /// Resolves a path written in the config relative to the config file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }
}

/// Reads and parses a config file, applying `REGDNS_*` environment overrides.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: path.display().to_string(),
        source,
    })?;
    parse(&text, path, env_provider("REGDNS_"))
}

/// The environment overrides: only `<prefix><SECTION>__<KEY>` variables (`__` separates
/// nesting levels). Other variables with the prefix (`REGDNS_BIN`, `REGDNS_LOG`, ... used by
/// scripts) are not config and are ignored: every config key lives in a section.
pub fn env_provider(prefix: &str) -> Env {
    Env::prefixed(prefix)
        .filter(|k| k.as_str().contains("__"))
        .split("__")
}

/// Parses config text (`path` is used for messages and relative paths).
pub fn parse(text: &str, path: &Path, env: Env) -> Result<LoadedConfig, ConfigError> {
    let file = path.display().to_string();
    // Secrets first: an AccessKey gets advice, not an "unknown key" error.
    if let Ok(raw) = text.parse::<toml::Table>()
        && let Some((key, msg)) = find_secret(&toml::Value::Table(raw), "")
    {
        return Err(ConfigError::Secret { file, key, msg });
    }
    let figment = Figment::new().merge(Toml::string(text)).merge(env);
    let config: Config = figment.extract().map_err(|e| from_figment(&file, e))?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(LoadedConfig {
        config,
        path: path.to_path_buf(),
        base_dir,
    })
}

const SECRET_KEYS: &[&str] = &[
    "access_key_id",
    "access_key_secret",
    "accesskeyid",
    "accesskeysecret",
    "security_token",
    "securitytoken",
    "secret_access_key",
];

/// Finds a key or value that looks like an Alibaba Cloud AccessKey.
fn find_secret(v: &toml::Value, path: &str) -> Option<(String, String)> {
    match v {
        toml::Value::Table(t) => t.iter().find_map(|(k, v)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if SECRET_KEYS.contains(&k.to_ascii_lowercase().replace('-', "_").as_str()) {
                return Some((p, CREDENTIAL_ADVICE.to_string()));
            }
            find_secret(v, &p)
        }),
        toml::Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_secret(v, &format!("{path}[{i}]"))),
        toml::Value::String(s) if s.starts_with("LTAI") => Some((
            path.to_string(),
            format!("value looks like an AccessKey id; {CREDENTIAL_ADVICE}"),
        )),
        _ => None,
    }
}

/// Turns figment's error into one with a readable key path (`endpoint[0].ttl`).
fn from_figment(file: &str, e: figment::Error) -> ConfigError {
    let e = e
        .into_iter()
        .next()
        .expect("figment errors are never empty");
    let mut key = String::new();
    for part in &e.path {
        if part.chars().all(|c| c.is_ascii_digit()) {
            key.push_str(&format!("[{part}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(part);
        }
    }
    let msg = match &e.kind {
        figment::error::Kind::UnknownField(field, expected) => {
            push_field(&mut key, field);
            format!("unknown key; valid keys here: {}", expected.join(", "))
        }
        figment::error::Kind::MissingField(field) => {
            push_field(&mut key, field);
            "missing required key".to_string()
        }
        kind => kind.to_string(),
    };
    let mut msg = msg;
    if let Some(src) = e.metadata.as_ref().map(|m| m.name.to_string())
        && src.contains("environment")
    {
        msg.push_str(" (from the environment)");
    }
    ConfigError::Value {
        file: file.to_string(),
        key: if key.is_empty() {
            "(top level)".into()
        } else {
            key
        },
        msg,
    }
}

/// Appends `field` to a key path unless figment already put it there.
fn push_field(key: &mut String, field: &str) {
    if key == field || key.ends_with(&format!(".{field}")) {
        return;
    }
    if !key.is_empty() {
        key.push('.');
    }
    key.push_str(field);
}

/// Parses a humantime duration for serde (`"5s"`, `"1250ms"`, `"2m"`).
pub(crate) mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub(crate) fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?}: {e} (write e.g. \"5s\", \"1250ms\", \"2m\")"
            ))
        })
    }

    pub(crate) fn de_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        de(d).map(Some)
    }
}
