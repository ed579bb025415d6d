//! The TSIG front of signed requests (RFC 8945): finds and verifies the TSIG record of a
//! query or transfer request against the snapshot's keys, writes the NOTAUTH response of a
//! failed verification (signed when the error is BADTIME), and strips the record so the
//! request can be answered like an unsigned one.

use super::request::Request;
use super::wire::{OptOut, Outcome, rc, write_error};
use crate::snapshot::Snapshot;
use crate::tsig::{self, Verdict};

/// Our OPT record for an answer to `req` (when it had one).
pub(super) fn opt_of(snap: &Snapshot, req: &Request<'_>) -> Option<OptOut> {
    req.edns.map(|e| OptOut {
        payload: snap.max_udp_payload,
        dnssec_ok: e.dnssec_ok,
        ext_rcode: 0,
        ecs: None,
    })
}

/// The request without its TSIG record (ARCOUNT one less).
pub(super) fn strip_tsig(pkt: &[u8], t: &tsig::TsigRecord) -> Vec<u8> {
    let mut m = pkt[..t.start].to_vec();
    let ar = u16::from_be_bytes([m[10], m[11]]).wrapping_sub(1);
    m[10..12].copy_from_slice(&ar.to_be_bytes());
    m
}

/// The verified key of a signed request, or the error response already written to `out`.
pub(super) enum Auth<'k> {
    /// Verified with `key`; `mac` is the request's MAC the response's signature chains.
    Signed { key: &'k tsig::Key, mac: Vec<u8> },
    /// Not verified: the error response was written.
    Failed(Outcome),
}

/// Verifies the request's TSIG; on failure the response is already in `out`.
pub(super) fn authenticate<'s>(
    snap: &'s Snapshot,
    req: &Request<'_>,
    out: &mut Vec<u8>,
) -> (Auth<'s>, Option<tsig::TsigRecord>) {
    let question = req.question_bytes();
    let Some(t) = tsig::find(req.bytes) else {
        let o = write_error(
            out,
            req.id,
            req.flags,
            rc::FORMERR,
            question,
            opt_of(snap, req),
        );
        return (Auth::Failed(o), None);
    };
    match tsig::verify(req.bytes, &t, &snap.transfer.keys, tsig::now()) {
        Verdict::Valid { key, mac } => (Auth::Signed { key, mac }, Some(t)),
        Verdict::Invalid {
            error,
            key,
            mac,
            tsig: rec,
        } => {
            // RFC 8945 §5.2: NOTAUTH with the TSIG error; BADTIME is signed and carries
            // our time, BADKEY and BADSIG carry an empty MAC.
            let o = write_error(
                out,
                req.id,
                req.flags,
                rc::NOTAUTH,
                question,
                opt_of(snap, req),
            );
            match key {
                Some(k) if error == tsig::err::BADTIME => {
                    let now = tsig::now();
                    let other = now.to_be_bytes()[2..].to_vec();
                    tsig::sign(out, k, Some(&mac), rec.time, error, &other);
                }
                _ => tsig::append_unsigned_error(out, &rec, error),
            }
            tracing::info!(key = %rec.key_name, error, "TSIG verification failed");
            (Auth::Failed(o), Some(rec))
        }
    }
}
