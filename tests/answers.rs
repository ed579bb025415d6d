//! The real binary on loopback, queried over UDP and TCP: views chosen by source address
//! (127.0.0.x), by EDNS Client Subnet from a trusted resolver, and not by ECS from an
//! untrusted one; TC over UDP then the full answer over TCP; SIGHUP reload.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use support::config::{Config, targets};
use support::dns::{Query, RecordType};
use support::regdns::Regdns;

fn config() -> Config {
    Config::new()
        .server("udp_workers", "2")
        .zone("registry.io.", "registry.io.zone")
        .view("vpc-aaaaa", &["127.0.0.2/32", "10.0.0.0/16"])
        .view_with(
            "vpc-bbbbb",
            &["127.0.0.3/32", "10.1.0.0/16"],
            "ecs_from = [\"127.0.0.4/32\"]",
        )
        .instance(
            "hangzhou",
            "url = \"http://127.0.0.1:9/v2/\"\ninterval = \"1h\"\ntimeout = \"1s\"",
        )
        .instance(
            "zhangjiakou",
            "url = \"http://127.0.0.1:9/v2/\"\ninterval = \"1h\"\ntimeout = \"1s\"",
        )
        .endpoint(
            "cross-region.registry.io.",
            &format!(
                "ttl = 30\n\n{}",
                targets(&[
                    (
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
                        ]
                    ),
                    (
                        "vpc-aaaaa",
                        &[
                            ("hangzhou", "a = [\"10.94.205.198\"]"),
                            ("zhangjiakou", "a = [\"10.1.3.4\"]"),
                        ]
                    ),
                    (
                        "vpc-bbbbb",
                        &[
                            ("zhangjiakou", "a = [\"10.1.3.4\"]"),
                            ("hangzhou", "a = [\"10.94.205.198\"]"),
                        ]
                    ),
                ])
            ),
        )
}

const ZONE: &str = "$ORIGIN registry.io.\n$TTL 300\n@ SOA ns1 hostmaster 7 3600 600 86400 60\n NS ns1\nns1 A 127.0.0.1\n\
big TXT \"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"\n\
big TXT \"1123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"\n\
big TXT \"2123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"\n\
big TXT \"3123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"\n\
big TXT \"4123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"\n\
big TXT \"5123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"\n";

fn start() -> (Regdns, SocketAddr) {
    let r = Regdns::launch(config())
        .file("registry.io.zone", ZONE)
        .ready_soa("registry.io.")
        .start();
    let dns = r.dns;
    (r, dns)
}

fn render(m: &hickory_proto::op::Message) -> String {
    m.answers
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect::<Vec<_>>()
        .join(",")
}

fn ask(dns: SocketAddr, src: &str, ecs: Option<&str>, tcp: bool) -> String {
    let mut q = Query::new("cross-region.registry.io.", RecordType::A)
        .source(src.parse::<IpAddr>().unwrap());
    if let Some(e) = ecs {
        q = q.edns(1232).ecs(e);
    }
    let m = if tcp { q.tcp(dns) } else { q.udp(dns) }.unwrap();
    assert!(m.metadata.authoritative);
    render(&m)
}

#[test]
fn views_by_source_address_over_udp_and_tcp() {
    let (_p, dns) = start();
    for tcp in [false, true] {
        assert_eq!(
            ask(dns, "127.0.0.1", None, tcp),
            "CNAME a-registry.cn-hangzhou.cr.aliyuncs.com."
        );
        assert_eq!(ask(dns, "127.0.0.2", None, tcp), "A 10.94.205.198");
        assert_eq!(ask(dns, "127.0.0.3", None, tcp), "A 10.1.3.4");
    }
}

