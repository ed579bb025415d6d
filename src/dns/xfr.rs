//! Zone transfers (AXFR, IXFR) and TSIG-signed requests. Off the hot path: `respond` only
//! checks a flag to come here, and transfers over TCP are streamed by the server through
//! [`transfer`]. A transfer answers exactly what the view serves (endpoint records in
//! place of the zone file's, the view's current serial); the view is the TSIG key's
//! (`[[tsig_key]] view`) or the client address's. Permission: `[[zone]] allow_transfer`
//! (networks and/or `key:NAME.`); refused transfers get REFUSED with EDE 18 (Prohibited).

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable};

use super::request::{self, Question, Request};
use super::signed::{self, Auth, opt_of};
use super::wire::{EDE_PROHIBITED, OptOut, Outcome, push_ede, rc, write_error};
use crate::snapshot::{Snapshot, ZoneTable, serial_gt};
use crate::tsig;

/// Records per transfer message are cut so that a message stays below this size.
const MESSAGE_BUDGET: usize = 16_000;

/// The zone a transfer asks for, in the view it transfers, if the client may have it.
fn permitted<'s>(
    snap: &'s Snapshot,
    q: &Question,
    src: IpAddr,
    key: Option<&Name>,
) -> Result<(usize, &'s ZoneTable), u16> {
    let qname = Name::read(&mut BinDecoder::new(q.lower_wire())).map_err(|_| rc::FORMERR)?;
    let view = key
        .and_then(|k| snap.transfer.view_of_key(k))
        .unwrap_or_else(|| snap.selector.by_addr(src));
    let table = snap.views.get(view).ok_or(rc::NOTAUTH)?;
    let zone = table
        .zones
        .iter()
        .find(|z| z.origin == qname)
        .ok_or(rc::NOTAUTH)?;
    let allowed = snap
        .transfer
        .zone(&zone.origin)
        .is_some_and(|acl| acl.allows(src, key));
    if !allowed {
        return Err(rc::REFUSED);
    }
    Ok((view, zone))
}

fn refuse(snap: &Snapshot, req: &Request<'_>, rcode: u16, out: &mut Vec<u8>) -> Outcome {
    let o = write_error(
        out,
        req.id,
        req.flags,
        rcode,
        req.question_bytes(),
        opt_of(snap, req),
    );
    if rcode == rc::REFUSED && req.edns.is_some() {
        push_ede(out, EDE_PROHIBITED);
    }
    o
}

/// IXFR over UDP (RFC 1995 §2): the current SOA only, which tells an up-to-date client it
/// is and any other to retry over TCP (as Knot).
pub(super) fn respond_ixfr_udp(
    snap: &Snapshot,
    req: &Request<'_>,
    q: &Question,
    src: IpAddr,
    signed: Option<&Name>,
    _opt: Option<OptOut>,
    out: &mut Vec<u8>,
) -> Outcome {
    match permitted(snap, q, src, signed) {
        Err(rcode) => refuse(snap, req, rcode, out),
        Ok((view, zone)) => {
            let msg = message(req, vec![zone.soa.clone()]);
            out.clear();
            out.extend_from_slice(&msg);
            Outcome {
                rcode: rc::NOERROR,
                view: Some(view),
                fast: false,
                truncated: false,
            }
        }
    }
}

/// One transfer response message: the request's ID, RD and question, AA, the records.
fn message(req: &Request<'_>, records: Vec<Record>) -> Vec<u8> {
    let mut m = Message::new(req.id, MessageType::Response, OpCode::Query);
    m.metadata.authoritative = true;
    m.metadata.recursion_desired = req.rd();
    if let Some(q) = req.question
        && let Ok(name) = Name::read(&mut BinDecoder::new(q.lower_wire()))
    {
        let mut query = Query::query(name, RecordType::from(q.qtype));
        query.set_query_class(q.qclass.into());
        m.add_query(query);
    }
    m.add_answers(records);
    let mut wire = m.to_vec().unwrap_or_default();
    // The question as the client wrote it.
    let qb = req.question_bytes();
    if wire.len() >= 12 + qb.len() && !qb.is_empty() {
        wire[12..12 + qb.len()].copy_from_slice(qb);
    }
    wire
}

fn qname_of(q: &Question) -> String {
    Name::read(&mut BinDecoder::new(q.lower_wire()))
        .map(|n| n.to_string())
        .unwrap_or_default()
}

