//! Authoritative lookup in one zone (RFC 1034 §4.3.2 with RFC 4592 wildcards): answers,
//! in-zone CNAME chains, referrals at delegation points, NXDOMAIN/NODATA with the SOA.
//! Pure: a zone table and a question in, sections out.

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::{Node, ZoneTable};

/// Response code of a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// NOERROR.
    NoError,
    /// NXDOMAIN.
    NxDomain,
}

/// Sections of an authoritative answer.
#[derive(Debug, Clone)]
pub struct Sections {
    /// Response code.
    pub rcode: Rcode,
    /// Authoritative (false for a referral).
    pub aa: bool,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section.
    pub authority: Vec<Record>,
    /// Additional section.
    pub additional: Vec<Record>,
}

/// Longest in-zone CNAME chain followed.
const MAX_CHAIN: usize = 8;

/// Looks up `qname`/`qtype` in `zone`. `qname` must be lower case and inside the zone.
pub fn lookup(zone: &ZoneTable, qname: &Name, qtype: RecordType) -> Sections {
    let mut s = Sections {
        rcode: Rcode::NoError,
        aa: true,
        answers: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
    };
    let mut name = qname.clone();
    let mut seen: Vec<Name> = Vec::new();
    loop {
        // DS lives on the parent side of a cut: answered authoritatively, not referred.
        let cut = delegation(zone, &name).filter(|c| !(qtype == RecordType::DS && *c == name));
        if let Some(cut) = cut {
            if s.answers.is_empty() {
                // Referral: not authoritative below a zone cut.
                let ns = zone.nodes[&cut].get(RecordType::NS).unwrap_or(&[]).to_vec();
                s.aa = false;
                s.additional = glue(zone, &ns);
                s.authority = ns;
            }
            return s;
        }
        let (node, owner_is_wildcard) = match zone.nodes.get(&name) {
            Some(n) => (n, false),
            None => match wildcard(zone, &name) {
                Some(n) => (n, true),
                None => {
                    s.rcode = Rcode::NxDomain;
                    s.authority.push(zone.negative_soa());
                    return s;
                }
            },
        };
        let own = |rs: &[Record]| -> Vec<Record> {
            rs.iter()
                .map(|r| {
                    let mut r = r.clone();
                    if owner_is_wildcard {
                        r.name = name.clone();
                    }
                    r
                })
                .collect()
        };
        if qtype == RecordType::ANY {
            // RFC 8482 §4.2: one RRset is enough. Like Knot DNS, the one with the lowest type
            // number, with its additional records (glue for NS at the apex).
            match node.rrsets.iter().min_by_key(|(t, _)| u16::from(*t)) {
                Some((_, rs)) => {
                    let rs = own(rs);
                    s.additional = additional_for(zone, &rs);
                    s.answers.extend(rs);
                }
                None => s.authority.push(zone.negative_soa()),
            }
            return s;
        }
        if let Some(rs) = node.get(qtype) {
            let rs = own(rs);
            s.additional = additional_for(zone, &rs);
            s.answers.extend(rs);
            return s;
        }
        if let Some(cn) = node.get(RecordType::CNAME) {
            let rs = own(cn);
            let target = match &rs[0].data {
                RData::CNAME(c) => c.0.to_lowercase(),
                _ => return s,
            };
            s.answers.extend(rs);
            seen.push(name.clone());
            if !zone.origin.zone_of(&target) || seen.contains(&target) || seen.len() > MAX_CHAIN {
                return s;
            }
            name = target;
            continue;
        }
        s.authority.push(zone.negative_soa());
        return s;
    }
}

/// The delegation point at or above `name` (below the apex), if any.
fn delegation(zone: &ZoneTable, name: &Name) -> Option<Name> {
    if zone.cuts.is_empty() {
        return None;
    }
    zone.cuts
        .iter()
        .filter(|c| c.zone_of(name))
        .min_by_key(|c| c.num_labels())
        .cloned()
}

/// The wildcard node that synthesises `name` (RFC 4592 §3.3.1): `*.` + the closest encloser.
fn wildcard<'z>(zone: &'z ZoneTable, name: &Name) -> Option<&'z Node> {
    let mut encloser = name.base_name();
    while encloser.num_labels() >= zone.origin.num_labels() {
        if zone.nodes.contains_key(&encloser) {
            let star = Name::from_ascii("*").ok()?.append_domain(&encloser).ok()?;
            return zone.nodes.get(&star);
        }
        if encloser.num_labels() == 0 {
            break;
        }
        encloser = encloser.base_name();
    }
    None
}

/// A/AAAA of in-zone names an answer refers to (NS, MX, SRV targets).
fn additional_for(zone: &ZoneTable, rs: &[Record]) -> Vec<Record> {
    let mut out = Vec::new();
    for r in rs {
        let target = match &r.data {
            RData::NS(n) => n.0.clone(),
            RData::MX(m) => m.exchange.clone(),
            RData::SRV(s) => s.target.clone(),
            _ => continue,
        };
        push_addrs(zone, &target.to_lowercase(), &mut out);
    }
    out
}

/// Glue for a referral.
fn glue(zone: &ZoneTable, ns: &[Record]) -> Vec<Record> {
    let mut out = Vec::new();
    for r in ns {
        if let RData::NS(n) = &r.data {
            push_addrs(zone, &n.0.to_lowercase(), &mut out);
        }
    }
    out
}

fn push_addrs(zone: &ZoneTable, target: &Name, out: &mut Vec<Record>) {
    if let Some(node) = zone.nodes.get(target) {
        for t in [RecordType::A, RecordType::AAAA] {
            if let Some(rs) = node.get(t) {
                for r in rs {
                    if !out.contains(r) {
                        out.push(r.clone());
                    }
                }
            }
        }
    }
}
