//! The answering logic without sockets: behaviour of docs/design.md#4-dns-behaviour checked on the bytes that
//! `respond` produces, the fast path proven byte-identical to the general path, and random
//! or mutated packets thrown at it (it must never panic and must answer with parseable
//! messages or not at all).

mod support;

use std::collections::HashMap;
use std::net::IpAddr;

use figment::providers::Env;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use proptest::prelude::*;
use regdns::dns::respond::{Transport, respond};
use regdns::snapshot::build::{ActiveTargets, build_snapshot};
use regdns::snapshot::{SerialBook, Snapshot};
use regdns::{config, model};
use support::config::Config;
use support::regdns::two_region_targets;

const ZONE: &str = r#"$ORIGIN registry.io.
$TTL 300
@ IN SOA ns1 hostmaster 2026112601 3600 600 86400 60
  IN NS ns1
  IN MX 10 mail
ns1 IN A 192.0.2.53
mail IN A 192.0.2.25
vpc 5 IN A 10.1.3.4
multi IN A 10.0.0.1
multi IN A 10.0.0.2
v6 IN AAAA 2001:db8::1
chain1 IN CNAME chain2
chain2 IN CNAME vpc
dangling IN CNAME nothing
out IN CNAME a-registry.cn-hangzhou.example.
*.wild IN A 10.9.9.9
deep.sub IN A 10.8.8.8
big IN TXT "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
big IN TXT "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
big IN TXT "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
big IN TXT "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
big IN TXT "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
big IN TXT "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
deleg IN NS ns.deleg
ns.deleg IN A 192.0.2.99
"#;

/// The config, parsed in-process (never served).
fn config() -> String {
    Config::listen_only("127.0.0.1:0".parse().unwrap())
        .zone("registry.io.", "registry.io.zone")
        .view_with(
            "vpc",
            &["127.0.0.2/32", "10.1.0.0/16"],
            "ecs_from = [\"127.0.0.3/32\"]",
        )
        .instance("hangzhou", "url = \"http://127.0.0.1:1/v2/\"")
        .instance("zhangjiakou", "url = \"http://127.0.0.1:2/v2/\"")
        .endpoint(
            "cross-region.registry.io.",
            &format!("ttl = 30\n{}", two_region_targets()),
        )
        .render()
}

fn model() -> model::Model {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry.io.zone"), ZONE).unwrap();
    let loaded = config::parse(
        &self::config(),
        &dir.path().join("regdns.toml"),
        Env::prefixed("REGDNS_UNUSED_"),
    )
    .unwrap();
    model::build(&loaded).unwrap()
}

fn snapshot(active: &ActiveTargets) -> Snapshot {
    build_snapshot(
        &model(),
        active,
        &HashMap::new(),
        &mut SerialBook::default(),
        1,
    )
}

fn without_templates(mut s: Snapshot) -> Snapshot {
    for v in &mut s.views {
        std::sync::Arc::get_mut(v)
            .expect("a fresh snapshot")
            .templates
            .clear();
    }
    s
}

struct Q {
    name: &'static str,
    qtype: RecordType,
    class: DNSClass,
    edns: Option<(u16, bool, u8)>,
    ecs: Option<(&'static str, u8)>,
}

fn q(name: &'static str, qtype: RecordType) -> Q {
    Q {
        name,
        qtype,
        class: DNSClass::IN,
        edns: None,
        ecs: None,
    }
}

impl Q {
    fn edns(mut self, payload: u16) -> Self {
        self.edns = Some((payload, false, 0));
        self
    }
    fn bytes(&self) -> Vec<u8> {
        let mut m = Message::new(4321, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        let mut query = Query::query(Name::from_ascii(self.name).unwrap(), self.qtype);
        query.set_query_class(self.class);
        m.add_query(query);
        if let Some((payload, dnssec_ok, version)) = self.edns {
            let mut e = Edns::new();
            e.set_max_payload(payload);
            e.set_dnssec_ok(dnssec_ok);
            e.set_version(version);
            if let Some((addr, prefix)) = self.ecs {
                e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                    addr.parse().unwrap(),
                    prefix,
                    0,
                )));
            }
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }
}

