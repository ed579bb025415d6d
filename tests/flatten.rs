//! Apex CNAME flattening: an endpoint at a zone apex whose active target is a CNAME is
//! served as the target's A/AAAA records, resolved through `[server] upstream` (here Knot
//! serving the public zone); every CNAME target is resolved ahead, so a failover is served
//! at once; when the upstream goes away the last good answer is kept.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use regdns::sim::{Mode, SimRegistry};
use support::config::{Config, targets};
use support::dns::{Query, RecordType, answer_rdata};
use support::knot::{Knot, Zone};
use support::regdns::{PROBE, Regdns};

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
    let config = Config::new()
        .server_str("upstream", &public.addr.to_string())
        .zone("cross-region.registry.io.", "apex.zone")
        .instance(
            "hangzhou",
            &format!("url = \"http://{}/v2/\"\n{PROBE}", hz.addr),
        )
        .instance(
            "zhangjiakou",
            &format!("url = \"http://{}/v2/\"\n{PROBE}", zjk.addr),
        )
        .endpoint(
            "cross-region.registry.io.",
            &format!(
                "ttl = 30\nfailback_hold = \"1h\"\n{}",
                targets(&[(
                    "default",
                    &[
                        (
                            "hangzhou",
                            "cname = \"a-registry.cn-hangzhou.cr.aliyuncs.com.\""
                        ),
                        (
                            "zhangjiakou",
                            "cname = \"b-registry.cn-zhangjiakou.cr.aliyuncs.com.\""
                        ),
                    ],
                )])
            ),
        );
    let dns = config.dns;
    let r = Regdns::launch(config)
        .file(
            "apex.zone",
            "$ORIGIN cross-region.registry.io.\n$TTL 300\n@ SOA ns1.registry.io. hostmaster.registry.io. 1 3600 600 86400 60\n@ NS ns1.registry.io.\n",
        )
        .ready(move || {
            Query::new("cross-region.registry.io.", RecordType::SOA)
                .udp(dns)
                .is_ok()
        })
        .start();
    let p = &r.proc;

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
    // The next refresh (at most 5 s away, the minimum) fails: logged, then the answer is
    // checked.
    let t0 = Instant::now();
    while !p.stderr().contains("keeping the last good answer") {
        assert!(t0.elapsed() < Duration::from_secs(15), "{}", p.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(a(dns), ["203.0.113.10"]);

    // Failover: the other target was resolved ahead, so it is served at once.
    hz.set(Mode::Refuse);
    wait_a(dns, &["203.0.113.20"], Duration::from_secs(10));
}
