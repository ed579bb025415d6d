//! Queries for response policy zones (`[[zone]] kind = "rpz"`): a policy zone is for the
//! resolvers that transfer it (BIND `response-policy`, unbound `rpz:`), so a query for one of
//! its names is answered only to a client its `allow_transfer` admits (by source address or
//! verified TSIG key, as a transfer would be): the SOA a secondary polls, and any other name
//! for an operator checking the policy from such a client. Everyone else gets REFUSED with
//! Extended DNS Error 18 (Prohibited). Transfers and their ACL are [`super::xfr`]'s, as for
//! any zone.
//!
//! Off the hot path: the general answer refuses every name of a policy zone (so nothing of
//! it is pre-encoded or cached as an answer), and [`super::respond`] comes here only for a
//! refusal in a snapshot that has a policy zone.

use std::net::IpAddr;

use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::request::{Question, Request};
use super::respond::{finish, rcode_of};
use super::wire::{
    EDE_PROHIBITED, OptOut, Outcome, Transport, push_ede, push_opt, rc, write_error,
};
use crate::snapshot::answer::answer_policy;
use crate::snapshot::{Snapshot, ViewTable};

/// Answers a question the general answer refused in view `view`: a name of a response
/// policy zone to one of its transfer clients, REFUSED + EDE 18 to anyone else, and any
/// other refusal as it was.
#[allow(clippy::too_many_arguments)]
pub(super) fn respond(
    snap: &Snapshot,
    table: &ViewTable,
    view: usize,
    req: &Request<'_>,
    q: &Question,
    src: IpAddr,
    signed: Option<&Name>,
    opt: Option<OptOut>,
    transport: Transport,
    out: &mut Vec<u8>,
) -> Outcome {
    let question = req.question_bytes();
    let zone = Name::read(&mut BinDecoder::new(q.lower_wire()))
        .ok()
        .and_then(|qname| table.zone_for(&qname))
        .filter(|z| z.rpz);
    let Some(zone) = zone else {
        return Outcome {
            view: Some(view),
            ..write_error(out, req.id, req.flags, rc::REFUSED, question, opt)
        };
    };
    let admitted = snap
        .transfer
        .zone(&zone.origin)
        .is_some_and(|acl| acl.allows(src, signed));
    if !admitted {
        let o = write_error(out, req.id, req.flags, rc::REFUSED, question, None);
        if let Some(opt) = opt {
            push_opt(out, &opt);
            push_ede(out, EDE_PROHIBITED);
        }
        return Outcome {
            view: Some(view),
            ..o
        };
    }
    match answer_policy(table, q.lower_wire(), q.qtype, q.qclass) {
        (_, Some(canonical)) => {
            let truncated = finish(out, &canonical, req, opt, transport);
            Outcome {
                rcode: rcode_of(out),
                view: Some(view),
                fast: false,
                truncated,
            }
        }
        (rcode, None) => Outcome {
            view: Some(view),
            ..write_error(out, req.id, req.flags, rcode, question, opt)
        },
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::{Name, RData, RecordType};

    use super::super::respond::{Transport, respond};
    use crate::snapshot::Snapshot;
    use crate::snapshot::rpz_tests::{DOCKER, KEY, ORDINARY, QUAY, RPZ, all_on, fixture, snapshot};

    fn query(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
        let mut m = Message::new(4321, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if edns {
            m.set_edns(Edns::new());
        }
        m.to_vec().unwrap()
    }

    /// The raw response and its parse.
    fn ask(s: &Snapshot, pkt: &[u8], src: &str) -> (Vec<u8>, Message) {
        let mut out = Vec::new();
        respond(s, pkt, src.parse().unwrap(), Transport::Udp, &mut out).expect("an answer");
        let m = Message::from_vec(&out).expect("a parseable answer");
        (out, m)
    }

    fn direct() -> Snapshot {
        let m = fixture();
        snapshot(&m, &all_on(&m, "direct"))
    }

    /// The Extended DNS Error of a response whose OPT is the last record, if any.
    fn ede(out: &[u8]) -> Option<u16> {
        let tail = out.get(out.len().checked_sub(6)?..)?;
        (tail[..4] == [0, 15, 0, 2]).then(|| u16::from_be_bytes([tail[4], tail[5]]))
    }

    #[test]
    fn a_policy_zone_is_refused_to_clients_that_may_not_transfer_it() {
        let s = direct();
        for (name, qtype) in [
            (DOCKER, RecordType::A),
            (QUAY, RecordType::AAAA),
            (RPZ, RecordType::SOA),
            (RPZ, RecordType::NS),
            ("nothing.rpz.regdns.", RecordType::A),
        ] {
            let (out, m) = ask(&s, &query(name, qtype, true), "127.0.0.9");
            assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{name}");
            assert!(m.answers.is_empty() && !m.metadata.authoritative);
            assert_eq!(ede(&out), Some(18), "Prohibited: {name} {qtype}");
            // Without EDNS: a bare REFUSED.
            let (_, m) = ask(&s, &query(name, qtype, false), "127.0.0.9");
            assert_eq!(m.metadata.response_code, ResponseCode::Refused);
            assert!(m.additionals.is_empty());
        }
        // Outside every zone: the usual refusal (EDE 20, Not Authoritative).
        let (out, m) = ask(&s, &query("docker.io.", RecordType::A, true), "127.0.0.9");
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        assert_eq!(ede(&out), Some(20));
    }

    #[test]
    fn a_transfer_client_gets_the_policy_records_and_the_soa() {
        let s = direct();
        let (_, m) = ask(&s, &query(DOCKER, RecordType::A, true), "127.0.0.1");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative);
        assert!(
            matches!(&m.answers[..], [r] if matches!(&r.data, RData::CNAME(c) if c.0.to_string() == "rpz-passthru.")),
            "{m:?}"
        );
        let (_, m) = ask(&s, &query(RPZ, RecordType::SOA, false), "127.0.0.1");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers[0].record_type(), RecordType::SOA);
        let (_, m) = ask(
            &s,
            &query("nothing.rpz.regdns.", RecordType::A, true),
            "127.0.0.1",
        );
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        // The answer to ga: the CNAME rewrite and the addresses.
        let fx = fixture();
        let s = snapshot(&fx, &all_on(&fx, "ga"));
        let (_, m) = ask(&s, &query(DOCKER, RecordType::A, true), "127.0.0.1");
        assert_eq!(m.answers[0].data.to_string(), "ga.accel.test.");
        let (_, m) = ask(&s, &query(QUAY, RecordType::AAAA, true), "127.0.0.1");
        assert_eq!(m.answers[0].data.to_string(), "2001:db8::7");
    }

    #[test]
    fn a_query_signed_with_an_admitted_key_is_answered_from_anywhere() {
        let s = direct();
        let key = s
            .transfer
            .keys
            .iter()
            .find(|k| k.name.to_string() == KEY)
            .unwrap()
            .clone();
        let mut pkt = query(RPZ, RecordType::SOA, true);
        crate::tsig::sign(&mut pkt, &key, None, crate::tsig::now(), 0, &[]);
        let (out, m) = ask(&s, &pkt, "127.0.0.9");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
        assert_eq!(m.answers[0].record_type(), RecordType::SOA);
        assert!(crate::tsig::find(&out).is_some(), "the answer is signed");
    }

    #[test]
    fn ordinary_zones_are_answered_as_before_from_the_fast_path() {
        let s = direct();
        let mut out = Vec::new();
        let o = respond(
            &s,
            &query(ORDINARY, RecordType::A, false),
            "127.0.0.9".parse().unwrap(),
            Transport::Udp,
            &mut out,
        )
        .unwrap();
        assert!(o.fast, "pre-encoded");
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.answers[0].data.to_string(), "192.0.2.9");
    }
}
