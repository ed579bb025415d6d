//! Parsing of DNS queries straight from the wire, without allocation: header, the question
//! (lower-cased into a fixed buffer, original bytes kept for echoing the client's case),
//! and the OPT record (payload, version, DO bit, EDNS Client Subnet).
//! Used by every query on every transport; anything it cannot vouch for is an error the
//! caller turns into FORMERR or silence.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Record type of OPT.
pub const TYPE_OPT: u16 = 41;
pub use crate::tsig::TYPE_TSIG;
/// EDNS option code of Client Subnet (RFC 7871).
pub const OPT_ECS: u16 = 8;

/// Why a packet could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than a header, or a response: not a query, never answered.
    NotAQuery,
    /// A header we can answer FORMERR to.
    Malformed,
}

/// EDNS Client Subnet option of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSubnet {
    /// Address (bits beyond `source_prefix` are zero).
    pub addr: IpAddr,
    /// SOURCE PREFIX-LENGTH.
    pub source_prefix: u8,
}

/// The OPT record of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdnsInfo {
    /// Requestor's UDP payload size.
    pub payload: u16,
    /// EDNS version.
    pub version: u8,
    /// DNSSEC OK bit.
    pub dnssec_ok: bool,
    /// Client Subnet, if present and well formed.
    pub ecs: Option<ClientSubnet>,
}

/// The question of a query.
#[derive(Debug, Clone, Copy)]
pub struct Question {
    /// Wire length of QNAME.
    pub name_len: usize,
    /// QNAME in wire form, ASCII lower-cased (first `name_len` bytes).
    pub lower: [u8; 255],
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
}

impl Question {
    /// The lower-cased QNAME in wire form.
    pub fn lower_wire(&self) -> &[u8] {
        &self.lower[..self.name_len]
    }
}

/// A parsed query. Borrows the packet.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The whole packet.
    pub bytes: &'a [u8],
    /// Message ID.
    pub id: u16,
    /// Header flags (bytes 2–3).
    pub flags: u16,
    /// QDCOUNT.
    pub qdcount: u16,
    /// The first question, when QDCOUNT ≥ 1 and it parsed.
    pub question: Option<Question>,
    /// The OPT record.
    pub edns: Option<EdnsInfo>,
    /// A TSIG record is present.
    pub has_tsig: bool,
}

impl Request<'_> {
    /// OPCODE.
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }
    /// Recursion desired bit.
    pub fn rd(&self) -> bool {
        self.flags & 0x0100 != 0
    }
    /// Checking disabled bit.
    pub fn cd(&self) -> bool {
        self.flags & 0x0010 != 0
    }
    /// The question's bytes as sent (QNAME in the client's case, QTYPE, QCLASS).
    pub fn question_bytes(&self) -> &[u8] {
        match &self.question {
            Some(q) => &self.bytes[12..12 + q.name_len + 4],
            None => &[],
        }
    }
}

/// Header-only view of a packet, for error answers when the body does not parse.
pub fn header(bytes: &[u8]) -> Result<(u16, u16), ParseError> {
    if bytes.len() < 12 {
        return Err(ParseError::NotAQuery);
    }
    let flags = u16::from_be_bytes([bytes[2], bytes[3]]);
    if flags & 0x8000 != 0 {
        return Err(ParseError::NotAQuery);
    }
    Ok((u16::from_be_bytes([bytes[0], bytes[1]]), flags))
}

#[inline]
fn u16_at(b: &[u8], pos: usize) -> Result<u16, ParseError> {
    match b.get(pos..pos + 2) {
        Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
        None => Err(ParseError::Malformed),
    }
}

/// Parses an uncompressed name starting at `pos` into `out` (lower-cased).
/// Returns (wire length, position after the name).
fn parse_qname(
    b: &[u8],
    mut pos: usize,
    out: &mut [u8; 255],
) -> Result<(usize, usize), ParseError> {
    let mut len = 0usize;
    loop {
        let l = *b.get(pos).ok_or(ParseError::Malformed)? as usize;
        if l & 0xc0 != 0 {
            // Compression (or the reserved label types) is not used in a question.
            return Err(ParseError::Malformed);
        }
        if len + 1 + l > 255 {
            return Err(ParseError::Malformed);
        }
        out[len] = l as u8;
        len += 1;
        pos += 1;
        if l == 0 {
            return Ok((len, pos));
        }
        let label = b.get(pos..pos + l).ok_or(ParseError::Malformed)?;
        let dst = &mut out[len..len + l];
        dst.copy_from_slice(label);
        dst.make_ascii_lowercase();
        len += l;
        pos += l;
    }
}

