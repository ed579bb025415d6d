//! Zone transfer tests: regdns as a hidden primary with two views and one TSIG key per
//! view, real Knot and NSD secondaries on loopback, and `kdig` as an independent client.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use super::config::Config;
use super::knot::soa_ready;
use super::proc::{self, Proc};
use super::regdns::{PROBE, Regdns, answer, two_region_targets};

pub const ZONE: &str = "registry.io.";
pub const ENDPOINT: &str = "cross-region.registry.io.";

/// A TSIG key as kdig (`-y`) and the configs want it.
#[derive(Clone, Copy)]
pub struct TestKey {
    pub name: &'static str,
    pub algorithm: &'static str,
    pub secret: &'static str,
}

/// Selects the `vpc` view.
pub const VPC_KEY: TestKey = TestKey {
    name: "vpc-key.",
    algorithm: "hmac-sha256",
    secret: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=",
};
/// Selects the `default` view.
pub const PUB_KEY: TestKey = TestKey {
    name: "pub-key.",
    algorithm: "hmac-sha512",
    secret: "cHVibGljcHVibGljcHVibGljcHVibGljcHVibGljMTI=",
};

impl TestKey {
    /// `-y` argument of kdig.
    pub fn kdig(&self) -> String {
        format!("{}:{}:{}", self.algorithm, self.name, self.secret)
    }

    /// BIND key file text.
    pub fn bind_file(&self) -> String {
        format!(
            "key \"{}\" {{\n\talgorithm {};\n\tsecret \"{}\";\n}};\n",
            self.name, self.algorithm, self.secret
        )
    }

    /// As the library loads it.
    pub fn key(&self) -> regdns::tsig::Key {
        regdns::tsig::parse_key_file(&self.bind_file(), "test")
            .unwrap()
            .remove(0)
    }
}

/// Starts regdns on `dns` with a config (zone `registry.io.` with `extra_zone_lines`, views
/// `vpc` for 127.0.0.2 and `default`, keys [`VPC_KEY`] → vpc and [`PUB_KEY`] → default, the
/// two registries) and the zone (with `extra_records`); returns it and its admin address.
pub fn start_primary(
    dns: SocketAddr,
    hz: &str,
    zjk: &str,
    extra_zone_lines: &str,
    extra_records: &str,
) -> (Regdns, SocketAddr) {
    let config = Config::on(dns)
        .zone_with(ZONE, "registry.io.zone", extra_zone_lines)
        .view("vpc", &["127.0.0.2/32"])
        .raw("[[tsig_key]]\nfile = \"vpc.key\"\nview = \"vpc\"\n")
        .raw("[[tsig_key]]\nfile = \"pub.key\"\nview = \"default\"\n")
        .instance("hangzhou", &format!("{hz}\n{PROBE}"))
        .instance("zhangjiakou", &format!("{zjk}\n{PROBE}"))
        .endpoint(
            ENDPOINT,
            &format!(
                "ttl = 5\nfailback_hold = \"1s\"\n\n{}",
                two_region_targets()
            ),
        );
    let admin = config.admin;
    let r = Regdns::launch(config)
        .file("vpc.key", VPC_KEY.bind_file())
        .file("pub.key", PUB_KEY.bind_file())
        .file(
            "registry.io.zone",
            format!(
                "$ORIGIN registry.io.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n NS ns1\nns1 A 127.0.0.1\n{extra_records}"
            ),
        )
        .ready(move || answer(dns, "127.0.0.1").is_some())
        .start();
    (r, admin)
}

/// `kdig` output (stdout and stderr) for the arguments, fields separated by one space.
pub fn kdig(args: &[&str]) -> String {
    let bin = proc::require("kdig", "knot-dnsutils");
    let out = Command::new(bin)
        .args(args)
        .args(["+time=5", "+retry=0"])
        .output()
        .expect("kdig runs");
    // Whitespace normalized: one space between fields.
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .lines()
    .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    .collect::<Vec<_>>()
    .join("\n")
}

/// The endpoint's answer as a secondary serves it (`A 10.1.3.4`, `CNAME …`), any source.
pub fn served(addr: SocketAddr) -> Option<String> {
    let m = super::dns::Query::new(ENDPOINT, super::dns::RecordType::A)
        .timeout(Duration::from_millis(300))
        .udp(addr)
        .ok()?;
    let a: Vec<String> = m
        .answers
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect();
    (!a.is_empty()).then(|| a.join(","))
}

