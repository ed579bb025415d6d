//! Unbound (`unbound -d -c CONF`) as the resolver in front of an authoritative server: a
//! `forward-zone` (VPC resolvers forwarding the zone) or a `stub-zone` (on-prem resolvers
//! following a delegation), optionally applying response policy zones (`rpz:` clauses
//! transferred from a primary, the `respip` module). No DNSSEC validation, no privileges
//! dropped, no chroot, every file in the temp dir. Everything unbound sends goes to loopback:
//! outgoing interface 127.0.0.1, the root is a stub to a loopback port where nothing
//! listens, IPv6 off. Remote control on a loopback port without certificates gives
//! [`Unbound::flush`].

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::dns::{Message, Query, RecordType};
use super::proc::{Proc, READY_TIMEOUT, free_port, require, temp_dir};

/// A running unbound; killed (by PID) when dropped.
pub struct Unbound {
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    pub conf: PathBuf,
    pub proc: Proc,
}

/// Builder for [`Unbound`].
#[derive(Clone)]
pub struct UnboundBuilder {
    forwards: Vec<(String, Vec<SocketAddr>)>,
    stubs: Vec<(String, Vec<SocketAddr>)>,
    cache_max_ttl: u32,
    cache_max_negative_ttl: u32,
    verbosity: u8,
    extra: String,
    outgoing: String,
    port: Option<u16>,
    rpz: Vec<(String, SocketAddr)>,
    forward_first: Vec<String>,
}

impl Default for UnboundBuilder {
    fn default() -> Self {
        UnboundBuilder {
            forwards: Vec::new(),
            stubs: Vec::new(),
            cache_max_ttl: 86400,
            cache_max_negative_ttl: 0,
            verbosity: 1,
            extra: String::new(),
            outgoing: "127.0.0.1".into(),
            port: None,
            rpz: Vec::new(),
            forward_first: Vec::new(),
        }
    }
}

fn at(a: &SocketAddr) -> String {
    format!("{}@{}", a.ip(), a.port())
}

impl UnboundBuilder {
    /// The loopback address unbound sends its queries from (default 127.0.0.1): lets a test
    /// put the resolver in a view selected by source address.
    pub fn outgoing_interface(mut self, ip: &str) -> Self {
        self.outgoing = ip.to_string();
        self
    }

    /// `forward-zone: name` sending every query for it to `addrs` (RD set; the answers are
    /// cached like any others).
    pub fn forward_zone(mut self, name: &str, addrs: &[SocketAddr]) -> Self {
        self.forwards.push((name.to_string(), addrs.to_vec()));
        self
    }

    /// [`UnboundBuilder::forward_zone`] with `forward-first: yes`: when the forwarders fail
    /// (SERVFAIL, no answer), unbound resolves the name itself (here: through its stubs).
    pub fn forward_zone_first(mut self, name: &str, addrs: &[SocketAddr]) -> Self {
        self.forward_first.push(name.to_string());
        self.forward_zone(name, addrs)
    }

    /// `stub-zone: name` with `stub-addr`s: unbound iterates from there (follows referrals,
    /// uses glue). The servers a referral points to are reached on port 53.
    pub fn stub_zone(mut self, name: &str, addrs: &[SocketAddr]) -> Self {
        self.stubs.push((name.to_string(), addrs.to_vec()));
        self
    }

    /// The port on 127.0.0.1 (default: a free one); lets a primary list it for NOTIFY
    /// before unbound starts.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// An `rpz:` clause: the response policy zone `name` transferred from `primary` (probe
    /// and IXFR/AXFR from the outgoing interface, NOTIFY accepted from it), applied by the
    /// `respip` module.
    pub fn rpz(mut self, name: &str, primary: SocketAddr) -> Self {
        self.rpz.push((name.to_string(), primary));
        self
    }

    /// `cache-max-ttl` (default 86400: the record TTLs count).
    pub fn cache_max_ttl(mut self, secs: u32) -> Self {
        self.cache_max_ttl = secs;
        self
    }

    /// `cache-max-negative-ttl` (default 0: negative answers are not reused).
    pub fn cache_max_negative_ttl(mut self, secs: u32) -> Self {
        self.cache_max_negative_ttl = secs;
        self
    }

    /// `verbosity` (default 1); 3-4 to debug a failing test.
    pub fn verbosity(mut self, v: u8) -> Self {
        self.verbosity = v;
        self
    }

    /// Lines appended to the `server:` clause verbatim (indent them with 4 spaces).
    pub fn server_lines(mut self, text: &str) -> Self {
        self.extra.push_str(text);
        self.extra.push('\n');
        self
    }