fn ask(s: &Snapshot, q: &Q, src: &str, t: Transport) -> Message {
    let mut out = Vec::new();
    respond(s, &q.bytes(), src.parse().unwrap(), t, &mut out).expect("an answer");
    Message::from_vec(&out).expect("a parseable answer")
}

fn udp(q: &Q) -> Message {
    ask(
        &snapshot(&ActiveTargets::new()),
        q,
        "127.0.0.1",
        Transport::Udp,
    )
}

fn rdata(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect()
}

#[test]
fn endpoint_answer_differs_per_view() {
    let s = snapshot(&ActiveTargets::new());
    let d = ask(
        &s,
        &q("cross-region.registry.io.", RecordType::A),
        "127.0.0.1",
        Transport::Udp,
    );
    assert!(d.metadata.authoritative);
    assert_eq!(
        rdata(&d),
        ["cross-region.registry.io. CNAME a-registry.cn-hangzhou.cr.aliyuncs.com."]
    );
    assert_eq!(d.answers[0].ttl, 30);
    let v = ask(
        &s,
        &q("cross-region.registry.io.", RecordType::A),
        "127.0.0.2",
        Transport::Udp,
    );
    assert_eq!(rdata(&v), ["cross-region.registry.io. A 10.94.205.198"]);
    // A decision for zhangjiakou in the vpc view only.
    let mut active = ActiveTargets::new();
    active.insert(
        ("cross-region.registry.io.".into(), "vpc".into()),
        "zhangjiakou".into(),
    );
    let s2 = snapshot(&active);
    let v = ask(
        &s2,
        &q("cross-region.registry.io.", RecordType::A),
        "10.1.9.9",
        Transport::Udp,
    );
    assert_eq!(rdata(&v), ["cross-region.registry.io. A 10.1.3.4"]);
    let d = ask(
        &s2,
        &q("cross-region.registry.io.", RecordType::A),
        "127.0.0.1",
        Transport::Udp,
    );
    assert_eq!(
        rdata(&d),
        ["cross-region.registry.io. CNAME a-registry.cn-hangzhou.cr.aliyuncs.com."]
    );
}

#[test]
fn serial_moves_only_for_the_view_that_changed() {
    let m = model();
    let mut book = SerialBook::default();
    let s1 = build_snapshot(&m, &ActiveTargets::new(), &HashMap::new(), &mut book, 1);
    let mut active = ActiveTargets::new();
    active.insert(
        ("cross-region.registry.io.".into(), "vpc".into()),
        "zhangjiakou".into(),
    );
    let s2 = build_snapshot(&m, &active, &HashMap::new(), &mut book, 2);
    assert_eq!(s1.views[0].zones[0].serial, 2026112601);
    assert_eq!(s2.views[0].zones[0].serial, 2026112602, "vpc view changed");
    assert_eq!(
        s2.views[1].zones[0].serial, 2026112601,
        "default view did not"
    );
    let soa = ask(
        &s2,
        &q("registry.io.", RecordType::SOA),
        "127.0.0.2",
        Transport::Udp,
    );
    match &soa.answers[0].data {
        RData::SOA(s) => assert_eq!(s.serial, 2026112602),
        d => panic!("{d:?}"),
    }
}

#[test]
fn negative_answers_carry_the_soa() {
    let nx = udp(&q("nope.registry.io.", RecordType::A));
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert!(nx.metadata.authoritative);
    assert_eq!(nx.authorities.len(), 1);
    assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(
        nx.authorities[0].ttl, 60,
        "negative TTL = min(SOA TTL, MINIMUM)"
    );
    let nodata = udp(&q("vpc.registry.io.", RecordType::TXT));
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(nodata.authorities[0].record_type(), RecordType::SOA);
    let ent = udp(&q("sub.registry.io.", RecordType::A));
    assert_eq!(
        ent.metadata.response_code,
        ResponseCode::NoError,
        "empty non-terminal is NODATA"
    );
}

