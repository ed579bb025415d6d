//! `[server]`: listening sockets, admin API, state directory, logging.
//! Defaults are named constants so `regdns check` and the README agree.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Default DNS listen addresses (UDP and TCP on each).
pub const DEFAULT_LISTEN: &[&str] = &["0.0.0.0:53", "[::]:53"];
/// Default admin API address: loopback only.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:8053";
/// Default admin token file.
pub const DEFAULT_ADMIN_TOKEN_FILE: &str = "/etc/regdns/admin.token";
/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/regdns";
/// Largest UDP response regdns sends (RFC 9715 / DNS flag day 2020 value).
pub const DEFAULT_MAX_UDP_PAYLOAD: u16 = 1232;
/// Idle TCP connections are closed after this long.
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many TCP connections are served at once; more wait in the backlog.
pub const DEFAULT_TCP_MAX_CONNECTIONS: usize = 1024;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[server]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// DNS addresses; each serves UDP and TCP.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// Admin HTTP API address.
    #[serde(default = "default_admin")]
    pub admin: SocketAddr,
    /// Bearer token file for the admin API.
    #[serde(default = "default_token_file")]
    pub admin_token_file: PathBuf,
    /// Where decisions, overrides and the event journal live.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// `text` or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Resolver used to flatten apex CNAMEs (`ip:port`); default: first `nameserver` of
    /// `/etc/resolv.conf`.
    #[serde(default)]
    pub upstream: Option<SocketAddr>,
    /// Largest UDP response sent (512..=4096).
    #[serde(default = "default_max_udp")]
    pub max_udp_payload: u16,
    /// Idle TCP connection timeout.
    #[serde(default = "default_tcp_idle", deserialize_with = "super::duration::de")]
    pub tcp_idle_timeout: Duration,
    /// Concurrent TCP connections served.
    #[serde(default = "default_tcp_max")]
    pub tcp_max_connections: usize,
    /// UDP sockets (one thread each) per listen address, `SO_REUSEPORT`; default: one per
    /// CPU, at most 4.
    #[serde(default)]
    pub udp_workers: Option<usize>,
    /// Serve the read-only data of the status page (`GET /`, `/status`, `/status/history`,
    /// `/events`) without the bearer token. Actions always need the token.
    #[serde(default)]
    pub status_public: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            admin: default_admin(),
            admin_token_file: default_token_file(),
            state_dir: default_state_dir(),
            log_format: LogFormat::default(),
            upstream: None,
            max_udp_payload: DEFAULT_MAX_UDP_PAYLOAD,
            tcp_idle_timeout: DEFAULT_TCP_IDLE_TIMEOUT,
            tcp_max_connections: DEFAULT_TCP_MAX_CONNECTIONS,
            udp_workers: None,
            status_public: false,
        }
    }
}

fn default_listen() -> Vec<SocketAddr> {
    DEFAULT_LISTEN
        .iter()
        .map(|s| s.parse().expect("constant address"))
        .collect()
}
fn default_admin() -> SocketAddr {
    DEFAULT_ADMIN.parse().expect("constant address")
}
fn default_token_file() -> PathBuf {
    DEFAULT_ADMIN_TOKEN_FILE.into()
}
fn default_state_dir() -> PathBuf {
    DEFAULT_STATE_DIR.into()
}
fn default_max_udp() -> u16 {
    DEFAULT_MAX_UDP_PAYLOAD
}
fn default_tcp_idle() -> Duration {
    DEFAULT_TCP_IDLE_TIMEOUT
}
fn default_tcp_max() -> usize {
    DEFAULT_TCP_MAX_CONNECTIONS
}
