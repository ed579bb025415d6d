//! From query bytes to response bytes for one client: the whole answering logic, shared by
//! UDP and TCP. Parses with [`super::request`], picks the view, copies a pre-encoded
//! response from the snapshot when one exists (fast path) and otherwise runs the lookup and
//! encodes it (general path). Both paths end in `finish`, which patches ID, RD and the
//! client's QNAME case into canonical bytes and appends the OPT record: the fast path is by
//! construction the general path's cached output. Never panics on any input.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::cache::{Cached, Key, PacketCache};
use super::lookup::{self, Rcode, Sections};
use super::request::{self, ParseError, Request};
use crate::snapshot::{Snapshot, ViewTable};

/// Transport a query came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: responses are limited by the client's EDNS payload size.
    Udp,
    /// TCP: up to 65535 bytes.
    Tcp,
}

/// What happened to one query (for metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Response code sent (extended, e.g. 16 for BADVERS).
    pub rcode: u16,
    /// View used, when one was chosen.
    pub view: Option<usize>,
    /// Answered from a pre-encoded response.
    pub fast: bool,
    /// Sent with TC=1.
    pub truncated: bool,
}

/// RCODE values used here.
pub(super) mod rc {
    pub(in crate::dns) const NOERROR: u16 = 0;
    pub(in crate::dns) const FORMERR: u16 = 1;
    pub(in crate::dns) const NOTIMP: u16 = 4;
    pub(in crate::dns) const REFUSED: u16 = 5;
    pub(in crate::dns) const NOTAUTH: u16 = 9;
    pub(in crate::dns) const BADVERS: u16 = 16;
}

/// The OPT record we send back.
#[derive(Debug, Clone, Copy)]
pub(super) struct OptOut {
    pub(super) payload: u16,
    pub(super) dnssec_ok: bool,
    pub(super) ext_rcode: u8,
    pub(super) ecs: Option<(request::ClientSubnet, u8)>,
}

/// Extended DNS Error 20, "Not Authoritative" (RFC 8914 §4.21), sent with REFUSED.
const EDE_NOT_AUTHORITATIVE: u16 = 20;

/// Answers one query into `out` (cleared first). Returns `None` when nothing must be sent
/// (not a query at all).
pub fn respond(
    snap: &Snapshot,
    pkt: &[u8],
    src: IpAddr,
    transport: Transport,
    out: &mut Vec<u8>,
) -> Option<Outcome> {
    respond_as(snap, pkt, src, transport, out, None, None)
}

/// [`respond`] for a serving thread that keeps a [`PacketCache`] of general-path answers
/// (same bytes, computed once per snapshot).
pub fn respond_cached(
    snap: &Snapshot,
    pkt: &[u8],
    src: IpAddr,
    transport: Transport,
    out: &mut Vec<u8>,
    cache: &mut PacketCache,
) -> Option<Outcome> {
    respond_as(snap, pkt, src, transport, out, None, Some(cache))
}

