//! Apex CNAME flattening: an endpoint at a zone apex whose active target is a CNAME is
//! served as the target's A/AAAA records, resolved through `[server] upstream` (here Knot
//! serving the public zone); every CNAME target is resolved ahead, so a failover is served
//! at once; when the upstream goes away the last good answer is kept.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use regdns::sim::{Mode, SimRegistry};
use support::dns::{Query, RecordType, answer_rdata};
use support::knot::{Knot, Zone};
use support::proc::{self, Proc};

const PUBLIC: &str = "$ORIGIN cr.aliyuncs.com.\n$TTL 5\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n\
a-registry.cn-hangzhou A 203.0.113.10\na-registry.cn-hangzhou AAAA 2001:db8::10\nb-registry.cn-zhangjiakou A 203.0.113.20\n";

fn a(dns: SocketAddr) -> Vec<String> {
    let m = Query::new("cross-region.registry.io.", RecordType::A)
        .udp(dns)
        .unwrap();
    assert!(m.metadata.authoritative);
    answer_rdata(&m)
}

fn wait_a(dns: SocketAddr, want: &[&str], limit: Duration) {
    let t0 = Instant::now();
    loop {
        let got = a(dns);
        if got == want {
            return;
        }
        assert!(t0.elapsed() < limit, "apex A is {got:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn apex_cname_is_flattened_refreshed_and_kept() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hz = rt
        .block_on(SimRegistry::start(([127, 0, 0, 1], 0).into(), false))
        .unwrap();
    let zjk = rt
        .block_on(SimRegistry::start(([127, 0, 0, 1], 0).into(), false))
        .unwrap();
    let mut public = Knot::start(&[Zone::new("cr.aliyuncs.com.", PUBLIC)]);
    let dir = proc::temp_dir("regdns-flatten");
    let dns = SocketAddr::new([127, 0, 0, 1].into(), proc::free_port());
    let config = format!(
        r#"[server]
listen = ["{dns}"]
admin = "127.0.0.1:{admin}"
admin_token_file = "admin.token"
state_dir = "state"
upstream = "{upstream}"
[[zone]]
origin = "cross-region.registry.io."
file = "apex.zone"
[[instance]]
id = "hangzhou"
url = "http://{hz}/v2/"
{probe}
[[instance]]
id = "zhangjiakou"
url = "http://{zjk}/v2/"
{probe}
[[endpoint]]
name = "cross-region.registry.io."
ttl = 30
failback_hold = "1h"
[endpoint.targets]
default = [
  {{ instance = "hangzhou", cname = "a-registry.cn-hangzhou.cr.aliyuncs.com." }},
  {{ instance = "zhangjiakou", cname = "b-registry.cn-zhangjiakou.cr.aliyuncs.com." }},
]
"#,
        admin = proc::free_port(),
        upstream = public.addr,
        hz = hz.addr,
        zjk = zjk.addr,
        probe = support::regdns::PROBE,
    );
    std::fs::write(dir.path().join("regdns.toml"), config).unwrap();
    std::fs::write(
        dir.path().join("apex.zone"),
        "$ORIGIN cross-region.registry.io.\n$TTL 300\n@ SOA ns1.registry.io. hostmaster.registry.io. 1 3600 600 86400 60\n@ NS ns1.registry.io.\n",
    )
    .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_regdns"));
    cmd.arg("serve")
        .arg("-c")
        .arg(dir.path().join("regdns.toml"));
    let p = Proc::start("regdns", cmd, dir, Duration::from_secs(15), || {
        Query::new("cross-region.registry.io.", RecordType::SOA)
            .udp(dns)
            .is_ok()
    })
    .unwrap();

    // Flattened: the apex has A/AAAA of the CNAME target, never a CNAME (SOA/NS live there).
    wait_a(dns, &["203.0.113.10"], Duration::from_secs(5));
    let m = Query::new("cross-region.registry.io.", RecordType::AAAA)
        .udp(dns)
        .unwrap();
    assert_eq!(answer_rdata(&m), ["2001:db8::10"]);
    let m = Query::new("cross-region.registry.io.", RecordType::CNAME)
        .udp(dns)
        .unwrap();
    assert!(answer_rdata(&m).is_empty(), "no CNAME at the apex");
    let m = Query::new("cross-region.registry.io.", RecordType::SOA)
        .udp(dns)
        .unwrap();
    assert_eq!(m.answers.len(), 1);

    // The upstream disappears: the last good answer stays.
    public.proc.kill();
    std::thread::sleep(Duration::from_secs(6)); // past the 5 s minimum refresh
    assert_eq!(a(dns), ["203.0.113.10"]);
    assert!(
        p.stderr().contains("keeping the last good answer"),
        "{}",
        p.stderr()
    );

    // Failover: the other target was resolved ahead, so it is served at once.
    hz.set(Mode::Refuse);
    wait_a(dns, &["203.0.113.20"], Duration::from_secs(10));
}
