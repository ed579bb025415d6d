//! The DNS publisher: turns the model, the active target of every endpoint and view, and
//! flattened apex addresses into a new [`Snapshot`] (endpoint records substituted, serials
//! bumped where content changed, answers pre-encoded). Pure apart from the serial book it
//! is handed; swapping the snapshot in is the caller's one-line job.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use rustc_hash::FxHashMap;

use crate::dns::respond::answer_general;
use crate::model::{Endpoint, Model, TargetAnswer};
use crate::snapshot::{SerialBook, Snapshot, ViewSelector, ViewTable, ZoneTable};

/// Addresses a CNAME target resolved to, for flattening at a zone apex.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flattened {
    /// IPv4 addresses.
    pub a: Vec<Ipv4Addr>,
    /// IPv6 addresses.
    pub aaaa: Vec<Ipv6Addr>,
}

/// Active instance per (endpoint name, view name).
pub type ActiveTargets = BTreeMap<(String, String), String>;

/// Query types pre-encoded for every name, besides the types the name has.
const ALWAYS_ENCODED: &[RecordType] = &[RecordType::A, RecordType::AAAA, RecordType::HTTPS];

/// The active target's answer of an endpoint in a view (first target if the decision
/// names none or an instance not in this view's list).
pub fn active_answer<'m>(
    ep: &'m Endpoint,
    view: usize,
    view_name: &str,
    active: &ActiveTargets,
) -> &'m TargetAnswer {
    let list = &ep.targets[view];
    let chosen = active.get(&(ep.name.to_string(), view_name.to_string()));
    &chosen
        .and_then(|id| list.iter().find(|t| &t.instance == id))
        .unwrap_or(&list[0])
        .answer
}

/// Builds the snapshot for the current decisions.
pub fn build_snapshot(
    model: &Model,
    active: &ActiveTargets,
    flattened: &HashMap<Name, Flattened>,
    serials: &mut SerialBook,
    generation: u64,
) -> Snapshot {
    let mut views = Vec::with_capacity(model.views.len());
    for (vi, view) in model.views.iter().enumerate() {
        let mut zones = Vec::with_capacity(model.zones.len());
        for (zi, zone) in model.zones.iter().enumerate() {
            let eps: Vec<&Endpoint> = model.endpoints.iter().filter(|e| e.zone == zi).collect();
            let mut records: Vec<Record> = zone
                .records
                .iter()
                .map(|r| r.record.clone())
                .filter(|r| {
                    !eps.iter().any(|e| {
                        r.name == e.name
                            && matches!(
                                r.record_type(),
                                RecordType::A | RecordType::AAAA | RecordType::CNAME
                            )
                    })
                })
                .collect();
            for ep in &eps {
                let ttl = ep.ttl;
                match active_answer(ep, vi, &view.name, active) {
                    TargetAnswer::Cname(target) if ep.name == zone.origin => {
                        if let Some(f) = flattened.get(target) {
                            push_addrs(&mut records, &ep.name, ttl, &f.a, &f.aaaa);
                        }
                    }
                    TargetAnswer::Cname(target) => {
                        records.push(Record::from_rdata(
                            ep.name.clone(),
                            ttl,
                            RData::CNAME(CNAME(target.clone())),
                        ));
                    }
                    TargetAnswer::Addrs { a, aaaa } => {
                        push_addrs(&mut records, &ep.name, ttl, a, aaaa)
                    }
                }
            }
            let file_serial = records
                .iter()
                .find_map(|r| match &r.data {
                    RData::SOA(s) => Some(s.serial),
                    _ => None,
                })
                .unwrap_or(1);
            let serial =
                serials.serial_for(&zone.origin, &view.name, file_serial, digest(&records));
            for r in records.iter_mut() {
                if let RData::SOA(s) = &mut r.data {
                    s.serial = serial;
                }
            }
            if let Some(mut t) = ZoneTable::new(zone.origin.clone(), records.clone()) {
                t.history = serials.history_for(&zone.origin, &view.name, &t.soa, &records);
                zones.push(t);
            }
        }
        zones.sort_by_key(|z| std::cmp::Reverse(z.origin.num_labels()));
        let mut table = ViewTable {
            name: view.name.clone(),
            zones,
            templates: FxHashMap::default(),
        };
        table.templates = encode_templates(&table);
        views.push(table);
    }
    let mut selector = ViewSelector {
        default: model.views.len() - 1,
        ..Default::default()
    };
    for (vi, v) in model.views.iter().enumerate() {
        for n in &v.clients {
            selector.rules.push((*n, vi));
        }
        selector.ecs_trusted.extend(v.ecs_from.iter().copied());
    }
    Snapshot {
        generation,
        max_udp_payload: model.server.max_udp_payload,
        queries: crate::metrics::query_counters(views.iter().map(|v| v.name.as_str())),
        views,
        selector,
        transfer: std::sync::Arc::new(crate::snapshot::TransferPolicy::from_model(model)),
    }
}

fn push_addrs(records: &mut Vec<Record>, name: &Name, ttl: u32, a: &[Ipv4Addr], aaaa: &[Ipv6Addr]) {
    for ip in a {
        records.push(Record::from_rdata(name.clone(), ttl, RData::A(A(*ip))));
    }
    for ip in aaaa {
        records.push(Record::from_rdata(
            name.clone(),
            ttl,
            RData::AAAA(AAAA(*ip)),
        ));
    }
}

/// Digest of a zone's content ignoring the SOA serial: a change here means a new serial.
fn digest(records: &[Record]) -> u64 {
    let mut lines: Vec<String> = records
        .iter()
        .map(|r| match &r.data {
            RData::SOA(s) => format!(
                "{} {} SOA {} {} {} {} {} {}",
                r.name, r.ttl, s.mname, s.rname, s.refresh, s.retry, s.expire, s.minimum
            ),
            d => format!("{} {} {} {}", r.name, r.ttl, r.record_type(), d),
        })
        .collect();
    lines.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    lines.hash(&mut h);
    h.finish()
}

/// Pre-encodes the responses for every name in the view and its common query types.
fn encode_templates(table: &ViewTable) -> FxHashMap<Box<[u8]>, Box<[u8]>> {
    let mut out = FxHashMap::default();
    for zone in &table.zones {
        for (name, node) in &zone.nodes {
            if zone.cuts.iter().any(|c| c.zone_of(name)) {
                continue; // referrals stay on the general path
            }
            let Ok(wire) = name.to_bytes() else { continue };
            let mut types: Vec<RecordType> = node.rrsets.iter().map(|(t, _)| *t).collect();
            types.extend_from_slice(ALWAYS_ENCODED);
            if node.get(RecordType::CNAME).is_some() {
                types.push(RecordType::MX);
                types.push(RecordType::TXT);
            }
            types.sort_by_key(|t| u16::from(*t));
            types.dedup();
            for t in types {
                let q: u16 = t.into();
                if let (_, Some(bytes)) = answer_general(table, &wire, q, 1) {
                    let mut key = Vec::with_capacity(2 + wire.len());
                    key.extend_from_slice(&q.to_be_bytes());
                    key.extend_from_slice(&wire);
                    out.insert(key.into_boxed_slice(), bytes.into_boxed_slice());
                }
            }
        }
    }
    out
}