    /// Starts unbound on 127.0.0.1 (free port) and waits (≤ 15 s) until it answers
    /// `localhost. A` locally and `unbound-control status` works.
    pub fn start(self) -> io::Result<Unbound> {
        let unbound = require("unbound", "unbound");
        require("unbound-control", "unbound");
        let dir = temp_dir("unbound");
        let d = dir.path().to_path_buf();
        let port = self.port.unwrap_or_else(free_port);
        let control_port = free_port();
        let nowhere = free_port(); // the root stub: nothing listens there
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let mut conf = format!(
            r#"# written by tests/support/unbound.rs
server:
    verbosity: {verbosity}
    use-syslog: no
    logfile: ""
    log-queries: yes
    log-replies: yes
    log-servfail: yes
    directory: "{dir}"
    chroot: ""
    username: ""
    pidfile: "{dir}/unbound.pid"
    interface: 127.0.0.1
    port: {port}
    outgoing-interface: {outgoing}
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    num-threads: 1
    so-reuseport: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "{modules}"
    qname-minimisation: no
    prefetch: no
    serve-expired: no
    cache-min-ttl: 0
    cache-max-ttl: {cache_max_ttl}
    cache-max-negative-ttl: {cache_max_negative_ttl}
    infra-host-ttl: 60
    outgoing-range: 64
    num-queries-per-thread: 32
    msg-cache-size: 4m
    rrset-cache-size: 4m
    key-cache-size: 1m
    neg-cache-size: 1m
    infra-cache-numhosts: 100
    val-log-level: 0
"#,
            verbosity = self.verbosity,
            dir = d.display(),
            cache_max_ttl = self.cache_max_ttl,
            cache_max_negative_ttl = self.cache_max_negative_ttl,
            outgoing = self.outgoing,
            modules = if self.rpz.is_empty() {
                "iterator"
            } else {
                "respip iterator"
            },
        );
        for (name, _) in self.forwards.iter().chain(self.stubs.iter()) {
            conf.push_str(&format!("    domain-insecure: \"{name}\"\n"));
            // An RFC 1918 answer from a forwarded/stub zone must not be stripped.
            conf.push_str(&format!("    private-domain: \"{name}\"\n"));
        }
        conf.push_str(&self.extra);
        conf.push_str(&format!(
            r#"
remote-control:
    control-enable: yes
    control-interface: 127.0.0.1
    control-port: {control_port}
    control-use-cert: no

# Nothing may leave loopback: the root is a stub to a port where nothing listens.
stub-zone:
    name: "."
    stub-addr: 127.0.0.1@{nowhere}
"#
        ));
        for (name, addrs) in &self.forwards {
            conf.push_str(&format!("\nforward-zone:\n    name: \"{name}\"\n"));
            if self.forward_first.contains(name) {
                conf.push_str("    forward-first: yes\n");
            }
            for a in addrs {
                conf.push_str(&format!("    forward-addr: {}\n", at(a)));
            }
        }
        for (name, addrs) in &self.stubs {
            conf.push_str(&format!("\nstub-zone:\n    name: \"{name}\"\n"));
            for a in addrs {
                conf.push_str(&format!("    stub-addr: {}\n", at(a)));
            }
        }
        for (i, (name, primary)) in self.rpz.iter().enumerate() {
            conf.push_str(&format!(
                "\nrpz:\n    name: \"{name}\"\n    primary: {}\n    zonefile: \"{}/rpz-{i}.zone\"\n    rpz-log: yes\n",
                at(primary),
                d.display()
            ));
        }
        let conf_path = d.join("unbound.conf");
        std::fs::write(&conf_path, conf)?;

        // Fail fast with unbound's own words on a bad config.
        let check = Command::new(require("unbound-checkconf", "unbound"))
            .arg(&conf_path)
            .output();
        if let Ok(out) = &check
            && !out.status.success()
        {
            return Err(io::Error::other(format!(
                "unbound-checkconf {}: {}{}",
                conf_path.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }

        let mut cmd = Command::new(unbound);
        cmd.arg("-d").arg("-c").arg(&conf_path);
        let cp = conf_path.clone();
        let proc = Proc::start("unbound", cmd, dir, READY_TIMEOUT, || {
            let local = Query::new("localhost.", RecordType::A)
                .rd(true)
                .timeout(Duration::from_millis(200))
                .udp(addr)
                .is_ok_and(|m| u16::from(m.metadata.response_code) == 0);
            local && control(&cp, &["status"]).is_ok_and(|o| o.status.success())
        })?;
        Ok(Unbound {
            addr,
            conf: conf_path,
            proc,
        })
    }
}

fn control(conf: &PathBuf, args: &[&str]) -> io::Result<Output> {
    Command::new(require("unbound-control", "unbound"))
        .arg("-c")
        .arg(conf)
        .args(args)
        .stdin(Stdio::null())
        .output()
}

impl Unbound {
    pub fn builder() -> UnboundBuilder {
        UnboundBuilder::default()
    }

    /// Runs `unbound-control -c CONF ARGS...`; an error (with its output) unless it succeeds.
    pub fn control(&self, args: &[&str]) -> io::Result<String> {
        let out = control(&self.conf, args)?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(io::Error::other(format!(
                "unbound-control {}: {text}",
                args.join(" ")
            )))
        }
    }

    /// Forgets everything cached at and below `zone` (records, negative answers, and the
    /// infrastructure cache of the servers), so the next query goes to the server again.
    pub fn flush(&self, zone: &str) {
        self.control(&["flush_zone", zone])
            .and_then(|_| self.control(&["flush_bogus"]))
            .and_then(|_| self.control(&["flush_negative"]))
            .and_then(|_| self.control(&["flush_infra", "all"]))
            .and_then(|_| self.control(&["flush_requestlist"]))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.proc.logs()));
    }

    /// A recursive query (RD set) to this unbound over UDP; panics with unbound's log when
    /// there is no answer.
    pub fn resolve(&self, name: &str, rtype: RecordType) -> Message {
        Query::new(name, rtype)
            .rd(true)
            .timeout(Duration::from_secs(5))
            .udp(self.addr)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.proc.logs()))
    }
}
