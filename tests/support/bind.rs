//! BIND 9 (`named -g`, Debian package `bind9`) as a recursive resolver that applies response
//! policy zones: each RPZ is a `type secondary` zone of a primary on loopback listed in
//! `response-policy { zone ...; } qname-wait-recurse no`, and the names the test resolves are
//! `forward only` zones to loopback servers; transfers may be TSIG-signed. Runs in the
//! foreground as the current user with every file in its temp dir, IPv4 only, no control
//! channel, no DNSSEC validation. Nothing leaves loopback: every other name is forwarded to a
//! loopback port where nothing listens, and the root hints point at 127.0.0.1.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use super::dns::{Message, Query, RecordType};
use super::knot::{fqdn, soa_ready};
use super::proc::{Proc, READY_TIMEOUT, free_port, require, temp_dir};
use super::xfr::TestKey;

/// A running named; killed (by PID) when dropped.
pub struct Bind {
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    pub proc: Proc,
}

/// A response policy zone BIND transfers from a primary.
#[derive(Clone)]
struct Rpz {
    zone: String,
    primary: SocketAddr,
    key: Option<TestKey>,
}

/// Builder for [`Bind`].
#[derive(Clone)]
pub struct BindBuilder {
    port: Option<u16>,
    source: String,
    rpz: Vec<Rpz>,
    forwards: Vec<(String, Vec<SocketAddr>)>,
}

impl Default for BindBuilder {
    fn default() -> Self {
        BindBuilder {
            port: None,
            source: "127.0.0.1".into(),
            rpz: Vec::new(),
            forwards: Vec::new(),
        }
    }
}

impl BindBuilder {
    /// The port on 127.0.0.1 (default: a free one); lets a primary list it for NOTIFY
    /// before BIND starts.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The loopback address BIND sends from (queries, SOA polls, transfers; default
    /// 127.0.0.1): lets a test tell BIND's requests from other clients'.
    pub fn source(mut self, ip: &str) -> Self {
        self.source = ip.to_string();
        self
    }

    /// `zone` as a response policy zone: a secondary of `primary` (its SOA polls and
    /// transfers signed with `key` when given, as `primaries { ADDR key NAME; }`; NOTIFY
    /// accepted from the primary), listed in `response-policy`.
    pub fn response_policy(
        mut self,
        zone: &str,
        primary: SocketAddr,
        key: Option<TestKey>,
    ) -> Self {
        self.rpz.push(Rpz {
            zone: fqdn(zone),
            primary,
            key,
        });
        self
    }

    /// `zone NAME { type forward; forward only; forwarders { ... }; }`.
    pub fn forward_zone(mut self, name: &str, addrs: &[SocketAddr]) -> Self {
        self.forwards.push((fqdn(name), addrs.to_vec()));
        self
    }

    /// Starts named and waits (≤ 15 s) until it serves every policy zone (transferred: its
    /// SOA answers with AA).
    pub fn start(self) -> io::Result<Bind> {
        let named = require("named", "bind9");
        let dir = temp_dir("bind");
        let d = dir.path().to_path_buf();
        let port = self.port.unwrap_or_else(free_port);
        let nowhere = free_port();
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        std::fs::write(
            d.join("root.hints"),
            ".  3600000 IN NS a.root.test.\na.root.test. 3600000 IN A 127.0.0.1\n",
        )?;
        let policies: String = self
            .rpz
            .iter()
            .map(|r| format!(" zone \"{}\";", r.zone))
            .collect();
        let mut conf = format!(
            r#"// written by tests/support/bind.rs
options {{
    directory "{dir}";
    pid-file "{dir}/named.pid";
    session-keyfile "{dir}/session.key";
    managed-keys-directory "{dir}";
    dump-file "{dir}/cache.db";
    statistics-file "{dir}/named.stats";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    query-source address {source};
    notify-source {source};
    transfer-source {source};
    recursion yes;
    allow-query {{ any; }};
    allow-recursion {{ 127.0.0.0/8; }};
    dnssec-validation no;
    notify no;
    forward only;
    forwarders {{ 127.0.0.1 port {nowhere}; }};
    response-policy {{{policies} }} qname-wait-recurse no;
}};

controls {{ }};

logging {{
    channel everything {{ stderr; severity info; print-time yes; print-category yes; }};
    category default {{ everything; }};
    category rpz {{ everything; }};
    category xfer-in {{ everything; }};
    category notify {{ everything; }};
}};

zone "." {{ type hint; file "{dir}/root.hints"; }};
"#,
            dir = d.display(),
            source = self.source,
        );
        let mut keys: Vec<&str> = Vec::new();
        for r in &self.rpz {
            let signed = match &r.key {
                Some(k) => {
                    if !keys.contains(&k.name) {
                        keys.push(k.name);
                        conf.push_str(&format!("\n{}", k.bind_file()));
                    }
                    format!(" key \"{}\"", k.name)
                }
                None => String::new(),
            };
            conf.push_str(&format!(
                "\nzone \"{zone}\" {{\n    type secondary;\n    primaries port {p} {{ {ip}{signed}; }};\n    file \"{dir}/{file}.db\";\n    allow-notify {{ {ip}; }};\n}};\n",
                zone = r.zone,
                p = r.primary.port(),
                ip = r.primary.ip(),
                dir = d.display(),
                file = r.zone.trim_end_matches('.'),
            ));
        }
        for (name, addrs) in &self.forwards {
            let list: String = addrs
                .iter()
                .map(|a| format!(" {} port {};", a.ip(), a.port()))
                .collect();
            conf.push_str(&format!(
                "\nzone \"{name}\" {{ type forward; forward only; forwarders {{{list} }}; }};\n"
            ));
        }
        let conf_path = d.join("named.conf");
        std::fs::write(&conf_path, conf)?;

        // Fail fast with BIND's own words on a bad config.
        if let Some(check) = super::proc::which("named-checkconf") {
            let out = Command::new(check).arg(&conf_path).output()?;
            if !out.status.success() {
                return Err(io::Error::other(format!(
                    "named-checkconf {}: {}{}",
                    conf_path.display(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
        }

        let mut cmd = Command::new(named);
        cmd.arg("-4")
            .arg("-g")
            .arg("-n")
            .arg("1")
            .arg("-c")
            .arg(&conf_path)
            .arg("-u")
            .arg(whoami());
        let zones: Vec<String> = self.rpz.iter().map(|r| r.zone.clone()).collect();
        let proc = Proc::start("named", cmd, dir, READY_TIMEOUT, || {
            zones.iter().all(|z| soa_ready(addr, z))
        })?;
        Ok(Bind { addr, proc })
    }
}

/// The user named keeps running as (`-u`): the current one.
fn whoami() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "root".into())
}

impl Bind {
    pub fn builder() -> BindBuilder {
        BindBuilder::default()
    }

    /// A recursive query (RD set) to this named over UDP; panics with its log when there is
    /// no answer.
    pub fn resolve(&self, name: &str, rtype: RecordType) -> Message {
        Query::new(name, rtype)
            .rd(true)
            .timeout(Duration::from_secs(5))
            .udp(self.addr)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.proc.logs()))
    }
}
