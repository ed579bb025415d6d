//! Zone transfers out of the real `regdns` binary: `kdig` with TSIG keys as an independent
//! client (AXFR, IXFR, per-key views, a multi-message AXFR with every message signed),
//! refusals with the right RCODE and TSIG error and no zone data, and real Knot and NSD
//! secondaries transferring the view of their key.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use regdns::sim::Mode;
use support::dns::{Query, RecordType, send_tcp_raw};
use support::proc;
use support::regdns::SECONDARY;
use support::regdns::{PRIMARY, http, registries};
use support::xfr::{
    PUB_KEY, VPC_KEY, ZONE, kdig, knot_secondary, knot_secondary_on, nsd_secondary,
    nsd_secondary_on, secondary_log, served, start_primary, wait_served,
};

const ACL: &str = "allow_transfer = [\"key:vpc-key.\", \"key:pub-key.\", \"127.0.0.5/32\"]";

fn at(dns: SocketAddr) -> [String; 3] {
    [
        format!("@{}", dns.ip()),
        "-p".into(),
        dns.port().to_string(),
    ]
}

/// kdig with each key gets its view's zone (AXFR and IXFR, TCP and UDP); signed answers
/// verify in kdig; an address in the ACL transfers the view of its address.
#[tokio::test(flavor = "multi_thread")]
async fn kdig_transfers_the_view_of_its_key() {
    let (hz, zjk, dns) = registries(false).await;
    let (_r, _) = start_primary(dns, &http(&hz), &http(&zjk), ACL, "");
    let [a, p, port] = at(dns);
    let base = [a.as_str(), p.as_str(), port.as_str()];
    let run = |extra: &[&str]| kdig(&[&base[..], extra].concat());

    let vpc = run(&["-y", &VPC_KEY.kdig(), "AXFR", ZONE]);
    assert!(
        vpc.contains("cross-region.registry.io. 5 IN A 10.94.205.198"),
        "{vpc}"
    );
    assert!(vpc.contains("vpc-key.") && vpc.contains("TSIG"), "{vpc}");
    assert!(!vpc.contains(";; ERROR"), "{vpc}");
    assert_eq!(vpc.matches(" SOA ").count(), 2, "SOA first and last: {vpc}");

    let public = run(&["-y", &PUB_KEY.kdig(), "AXFR", ZONE]);
    assert!(public.contains(&format!("CNAME {PRIMARY}")), "{public}");
    assert!(
        !public.contains("10.94.205.198") && !public.contains(";; ERROR"),
        "{public}"
    );

    // IXFR over TCP from an old serial: the whole zone (AXFR form); from the current one:
    // the SOA only. Over UDP: the SOA only, signed.
    let ixfr = run(&["-y", &VPC_KEY.kdig(), "IXFR=0", ZONE]);
    assert!(
        ixfr.contains("10.94.205.198") && !ixfr.contains(";; ERROR"),
        "{ixfr}"
    );
    let serial = current_serial(dns);
    let ixfr = run(&["-y", &VPC_KEY.kdig(), &format!("IXFR={serial}"), ZONE]);
    assert_eq!(ixfr.matches(" SOA ").count(), 1, "{ixfr}");
    assert!(!ixfr.contains(";; ERROR"), "{ixfr}");
    let udp = run(&["-y", &VPC_KEY.kdig(), "+notcp", "IXFR=0", ZONE]);
    assert!(
        udp.contains("(UDP)") && udp.matches(" SOA ").count() == 1,
        "{udp}"
    );
    assert!(!udp.contains(";; ERROR") && udp.contains("TSIG"), "{udp}");

    // A signed query for an ordinary name is answered from the key's view and signed.
    let q = run(&[
        "-y",
        &VPC_KEY.kdig(),
        "+short",
        "cross-region.registry.io.",
        "A",
    ]);
    assert!(
        q.contains("10.94.205.198") && !q.contains(";; ERROR"),
        "{q}"
    );

    // The address ACL: unsigned, the view of the address (default here).
    let by_addr = run(&["-b", "127.0.0.5", "AXFR", ZONE]);
    assert!(by_addr.contains(&format!("CNAME {PRIMARY}")), "{by_addr}");
}

fn current_serial(dns: SocketAddr) -> u32 {
    let m = Query::new(ZONE, RecordType::SOA).udp(dns).unwrap();
    match &m.answers[0].data {
        hickory_proto::rr::RData::SOA(s) => s.serial,
        d => panic!("not an SOA: {d:?}"),
    }
}

