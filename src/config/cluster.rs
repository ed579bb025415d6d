//! `[cluster]`: several regdns nodes share one state in etcd (docs/design.md#3-configuration, docs/design.md#10-scale-and-high-availability). Holds no
//! secret: the etcd password and the client key are files named here, never values.
//! Only the shape of each value is checked here; [`ClusterConfig::validate`] checks the rest.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Default lease TTL of a node (membership, health observations, leadership).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(5);
/// Shortest lease TTL etcd accepts with a useful margin (keepalive at a third of it).
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(2);

/// How the live nodes' observations of an instance combine into the health every node
/// decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HealthQuorum {
    /// Down as soon as one live node sees it down.
    Any,
    /// Down when more than half of the live nodes that observed it see it down.
    #[default]
    Majority,
    /// Down only when every live node that observed it sees it down.
    All,
}

impl std::fmt::Display for HealthQuorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HealthQuorum::Any => "any",
            HealthQuorum::Majority => "majority",
            HealthQuorum::All => "all",
        })
    }
}

/// `[cluster]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// etcd client URLs (`http://` or `https://`), tried in turn.
    pub etcd: Vec<String>,
    /// Key prefix of this regdns deployment in etcd.
    #[serde(default = "d_prefix")]
    pub prefix: String,
    /// This node's name, unique in the cluster (default: the host name).
    #[serde(default)]
    pub node: Option<String>,
    /// Lease TTL: a node that stops renewing drops out after it.
    #[serde(default = "d_ttl", deserialize_with = "super::duration::de")]
    pub lease_ttl: Duration,
    /// `any`, `majority` or `all`.
    #[serde(default)]
    pub health_quorum: HealthQuorum,
    /// CA certificates (PEM) that sign etcd's server certificates.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for etcd's `--client-cert-auth`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Key of the client certificate (PEM).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// etcd user (with `password_file`).
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the etcd user's password (one line).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Timeout of one etcd request.
    #[serde(default = "d_timeout", deserialize_with = "super::duration::de")]
    pub request_timeout: Duration,
    /// The views whose client network this node sits in: its observations decide those
    /// views' health (with the observers that declare them), see `[[view]] health_quorum`.
    #[serde(default)]
    pub views: Vec<String>,
}

fn d_prefix() -> String {
    "/regdns".into()
}
fn d_ttl() -> Duration {
    DEFAULT_LEASE_TTL
}
fn d_timeout() -> Duration {
    Duration::from_secs(2)
}

/// A `[cluster]` value that is not valid: the key path and what would be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {msg}")]
pub struct ClusterConfigError {
    /// Key path, e.g. `cluster.etcd[1]`.
    pub key: String,
    /// What is wrong and what would be valid.
    pub msg: String,
}

fn err(key: impl Into<String>, msg: impl Into<String>) -> ClusterConfigError {
    ClusterConfigError {
        key: key.into(),
        msg: msg.into(),
    }
}

impl ClusterConfig {
    /// This node's name: `node`, else the host name.
    pub fn node_name(&self) -> String {
        self.node.clone().unwrap_or_else(host_name)
    }