#[test]
fn ecs_only_from_trusted_resolvers() {
    let (_p, dns) = start();
    // 127.0.0.4 is trusted: its clients' subnets choose the view.
    assert_eq!(
        ask(dns, "127.0.0.4", Some("10.0.7.0/24"), false),
        "A 10.94.205.198"
    );
    assert_eq!(
        ask(dns, "127.0.0.4", Some("10.1.7.0/24"), false),
        "A 10.1.3.4"
    );
    assert_eq!(
        ask(dns, "127.0.0.4", Some("192.0.2.0/24"), false),
        "CNAME a-registry.cn-hangzhou.cr.aliyuncs.com."
    );
    // 127.0.0.1 is not: ECS is ignored, the source address decides.
    assert_eq!(
        ask(dns, "127.0.0.1", Some("10.1.7.0/24"), false),
        "CNAME a-registry.cn-hangzhou.cr.aliyuncs.com."
    );
    assert_eq!(
        ask(dns, "127.0.0.2", Some("10.1.7.0/24"), true),
        "A 10.94.205.198"
    );
    // The trusted answer echoes the subnet with a scope.
    let m = Query::new("cross-region.registry.io.", RecordType::A)
        .source("127.0.0.4".parse().unwrap())
        .edns(1232)
        .ecs("10.1.7.0/24")
        .udp(dns)
        .unwrap();
    let text = support::dns::normalize(&m);
    assert!(
        text.contains("10.1.7.0/24/24")
            || text.contains("ecs=10.1.7.0/24 scope 24")
            || text.contains("10.1.7.0"),
        "{text}"
    );
}

#[test]
fn truncated_over_udp_full_over_tcp() {
    let (_p, dns) = start();
    let udp = Query::new("big.registry.io.", RecordType::TXT)
        .udp(dns)
        .unwrap();
    assert!(udp.metadata.truncation);
    assert!(udp.answers.is_empty());
    let tcp = Query::new("big.registry.io.", RecordType::TXT)
        .tcp(dns)
        .unwrap();
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 6);
}

#[test]
fn sighup_reloads_and_a_broken_zone_keeps_the_old_answers() {
    let (mut r, dns) = start();
    let p = &mut r.proc;
    let zone = r.dir.path().join("registry.io.zone");
    std::fs::write(&zone, format!("{ZONE}new A 192.0.2.1\n")).unwrap();
    p.signal("HUP").unwrap();
    let t0 = std::time::Instant::now();
    while Query::new("new.registry.io.", RecordType::A)
        .udp(dns)
        .unwrap()
        .answers
        .is_empty()
    {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "reload did not take effect"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(&zone, format!("{ZONE}broken A 192.0.2.300\n")).unwrap();
    p.signal("HUP").unwrap();
    let t0 = std::time::Instant::now();
    while !p.stderr().contains("reload rejected") {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no rejection logged: {}",
            p.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        p.stderr()
            .contains("registry.io.zone:12: bad A record data \"192.0.2.300\""),
        "file:line in the log: {}",
        p.stderr()
    );
    assert_eq!(
        render(
            &Query::new("new.registry.io.", RecordType::A)
                .udp(dns)
                .unwrap()
        ),
        "A 192.0.2.1"
    );
    assert_eq!(ask(dns, "127.0.0.2", None, false), "A 10.94.205.198");
}

#[test]
fn sigterm_exits_cleanly_and_saves_state() {
    let (mut r, _dns) = start();
    let status = r.proc.terminate(Duration::from_secs(10)).expect("exited");
    assert!(status.success(), "exit status {status:?}");
    assert!(r.dir.path().join("state/state.json").exists());
}

/// Hostile TCP clients (a half-sent length, a length with no body, a connection that never
/// sends) and a burst of garbage datagrams neither stall nor crash the server: UDP and other
/// TCP clients are answered meanwhile.
#[test]
fn hostile_clients_do_not_stall_the_server() {
    use std::io::Write;
    let (mut r, dns) = start();
    let mut held = Vec::new();
    for prefix in [
        &[0u8][..],
        &[0xff, 0xff][..],
        &[][..],
        &[0, 40, 1, 2, 3][..],
    ] {
        let mut s = std::net::TcpStream::connect(dns).unwrap();
        s.write_all(prefix).unwrap();
        held.push(s);
    }
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..2000u32 {
        let len = (i as usize * 7) % 600;
        let pkt: Vec<u8> = (0..len).map(|j| (i as usize * 31 + j * 17) as u8).collect();
        let _ = junk.send_to(&pkt, dns);
    }
    assert_eq!(ask(dns, "127.0.0.2", None, false), "A 10.94.205.198");
    assert_eq!(ask(dns, "127.0.0.3", None, true), "A 10.1.3.4");
    assert!(r.proc.is_running(), "the server is still up");
    drop(held);
}

/// With several SO_REUSEPORT sockets, a second server started on the same address would
/// silently take part of the queries; regdns refuses to start instead.
#[test]
fn a_second_server_on_the_same_port_is_refused() {
    let (r, dns) = start();
    let out = Regdns::launch(
        r.config
            .clone()
            .server_str("state_dir", "state2")
            .admin(support::config::free_addr()),
    )
    .file("registry.io.zone", ZONE)
    .run_to_exit();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "cannot listen on {dns} (udp): Address already in use"
        )),
        "{err}"
    );
    assert_eq!(
        ask(dns, "127.0.0.2", None, false),
        "A 10.94.205.198",
        "the first server is unaffected"
    );
}