/// [`respond`] for a request whose TSIG was verified (`signed`: the key; its view is used)
/// or not signed (`None`). Inlined so that `respond` stays one function on the hot path.
#[inline(always)]
pub(super) fn respond_as(
    snap: &Snapshot,
    pkt: &[u8],
    src: IpAddr,
    transport: Transport,
    out: &mut Vec<u8>,
    signed: Option<&Name>,
    cache: Option<&mut PacketCache>,
) -> Option<Outcome> {
    out.clear();
    let req = match request::parse(pkt) {
        Ok(r) => r,
        Err(ParseError::NotAQuery) => return None,
        Err(ParseError::Malformed) => {
            let (id, flags) = request::header(pkt).ok()?;
            if !plausible_header(flags) {
                return None; // garbage that is not a DNS query: no answer at all
            }
            return Some(write_error(out, id, flags, rc::FORMERR, &[], None));
        }
    };
    if req.has_tsig && signed.is_none() {
        return super::xfr::respond_signed(snap, &req, src, transport, out);
    }
    let mut opt = req.edns.map(|e| OptOut {
        payload: snap.max_udp_payload,
        dnssec_ok: e.dnssec_ok,
        ext_rcode: 0,
        ecs: None,
    });
    let question = if req.qdcount == 1 {
        req.question_bytes()
    } else {
        &[]
    };
    if req.opcode() != 0 {
        // NOTIFY and UPDATE: regdns is the primary and accepts neither (NOTAUTH, as Knot).
        let rcode = if matches!(req.opcode(), 4 | 5) {
            rc::NOTAUTH
        } else {
            rc::NOTIMP
        };
        return Some(write_error(out, req.id, req.flags, rcode, question, opt));
    }
    let Some(q) = req.question.as_ref().filter(|_| req.qdcount == 1) else {
        return Some(write_error(out, req.id, req.flags, rc::FORMERR, &[], opt));
    };
    if let (Some(e), Some(o)) = (req.edns, opt.as_mut())
        && e.version > 0
    {
        o.ext_rcode = (rc::BADVERS >> 4) as u8;
        return Some(write_error(
            out,
            req.id,
            req.flags,
            rc::BADVERS,
            question,
            opt,
        ));
    }

    // Zone transfers: AXFR over UDP is NOTIMP (as Knot); IXFR over UDP gets the current SOA
    // when allowed; over TCP the server streams them (`super::xfr::transfer`).
    if matches!(q.qtype, 251 | 252) {
        if q.qtype == 252 && transport == Transport::Udp {
            return Some(write_error(
                out,
                req.id,
                req.flags,
                rc::NOTIMP,
                question,
                opt,
            ));
        }
        return Some(super::xfr::respond_ixfr_udp(
            snap, &req, q, src, signed, opt, out,
        ));
    }

    // View: a TSIG key's, by EDNS Client Subnet from a trusted resolver, or by source.
    let ecs = req.edns.and_then(|e| e.ecs);
    let key_view = signed.and_then(|k| snap.transfer.view_of_key(k));
    let view = match ecs {
        _ if key_view.is_some() => key_view.unwrap_or(snap.selector.default),
        Some(cs) if snap.selector.trusts_ecs(src) => {
            let (v, scope) = snap.selector.by_subnet(cs.addr, cs.source_prefix);
            if let Some(o) = opt.as_mut() {
                o.ecs = Some((cs, scope));
            }
            v
        }
        _ => snap.selector.by_addr(src),
    };
    let Some(table) = snap.views.get(view) else {
        return Some(write_error(
            out,
            req.id,
            req.flags,
            rc::REFUSED,
            question,
            opt,
        ));
    };

    // Fast path: a pre-encoded response for exactly this (view, QTYPE, QNAME), class IN.
    if q.qclass == 1 {
        let mut key = [0u8; 257];
        key[..2].copy_from_slice(&q.qtype.to_be_bytes());
        key[2..2 + q.name_len].copy_from_slice(q.lower_wire());
        if let Some(t) = table.templates.get(&key[..2 + q.name_len]) {
            let truncated = finish(out, t, &req, opt, transport);
            return Some(Outcome {
                rcode: rcode_of(out),
                view: Some(view),
                fast: true,
                truncated,
            });
        }
    }

    // General path, remembered per thread when the caller keeps a cache.
    let computed;
    let key = cache
        .as_ref()
        .and_then(|_| Key::new(view, q.qtype, q.qclass, q.lower_wire()));
    let (rcode, canonical) = match (cache, key) {
        (Some(c), Some(k)) => {
            let e = c
                .for_generation(snap.generation)
                .get_or_insert_with(&k, || {
                    let (rcode, bytes) = answer_general(table, q.lower_wire(), q.qtype, q.qclass);
                    Cached {
                        rcode,
                        canonical: bytes.map(Vec::into_boxed_slice),
                    }
                });
            (e.rcode, e.canonical.as_deref())
        }
        _ => {
            computed = answer_general(table, q.lower_wire(), q.qtype, q.qclass);
            (computed.0, computed.1.as_deref())
        }
    };
    match canonical {
        Some(c) => {
            let truncated = finish(out, c, &req, opt, transport);
            Some(Outcome {
                rcode: rcode_of(out),
                view: Some(view),
                fast: false,
                truncated,
            })
        }
        None => Some(Outcome {
            view: Some(view),
            ..write_error(out, req.id, req.flags, rcode, question, opt)
        }),
    }
}

fn rcode_of(out: &[u8]) -> u16 {
    out.get(3).map(|b| (b & 0x0f) as u16).unwrap_or(0)
}

/// Computes the canonical response (ID 0, no RD/CD, lower-case question, no OPT) for a
/// question, or an error RCODE to send without data.
pub fn answer_general(
    table: &ViewTable,
    lower_qname: &[u8],
    qtype: u16,
    qclass: u16,
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

/// Copies canonical bytes into `out` and makes them this client's response: ID, RD (CD is
/// not echoed, as Knot), the QNAME as the client wrote it, the OPT record; truncates (TC=1,
/// empty sections, OPT kept) when a UDP response exceeds the client's limit. Returns whether
/// it truncated.
fn finish(
    out: &mut Vec<u8>,
    canonical: &[u8],
    req: &Request<'_>,
    opt: Option<OptOut>,
    transport: Transport,
) -> bool {
    out.clear();
    out.extend_from_slice(canonical);
    out[0..2].copy_from_slice(&req.id.to_be_bytes());
    out[2] = (out[2] & !0x01) | (req.rd() as u8);
    let qb = req.question_bytes();
    if out.len() >= 12 + qb.len() {
        out[12..12 + qb.len()].copy_from_slice(qb);
    }
    if let Some(o) = opt {
        push_opt(out, &o);
    }
    let limit = match (transport, req.edns) {
        (Transport::Tcp, _) => 65535,
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(e)) => {
            e.payload.clamp(512, opt.map(|o| o.payload).unwrap_or(512)) as usize
        }
    };
    if out.len() <= limit {
        return false;
    }
    out.truncate(12 + qb.len());
    out[2] |= 0x02; // TC
    out[6..12].fill(0);
    if let Some(o) = opt {
        push_opt(out, &o);
    }
    true
}