    /// Checks every value; file paths must already be resolved against the config's
    /// directory.
    pub fn validate(&self) -> Result<(), ClusterConfigError> {
        if self.etcd.is_empty() {
            return Err(err(
                "cluster.etcd",
                "at least one etcd client URL is needed, e.g. [\"https://10.0.0.5:2379\"]",
            ));
        }
        for (i, u) in self.etcd.iter().enumerate() {
            let key = format!("cluster.etcd[{i}]");
            let url = url::Url::parse(u).map_err(|e| {
                err(
                    &key,
                    format!("{u:?} is not a URL ({e}); write e.g. \"https://10.0.0.5:2379\""),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(err(
                    &key,
                    format!("{u:?}: want http://HOST:PORT or https://HOST:PORT"),
                ));
            }
            if url.scheme() == "http" && (self.cert_file.is_some() || self.ca_file.is_some()) {
                return Err(err(
                    &key,
                    format!(
                        "{u:?} is plain http but cluster.ca_file/cert_file are set: use https://"
                    ),
                ));
            }
        }
        if !self.prefix.starts_with('/') || self.prefix.ends_with('/') || self.prefix.len() < 2 {
            return Err(err(
                "cluster.prefix",
                format!(
                    "{:?}: want a key prefix like \"/regdns/prod\" (leading /, no trailing /)",
                    self.prefix
                ),
            ));
        }
        let node = self.node_name();
        if node.is_empty()
            || !node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(err(
                "cluster.node",
                format!("{node:?}: want a unique name of letters, digits, '-', '_' or '.'"),
            ));
        }
        if self.lease_ttl < MIN_LEASE_TTL || self.lease_ttl.subsec_millis() != 0 {
            return Err(err(
                "cluster.lease_ttl",
                format!(
                    "{}: want whole seconds, at least {}s (etcd leases are in seconds)",
                    humantime::format_duration(self.lease_ttl),
                    MIN_LEASE_TTL.as_secs()
                ),
            ));
        }
        if self.request_timeout.is_zero() || self.request_timeout > self.lease_ttl {
            return Err(err(
                "cluster.request_timeout",
                "want more than 0 and at most lease_ttl",
            ));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(err(
                if self.cert_file.is_some() {
                    "cluster.key_file"
                } else {
                    "cluster.cert_file"
                },
                "a client certificate needs both cert_file and key_file",
            ));
        }
        if self.username.is_some() != self.password_file.is_some() {
            return Err(err(
                if self.username.is_some() {
                    "cluster.password_file"
                } else {
                    "cluster.username"
                },
                "etcd authentication needs both username and password_file (the password is never written in the config)",
            ));
        }
        for (key, f) in [
            ("cluster.ca_file", &self.ca_file),
            ("cluster.cert_file", &self.cert_file),
            ("cluster.key_file", &self.key_file),
            ("cluster.password_file", &self.password_file),
        ] {
            if let Some(f) = f
                && let Err(e) = std::fs::metadata(f)
            {
                return Err(err(key, format!("{}: {e}", f.display())));
            }
        }
        Ok(())
    }
}

/// The host name (`/proc/sys/kernel/hostname`, `HOSTNAME`, else `regdns`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "regdns".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ClusterConfig {
        toml::from_str::<ClusterConfig>(
            r#"etcd = ["http://127.0.0.1:2379"]
node = "hz-1""#,
        )
        .unwrap()
    }

    #[test]
    fn defaults() {
        let c = base();
        assert_eq!(c.prefix, "/regdns");
        assert_eq!(c.lease_ttl, DEFAULT_LEASE_TTL);
        assert_eq!(c.health_quorum, HealthQuorum::Majority);
        assert!(c.validate().is_ok());
    }

    type Change = Box<dyn Fn(&mut ClusterConfig)>;

    #[test]
    fn bad_values_name_their_key() {
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|c| c.etcd.clear()), "cluster.etcd"),
            (
                Box::new(|c| c.etcd = vec!["10.0.0.1:2379".into()]),
                "cluster.etcd[0]",
            ),
            (Box::new(|c| c.prefix = "regdns/".into()), "cluster.prefix"),
            (Box::new(|c| c.node = Some("hz 1".into())), "cluster.node"),
            (
                Box::new(|c| c.lease_ttl = Duration::from_millis(1500)),
                "cluster.lease_ttl",
            ),
            (
                Box::new(|c| c.username = Some("regdns".into())),
                "cluster.password_file",
            ),
            (
                Box::new(|c| {
                    c.cert_file = Some("/nonexistent".into());
                    c.etcd = vec!["https://127.0.0.1:2379".into()];
                }),
                "cluster.key_file",
            ),
            (
                Box::new(|c| c.cert_file = Some("/nonexistent".into())),
                "cluster.etcd[0]",
            ),
            (
                Box::new(|c| {
                    c.ca_file = Some("/nonexistent/ca.pem".into());
                    c.etcd = vec!["https://127.0.0.1:2379".into()];
                }),
                "cluster.ca_file",
            ),
        ];
        for (change, key) in cases {
            let mut c = base();
            change(&mut c);
            assert_eq!(c.validate().unwrap_err().key, key);
        }
    }

    #[test]
    fn quorum_words() {
        for (w, q) in [
            ("any", HealthQuorum::Any),
            ("majority", HealthQuorum::Majority),
            ("all", HealthQuorum::All),
        ] {
            let c: ClusterConfig = toml::from_str(&format!(
                "etcd = [\"http://127.0.0.1:2379\"]\nhealth_quorum = \"{w}\""
            ))
            .unwrap();
            assert_eq!(c.health_quorum, q);
            assert_eq!(q.to_string(), w);
        }
        assert!(
            toml::from_str::<ClusterConfig>("etcd = [\"http://x:1\"]\nhealth_quorum = \"most\"")
                .is_err()
        );
    }
}
