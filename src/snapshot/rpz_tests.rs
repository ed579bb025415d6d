//! Response policy zones in the snapshot: the policy records of the triggers (CNAME
//! rewrite, A/AAAA, `CNAME rpz-passthru.`), serials that move with them, nothing of a policy
//! zone pre-encoded, and the general answer refusing it while [`answer_policy`] answers.
//! [`fixture`] is the model the serving tests (`crate::dns::policy`) share.

use std::collections::{BTreeSet, HashMap};

use figment::providers::Env;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable};

use super::answer::{answer_general, answer_policy, rc};
use super::build::{ActiveTargets, SnapshotBuilder};
use super::{SerialBook, Snapshot, ViewTable, ZoneTable};
use crate::model::Model;

/// The policy zone of [`fixture`].
pub(crate) const RPZ: &str = "rpz.regdns.";
/// A trigger with a CNAME rewrite (`ga`) and a passthrough (`direct`).
pub(crate) const DOCKER: &str = "registry-1.docker.io.rpz.regdns.";
/// A trigger with addresses (`ga`) and a passthrough (`direct`).
pub(crate) const QUAY: &str = "quay.io.rpz.regdns.";
/// An endpoint of the ordinary zone.
pub(crate) const ORDINARY: &str = "cross-region.registry.io.";
/// The TSIG key the policy zone's ACL admits.
pub(crate) const KEY: &str = "rpz-key.";

/// Two zones (`registry.io.`, and `rpz.regdns.` with `kind = "rpz"`, transferable from
/// 127.0.0.1 or with [`KEY`]), instances `ga` and `direct`, and three endpoints:
/// [`ORDINARY`], [`DOCKER`] and [`QUAY`].
pub(crate) fn fixture() -> Model {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("registry.io.zone"),
        "$ORIGIN registry.io.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n NS ns1\nns1 A 192.0.2.53\n",
    )
    .unwrap();
    std::fs::write(
        d.join("rpz.zone"),
        "$ORIGIN rpz.regdns.\n$TTL 60\n@ SOA localhost. hostmaster.localhost. 7 3600 600 86400 60\n NS localhost.\n",
    )
    .unwrap();
    std::fs::write(
        d.join("rpz.key"),
        format!("key \"{KEY}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=\";\n}};\n"),
    )
    .unwrap();
    let text = format!(
        r#"[server]
listen = ["127.0.0.1:0"]

[[zone]]
origin = "registry.io."
file = "registry.io.zone"

[[zone]]
origin = "{RPZ}"
file = "rpz.zone"
kind = "rpz"
allow_transfer = ["127.0.0.1/32", "key:{KEY}"]

[[tsig_key]]
file = "rpz.key"
view = "default"

[[instance]]
id = "ga"
url = "http://127.0.0.1:9/v2/"

[[instance]]
id = "direct"
url = "http://127.0.0.1:9/v2/"

[[endpoint]]
name = "{ORDINARY}"
[endpoint.targets]
default = [{{ instance = "ga", cname = "ga.accel.test." }}, {{ instance = "direct", a = ["192.0.2.9"] }}]

[[endpoint]]
name = "{DOCKER}"
[endpoint.targets]
default = [{{ instance = "ga", cname = "ga.accel.test." }}, {{ instance = "direct", passthrough = true }}]

[[endpoint]]
name = "{QUAY}"
[endpoint.targets]
default = [{{ instance = "ga", a = ["192.0.2.7"], aaaa = ["2001:db8::7"] }}, {{ instance = "direct", passthrough = true }}]
"#
    );
    let loaded = crate::config::parse(
        &text,
        &d.join("regdns.toml"),
        Env::prefixed("REGDNS_UNUSED_"),
    )
    .unwrap();
    crate::model::build(&loaded).unwrap()
}

/// `instance` active for every endpoint in the default view.
pub(crate) fn all_on(model: &Model, instance: &str) -> ActiveTargets {
    model
        .endpoints
        .iter()
        .map(|e| {
            (
                (e.name.to_string(), "default".to_string()),
                instance.to_string(),
            )
        })
        .collect()
}

/// A full build of `model` with `active`.
pub(crate) fn snapshot(model: &Model, active: &ActiveTargets) -> Snapshot {
    SnapshotBuilder::new(model, active, &HashMap::new(), &mut SerialBook::default())
        .snapshot(model, 1)
}

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn zone<'t>(t: &'t ViewTable, origin: &str) -> &'t ZoneTable {
    t.zones.iter().find(|z| z.origin == n(origin)).unwrap()
}

/// The records at `name` in `zone`, as `TYPE RDATA`.
fn at(zone: &ZoneTable, name: &str) -> Vec<String> {
    let mut v: Vec<String> = zone.nodes[&n(name)]
        .rrsets
        .iter()
        .flat_map(|(_, rs)| rs.iter().map(|r| format!("{} {}", r.record_type(), r.data)))
        .collect();
    v.sort();
    v
}