#[test]
fn cname_chain_and_wildcards() {
    let m = udp(&q("chain1.registry.io.", RecordType::A));
    assert_eq!(
        rdata(&m),
        [
            "chain1.registry.io. CNAME chain2.registry.io.",
            "chain2.registry.io. CNAME vpc.registry.io.",
            "vpc.registry.io. A 10.1.3.4"
        ]
    );
    let m = udp(&q("dangling.registry.io.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.answers.len(), 1);
    let m = udp(&q("out.registry.io.", RecordType::A));
    assert_eq!(
        rdata(&m),
        ["out.registry.io. CNAME a-registry.cn-hangzhou.example."]
    );
    let m = udp(&q("x.y.wild.registry.io.", RecordType::A));
    assert_eq!(rdata(&m), ["x.y.wild.registry.io. A 10.9.9.9"]);
    let m = udp(&q("x.wild.registry.io.", RecordType::AAAA));
    assert!(m.answers.is_empty());
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
}

#[test]
fn referral_below_a_delegation() {
    let m = udp(&q("host.deleg.registry.io.", RecordType::A));
    assert!(!m.metadata.authoritative);
    assert_eq!(m.authorities[0].record_type(), RecordType::NS);
    assert_eq!(m.additionals[0].record_type(), RecordType::A);
}

#[test]
fn qname_case_is_echoed_in_question_and_owner() {
    let s = snapshot(&ActiveTargets::new());
    let m = ask(
        &s,
        &q("CrOsS-ReGiOn.ReGiStRy.Io.", RecordType::A),
        "127.0.0.1",
        Transport::Udp,
    );
    assert_eq!(m.queries[0].name().to_string(), "CrOsS-ReGiOn.ReGiStRy.Io.");
    assert_eq!(m.answers[0].name.to_string(), "CrOsS-ReGiOn.ReGiStRy.Io.");
}

#[test]
fn refused_outside_zones_and_other_classes() {
    let m = udp(&q("example.com.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.authoritative);
    let mut ch = q("version.bind.", RecordType::TXT);
    ch.class = DNSClass::CH;
    assert_eq!(udp(&ch).metadata.response_code, ResponseCode::Refused);
    let mut any = q("vpc.registry.io.", RecordType::A);
    any.class = DNSClass::ANY;
    let m = udp(&any);
    assert_eq!(
        rdata(&m),
        ["vpc.registry.io. A 10.1.3.4"],
        "QCLASS ANY is answered like IN (as Knot does)"
    );
}

#[test]
fn edns_badvers_and_do_bit() {
    let mut v1 = q("vpc.registry.io.", RecordType::A).edns(1232);
    v1.edns = Some((1232, false, 1));
    let m = udp(&v1);
    assert_eq!(
        u16::from(m.metadata.response_code),
        16,
        "BADVERS (hickory names code 16 BADSIG)"
    );
    assert!(m.edns.is_some());
    let mut d = q("vpc.registry.io.", RecordType::A).edns(1232);
    d.edns = Some((1232, true, 0));
    let m = udp(&d);
    assert!(m.edns.as_ref().unwrap().flags().dnssec_ok);
    assert_eq!(m.edns.as_ref().unwrap().max_payload(), 1232);
}

#[test]
fn truncation_over_udp_full_answer_over_tcp() {
    let s = snapshot(&ActiveTargets::new());
    let m = ask(
        &s,
        &q("big.registry.io.", RecordType::TXT),
        "127.0.0.1",
        Transport::Udp,
    );
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    let m = ask(
        &s,
        &q("big.registry.io.", RecordType::TXT).edns(512),
        "127.0.0.1",
        Transport::Udp,
    );
    assert!(m.metadata.truncation);
    assert!(m.edns.is_some(), "OPT is kept in a truncated answer");
    let m = ask(
        &s,
        &q("big.registry.io.", RecordType::TXT).edns(1232),
        "127.0.0.1",
        Transport::Udp,
    );
    assert!(!m.metadata.truncation);
    let m = ask(
        &s,
        &q("big.registry.io.", RecordType::TXT),
        "127.0.0.1",
        Transport::Tcp,
    );
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 6);
}

#[test]
fn ecs_is_honoured_only_from_trusted_resolvers() {
    let s = snapshot(&ActiveTargets::new());
    let mut ecs = q("cross-region.registry.io.", RecordType::A).edns(1232);
    ecs.ecs = Some(("10.1.2.0", 24));
    let trusted = ask(&s, &ecs, "127.0.0.3", Transport::Udp);
    assert_eq!(
        rdata(&trusted),
        ["cross-region.registry.io. A 10.94.205.198"]
    );
    let opt = trusted.edns.unwrap();
    match opt.option(hickory_proto::rr::rdata::opt::EdnsCode::Subnet) {
        Some(EdnsOption::Subnet(cs)) => {
            assert_eq!(cs.source_prefix(), 24);
            assert_eq!(cs.scope_prefix(), 24);
        }
        o => panic!("no ECS echoed: {o:?}"),
    }
    let untrusted = ask(&s, &ecs, "127.0.0.1", Transport::Udp);
    assert_eq!(
        rdata(&untrusted),
        ["cross-region.registry.io. CNAME a-registry.cn-hangzhou.cr.aliyuncs.com."]
    );
    assert!(
        untrusted
            .edns
            .unwrap()
            .option(hickory_proto::rr::rdata::opt::EdnsCode::Subnet)
            .is_none()
    );
}

#[test]
fn opcodes_and_malformed_queries() {
    let s = snapshot(&ActiveTargets::new());
    let src: IpAddr = "127.0.0.1".parse().unwrap();
    let mut out = Vec::new();
    let mut notify = q("registry.io.", RecordType::SOA).bytes();
    notify[2] = (notify[2] & 0x87) | (4 << 3);
    respond(&s, &notify, src, Transport::Udp, &mut out).unwrap();
    assert_eq!(
        Message::from_vec(&out).unwrap().metadata.response_code,
        ResponseCode::NotAuth
    );
    let mut status = q("registry.io.", RecordType::SOA).bytes();
    status[2] = (status[2] & 0x87) | (2 << 3);
    respond(&s, &status, src, Transport::Udp, &mut out).unwrap();
    assert_eq!(
        Message::from_vec(&out).unwrap().metadata.response_code,
        ResponseCode::NotImp
    );
    let http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    assert!(
        respond(&s, &http, src, Transport::Udp, &mut out).is_none(),
        "text garbage gets no answer"
    );
    let mut noq = q("registry.io.", RecordType::SOA).bytes();
    noq.truncate(12);
    noq[5] = 0;
    respond(&s, &noq, src, Transport::Udp, &mut out).unwrap();
    assert_eq!(
        Message::from_vec(&out).unwrap().metadata.response_code,
        ResponseCode::FormErr
    );
    assert!(
        respond(&s, b"hello", src, Transport::Udp, &mut out).is_none(),
        "garbage shorter than a header gets no answer"
    );
    let mut resp = q("registry.io.", RecordType::SOA).bytes();
    resp[2] |= 0x80;
    assert!(
        respond(&s, &resp, src, Transport::Udp, &mut out).is_none(),
        "responses are never answered"
    );
    let m = udp(&q("registry.io.", RecordType::AXFR));
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NotImp,
        "AXFR over UDP"
    );
    let m = ask(
        &s,
        &q("registry.io.", RecordType::AXFR),
        "127.0.0.1",
        Transport::Tcp,
    );
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::Refused,
        "transfers are refused without allow_transfer"
    );
}

/// Every pre-encoded response equals what the general path computes for the same query,
/// whatever the ID, flags, QNAME case and EDNS of the query.
#[test]
fn fast_path_is_byte_identical_to_general_path() {
    let fast = snapshot(&ActiveTargets::new());
    let slow = without_templates(snapshot(&ActiveTargets::new()));
    let keys: Vec<(usize, Vec<u8>)> = fast
        .views
        .iter()
        .enumerate()
        .flat_map(|(vi, v)| v.templates.keys().map(move |k| (vi, k.to_vec())))
        .collect();
    assert!(keys.len() > 30, "templates exist: {}", keys.len());
    let srcs = ["127.0.0.2", "127.0.0.1"];
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(
            &(
                0..keys.len(),
                any::<u16>(),
                any::<bool>(),
                any::<bool>(),
                any::<u64>(),
                prop::option::of((0u16..5000, any::<bool>())),
            ),
            |(i, id, rd, cd, case_bits, edns)| {
                let (vi, key) = &keys[i];
                let mut pkt = vec![0u8; 12];
                pkt[0..2].copy_from_slice(&id.to_be_bytes());
                pkt[2] = rd as u8;
                pkt[3] = (cd as u8) << 4;
                pkt[5] = 1;
                let mut name = key[2..].to_vec();
                for (j, b) in name.iter_mut().enumerate() {
                    if b.is_ascii_lowercase() && (case_bits >> (j % 64)) & 1 == 1 {
                        *b = b.to_ascii_uppercase();
                    }
                }
                pkt.extend_from_slice(&name);
                pkt.extend_from_slice(&key[..2]);
                pkt.extend_from_slice(&[0, 1]);
                if let Some((payload, dnssec_ok)) = edns {
                    pkt[11] = 1;
                    pkt.extend_from_slice(&[0, 0, 41]);
                    pkt.extend_from_slice(&payload.to_be_bytes());
                    pkt.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
                }
                let src: IpAddr = srcs[*vi].parse().unwrap();
                for t in [Transport::Udp, Transport::Tcp] {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    let oa = respond(&fast, &pkt, src, t, &mut a).unwrap();
                    let ob = respond(&slow, &pkt, src, t, &mut b).unwrap();
                    prop_assert!(oa.fast);
                    prop_assert!(!ob.fast);
                    prop_assert_eq!(&a, &b);
                }
                Ok(())
            },
        )
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    /// Random bytes never panic; whatever is sent back parses as a DNS message.
    #[test]
    fn random_packets_never_panic(pkt in prop::collection::vec(any::<u8>(), 0..600)) {
        let s = snapshot(&ActiveTargets::new());
        let mut out = Vec::new();
        if respond(&s, &pkt, "127.0.0.1".parse().unwrap(), Transport::Udp, &mut out).is_some() {
            prop_assert!(out.len() >= 12);
            prop_assert_eq!(&out[0..2], &pkt[0..2]);
        }
    }

    /// Valid queries with random bytes flipped, truncated or extended never panic.
    #[test]
    fn mutated_queries_never_panic(flips in prop::collection::vec((0usize..200, any::<u8>()), 1..8), cut in 0usize..200, extra in prop::collection::vec(any::<u8>(), 0..20), which in 0usize..4) {
        let s = snapshot(&ActiveTargets::new());
        let base = [
            q("cross-region.registry.io.", RecordType::A).edns(1232),
            q("big.registry.io.", RecordType::TXT),
            q("x.wild.registry.io.", RecordType::ANY).edns(4096),
            q("chain1.registry.io.", RecordType::A),
        ];
        let mut pkt = base[which].bytes();
        for (i, b) in flips {
            let n = pkt.len();
            pkt[i % n] = b;
        }
        pkt.truncate(cut.max(1));
        pkt.extend_from_slice(&extra);
        let mut out = Vec::new();
        for t in [Transport::Udp, Transport::Tcp] {
            if respond(&s, &pkt, "127.0.0.3".parse().unwrap(), t, &mut out).is_some() {
                prop_assert!(Message::from_vec(&out).is_ok(), "unparseable answer to {:?}", pkt);
                if t == Transport::Udp {
                    prop_assert!(out.len() <= 1232);
                }
            }
        }
    }
}

/// The per-thread cache of general-path answers sends exactly what the uncached path sends,
/// on first use and from the cache, whatever the ID, flags, case, EDNS, view and transport;
/// and a newer snapshot is never answered from an older one's entries.
#[test]
fn cached_general_path_is_byte_identical() {
    use regdns::dns::cache::PacketCache;
    use regdns::dns::respond::respond_cached;
    let s = snapshot(&ActiveTargets::new());
    let questions: Vec<(&str, u16, u16)> = vec![
        ("nope.registry.io.", 1, 1),
        ("nope.registry.io.", 28, 1),
        ("vpc.registry.io.", 16, 1),
        ("vpc.registry.io.", 15, 1),
        ("cross-region.registry.io.", 16, 1),
        ("registry.io.", 6, 1),
        ("registry.io.", 255, 1),
        ("x.wild.registry.io.", 16, 1),
        ("a.deleg.registry.io.", 1, 1),
        ("chain1.registry.io.", 16, 1),
        ("example.com.", 1, 1),
        ("registry.io.", 1, 3),
        ("registry.io.", 1, 255),
    ];
    let srcs = ["127.0.0.1", "127.0.0.2"];
    let cache = std::cell::RefCell::new(PacketCache::default());
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(
            &(
                0..questions.len(),
                0..srcs.len(),
                any::<u16>(),
                any::<bool>(),
                any::<u64>(),
                prop::option::of(0u16..5000),
            ),
            |(i, si, id, rd, case_bits, edns)| {
                let (name, qtype, qclass) = questions[i];
                let mut pkt = vec![0u8; 12];
                pkt[0..2].copy_from_slice(&id.to_be_bytes());
                pkt[2] = rd as u8;
                pkt[5] = 1;
                let mut wire = Vec::new();
                for label in name.trim_end_matches('.').split('.') {
                    wire.push(label.len() as u8);
                    wire.extend(label.bytes().enumerate().map(|(j, b)| {
                        if (case_bits >> (j % 64)) & 1 == 1 {
                            b.to_ascii_uppercase()
                        } else {
                            b
                        }
                    }));
                }
                wire.push(0);
                pkt.extend_from_slice(&wire);
                pkt.extend_from_slice(&qtype.to_be_bytes());
                pkt.extend_from_slice(&qclass.to_be_bytes());
                if let Some(payload) = edns {
                    pkt[11] = 1;
                    pkt.extend_from_slice(&[0, 0, 41]);
                    pkt.extend_from_slice(&payload.to_be_bytes());
                    pkt.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
                }
                let src: IpAddr = srcs[si].parse().unwrap();
                for t in [Transport::Udp, Transport::Tcp] {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    let oa = respond(&s, &pkt, src, t, &mut a).unwrap();
                    let ob =
                        respond_cached(&s, &pkt, src, t, &mut b, &mut cache.borrow_mut()).unwrap();
                    prop_assert_eq!(oa, ob);
                    prop_assert_eq!(&a, &b, "{} {} {}", name, qtype, qclass);
                }
                Ok(())
            },
        )
        .unwrap();
    let (hits, misses) = cache.borrow().hits_and_misses();
    assert!(hits > 100 && misses > 0, "hits {hits}, misses {misses}");

    // The zone's SOA serial moves with a failover: the NXDOMAIN's SOA must follow.
    let mut active = ActiveTargets::new();
    active.insert(
        ("cross-region.registry.io.".into(), "default".into()),
        "zhangjiakou".into(),
    );
    let mut serials = SerialBook::default();
    let before = build_snapshot(
        &model(),
        &ActiveTargets::new(),
        &HashMap::new(),
        &mut serials,
        1,
    );
    let after = build_snapshot(&model(), &active, &HashMap::new(), &mut serials, 2);
    let nx = q("nope.registry.io.", RecordType::A).bytes();
    let serial = |s: &Snapshot, cache: &mut PacketCache| {
        let mut out = Vec::new();
        respond_cached(
            s,
            &nx,
            "127.0.0.1".parse().unwrap(),
            Transport::Udp,
            &mut out,
            cache,
        )
        .unwrap();
        let m = Message::from_vec(&out).unwrap();
        match &m.authorities[0].data {
            RData::SOA(soa) => soa.serial,
            other => panic!("not a SOA: {other:?}"),
        }
    };
    let mut cache = PacketCache::default();
    let (a, b) = (serial(&before, &mut cache), serial(&after, &mut cache));
    assert!(b > a, "serial {a} then {b}: the newer snapshot's answer");
}
