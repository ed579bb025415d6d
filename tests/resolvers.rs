//! The server under test behind a real resolver (Unbound), the two ways docs/design.md#1-the-job names:
//! - a VPC resolver that *forwards* the zone to it (`forward-zone`);
//! - an on-prem resolver that *follows a delegation* to it: Knot serves the parent `io.` zone
//!   with `registry.io. NS ns1.registry.io.` and glue `127.0.53.1`; Unbound has a `stub-zone`
//!   for `io.` pointing at that Knot; the server under test listens on 127.0.53.1 port 53
//!   (glue carries no port). Needs root (port 53); skipped with a message otherwise.
//!
//! The server under test comes from `support::start_server_under_test[_on]` (a Knot today;
//! that function is where regdns plugs in).

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use support::dns::{Message, Query, RecordType, answer_rdata, answer_rdata_of, rcode};
use support::knot::{Knot, Zone};
use support::unbound::Unbound;

/// The zone of the public CNAME targets (`a-registry.cn-hangzhou.cr.aliyuncs.com.`), served
/// by a separate Knot so that the resolver can follow the endpoint's CNAME.
const PUBLIC_ZONE: &str = "\
$ORIGIN cr.aliyuncs.com.
$TTL 60
@                       IN SOA ns.cr.aliyuncs.com. hostmaster.cr.aliyuncs.com. 1 3600 600 86400 60
@                       IN NS  ns.cr.aliyuncs.com.
ns                      IN A   127.0.0.1
a-registry.cn-hangzhou  IN A   203.0.113.10
b-registry.cn-zhangjiakou IN A 203.0.113.20
";

/// Where the delegated child listens: glue can carry no port, so port 53.
const CHILD_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 53, 1)), 53);

fn parent_zone() -> String {
    format!(
        "\
$ORIGIN io.
$TTL 300
@             IN SOA ns.nic.io. hostmaster.nic.io. 1 3600 600 86400 60
@             IN NS  ns.nic.io.
ns.nic        IN A   127.0.0.1
registry      IN NS  ns1.registry.io.
ns1.registry  IN A   {}
",
        CHILD_ADDR.ip()
    )
}

fn assert_resolved(m: &Message, what: &str) {
    assert_eq!(rcode(m), "NOERROR", "{what}: {m:?}");
    assert!(
        m.metadata.recursion_available,
        "{what}: RA must be set by the resolver"
    );
    assert!(
        !m.metadata.authoritative,
        "{what}: a resolver's answer is not AA"
    );
}