/// Skips a possibly compressed name.
fn skip_name(b: &[u8], mut pos: usize) -> Result<usize, ParseError> {
    let mut total = 0usize;
    loop {
        let l = *b.get(pos).ok_or(ParseError::Malformed)? as usize;
        match l & 0xc0 {
            0x00 => {
                pos += 1;
                if l == 0 {
                    return Ok(pos);
                }
                total += l + 1;
                if total > 255 || pos + l > b.len() {
                    return Err(ParseError::Malformed);
                }
                pos += l;
            }
            0xc0 => {
                return if pos + 2 <= b.len() {
                    Ok(pos + 2)
                } else {
                    Err(ParseError::Malformed)
                };
            }
            _ => return Err(ParseError::Malformed),
        }
    }
}

/// Parses a query packet.
pub fn parse(bytes: &[u8]) -> Result<Request<'_>, ParseError> {
    let (id, flags) = header(bytes)?;
    let qdcount = u16_at(bytes, 4)?;
    let ancount = u16_at(bytes, 6)?;
    let nscount = u16_at(bytes, 8)?;
    let arcount = u16_at(bytes, 10)?;
    let mut pos = 12;
    let mut question = None;
    for i in 0..qdcount {
        if i == 0 {
            let mut lower = [0u8; 255];
            let (name_len, p) = parse_qname(bytes, pos, &mut lower)?;
            let qtype = u16_at(bytes, p)?;
            let qclass = u16_at(bytes, p + 2)?;
            question = Some(Question {
                name_len,
                lower,
                qtype,
                qclass,
            });
            pos = p + 4;
        } else {
            pos = skip_name(bytes, pos)? + 4;
            if pos > bytes.len() {
                return Err(ParseError::Malformed);
            }
        }
    }
    for _ in 0..(ancount as u32 + nscount as u32) {
        pos = skip_rr(bytes, pos)?.0;
    }
    let mut edns = None;
    let mut has_tsig = false;
    for i in 0..arcount {
        if has_tsig {
            return Err(ParseError::Malformed); // TSIG must be the last record
        }
        let name_start = pos;
        let (next, rtype, rdata_start) = skip_rr(bytes, pos)?;
        match rtype {
            TYPE_OPT => {
                if edns.is_some() || bytes[name_start] != 0 {
                    return Err(ParseError::Malformed); // RFC 6891 §6.1.1
                }
                let payload = u16_at(bytes, name_start + 3)?;
                let version = bytes[name_start + 6];
                let eflags = u16_at(bytes, name_start + 7)?;
                let ecs = parse_options(&bytes[rdata_start..next])?;
                edns = Some(EdnsInfo {
                    payload,
                    version,
                    dnssec_ok: eflags & 0x8000 != 0,
                    ecs,
                });
            }
            TYPE_TSIG => {
                let _ = i;
                has_tsig = true;
            }
            _ => {}
        }
        pos = next;
    }
    if pos != bytes.len() {
        return Err(ParseError::Malformed);
    }
    Ok(Request {
        bytes,
        id,
        flags,
        qdcount,
        question,
        edns,
        has_tsig,
    })
}

/// Skips one resource record; returns (end, type, rdata start).
fn skip_rr(b: &[u8], pos: usize) -> Result<(usize, u16, usize), ParseError> {
    let p = skip_name(b, pos)?;
    let rtype = u16_at(b, p)?;
    let rdlen = u16_at(b, p + 8)? as usize;
    let start = p + 10;
    let end = start + rdlen;
    if end > b.len() {
        return Err(ParseError::Malformed);
    }
    Ok((end, rtype, start))
}

/// Parses OPT options; only Client Subnet is interpreted, others are skipped.
fn parse_options(mut o: &[u8]) -> Result<Option<ClientSubnet>, ParseError> {
    let mut ecs = None;
    while !o.is_empty() {
        let code = u16_at(o, 0)?;
        let len = u16_at(o, 2)? as usize;
        let data = o.get(4..4 + len).ok_or(ParseError::Malformed)?;
        if code == OPT_ECS {
            if ecs.is_some() {
                return Err(ParseError::Malformed);
            }
            ecs = Some(parse_ecs(data)?);
        }
        o = &o[4 + len..];
    }
    Ok(ecs)
}