/// A zone larger than one message: kdig verifies the TSIG of every message (RFC 8945
/// §5.3.1) and sees every record.
#[tokio::test(flavor = "multi_thread")]
async fn multi_message_axfr_is_signed_throughout() {
    let (hz, zjk, dns) = registries(false).await;
    let records: String = (0..3000)
        .map(|i| format!("host{i} TXT \"record number {i} padding padding padding\"\n"))
        .collect();
    let (_r, _) = start_primary(dns, &http(&hz), &http(&zjk), ACL, &records);
    let [a, p, port] = at(dns);
    let out = kdig(&[&a, &p, &port, "-y", &VPC_KEY.kdig(), "AXFR", ZONE]);
    assert!(
        !out.contains(";; ERROR") && !out.contains("WARNING"),
        "{}",
        &out[out.len().saturating_sub(2000)..]
    );
    let summary = out.lines().find(|l| l.starts_with(";; Received")).unwrap();
    let messages: usize = summary
        .split('(')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(messages > 1, "{summary}");
    assert_eq!(out.matches(" TXT ").count(), 3000, "{summary}");
    assert_eq!(
        out.matches(" TSIG ").count(),
        messages,
        "every message signed: {summary}"
    );
}

fn rcode_and_tsig_error(resp: &[u8]) -> (ResponseCode, Option<u16>, usize) {
    let m = Message::from_vec(resp).expect("a DNS response");
    let t = regdns::tsig::find(resp).map(|t| t.error);
    (m.metadata.response_code, t, m.answers.len())
}

fn signed_axfr(key: &regdns::tsig::Key, time: u64) -> Vec<u8> {
    let mut q = Query::new(ZONE, RecordType::AXFR).id(4242).to_bytes();
    regdns::tsig::sign(&mut q, key, None, time, 0, &[]);
    q
}

/// No ACL and no key, an unknown key, a bad signature, a stale time: the right RCODE and
/// TSIG error and no zone data (RFC 8945 §5.2; REFUSED carries EDE 18 "Prohibited").
#[tokio::test(flavor = "multi_thread")]
async fn refusals_carry_the_right_errors_and_no_data() {
    let (hz, zjk, dns) = registries(false).await;
    let (_r, _) = start_primary(dns, &http(&hz), &http(&zjk), ACL, "");
    let t = Duration::from_secs(3);

    let resp = Query::new(ZONE, RecordType::AXFR)
        .edns(1232)
        .tcp_raw(dns)
        .unwrap();
    let m = Message::from_vec(&resp).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.answers.is_empty());
    let ede = m.edns.as_ref().and_then(|e| {
        e.options()
            .as_ref()
            .iter()
            .find(|(c, _)| u16::from(*c) == 15)
            .map(|(_, o)| format!("{o:?}"))
    });
    assert!(ede.is_some(), "EDE present: {m:?}");

    let now = regdns::tsig::now();
    let mut unknown = VPC_KEY.key();
    unknown.name = hickory_proto::rr::Name::from_ascii("unknown-key.").unwrap();
    let (rc, err, n) =
        rcode_and_tsig_error(&send_tcp_raw(dns, &signed_axfr(&unknown, now), t).unwrap());
    assert_eq!((rc, err, n), (ResponseCode::NotAuth, Some(17), 0), "BADKEY");

    let mut wrong = VPC_KEY.key();
    wrong.secret = b"not the secret".to_vec();
    let (rc, err, n) =
        rcode_and_tsig_error(&send_tcp_raw(dns, &signed_axfr(&wrong, now), t).unwrap());
    assert_eq!((rc, err, n), (ResponseCode::NotAuth, Some(16), 0), "BADSIG");

    let stale = signed_axfr(&VPC_KEY.key(), now - 3600);
    let resp = send_tcp_raw(dns, &stale, t).unwrap();
    let (rc, err, n) = rcode_and_tsig_error(&resp);
    assert_eq!(
        (rc, err, n),
        (ResponseCode::NotAuth, Some(18), 0),
        "BADTIME"
    );
    let req_mac = regdns::tsig::find(&stale).unwrap().mac;
    assert!(
        regdns::tsig::verify_response(&resp, &VPC_KEY.key(), &req_mac) || {
            // verify_response refuses a non-zero error: check the MAC is present instead.
            regdns::tsig::find(&resp).unwrap().mac.len() == 32
        },
        "BADTIME is signed"
    );
    // Over UDP too, for an ordinary signed query.
    let mut q = Query::new(ZONE, RecordType::SOA).id(7).to_bytes();
    regdns::tsig::sign(&mut q, &wrong, None, now, 0, &[]);
    let resp = support::dns::send_udp_raw(dns, &q, t).unwrap();
    assert_eq!(
        rcode_and_tsig_error(&resp),
        (ResponseCode::NotAuth, Some(16), 0)
    );

    // The same through kdig.
    let [a, p, port] = at(dns);
    let out = kdig(&[&a, &p, &port, "AXFR", ZONE]);
    assert!(out.contains("REFUSED") && !out.contains(" SOA "), "{out}");
    let bad = format!(
        "hmac-sha256:vpc-key.:{}",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    );
    let out = kdig(&[&a, &p, &port, "-y", &bad, "AXFR", ZONE]);
    assert!(out.contains("BADSIG") && !out.contains(" SOA "), "{out}");
}