/// Polls until `addr` serves an answer containing `want` (generous deadline).
pub async fn wait_served(addr: SocketAddr, want: &str, what: &str, logs: impl Fn() -> String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = tokio::task::spawn_blocking(move || served(addr))
            .await
            .unwrap();
        if got.as_deref().is_some_and(|g| g.contains(want)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} serves {got:?}, never {want}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Knot DNS as a secondary of `primary` for [`ZONE`], transferring with `key`, accepting
/// NOTIFY signed with it.
pub fn knot_secondary(primary: SocketAddr, key: TestKey) -> (Proc, SocketAddr) {
    let addr = SocketAddr::new([127, 0, 0, 1].into(), proc::free_port());
    (knot_secondary_on(addr, primary, key), addr)
}

/// [`knot_secondary`] on a chosen address.
pub fn knot_secondary_on(addr: SocketAddr, primary: SocketAddr, key: TestKey) -> Proc {
    let knotd = proc::require("knotd", "knot");
    let dir = proc::temp_dir("knot-secondary");
    let d = dir.path().to_path_buf();
    std::fs::create_dir_all(d.join("db")).unwrap();
    let conf = format!(
        r#"server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{d}/db"
log:
  - target: "{d}/knot.log"
    any: info
key:
  - id: {kname}
    algorithm: {alg}
    secret: {secret}
remote:
  - id: primary
    address: {pip}@{pport}
    key: {kname}
acl:
  - id: notify-from-primary
    address: {pip}
    key: {kname}
    action: notify
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    semantic-checks: off
zone:
  - domain: "{ZONE}"
    file: "{d}/registry.io.zone"
    master: primary
    acl: notify-from-primary
"#,
        d = d.display(),
        port = addr.port(),
        kname = key.name,
        alg = key.algorithm,
        secret = key.secret,
        pip = primary.ip(),
        pport = primary.port(),
    );
    std::fs::write(d.join("knot.conf"), conf).unwrap();
    let mut cmd = Command::new(knotd);
    cmd.arg("-c").arg(d.join("knot.conf"));
    let log = d.join("knot.log");
    Proc::start_checked("knotd", cmd, dir, Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("failed to bind")) {
            return Err(l.to_string());
        }
        Ok(soa_ready(addr, ZONE))
    })
    .expect("knot secondary transfers the zone")
}

/// NSD as a secondary of `primary` for [`ZONE`] with `key` (transfers and NOTIFY).
pub fn nsd_secondary(primary: SocketAddr, key: TestKey) -> (Proc, SocketAddr) {
    let addr = SocketAddr::new([127, 0, 0, 1].into(), proc::free_port());
    (nsd_secondary_on(addr, primary, key), addr)
}

/// [`nsd_secondary`] on a chosen address.
pub fn nsd_secondary_on(addr: SocketAddr, primary: SocketAddr, key: TestKey) -> Proc {
    let nsd = proc::require("nsd", "nsd");
    let dir = proc::temp_dir("nsd-secondary");
    let d = dir.path().to_path_buf();
    let conf = format!(
        r#"server:
    ip-address: 127.0.0.1@{port}
    zonesdir: "{d}"
    pidfile: "{d}/nsd.pid"
    database: ""
    xfrdfile: "{d}/xfrd.state"
    zonelistfile: "{d}/zone.list"
    username: ""
    chroot: ""
    verbosity: 2
    logfile: "{d}/nsd.log"
remote-control:
    control-enable: no
key:
    name: "{kname}"
    algorithm: {alg}
    secret: "{secret}"
zone:
    name: "{ZONE}"
    zonefile: "registry.io.sec"
    request-xfr: {pip}@{pport} {kname}
    allow-notify: {pip} {kname}
"#,
        d = d.display(),
        port = addr.port(),
        kname = key.name,
        alg = key.algorithm,
        secret = key.secret,
        pip = primary.ip(),
        pport = primary.port(),
    );
    std::fs::write(d.join("nsd.conf"), conf).unwrap();
    let mut cmd = Command::new(nsd);
    cmd.arg("-d").arg("-c").arg(d.join("nsd.conf"));
    Proc::start("nsd", cmd, dir, Duration::from_secs(30), || {
        soa_ready(addr, ZONE)
    })
    .expect("nsd secondary transfers the zone")
}

/// The log of a secondary (Knot's log file or NSD's), for messages and IXFR checks.
pub fn secondary_log(p: &Proc) -> String {
    let mut s = p.logs();
    for f in ["knot.log", "nsd.log"] {
        if let Ok(t) = std::fs::read_to_string(p.dir().join(f)) {
            s.push_str(&t);
        }
    }
    s
}
