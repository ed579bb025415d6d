//! RFC 2136 messages (pure): the queries that read the managed RRsets at one name, and the
//! one UPDATE that moves them to the planned state, with the RRsets as last read as its
//! prerequisites (RFC 2136 §2.4.2 / §2.4.3), so that a concurrent edit makes the primary
//! answer NXRRSET/YXRRSET instead of being overwritten blindly. Only CNAME, A and AAAA at
//! the managed name are ever deleted or added; SOA and everything else are never touched.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::publish::engine::plan::{MANAGED_TYPES, Op, RecordInfo, normalize_value};

/// The record id RFC 2136 records get: `TYPE value` (normalized), unique per RRset member.
pub fn record_id(rtype: &str, value: &str) -> String {
    let t = rtype.to_ascii_uppercase();
    format!("{t} {}", normalize_value(&t, value))
}

/// A managed record: type, value (CNAME without the trailing dot), TTL.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rr {
    /// `CNAME`, `A` or `AAAA`.
    pub rtype: String,
    /// Normalized value.
    pub value: String,
    /// TTL.
    pub ttl: u32,
}

/// Why a message could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A value that does not fit its type.
    #[error("{rtype} value {value:?} is not valid")]
    BadValue {
        /// Type.
        rtype: String,
        /// Value.
        value: String,
    },
    /// An op that names a record that was not read.
    #[error("op on unknown record {0}")]
    UnknownRecord(String),
    /// Encoding or decoding failed.
    #[error("{0}")]
    Codec(String),
}

/// A query for `rtype` at `name` (no recursion wanted: the primary answers authoritatively).
pub fn query(id: u16, name: &Name, rtype: RecordType) -> Result<Vec<u8>, WireError> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(name.clone(), rtype));
    m.to_vec().map_err(|e| WireError::Codec(e.to_string()))
}

/// Types read besides the managed ones, so that records regdns does not manage are known
/// (shown as unmanaged, never touched) and block a CNAME in the plan: RFC 2136 has no way
/// to list every type at a name, and a primary silently ignores a CNAME added next to other
/// data (RFC 2136 §3.4.2.2), after the same UPDATE deleted the A records.
pub const OTHER_TYPES: [RecordType; 14] = [
    RecordType::TXT,
    RecordType::MX,
    RecordType::SRV,
    RecordType::CAA,
    RecordType::NS,
    RecordType::HTTPS,
    RecordType::SVCB,
    RecordType::PTR,
    RecordType::NAPTR,
    RecordType::DS,
    RecordType::TLSA,
    RecordType::SSHFP,
    RecordType::HINFO,
    RecordType::DNAME,
];

/// The records of `rtype` owned by `name` in a response's answer section.
pub fn answer_records(msg: &Message, name: &Name, rtype: RecordType) -> Vec<Rr> {
    msg.answers
        .iter()
        .filter(|r| r.record_type() == rtype && r.name.eq_ignore_root_case(name))
        .map(|r| {
            let value = match &r.data {
                RData::A(a) => a.0.to_string(),
                RData::AAAA(a) => a.0.to_string(),
                RData::CNAME(c) => c.0.to_string().trim_end_matches('.').to_ascii_lowercase(),
                other => other.to_string(),
            };
            Rr {
                rtype: rtype.to_string(),
                value,
                ttl: r.ttl,
            }
        })
        .collect()
}