/// Real secondaries: Knot with the vpc key and NSD with the public key each transfer their
/// view (different answers for the same name); NSD with the vpc key agrees with Knot.
#[tokio::test(flavor = "multi_thread")]
async fn knot_and_nsd_secondaries_transfer_their_view() {
    let (hz, zjk, dns) = registries(false).await;
    let (_r, _) = start_primary(dns, &http(&hz), &http(&zjk), ACL, "");
    let (knot, kaddr) = knot_secondary(dns, VPC_KEY);
    let (nsd, naddr) = nsd_secondary(dns, PUB_KEY);
    wait_served(kaddr, "A 10.94.205.198", "knot (vpc key)", || {
        secondary_log(&knot)
    })
    .await;
    wait_served(
        naddr,
        &format!("CNAME {PRIMARY}"),
        "nsd (public key)",
        || secondary_log(&nsd),
    )
    .await;
    let (nsd_vpc, nvaddr) = nsd_secondary(dns, VPC_KEY);
    wait_served(nvaddr, "A 10.94.205.198", "nsd (vpc key)", || {
        secondary_log(&nsd_vpc)
    })
    .await;
    assert_ne!(served(kaddr), served(naddr), "two keys, two views");
}

/// The hidden-primary path end to end: Knot (vpc key) and NSD (public key) are secondaries
/// listed in `secondaries`; a registry failure moves the answer, regdns sends NOTIFY (signed
/// with each secondary's key), both transfer the new serial and serve the new answer of
/// their view. Status and metrics show the acknowledged NOTIFYs.
#[tokio::test(flavor = "multi_thread")]
async fn failover_reaches_knot_and_nsd_secondaries_through_notify() {
    let (hz, zjk, dns) = registries(false).await;
    let kaddr = SocketAddr::new([127, 0, 0, 1].into(), proc::free_port());
    let naddr = SocketAddr::new([127, 0, 0, 1].into(), proc::free_port());
    let lines =
        format!("{ACL}\nsecondaries = [\"{kaddr} key:vpc-key.\", \"{naddr} key:pub-key.\"]");
    let (r, admin) = start_primary(dns, &http(&hz), &http(&zjk), &lines, "");
    let knot = knot_secondary_on(kaddr, dns, VPC_KEY);
    let nsd = nsd_secondary_on(naddr, dns, PUB_KEY);
    wait_served(kaddr, "A 10.94.205.198", "knot", || secondary_log(&knot)).await;
    wait_served(naddr, &format!("CNAME {PRIMARY}"), "nsd", || {
        secondary_log(&nsd)
    })
    .await;

    hz.set(Mode::Refuse);
    support::regdns::wait_answer(dns, SECONDARY, Duration::from_secs(15)).await;
    wait_served(kaddr, "A 10.1.3.4", "knot after failover", || {
        format!(
            "{}\n--- regdns ---\n{}",
            secondary_log(&knot),
            r.proc.logs()
        )
    })
    .await;
    wait_served(
        naddr,
        &format!("CNAME {SECONDARY}"),
        "nsd after failover",
        || format!("{}\n--- regdns ---\n{}", secondary_log(&nsd), r.proc.logs()),
    )
    .await;
    // Both took the change incrementally (IXFR from the history), as their logs and
    // regdns's say.
    let logs = r.proc.logs();
    assert!(
        logs.contains("view=vpc kind=\"IXFR\"") && logs.contains("view=default kind=\"IXFR\""),
        "{logs}"
    );
    assert!(
        secondary_log(&knot).contains("IXFR, incoming"),
        "{}",
        secondary_log(&knot)
    );
    // kdig: the incremental answer from serial 1 (current SOA, old SOA, removed, new SOA,
    // added, current SOA), and AXFR form from a serial the history does not know.
    let [a, p, port] = at(dns);
    let ixfr = kdig(&[&a, &p, &port, "-y", &VPC_KEY.kdig(), "IXFR=1", ZONE]);
    assert_eq!(ixfr.matches(" SOA ").count(), 4, "{ixfr}");
    let removed = ixfr.find("A 10.94.205.198").expect(&ixfr);
    let added = ixfr.find("A 10.1.3.4").expect(&ixfr);
    assert!(removed < added && !ixfr.contains(";; ERROR"), "{ixfr}");
    let old = kdig(&[
        &a,
        &p,
        &port,
        "-y",
        &VPC_KEY.kdig(),
        "IXFR=4000000000",
        ZONE,
    ]);
    assert!(
        old.contains("A 10.1.3.4") && old.matches(" SOA ").count() == 2,
        "{old}"
    );
    // NOTIFY, not the refresh timer (3600 s), brought the change: both logged it.
    let klog = secondary_log(&knot);
    assert!(klog.contains("notify"), "{klog}");
    let nlog = secondary_log(&nsd);
    assert!(nlog.to_lowercase().contains("notify"), "{nlog}");

    // Status shows both secondaries acknowledged (the last NOTIFY may still be in flight
    // right after the transfer: wait for it), metrics count them.
    let token = std::fs::read_to_string(r.dir.path().join("admin.token")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) =
            support::daemon::http(admin, "GET", "/status", Some(token.trim()), None).unwrap();
        assert_eq!(code, 200, "{body}");
        let st: serde_json::Value = serde_json::from_str(&body).unwrap();
        let pubs = st["publishers"].as_array().unwrap();
        let ok = |addr: SocketAddr| {
            pubs.iter()
                .any(|p| p["name"] == format!("notify:{ZONE} {addr}") && p["state"] == "ok")
        };
        if ok(kaddr) && ok(naddr) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, metrics) = support::daemon::http(admin, "GET", "/metrics", None, None).unwrap();
    assert!(
        metrics.contains(&format!(
            "regdns_notify_total{{zone=\"{ZONE}\",secondary=\"{kaddr}\",result=\"ack\"}}"
        )),
        "{metrics}"
    );
}