/// DNS over TCP with pipelining (RFC 7766 §6.2.1.1): many queries in one write are all
/// answered, in order, on the same connection; a query that arrives a few bytes at a time is
/// answered once whole; garbage after good queries gets their answers, then the close.
#[test]
fn pipelined_tcp_queries_are_answered_in_order() {
    use std::io::{Read, Write};
    let (_p, dns) = start();
    let names = [
        "registry.io.",
        "cross-region.registry.io.",
        "nope.registry.io.",
        "big.registry.io.",
    ];
    let queries: Vec<(u16, &str)> = (0..300u16)
        .map(|i| (i, names[i as usize % names.len()]))
        .collect();
    let mut wire = Vec::new();
    for (id, name) in &queries {
        let q = Query::new(name, RecordType::TXT).id(*id).to_bytes();
        wire.extend_from_slice(&(q.len() as u16).to_be_bytes());
        wire.extend_from_slice(&q);
    }
    let mut s = std::net::TcpStream::connect(dns).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let read_one = |s: &mut std::net::TcpStream| -> hickory_proto::op::Message {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut m).unwrap();
        hickory_proto::op::Message::from_vec(&m).unwrap()
    };
    s.write_all(&wire).unwrap();
    for (id, name) in &queries {
        let m = read_one(&mut s);
        assert_eq!(m.metadata.id, *id, "answers come back in the order asked");
        assert_eq!(m.queries[0].name().to_string(), *name);
    }
    // Two queries, written a few bytes at a time.
    let mut slow = Vec::new();
    for id in [1000u16, 1001] {
        let q = Query::new("big.registry.io.", RecordType::TXT)
            .id(id)
            .to_bytes();
        slow.extend_from_slice(&(q.len() as u16).to_be_bytes());
        slow.extend_from_slice(&q);
    }
    for chunk in slow.chunks(3) {
        s.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let m = read_one(&mut s);
    assert_eq!((m.metadata.id, m.answers.len()), (1000, 6));
    assert_eq!(read_one(&mut s).metadata.id, 1001);
    // A good query, then garbage in the same write: the answer, then the connection closes.
    let good = Query::new("registry.io.", RecordType::SOA).id(7).to_bytes();
    let mut last = (good.len() as u16).to_be_bytes().to_vec();
    last.extend_from_slice(&good);
    last.extend_from_slice(&[0, 3, 0xff, 0xff, 0xff]);
    s.write_all(&last).unwrap();
    assert_eq!(read_one(&mut s).metadata.id, 7);
    let mut rest = Vec::new();
    assert_eq!(
        s.read_to_end(&mut rest).unwrap(),
        0,
        "closed after the garbage"
    );
}