/// The records of a full transfer: SOA, every other record, SOA again (RFC 5936 §2.2).
fn axfr_records(zone: &ZoneTable) -> Vec<Record> {
    let mut names: Vec<&Name> = zone.nodes.keys().collect();
    names.sort();
    let mut v = vec![zone.soa.clone()];
    for n in names {
        for (t, rrs) in &zone.nodes[n].rrsets {
            if *t != RecordType::SOA {
                v.extend(rrs.iter().cloned());
            }
        }
    }
    v.push(zone.soa.clone());
    v
}

/// The incremental answer from `client`'s serial to the current one (RFC 1995 §4): the
/// current SOA, then per change the old SOA, removed records, the new SOA, added records,
/// and the current SOA again. `None` when the history does not reach `client`.
fn ixfr_records(zone: &ZoneTable, client: u32) -> Option<Vec<Record>> {
    let h = &zone.history;
    let start = h.iter().position(|d| d.from() == client)?;
    let chain = &h[start..];
    let linked = chain.windows(2).all(|w| w[0].to() == w[1].from());
    if !linked || chain.last()?.to() != zone.serial {
        return None;
    }
    let mut v = vec![zone.soa.clone()];
    for d in chain {
        v.push(d.old_soa.clone());
        v.extend(d.removed.iter().cloned());
        v.push(d.new_soa.clone());
        v.extend(d.added.iter().cloned());
    }
    v.push(zone.soa.clone());
    Some(v)
}

/// The serial in the authority SOA of an IXFR request.
fn ixfr_client_serial(pkt: &[u8]) -> Option<u32> {
    let m = Message::from_vec(pkt).ok()?;
    m.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    })
}

/// A transfer over TCP: `None` when `pkt` is not a transfer request (answer it normally),
/// else every response message to send, signed when the request was.
pub fn transfer(snap: &Snapshot, pkt: &[u8], src: IpAddr) -> Option<(Vec<Vec<u8>>, Outcome)> {
    let req = request::parse(pkt).ok()?;
    let q = req.question.filter(|_| req.qdcount == 1)?;
    if req.opcode() != 0 || !matches!(q.qtype, 251 | 252) {
        return None;
    }
    let mut out = Vec::new();
    if req.edns.is_some_and(|e| e.version > 0) {
        return None; // BADVERS from the general path
    }
    let (signed, _rec) = if req.has_tsig {
        match signed::authenticate(snap, &req, &mut out) {
            (Auth::Failed(o), _) => return Some((vec![out], o)),
            (Auth::Signed { key, mac }, rec) => (Some((key, mac)), rec),
        }
    } else {
        (None, None)
    };
    let key_name = signed.as_ref().map(|(k, _)| &k.name);
    let (view, zone) = match permitted(snap, &q, src, key_name) {
        Ok(x) => x,
        Err(rcode) => {
            let o = refuse(snap, &req, rcode, &mut out);
            if let Some((k, mac)) = &signed {
                tsig::sign(&mut out, k, Some(mac), tsig::now(), 0, &[]);
            }
            tracing::info!(%src, zone = %qname_of(&q), rcode, "transfer refused");
            return Some((vec![out], o));
        }
    };
    let client = (q.qtype == 251).then(|| ixfr_client_serial(pkt)).flatten();
    let (records, kind) = match client {
        Some(c) if !serial_gt(zone.serial, c) => (vec![zone.soa.clone()], "IXFR up to date"),
        Some(c) => match ixfr_records(zone, c) {
            Some(r) => (r, "IXFR"),
            // The history does not reach the client's serial: AXFR form (RFC 1995 §4).
            None => (axfr_records(zone), "IXFR as AXFR"),
        },
        None => (axfr_records(zone), "AXFR"),
    };
    let mut msgs = Vec::new();
    let mut batch = Vec::new();
    let mut size = 0usize;
    for r in records {
        let len = r.to_bytes().map(|b| b.len()).unwrap_or(0);
        if size + len > MESSAGE_BUDGET && !batch.is_empty() {
            msgs.push(message(&req, std::mem::take(&mut batch)));
            size = 0;
        }
        size += len;
        batch.push(r);
    }
    msgs.push(message(&req, batch));
    if let Some((key, mac)) = signed {
        let now = tsig::now();
        let mut prior = mac;
        for (i, m) in msgs.iter_mut().enumerate() {
            prior = if i == 0 {
                tsig::sign(m, key, Some(&prior), now, 0, &[])
            } else {
                tsig::sign_next(m, key, &prior, now)
            };
        }
    }
    tracing::info!(%src, zone = %zone.origin, serial = zone.serial, view = %snap.views[view].name,
        kind, messages = msgs.len(), "zone transfer");
    Some((
        msgs,
        Outcome {
            rcode: rc::NOERROR,
            view: Some(view),
            fast: false,
            truncated: false,
        },
    ))
}