/// Reads a whole transfer over TCP: messages until the closing SOA, an error RCODE, or the
/// end of the stream.
fn tcp_transfer(addr: SocketAddr, query: &[u8]) -> Vec<Vec<u8>> {
    use std::io::{Read, Write};
    let mut s = support::dns::tcp_connect(addr, None, Duration::from_secs(5)).unwrap();
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    s.write_all(&framed).unwrap();
    let mut msgs = Vec::new();
    let mut soas = 0;
    loop {
        let mut len = [0u8; 2];
        if s.read_exact(&mut len).is_err() {
            return msgs;
        }
        let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut m).unwrap();
        let d = Message::from_vec(&m).unwrap();
        soas += d
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        let done = d.metadata.response_code != ResponseCode::NoError
            || soas >= 2
            || (soas == 1 && d.answers.len() == 1);
        msgs.push(m);
        if done {
            return msgs;
        }
    }
}

/// (rcode, TSIG error, sorted answer records) of a transfer's messages.
fn summary(msgs: &[Vec<u8>]) -> (ResponseCode, Option<u16>, Vec<String>) {
    let mut records: Vec<String> = Vec::new();
    let mut rcode = ResponseCode::NoError;
    let mut err = None;
    for m in msgs {
        let d = Message::from_vec(m).unwrap();
        rcode = d.metadata.response_code;
        err = regdns::tsig::find(m).map(|t| t.error);
        records.extend(d.answers.iter().map(|r| {
            format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data).to_lowercase()
        }));
    }
    records.sort();
    (rcode, err, records)
}

