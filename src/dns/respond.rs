//! From query bytes to response bytes for one client: the whole answering logic, shared by
//! UDP and TCP. Parses with [`super::request`], picks the view, copies a pre-encoded
//! response from the snapshot when one exists (fast path) and otherwise runs the lookup and
//! encodes it (general path). Both paths end in `finish`, which patches ID, RD and the
//! client's QNAME case into canonical bytes and appends the OPT record: the fast path is by
//! construction the general path's cached output. Never panics on any input.

use std::net::IpAddr;

use hickory_proto::rr::Name;

use super::cache::{Cached, Key, PacketCache};
use super::request::{self, ParseError, Request};
use super::signed;
use super::wire::{OptOut, push_opt, rc, write_error};
pub use super::wire::{Outcome, Transport};
use crate::snapshot::Snapshot;
use crate::snapshot::answer::answer_general;
use crate::tsig;

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
        return respond_signed(snap, &req, src, transport, out);
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
        // A name of a response policy zone is refused by the general answer: answered here
        // to the zone's transfer clients (only refusals look, and only with RPZ zones).
        None if rcode == rc::REFUSED && snap.transfer.rpz => Some(super::policy::respond(
            snap, table, view, &req, q, src, signed, opt, transport, out,
        )),
        None => Some(Outcome {
            view: Some(view),
            ..write_error(out, req.id, req.flags, rcode, question, opt)
        }),
    }
}

pub(super) fn rcode_of(out: &[u8]) -> u16 {
    out.get(3).map(|b| (b & 0x0f) as u16).unwrap_or(0)
}

/// Copies canonical bytes into `out` and makes them this client's response: ID, RD (CD is
/// not echoed, as Knot), the QNAME as the client wrote it, the OPT record; truncates (TC=1,
/// empty sections, OPT kept) when a UDP response exceeds the client's limit. Returns whether
/// it truncated.
pub(super) fn finish(
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

/// Whether a header that does not parse still looks like a DNS query worth a FORMERR:
/// an assigned OPCODE and a clear Z bit. Anything else is treated as noise.
fn plausible_header(flags: u16) -> bool {
    let opcode = (flags >> 11) & 0x0f;
    matches!(opcode, 0 | 1 | 2 | 4 | 5 | 6) && flags & 0x0040 == 0
}

/// Answers a signed request that is not a transfer over TCP: verifies the TSIG, answers
/// from the key's view and signs the response.
fn respond_signed(
    snap: &Snapshot,
    req: &Request<'_>,
    src: IpAddr,
    transport: Transport,
    out: &mut Vec<u8>,
) -> Option<Outcome> {
    let (auth, rec) = signed::authenticate(snap, req, out);
    let (key, mac) = match auth {
        signed::Auth::Failed(o) => return Some(o),
        signed::Auth::Signed { key, mac } => (key, mac),
    };
    let stripped = signed::strip_tsig(req.bytes, rec.as_ref()?);
    let outcome = respond_as(snap, &stripped, src, transport, out, Some(&key.name), None)?;
    tsig::sign(out, key, Some(&mac), tsig::now(), 0, &[]);
    Some(outcome)
}
