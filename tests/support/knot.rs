//! Knot DNS (`knotd`, Debian package `knot`) as a reference authoritative server: runs as the
//! current user, all state in its temp dir, one UDP and one TCP worker, ready when every zone's
//! SOA answers with AA. Transfers are refused (no ACL) unless the builder adds one.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::dns::{Query, RecordType};
use super::proc::{Proc, READY_TIMEOUT, free_port, require, temp_dir};

/// A zone: its origin and its RFC 1035 text.
#[derive(Clone, Debug)]
pub struct Zone {
    pub origin: String,
    pub text: String,
}

impl Zone {
    /// `origin` with or without the trailing dot.
    pub fn new(origin: &str, text: &str) -> Zone {
        Zone {
            origin: fqdn(origin),
            text: text.to_string(),
        }
    }

    /// Reads the zone text from `path`.
    pub fn from_file(origin: &str, path: &Path) -> Zone {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read zone file {}: {e}", path.display()));
        Zone::new(origin, &text)
    }

    /// File name used in a server's dir: `registry.io.zone`, `root.zone` for ".".
    pub fn file_name(&self) -> String {
        let base = self.origin.trim_end_matches('.');
        if base.is_empty() {
            "root.zone".into()
        } else {
            format!("{base}.zone")
        }
    }
}

/// `name` with exactly one trailing dot.
pub fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// A running knotd; killed (by PID) when dropped.
pub struct Knot {
    pub addr: SocketAddr,
    pub proc: Proc,
}

/// Builder for [`Knot`].
#[derive(Default, Clone)]
pub struct KnotBuilder {
    listen: Option<SocketAddr>,
    zones: Vec<Zone>,
    zone_lines: Vec<String>,
    extra: String,
}

impl KnotBuilder {
    /// Listen address (UDP and TCP); default 127.0.0.1 on a free port.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    pub fn zone(mut self, zone: Zone) -> Self {
        self.zones.push(zone);
        self
    }

    /// A line added under every zone, e.g. `acl: transfer_all`.
    pub fn zone_line(mut self, line: &str) -> Self {
        self.zone_lines.push(line.to_string());
        self
    }

    /// Top-level configuration appended verbatim, e.g. an `acl:` section.
    pub fn extra_config(mut self, text: &str) -> Self {
        self.extra.push_str(text);
        self.extra.push('\n');
        self
    }

    /// Allows AXFR/IXFR from 127.0.0.0/8 (adds an ACL and uses it in every zone).
    pub fn allow_transfer_from_loopback(self) -> Self {
        self.extra_config(
            "acl:\n  - id: e2e_transfer\n    address: 127.0.0.0/8\n    action: transfer\n",
        )
        .zone_line("acl: e2e_transfer")
    }

    /// Starts knotd and waits (≤ 15 s) until every zone's SOA answers with AA.
    pub fn start(self) -> io::Result<Knot> {
        let knotd = require("knotd", "knot");
        assert!(!self.zones.is_empty(), "Knot needs at least one zone");
        let addr = self
            .listen
            .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port()));
        let dir = temp_dir("knot");
        let d = dir.path().to_path_buf();
        std::fs::create_dir_all(d.join("db"))?;
        for z in &self.zones {
            std::fs::write(d.join(z.file_name()), &z.text)?;
        }
        let listen = match addr.ip() {
            IpAddr::V4(ip) => format!("{ip}@{}", addr.port()),
            IpAddr::V6(ip) => format!("{ip}@{}", addr.port()),
        };
        let mut conf = format!(
            r#"# written by tests/support/knot.rs
server:
    rundir: "{dir}"
    listen: {listen}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

database:
    storage: "{dir}/db"

log:
  - target: "{dir}/knot.log"
    any: info

template:
  - id: default
    storage: "{dir}"
    semantic-checks: off
    journal-content: none
    zonefile-sync: -1

"#,
            dir = d.display()
        );
        conf.push_str(&self.extra);
        conf.push_str("\nzone:\n");
        for z in &self.zones {
            conf.push_str(&format!("  - domain: \"{}\"\n", z.origin));
            conf.push_str(&format!("    file: \"{}\"\n", z.file_name()));
            for l in &self.zone_lines {
                conf.push_str(&format!("    {l}\n"));
            }
        }
        let conf_path = d.join("knot.conf");
        std::fs::write(&conf_path, conf)?;
        let mut cmd = Command::new(knotd);
        cmd.arg("-c").arg(&conf_path);
        let origins: Vec<String> = self.zones.iter().map(|z| z.origin.clone()).collect();
        let log = d.join("knot.log");
        let proc = Proc::start_checked("knotd", cmd, dir, READY_TIMEOUT, || {
            // Knot keeps running when a zone fails to load or an address cannot be bound:
            // give up at once on those log lines instead of waiting for the timeout.
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(l) = text.lines().find(|l| {
                l.contains("failed to load zone")
                    || l.contains("cannot bind")
                    || l.contains("failed to bind")
            }) {
                return Err(l.to_string());
            }
            Ok(origins.iter().all(|o| soa_ready(addr, o)))
        })?;
        Ok(Knot { addr, proc })
    }
}

/// True when `addr` answers `origin SOA` with NOERROR, AA and an SOA in the answer.
pub fn soa_ready(addr: SocketAddr, origin: &str) -> bool {
    match Query::new(origin, RecordType::SOA)
        .timeout(Duration::from_millis(200))
        .udp(addr)
    {
        Ok(m) => {
            m.metadata.authoritative
                && u16::from(m.metadata.response_code) == 0
                && m.answers.iter().any(|r| r.record_type() == RecordType::SOA)
        }
        Err(_) => false,
    }
}

impl Knot {
    pub fn builder() -> KnotBuilder {
        KnotBuilder::default()
    }

    /// Knot on 127.0.0.1 (free port) serving `zones`; panics with its logs on failure.
    pub fn start(zones: &[Zone]) -> Knot {
        zones
            .iter()
            .fold(Knot::builder(), |b, z| b.zone(z.clone()))
            .start()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Knot on `addr` serving `zones`.
    pub fn start_on(addr: SocketAddr, zones: &[Zone]) -> io::Result<Knot> {
        zones
            .iter()
            .fold(Knot::builder().listen(addr), |b, z| b.zone(z.clone()))
            .start()
    }
}