#[test]
fn triggers_carry_the_policy_records_of_the_active_target() {
    let m = fixture();
    let s = snapshot(&m, &all_on(&m, "ga"));
    let rpz = zone(&s.views[0], RPZ);
    assert!(rpz.rpz && !zone(&s.views[0], "registry.io.").rpz);
    assert_eq!(at(rpz, DOCKER), ["CNAME ga.accel.test."]);
    assert_eq!(at(rpz, QUAY), ["A 192.0.2.7", "AAAA 2001:db8::7"]);
    let ttl = rpz.nodes[&n(DOCKER)].rrsets[0].1[0].ttl;
    assert_eq!(ttl, m.endpoints[1].ttl);

    let s = snapshot(&m, &all_on(&m, "direct"));
    let rpz = zone(&s.views[0], RPZ);
    assert_eq!(at(rpz, DOCKER), ["CNAME rpz-passthru."]);
    assert_eq!(at(rpz, QUAY), ["CNAME rpz-passthru."]);
    // The ordinary endpoint is untouched by the policy zone next to it.
    let ordinary = zone(&s.views[0], "registry.io.");
    assert_eq!(at(ordinary, ORDINARY), ["A 192.0.2.9"]);
}

#[test]
fn a_change_of_policy_moves_the_serial_with_a_difference_for_ixfr() {
    let m = fixture();
    let mut serials = SerialBook::default();
    let flat = HashMap::new();
    let mut b = SnapshotBuilder::new(&m, &all_on(&m, "ga"), &flat, &mut serials);
    let before = zone(&b.snapshot(&m, 1).views[0], RPZ).serial;
    assert_eq!(before, 7, "the zone file's serial first");
    // Every endpoint switches: the ordinary zone's table and the policy zone's.
    let changed: BTreeSet<(usize, usize)> = [(0, 0), (1, 0), (2, 0)].into();
    assert_eq!(
        b.update(&m, &all_on(&m, "direct"), &flat, &mut serials, &changed),
        2
    );
    let s = b.snapshot(&m, 2);
    let rpz = zone(&s.views[0], RPZ);
    assert_eq!(rpz.serial, 8);
    assert_eq!(at(rpz, DOCKER), ["CNAME rpz-passthru."]);
    let diff = rpz.history.last().expect("a difference");
    assert_eq!((diff.from(), diff.to()), (7, 8));
    let added: Vec<String> = diff.added.iter().map(|r| r.data.to_string()).collect();
    assert!(added.contains(&"rpz-passthru.".to_string()), "{added:?}");
    // Byte for byte what a full build gives, and still nothing pre-encoded.
    let full = snapshot(&m, &all_on(&m, "direct"));
    assert_eq!(at(zone(&full.views[0], RPZ), QUAY), at(rpz, QUAY));
    assert_eq!(
        s.views[0].templates.len(),
        full.views[0].templates.len(),
        "same templates as a full build"
    );
}

#[test]
fn the_general_answer_refuses_a_policy_zone_and_nothing_of_it_is_pre_encoded() {
    let m = fixture();
    let s = snapshot(&m, &all_on(&m, "direct"));
    let t = &s.views[0];
    for name in [RPZ, DOCKER, QUAY, "nothing.rpz.regdns."] {
        let wire = n(name).to_bytes().unwrap();
        for qtype in [RecordType::A, RecordType::SOA, RecordType::CNAME] {
            assert_eq!(
                answer_general(t, &wire, qtype.into(), 1),
                (rc::REFUSED, None),
                "{name} {qtype}"
            );
        }
    }
    let rpz_origin = n(RPZ);
    assert!(
        t.templates.keys().all(|k| {
            let name = Name::read(&mut BinDecoder::new(&k[2..])).unwrap();
            !rpz_origin.zone_of(&name)
        }),
        "no template of the policy zone"
    );
    // The ordinary zone keeps its templates.
    let ordinary = n(ORDINARY).to_bytes().unwrap();
    let mut key = u16::from(RecordType::A).to_be_bytes().to_vec();
    key.extend_from_slice(&ordinary);
    assert!(t.templates.contains_key(&key[..]));

    // The policy answer: authoritative, the policy record.
    let wire = n(DOCKER).to_bytes().unwrap();
    let (code, bytes) = answer_policy(t, &wire, RecordType::A.into(), 1);
    assert_eq!(code, rc::NOERROR);
    let msg = Message::from_vec(&bytes.unwrap()).unwrap();
    assert!(msg.metadata.authoritative);
    assert!(
        matches!(&msg.answers[..], [r] if matches!(&r.data, RData::CNAME(c) if c.0 == n("rpz-passthru.")))
    );
    let (code, bytes) = answer_policy(t, &n(RPZ).to_bytes().unwrap(), RecordType::SOA.into(), 1);
    assert_eq!(code, rc::NOERROR);
    let msg = Message::from_vec(&bytes.unwrap()).unwrap();
    assert_eq!(msg.answers[0].record_type(), RecordType::SOA);
}