/// The managed records after `ops` are applied to `found` (pure; ids as [`record_id`]).
pub fn apply_ops(found: &[RecordInfo], ops: &[Op]) -> Result<Vec<Rr>, WireError> {
    let mut set: Vec<(String, Rr)> = found
        .iter()
        .filter(|r| crate::publish::engine::plan::is_managed_type(&r.rtype))
        .map(|r| {
            let t = r.rtype.to_ascii_uppercase();
            (
                r.record_id.clone(),
                Rr {
                    value: normalize_value(&t, &r.value),
                    rtype: t,
                    ttl: r.ttl,
                },
            )
        })
        .collect();
    for op in ops {
        match op {
            Op::Delete { record_id } => {
                let n = set.len();
                set.retain(|(id, _)| id != record_id);
                if set.len() == n {
                    return Err(WireError::UnknownRecord(record_id.clone()));
                }
            }
            Op::Update {
                record_id,
                rtype,
                value,
                ttl,
            } => {
                let Some(slot) = set.iter_mut().find(|(id, _)| id == record_id) else {
                    return Err(WireError::UnknownRecord(record_id.clone()));
                };
                let t = rtype.to_ascii_uppercase();
                slot.1 = Rr {
                    value: normalize_value(&t, value),
                    rtype: t,
                    ttl: *ttl,
                };
            }
            Op::Add { rtype, value, ttl } => {
                let t = rtype.to_ascii_uppercase();
                set.push((
                    record_id(&t, value),
                    Rr {
                        value: normalize_value(&t, value),
                        rtype: t,
                        ttl: *ttl,
                    },
                ));
            }
        }
    }
    let mut out: Vec<Rr> = set.into_iter().map(|(_, r)| r).collect();
    out.sort();
    out.dedup_by(|a, b| a.rtype == b.rtype && a.value == b.value);
    Ok(out)
}

fn rdata(rtype: &str, value: &str) -> Result<RData, WireError> {
    let bad = || WireError::BadValue {
        rtype: rtype.to_string(),
        value: value.to_string(),
    };
    Ok(match rtype {
        "A" => RData::A(A(value.parse::<Ipv4Addr>().map_err(|_| bad())?)),
        "AAAA" => RData::AAAA(AAAA(value.parse::<Ipv6Addr>().map_err(|_| bad())?)),
        "CNAME" => {
            let mut n = Name::from_ascii(value).map_err(|_| bad())?;
            n.set_fqdn(true);
            RData::CNAME(CNAME(n))
        }
        _ => return Err(bad()),
    })
}

fn rtype_of(t: &str) -> RecordType {
    match t {
        "A" => RecordType::A,
        "AAAA" => RecordType::AAAA,
        _ => RecordType::CNAME,
    }
}

