//! The general answer of one question from one view's tables: the authoritative
//! [`super::lookup`] encoded canonically by hickory-proto (ID 0, no RD/CD, lower-case
//! question, no OPT). The DNS server patches these bytes per client; the snapshot builder
//! pre-encodes the common ones with this very function, so the fast path is by
//! construction the general path's output.

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::ViewTable;
use super::lookup::{self, Rcode, Sections};

/// RCODE values [`answer_general`] returns.
pub mod rc {
    /// No error.
    pub const NOERROR: u16 = 0;
    /// Format error.
    pub const FORMERR: u16 = 1;
    /// Server failure.
    pub const SERVFAIL: u16 = 2;
    /// Refused.
    pub const REFUSED: u16 = 5;
    /// Not authoritative.
    pub const NOTAUTH: u16 = 9;
}

/// Computes the canonical response (ID 0, no RD/CD, lower-case question, no OPT) for a
/// question, or an error RCODE to send without data. Names of a response policy zone are
/// REFUSED: they are answered only to its transfer clients ([`answer_policy`]).
pub fn answer_general(
    table: &ViewTable,
    lower_qname: &[u8],
    qtype: u16,
    qclass: u16,
) -> (u16, Option<Vec<u8>>) {
    answer(table, lower_qname, qtype, qclass, false)
}

/// [`answer_general`] for a client the transfer ACL of the name's zone admits: names of a
/// response policy zone are answered too (the caller checked the ACL).
pub fn answer_policy(
    table: &ViewTable,
    lower_qname: &[u8],
    qtype: u16,
    qclass: u16,
) -> (u16, Option<Vec<u8>>) {
    answer(table, lower_qname, qtype, qclass, true)
}

#[inline(always)]
fn answer(
    table: &ViewTable,
    lower_qname: &[u8],
    qtype: u16,
    qclass: u16,
    rpz: bool,
) -> (u16, Option<Vec<u8>>) {
    let Ok(qname) = Name::read(&mut BinDecoder::new(lower_qname)) else {
        return (rc::FORMERR, None);
    };
    let rtype = RecordType::from(qtype);
    // Transfers are handled before (NOTAUTH/NOTIMP). Other meta types (OPT, TSIG in the
    // question) are answered as types without data, as Knot does: NODATA/NXDOMAIN with AA,
    // the CNAME followed, a referral below a cut (tests/conformance.rs).
    if matches!(rtype, RecordType::AXFR | RecordType::IXFR) {
        return (rc::NOTAUTH, None);
    }
    let class = DNSClass::from(qclass);
    if !matches!(class, DNSClass::IN | DNSClass::ANY) {
        return (rc::REFUSED, None);
    }
    let Some(zone) = table.zone_for(&qname) else {
        return (rc::REFUSED, None);
    };
    if zone.rpz && !rpz {
        return (rc::REFUSED, None);
    }
    if zone.unavailable.contains(&qname) {
        return (rc::SERVFAIL, None);
    }
    let sections = lookup::lookup(zone, &qname, rtype);
    match encode_canonical(&qname, rtype, class, &sections) {
        Some(bytes) => (rc::NOERROR, Some(bytes)),
        None => (rc::REFUSED, None),
    }
}

/// Encodes sections as a canonical response.
pub fn encode_canonical(
    qname: &Name,
    qtype: RecordType,
    qclass: DNSClass,
    s: &Sections,
) -> Option<Vec<u8>> {
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    m.metadata.authoritative = s.aa;
    m.metadata.response_code = match s.rcode {
        Rcode::NoError => ResponseCode::NoError,
        Rcode::NxDomain => ResponseCode::NXDomain,
    };
    let mut query = Query::query(qname.clone(), qtype);
    query.set_query_class(qclass);
    m.add_query(query);
    m.add_answers(s.answers.iter().cloned());
    m.add_authorities(s.authority.iter().cloned());
    m.add_additionals(s.additional.iter().cloned());
    m.to_vec().ok()
}