#[test]
fn unbound_forwarding_the_zone() {
    let zone = support::zones_dir().join("conformance.zone");
    let sut = support::start_server_under_test(&zone, "registry.io.");
    let public = Knot::start(&[Zone::new("cr.aliyuncs.com.", PUBLIC_ZONE)]);
    let unbound = Unbound::builder()
        .forward_zone("registry.io.", &[sut.addr])
        .forward_zone("cr.aliyuncs.com.", &[public.addr])
        // 512-byte EDNS towards the servers: big answers come back TC and unbound retries
        // over TCP, so the TCP path of the server is exercised through the resolver.
        .server_lines("    edns-buffer-size: 512")
        .start()
        .unwrap_or_else(|e| panic!("{e}"));

    // VPC answer: an A record.
    let m = unbound.resolve("vpc.registry.io.", RecordType::A);
    assert_resolved(&m, "vpc A");
    assert_eq!(answer_rdata(&m), ["10.1.3.4"]);

    // Internet answer: the endpoint's CNAME, followed by the resolver into the public zone.
    let m = unbound.resolve("cross-region.registry.io.", RecordType::A);
    assert_resolved(&m, "cross-region A");
    assert_eq!(
        answer_rdata_of(&m, RecordType::CNAME),
        ["a-registry.cn-hangzhou.cr.aliyuncs.com."]
    );
    assert_eq!(answer_rdata_of(&m, RecordType::A), ["203.0.113.10"]);

    // Mixed-case QNAME (resolvers randomise case, draft 0x20).
    let m = unbound.resolve("CrOsS-ReGiOn.ReGiStRy.Io.", RecordType::A);
    assert_resolved(&m, "mixed case");
    assert_eq!(answer_rdata_of(&m, RecordType::A), ["203.0.113.10"]);

    // In-zone CNAME chain, two A records, AAAA.
    let m = unbound.resolve("chain1.registry.io.", RecordType::A);
    assert_resolved(&m, "chain1 A");
    assert_eq!(answer_rdata_of(&m, RecordType::A), ["10.1.3.4"]);
    let m = unbound.resolve("multi.registry.io.", RecordType::A);
    assert_eq!(answer_rdata(&m), ["10.0.0.1", "10.0.0.2"]);
    let m = unbound.resolve("v6.registry.io.", RecordType::AAAA);
    assert_eq!(answer_rdata(&m), ["2001:db8::1"]);

    // Negative answers pass through.
    let m = unbound.resolve("nope.registry.io.", RecordType::A);
    assert_eq!(rcode(&m), "NXDOMAIN");
    let m = unbound.resolve("sub.registry.io.", RecordType::A);
    assert_eq!(rcode(&m), "NOERROR", "empty non-terminal is NODATA");
    assert!(m.answers.is_empty());

    // An RRset larger than 512 bytes: TC from the server, TCP retry by unbound. Ask unbound
    // over TCP (it would truncate towards us too).
    let m = Query::new("big.registry.io.", RecordType::TXT)
        .rd(true)
        .timeout(Duration::from_secs(5))
        .tcp(unbound.addr)
        .unwrap_or_else(|e| panic!("{e}\n{}", unbound.proc.logs()));
    assert_resolved(&m, "big TXT");
    assert_eq!(m.answers.len(), 6, "all 6 TXT records: {m:?}");

    // After a flush the next answer comes from the server again.
    unbound.flush("registry.io.");
    let m = unbound.resolve("vpc.registry.io.", RecordType::A);
    assert_eq!(answer_rdata(&m), ["10.1.3.4"]);
}

#[test]
fn unbound_resolving_through_a_delegation() {
    if let Err(e) = support::proc::can_bind(CHILD_ADDR) {
        eprintln!(
            "SKIPPED unbound_resolving_through_a_delegation: cannot bind {CHILD_ADDR} ({e}); run as root with port 53 free on that address"
        );
        return;
    }
    let zone = support::zones_dir().join("delegated.zone");
    let child = match support::start_server_under_test_on(CHILD_ADDR, &zone, "registry.io.") {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "SKIPPED unbound_resolving_through_a_delegation: server under test cannot listen on {CHILD_ADDR}: {e}"
            );
            return;
        }
    };
    let parent = Knot::start(&[Zone::new("io.", &parent_zone())]);

    // The parent refers; it does not answer.
    let m = Query::new("vpc.registry.io.", RecordType::A)
        .udp(parent.addr)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rcode(&m), "NOERROR");
    assert!(
        !m.metadata.authoritative && m.answers.is_empty(),
        "referral: {m:?}"
    );
    assert!(
        m.authorities
            .iter()
            .any(|r| r.record_type() == RecordType::NS),
        "referral carries NS: {m:?}"
    );

    let unbound = Unbound::builder()
        .stub_zone("io.", &[parent.addr])
        .start()
        .unwrap_or_else(|e| panic!("{e}"));

    let m = unbound.resolve("vpc.registry.io.", RecordType::A);
    assert_resolved(&m, "vpc A via delegation");
    assert_eq!(answer_rdata(&m), ["10.1.3.4"], "{}", child.logs());

    let m = unbound.resolve("VPC.ReGiStRy.Io.", RecordType::A);
    assert_resolved(&m, "mixed case via delegation");
    assert_eq!(answer_rdata(&m), ["10.1.3.4"]);

    let m = unbound.resolve("multi.registry.io.", RecordType::A);
    assert_eq!(answer_rdata(&m), ["10.0.0.1", "10.0.0.2"]);

    let m = unbound.resolve("chain1.registry.io.", RecordType::A);
    assert_eq!(answer_rdata_of(&m, RecordType::A), ["10.1.3.4"]);

    // The public CNAME target is not resolvable here (nothing serves it): ask for the CNAME.
    let m = unbound.resolve("cross-region.registry.io.", RecordType::CNAME);
    assert_resolved(&m, "cross-region CNAME via delegation");
    assert_eq!(
        answer_rdata(&m),
        ["a-registry.cn-hangzhou.cr.aliyuncs.com."]
    );

    let m = unbound.resolve("nope.registry.io.", RecordType::A);
    assert_eq!(rcode(&m), "NXDOMAIN");

    unbound.flush("registry.io.");
    let m = unbound.resolve("vpc.registry.io.", RecordType::A);
    assert_eq!(answer_rdata(&m), ["10.1.3.4"]);
}

