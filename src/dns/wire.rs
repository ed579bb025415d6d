//! The bytes every response shares, below both the query path ([`super::respond`]) and
//! transfers ([`super::xfr`]): RCODEs, the OPT record we send, Extended DNS Errors and
//! data-less error responses; plus what one answered query reports ([`Outcome`]).

use std::net::IpAddr;

use super::request;

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

/// RCODE values used here (those the general answer also returns are its own).
pub(super) mod rc {
    pub(in crate::dns) use crate::snapshot::answer::rc::{FORMERR, NOERROR, NOTAUTH, REFUSED};
    pub(in crate::dns) const NOTIMP: u16 = 4;
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
pub(super) const EDE_NOT_AUTHORITATIVE: u16 = 20;

/// Extended DNS Error 18, "Prohibited" (RFC 8914 §4.19): refused transfers, and queries
/// for a response policy zone from a client that may not transfer it.
pub(super) const EDE_PROHIBITED: u16 = 18;

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

pub(super) fn question_type(question: &[u8]) -> u16 {
    match question.len() {
        n if n >= 5 => u16::from_be_bytes([question[n - 4], question[n - 3]]),
        _ => 0,
    }
}

/// Appends our OPT record and bumps ARCOUNT.
pub(super) fn push_opt(out: &mut Vec<u8>, o: &OptOut) {
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