/// The UPDATE that turns the managed records `before` (as read) at `name` into `after`:
/// prerequisites = every managed RRset exactly as read (present: value-dependent "RRset
/// exists"; absent: "RRset does not exist"); updates = delete each managed RRset that
/// changes, then add its new records (deletes first, so CNAME ⇄ A is one message). TTL is
/// per RRset: a TTL change rewrites the RRset. Returns None when nothing changes.
pub fn update(
    id: u16,
    zone: &Name,
    name: &Name,
    before: &[Rr],
    after: &[Rr],
) -> Result<Option<Message>, WireError> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Update);
    let mut zq = Query::query(zone.clone(), RecordType::SOA);
    zq.set_query_class(DNSClass::IN);
    m.add_query(zq);
    let mut deletes = Vec::new();
    let mut adds = Vec::new();
    for t in MANAGED_TYPES {
        let rt = rtype_of(t);
        let b: Vec<&Rr> = before.iter().filter(|r| r.rtype == t).collect();
        let a: Vec<&Rr> = after.iter().filter(|r| r.rtype == t).collect();
        // Prerequisite: this RRset exactly as read.
        if b.is_empty() {
            let mut p = Record::update0(name.clone(), 0, rt);
            p.dns_class = DNSClass::NONE;
            m.add_answer(p);
        } else {
            for r in &b {
                let mut p = Record::from_rdata(name.clone(), 0, rdata(t, &r.value)?);
                p.dns_class = DNSClass::IN;
                m.add_answer(p);
            }
        }
        if b == a {
            continue;
        }
        if !b.is_empty() {
            let mut d = Record::update0(name.clone(), 0, rt);
            d.dns_class = DNSClass::ANY;
            deletes.push(d);
        }
        for r in &a {
            adds.push(Record::from_rdata(name.clone(), r.ttl, rdata(t, &r.value)?));
        }
    }
    if deletes.is_empty() && adds.is_empty() {
        return Ok(None);
    }
    for r in deletes.into_iter().chain(adds) {
        m.add_authority(r);
    }
    Ok(Some(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn rec(t: &str, v: &str, ttl: u32) -> RecordInfo {
        RecordInfo {
            record_id: record_id(t, v),
            rr: "cr".into(),
            rtype: t.into(),
            value: v.into(),
            ttl,
            status: None,
            line: None,
            weight: None,
            priority: None,
        }
    }

    fn rr(t: &str, v: &str, ttl: u32) -> Rr {
        Rr {
            rtype: t.into(),
            value: v.into(),
            ttl,
        }
    }

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn ops_applied() {
        let found = vec![rec("CNAME", "a.example.com", 30)];
        let ops = vec![Op::Update {
            record_id: record_id("CNAME", "a.example.com"),
            rtype: "A".into(),
            value: "10.0.0.1".into(),
            ttl: 60,
        }];
        assert_eq!(
            apply_ops(&found, &ops).unwrap(),
            vec![rr("A", "10.0.0.1", 60)]
        );
        let bad = vec![Op::Delete {
            record_id: "A 10.9.9.9".into(),
        }];
        assert!(apply_ops(&found, &bad).is_err());
    }

    #[test]
    fn cname_to_a_is_one_message_with_prerequisites() {
        let before = vec![rr("CNAME", "a.example.com", 30)];
        let after = vec![rr("A", "10.0.0.1", 30), rr("A", "10.0.0.2", 30)];
        let m = update(
            7,
            &n("example.net."),
            &n("cr.example.net."),
            &before,
            &after,
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.metadata.op_code, OpCode::Update);
        assert_eq!(m.queries[0].query_type(), RecordType::SOA);
        // Prerequisites: CNAME exists with its value; A and AAAA do not exist.
        let pre: Vec<(RecordType, DNSClass)> = m
            .answers
            .iter()
            .map(|r| (r.record_type(), r.dns_class))
            .collect();
        assert_eq!(
            pre,
            vec![
                (RecordType::CNAME, DNSClass::IN),
                (RecordType::A, DNSClass::NONE),
                (RecordType::AAAA, DNSClass::NONE)
            ]
        );
        // Updates: delete the CNAME RRset first, then add both A records; nothing else.
        let up: Vec<(RecordType, DNSClass, u32)> = m
            .authorities
            .iter()
            .map(|r| (r.record_type(), r.dns_class, r.ttl))
            .collect();
        assert_eq!(
            up,
            vec![
                (RecordType::CNAME, DNSClass::ANY, 0),
                (RecordType::A, DNSClass::IN, 30),
                (RecordType::A, DNSClass::IN, 30)
            ]
        );
        assert!(m.authorities.iter().all(|r| r.name == n("cr.example.net.")));
        // It encodes.
        assert!(m.to_vec().is_ok());
    }

    #[test]
    fn unchanged_rrsets_untouched_and_no_op_is_none() {
        let before = vec![rr("A", "10.0.0.1", 30), rr("AAAA", "2001:db8::1", 30)];
        let after = vec![rr("A", "10.0.0.2", 30), rr("AAAA", "2001:db8::1", 30)];
        let m = update(1, &n("example.net."), &n("example.net."), &before, &after)
            .unwrap()
            .unwrap();
        assert!(
            m.authorities
                .iter()
                .all(|r| r.record_type() == RecordType::A)
        );
        assert!(
            update(1, &n("example.net."), &n("example.net."), &before, &before)
                .unwrap()
                .is_none()
        );
    }

    /// What a primary does with the UPDATE (RFC 2136 §3.2, §3.4): check every prerequisite
    /// against `state`, then apply the updates in order. Returns None when a prerequisite
    /// fails. `state` holds (type, value, ttl) at the one name.
    fn apply_update(m: &Message, state: &[Rr]) -> Option<Vec<Rr>> {
        let value = |r: &Record| match &r.data {
            RData::A(a) => a.0.to_string(),
            RData::AAAA(a) => a.0.to_string(),
            RData::CNAME(c) => c.0.to_string().trim_end_matches('.').to_string(),
            _ => String::new(),
        };
        // Prerequisites: value-dependent RRsets must match exactly; NONE means absent.
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in &m.answers {
            let t = p.record_type().to_string();
            match p.dns_class {
                DNSClass::NONE => {
                    if state.iter().any(|r| r.rtype == t) {
                        return None;
                    }
                }
                DNSClass::IN => wanted.entry(t).or_default().push(value(p)),
                other => panic!("unexpected prerequisite class {other:?}"),
            }
        }
        for (t, mut vals) in wanted {
            let mut have: Vec<String> = state
                .iter()
                .filter(|r| r.rtype == t)
                .map(|r| r.value.clone())
                .collect();
            vals.sort();
            have.sort();
            if vals != have {
                return None;
            }
        }
        let mut out = state.to_vec();
        for u in &m.authorities {
            let t = u.record_type().to_string();
            match u.dns_class {
                DNSClass::ANY => out.retain(|r| r.rtype != t),
                DNSClass::IN => {
                    let v = value(u);
                    out.retain(|r| !(r.rtype == t && r.value == v));
                    out.push(Rr {
                        rtype: t,
                        value: v,
                        ttl: u.ttl,
                    });
                }
                other => panic!("unexpected update class {other:?}"),
            }
        }
        out.sort();
        Some(out)
    }

    fn arb_set() -> impl Strategy<Value = Vec<Rr>> {
        let a = prop::collection::btree_set(0u8..4, 0..3).prop_map(|s| {
            s.into_iter()
                .map(|i| rr("A", &format!("10.0.0.{i}"), 30))
                .collect::<Vec<_>>()
        });
        let aaaa = prop::collection::btree_set(1u8..4, 0..2).prop_map(|s| {
            s.into_iter()
                .map(|i| rr("AAAA", &format!("2001:db8::{i}"), 60))
                .collect::<Vec<_>>()
        });
        let cname = (0u8..3).prop_map(|i| vec![rr("CNAME", &format!("t{i}.example.com"), 30)]);
        prop_oneof![
            (a, aaaa).prop_map(|(mut a, b)| {
                a.extend(b);
                a
            }),
            cname,
        ]
    }

    proptest! {
        /// The UPDATE built from (before, after) passes its prerequisites on `before`, turns
        /// it into exactly `after`, and fails its prerequisites on any other managed state.
        #[test]
        fn update_moves_before_to_after(before in arb_set(), after in arb_set(), other in arb_set()) {
            let zone = n("example.net.");
            let name = n("cr.example.net.");
            let mut want = after.clone();
            want.sort();
            match update(9, &zone, &name, &before, &after).unwrap() {
                None => {
                    let mut b = before.clone();
                    b.sort();
                    prop_assert_eq!(b, want);
                }
                Some(m) => {
                    prop_assert!(m.to_vec().is_ok());
                    prop_assert_eq!(apply_update(&m, &before), Some(want));
                    let same = |x: &[Rr], y: &[Rr]| {
                        let key = |s: &[Rr]| {
                            let mut v: Vec<(String, String)> =
                                s.iter().map(|r| (r.rtype.clone(), r.value.clone())).collect();
                            v.sort();
                            v
                        };
                        key(x) == key(y)
                    };
                    if !same(&other, &before) {
                        prop_assert_eq!(apply_update(&m, &other), None);
                    }
                    // Only the managed types, only at the name.
                    for r in m.answers.iter().chain(&m.authorities) {
                        prop_assert_eq!(&r.name, &name);
                        prop_assert!(MANAGED_TYPES.contains(&r.record_type().to_string().as_str()));
                    }
                }
            }
        }
    }
}