/// The transfer side of the conformance suite: Knot DNS 3.2 and regdns as primaries of the
/// same zone with the same key: identical AXFR content (signed), identical TSIG errors
/// (BADKEY, BADSIG, BADTIME), identical IXFR answers for an up-to-date client over TCP and
/// over UDP, and the signed responses of both verify with the key.
#[tokio::test(flavor = "multi_thread")]
async fn transfers_match_knot() {
    let zone_text = "$ORIGIN registry.io.\n$TTL 300\n@ SOA ns1 hostmaster 7 3600 600 86400 60\n NS ns1\nns1 A 127.0.0.1\nwww A 192.0.2.7\nmail MX 10 www\ntxt TXT \"a\" \"b\"\nsub NS ns.sub\nns.sub A 192.0.2.8\n";
    let key = VPC_KEY;
    let knot = support::knot::Knot::builder()
        .zone(support::knot::Zone::new(ZONE, zone_text))
        .extra_config(&format!(
            "key:\n  - id: {}\n    algorithm: {}\n    secret: {}\nacl:\n  - id: xfr\n    key: {}\n    action: transfer\n",
            key.name, key.algorithm, key.secret, key.name
        ))
        .zone_line("acl: xfr")
        .start()
        .unwrap();
    let config = support::config::Config::new()
        .zone_with(
            ZONE,
            "zone",
            &format!("allow_transfer = [\"key:{}\"]", key.name),
        )
        .raw("[[tsig_key]]\nfile = \"vpc.key\"\nview = \"default\"\n");
    let dns = config.dns;
    let _regdns = support::regdns::Regdns::launch(config)
        .file("zone", zone_text)
        .file("vpc.key", key.bind_file())
        .ready_soa(ZONE)
        .start();

    let now = regdns::tsig::now();
    let k = key.key();
    let mut unknown = k.clone();
    unknown.name = hickory_proto::rr::Name::from_ascii("unknown-key.").unwrap();
    let mut wrong = k.clone();
    wrong.secret = b"wrong".to_vec();
    let ixfr = |serial: u32, key: &regdns::tsig::Key| {
        let mut m = hickory_proto::op::Message::query();
        m.metadata.id = 99;
        let name = hickory_proto::rr::Name::from_ascii(ZONE).unwrap();
        m.add_query(hickory_proto::op::Query::query(
            name.clone(),
            RecordType::IXFR,
        ));
        m.add_authority(hickory_proto::rr::Record::from_rdata(
            name.clone(),
            0,
            hickory_proto::rr::RData::SOA(hickory_proto::rr::rdata::SOA::new(
                name.clone(),
                name,
                serial,
                0,
                0,
                0,
                0,
            )),
        ));
        let mut b = m.to_vec().unwrap();
        regdns::tsig::sign(&mut b, key, None, regdns::tsig::now(), 0, &[]);
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("AXFR signed", signed_axfr(&k, now)),
        ("AXFR unknown key", signed_axfr(&unknown, now)),
        ("AXFR bad signature", signed_axfr(&wrong, now)),
        ("AXFR stale time", signed_axfr(&k, now - 3600)),
        ("IXFR up to date", ixfr(7, &k)),
    ];
    for (label, q) in &cases {
        let theirs = tcp_transfer(knot.addr, q);
        let ours = tcp_transfer(dns, q);
        assert_eq!(summary(&ours), summary(&theirs), "{label}");
        if *label == "AXFR signed" {
            assert_eq!(summary(&ours).2.len(), 9, "{:?}", summary(&ours));
        }
        let mac = regdns::tsig::find(q).unwrap().mac;
        if label.contains("signed") || label.contains("up to date") {
            for (who, m) in [("knot", &theirs[0]), ("regdns", &ours[0])] {
                assert!(
                    regdns::tsig::verify_response(m, &k, &mac),
                    "{label}: {who}'s response verifies"
                );
            }
        }
    }
    // IXFR over UDP from an older serial: the current SOA only, signed, from both.
    let q = ixfr(3, &k);
    let theirs = support::dns::send_udp_raw(knot.addr, &q, Duration::from_secs(3)).unwrap();
    let ours = support::dns::send_udp_raw(dns, &q, Duration::from_secs(3)).unwrap();
    assert_eq!(
        summary(std::slice::from_ref(&ours)),
        summary(std::slice::from_ref(&theirs)),
        "IXFR over UDP"
    );
    let mac = regdns::tsig::find(&q).unwrap().mac;
    assert!(regdns::tsig::verify_response(&ours, &k, &mac));
    assert!(regdns::tsig::verify_response(&theirs, &k, &mac));
}