/// RFC 7871 §6: FORMERR for a bad family, prefix, address length or non-zero host bits.
fn parse_ecs(d: &[u8]) -> Result<ClientSubnet, ParseError> {
    if d.len() < 4 {
        return Err(ParseError::Malformed);
    }
    let family = u16::from_be_bytes([d[0], d[1]]);
    let source_prefix = d[2];
    let addr = &d[4..];
    let max = match family {
        1 => 32,
        2 => 128,
        _ => return Err(ParseError::Malformed),
    };
    if source_prefix > max || addr.len() != (source_prefix as usize).div_ceil(8) {
        return Err(ParseError::Malformed);
    }
    if let Some(last) = addr.last() {
        let used = source_prefix % 8;
        if used != 0 && last & (0xffu8 >> used) != 0 {
            return Err(ParseError::Malformed);
        }
    }
    let addr = if family == 1 {
        let mut a = [0u8; 4];
        a[..addr.len()].copy_from_slice(addr);
        IpAddr::V4(Ipv4Addr::from(a))
    } else {
        let mut a = [0u8; 16];
        a[..addr.len()].copy_from_slice(addr);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    Ok(ClientSubnet {
        addr,
        source_prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, opt: Option<&[u8]>) -> Vec<u8> {
        let mut v = vec![
            0x12,
            0x34,
            0x01,
            0x00,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            opt.is_some() as u8,
        ];
        v.extend_from_slice(name);
        v.extend_from_slice(&qtype.to_be_bytes());
        v.extend_from_slice(&1u16.to_be_bytes());
        if let Some(o) = opt {
            v.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0]);
            v.extend_from_slice(&(o.len() as u16).to_be_bytes());
            v.extend_from_slice(o);
        }
        v
    }

    #[test]
    fn parses_question_and_lowercases() {
        let q = query(b"\x03WwW\x07Example\x00", 1, None);
        let r = parse(&q).unwrap();
        let qq = r.question.unwrap();
        assert_eq!(qq.lower_wire(), b"\x03www\x07example\x00");
        assert_eq!(&r.question_bytes()[..4], b"\x03WwW");
        assert_eq!(qq.qtype, 1);
        assert!(r.rd());
        assert!(r.edns.is_none());
    }

    #[test]
    fn parses_edns_and_ecs() {
        let ecs = [0, 8, 0, 7, 0, 1, 24, 0, 203, 0, 113];
        let q = query(b"\x01a\x00", 1, Some(&ecs));
        let r = parse(&q).unwrap();
        let e = r.edns.unwrap();
        assert_eq!(e.payload, 1232);
        assert!(e.dnssec_ok);
        let s = e.ecs.unwrap();
        assert_eq!(s.addr, "203.0.113.0".parse::<IpAddr>().unwrap());
        assert_eq!(s.source_prefix, 24);
    }

    #[test]
    fn rejects_bad_ecs_host_bits() {
        let ecs = [0, 8, 0, 7, 0, 1, 23, 0, 203, 0, 113]; // /23 with the last bit set
        assert_eq!(
            parse(&query(b"\x01a\x00", 1, Some(&ecs))).unwrap_err(),
            ParseError::Malformed
        );
        let ecs = [0, 8, 0, 5, 0, 3, 0, 0, 1]; // unknown family
        assert_eq!(
            parse(&query(b"\x01a\x00", 1, Some(&ecs))).unwrap_err(),
            ParseError::Malformed
        );
    }

    #[test]
    fn drops_responses_and_short_packets() {
        assert_eq!(parse(&[0; 11]).unwrap_err(), ParseError::NotAQuery);
        let mut q = query(b"\x01a\x00", 1, None);
        q[2] |= 0x80;
        assert_eq!(parse(&q).unwrap_err(), ParseError::NotAQuery);
    }

    #[test]
    fn trailing_garbage_and_pointers_are_malformed() {
        let mut q = query(b"\x01a\x00", 1, None);
        q.push(0);
        assert_eq!(parse(&q).unwrap_err(), ParseError::Malformed);
        let q = query(b"\xc0\x0c", 1, None);
        assert_eq!(parse(&q).unwrap_err(), ParseError::Malformed);
    }

    #[test]
    fn two_opt_records_are_malformed() {
        let mut q = query(b"\x01a\x00", 1, Some(&[]));
        q[11] = 2;
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse(&q).unwrap_err(), ParseError::Malformed);
    }
}