/// Writes a data-less response: header, the question if given, OPT if the query had one.
/// `rcode` may be extended (BADVERS): its upper bits must already be in `opt`.
pub(super) fn write_error(
    out: &mut Vec<u8>,
    id: u16,
    flags: u16,
    rcode: u16,
    question: &[u8],
    opt: Option<OptOut>,
) -> Outcome {
    out.clear();
    out.extend_from_slice(&id.to_be_bytes());
    // QR, the query's OPCODE and RD; AA, RA and CD clear (CD is not echoed, as Knot).
    let hi = 0x80 | ((flags >> 8) as u8 & 0x79);
    let lo = rcode as u8 & 0x0f;
    out.extend_from_slice(&[hi, lo]);
    out.extend_from_slice(&[0, (!question.is_empty()) as u8, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(question);
    if let Some(o) = opt {
        push_opt(out, &o);
        if rcode == rc::REFUSED && !matches!(question_type(question), 251 | 252) {
            push_ede(out, EDE_NOT_AUTHORITATIVE);
        }
    }
    Outcome {
        rcode,
        view: None,
        fast: false,
        truncated: false,
    }
}

/// Adds an Extended DNS Error option to the OPT record just written (the last bytes).
pub(super) fn push_ede(out: &mut Vec<u8>, info: u16) {
    let Some(opt_start) = out.len().checked_sub(11) else {
        return;
    };
    let rdlen_at = opt_start + 9;
    let rdlen = u16::from_be_bytes([out[rdlen_at], out[rdlen_at + 1]]);
    if rdlen != 0 {
        return; // only written right after an option-less OPT
    }
    out[rdlen_at..rdlen_at + 2].copy_from_slice(&6u16.to_be_bytes());
    out.extend_from_slice(&15u16.to_be_bytes());
    out.extend_from_slice(&2u16.to_be_bytes());
    out.extend_from_slice(&info.to_be_bytes());
}

fn question_type(question: &[u8]) -> u16 {
    match question.len() {
        n if n >= 5 => u16::from_be_bytes([question[n - 4], question[n - 3]]),
        _ => 0,
    }
}

/// Whether a header that does not parse still looks like a DNS query worth a FORMERR:
/// an assigned OPCODE and a clear Z bit. Anything else is treated as noise.
fn plausible_header(flags: u16) -> bool {
    let opcode = (flags >> 11) & 0x0f;
    matches!(opcode, 0 | 1 | 2 | 4 | 5 | 6) && flags & 0x0040 == 0
}

/// Appends our OPT record and bumps ARCOUNT.
fn push_opt(out: &mut Vec<u8>, o: &OptOut) {
    let ar = u16::from_be_bytes([out[10], out[11]]).wrapping_add(1);
    out[10..12].copy_from_slice(&ar.to_be_bytes());
    out.push(0); // root owner
    out.extend_from_slice(&request::TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&o.payload.to_be_bytes());
    out.extend_from_slice(&[o.ext_rcode, 0]);
    out.extend_from_slice(&(if o.dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
    match o.ecs {
        None => out.extend_from_slice(&[0, 0]),
        Some((cs, scope)) => {
            let (family, bytes): (u16, [u8; 16]) = match cs.addr {
                IpAddr::V4(a) => {
                    let mut b = [0u8; 16];
                    b[..4].copy_from_slice(&a.octets());
                    (1, b)
                }
                IpAddr::V6(a) => (2, a.octets()),
            };
            let alen = (cs.source_prefix as usize).div_ceil(8);
            let olen = 4 + alen as u16;
            out.extend_from_slice(&(4 + olen).to_be_bytes());
            out.extend_from_slice(&request::OPT_ECS.to_be_bytes());
            out.extend_from_slice(&olen.to_be_bytes());
            out.extend_from_slice(&family.to_be_bytes());
            out.extend_from_slice(&[cs.source_prefix, scope]);
            out.extend_from_slice(&bytes[..alen]);
        }
    }
}