/// Unbound forwarding the zone to regdns follows a failover: the Internet view's CNAME moves
/// to the other instance's public name, and a resolver in a VPC view (unbound sending from
/// 127.0.0.2) gets the other instance's internal address.
#[test]
fn unbound_follows_a_failover() {
    use regdns::sim::{Mode, SimRegistry};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hz = rt
        .block_on(SimRegistry::start(([127, 0, 0, 1], 0).into(), false))
        .unwrap();
    let zjk = rt
        .block_on(SimRegistry::start(([127, 0, 0, 1], 0).into(), true))
        .unwrap();
    let dns = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), support::proc::free_port());
    let regdns = support::regdns::start(
        dns,
        &format!("url = \"http://{}/v2/\"", hz.addr),
        &format!("url = \"http://{}/v2/\"", zjk.addr),
        "failback_hold = \"1h\"",
    );
    let public = Knot::start(&[Zone::new("cr.aliyuncs.com.", PUBLIC_ZONE)]);
    let internet = Unbound::builder()
        .forward_zone("registry.io.", &[dns])
        .forward_zone("cr.aliyuncs.com.", &[public.addr])
        .cache_max_ttl(1)
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let vpc = Unbound::builder()
        .forward_zone("registry.io.", &[dns])
        .cache_max_ttl(1)
        .outgoing_interface("127.0.0.2")
        .start()
        .unwrap_or_else(|e| panic!("{e}"));

    // Probes conclude (rise 2 at 300 ms): the primary is served.
    regdns.wait_status("both instances up", Duration::from_secs(10), |s| {
        s["instances"]
            .as_array()
            .is_some_and(|v| v.iter().all(|i| i["state"] == "up"))
    });
    let m = internet.resolve("cross-region.registry.io.", RecordType::A);
    assert_resolved(&m, "internet before");
    assert_eq!(
        answer_rdata_of(&m, RecordType::CNAME),
        ["a-registry.cn-hangzhou.cr.aliyuncs.com."]
    );
    assert_eq!(answer_rdata_of(&m, RecordType::A), ["203.0.113.10"]);
    let m = vpc.resolve("cross-region.registry.io.", RecordType::A);
    assert_eq!(answer_rdata(&m), ["10.94.205.198"]);

    hz.set(Mode::Refuse);
    let t0 = std::time::Instant::now();
    loop {
        let m = internet.resolve("cross-region.registry.io.", RecordType::A);
        if answer_rdata_of(&m, RecordType::A) == ["203.0.113.20"] {
            assert_eq!(
                answer_rdata_of(&m, RecordType::CNAME),
                ["b-registry.cn-zhangjiakou.cr.aliyuncs.com."]
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "unbound never saw the failover: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("failover seen through unbound after {:?}", t0.elapsed());
    // The VPC resolver may still hold its previous answer for up to cache_max_ttl (1 s):
    // wait for the new one instead of racing its cache.
    loop {
        let m = vpc.resolve("cross-region.registry.io.", RecordType::A);
        if answer_rdata(&m) == ["10.1.3.4"] {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the VPC resolver never saw the failover: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
