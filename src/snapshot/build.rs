//! The DNS publisher: turns the model, the active target of every endpoint and view, and
//! flattened apex addresses into a new [`Snapshot`] (endpoint records substituted, serials
//! bumped where content changed, answers pre-encoded). Pure apart from the serial book it
//! is handed; swapping the snapshot in is the caller's one-line job.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use rustc_hash::FxHashMap;

use super::answer::answer_general;
use crate::model::{Endpoint, Model, TargetAnswer};
use crate::snapshot::{Node, SerialBook, Snapshot, ViewSelector, ViewTable, ZoneTable};

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

/// Builds the snapshot for the current decisions (a full build; the controller keeps a
/// [`SnapshotBuilder`] and rebuilds only what changed).
pub fn build_snapshot(
    model: &Model,
    active: &ActiveTargets,
    flattened: &HashMap<Name, Flattened>,
    serials: &mut SerialBook,
    generation: u64,
) -> Snapshot {
    SnapshotBuilder::new(model, active, flattened, serials).snapshot(model, generation)
}

/// The zone file's part of a zone: what stays whatever the decisions.
#[derive(Debug)]
struct ZoneBase {
    /// Zone file records, minus the A/AAAA/CNAME of endpoint names.
    records: Vec<Record>,
    /// Digest of `records`.
    digest: u64,
    /// Per endpoint name of the zone: the records of `records` at that name.
    at: HashMap<Name, Vec<Record>>,
    /// The zone file's SOA serial.
    file_serial: u32,
    /// Endpoints of the zone (indexes into `Model::endpoints`).
    endpoints: Vec<usize>,
}

/// One view's bookkeeping.
#[derive(Debug)]
struct ViewState {
    /// Per endpoint: the records it last contributed, and their digest.
    answers: Vec<(Vec<Record>, u64)>,
    /// Per model zone: the content digest (zone file part plus the endpoint answers).
    digests: Vec<u64>,
    /// Per model zone: its index in the view's `zones`, if served (it has an SOA).
    pos: Vec<Option<usize>>,
    /// Per model zone: names whose answers include other names' records (in-zone CNAME,
    /// NS, MX, SRV targets); re-encoded whenever a name of their zone changes.
    referrers: Vec<BTreeSet<Name>>,
    /// Template key -> (model zone, offset of the SOA serial in the response), for every
    /// template that carries its zone's SOA (negative answers, SOA queries).
    soa_refs: FxHashMap<Arc<[u8]>, (usize, usize)>,
}

/// Builds snapshots incrementally: per view and zone it keeps the zone tables and
/// pre-encoded responses of the last build (`Arc`, shared with the snapshot) and, for a
/// change of some (endpoint, view) answers, rebuilds only the nodes of those names,
/// re-encodes only their responses (and those of names referring to them in their zone),
/// and patches the SOA serial into the responses that carry it. [`SnapshotBuilder::update`]
/// gives byte for byte what a full build of the same inputs gives.
#[derive(Debug)]
pub struct SnapshotBuilder {
    zones: Vec<ZoneBase>,
    states: Vec<ViewState>,
    views: Vec<Arc<ViewTable>>,
    selector: ViewSelector,
    queries: Arc<crate::metrics::QueryCounters>,
    transfer: Arc<crate::snapshot::TransferPolicy>,
}

impl SnapshotBuilder {
    /// A full build.
    pub fn new(
        model: &Model,
        active: &ActiveTargets,
        flattened: &HashMap<Name, Flattened>,
        serials: &mut SerialBook,
    ) -> SnapshotBuilder {
        let zones: Vec<ZoneBase> = model
            .zones
            .iter()
            .enumerate()
            .map(|(zi, zone)| {
                let endpoints: Vec<usize> = model
                    .endpoints
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.zone == Some(zi))
                    .map(|(i, _)| i)
                    .collect();
                let names: std::collections::HashSet<&Name> = endpoints
                    .iter()
                    .map(|i| &model.endpoints[*i].name)
                    .collect();
                let records: Vec<Record> = zone
                    .records
                    .iter()
                    .map(|r| &r.record)
                    .filter(|r| {
                        !(names.contains(&r.name)
                            && matches!(
                                r.record_type(),
                                RecordType::A | RecordType::AAAA | RecordType::CNAME
                            ))
                    })
                    .cloned()
                    .collect();
                let mut at: HashMap<Name, Vec<Record>> =
                    names.iter().map(|n| ((*n).clone(), Vec::new())).collect();
                for r in &records {
                    if let Some(v) = at.get_mut(&r.name) {
                        v.push(r.clone());
                    }
                }
                let file_serial = records
                    .iter()
                    .find_map(|r| match &r.data {
                        RData::SOA(s) => Some(s.serial),
                        _ => None,
                    })
                    .unwrap_or(1);
                ZoneBase {
                    digest: digest(&records),
                    records,
                    at,
                    file_serial,
                    endpoints,
                }
            })
            .collect();
        let mut views = Vec::with_capacity(model.views.len());
        let mut states = Vec::with_capacity(model.views.len());
        for (vi, view) in model.views.iter().enumerate() {
            let answers: Vec<(Vec<Record>, u64)> = model
                .endpoints
                .iter()
                .map(|ep| {
                    let r = endpoint_records(model, ep, vi, &view.name, active, flattened);
                    let d = digest(&r);
                    (r, d)
                })
                .collect();
            let mut tables = Vec::with_capacity(model.zones.len());
            let mut digests = Vec::with_capacity(model.zones.len());
            for (zi, zone) in model.zones.iter().enumerate() {
                let base = &zones[zi];
                let mut records = base.records.clone();
                let mut d = base.digest;
                for ei in &base.endpoints {
                    records.extend(answers[*ei].0.iter().cloned());
                    d = d.wrapping_add(answers[*ei].1);
                }
                digests.push(d);
                let serial = serials.serial_for(&zone.origin, &view.name, base.file_serial, d);
                for r in records.iter_mut() {
                    if let RData::SOA(s) = &mut r.data {
                        s.serial = serial;
                    }
                }
                let soa_and_body = records.clone();
                if let Some(mut t) = ZoneTable::new(zone.origin.clone(), records) {
                    t.rpz = zone.is_rpz();
                    t.history =
                        serials.history_for(&zone.origin, &view.name, &t.soa, &soa_and_body);
                    for ei in &base.endpoints {
                        let ep = &model.endpoints[*ei];
                        if unavailable(model, ep, vi, &view.name, active, flattened) {
                            t.unavailable.insert(ep.name.clone());
                        }
                    }
                    tables.push((zi, t));
                }
            }
            tables.sort_by_key(|(_, z)| std::cmp::Reverse(z.origin.num_labels()));
            let mut pos = vec![None; model.zones.len()];
            let mut referrers = vec![BTreeSet::new(); model.zones.len()];
            for (p, (zi, t)) in tables.iter().enumerate() {
                pos[*zi] = Some(p);
                referrers[*zi] = t
                    .nodes
                    .iter()
                    .filter(|(_, n)| refers_in_zone(&t.origin, n))
                    .map(|(name, _)| name.clone())
                    .collect();
            }
            let mut table = ViewTable {
                name: view.name.clone(),
                zones: tables.into_iter().map(|(_, t)| Arc::new(t)).collect(),
                templates: FxHashMap::default(),
            };
            let mut soa_refs = FxHashMap::default();
            let mut templates = FxHashMap::default();
            for (zi, p) in pos.iter().enumerate() {
                let Some(p) = p else { continue };
                let zone = &table.zones[*p];
                let tail = soa_tail(zone);
                for name in zone.nodes.keys() {
                    for (key, bytes) in encode_name(&table, zone, name) {
                        if let Some(off) = find(&bytes, &tail) {
                            soa_refs.insert(key.clone(), (zi, off));
                        }
                        templates.insert(key, bytes);
                    }
                }
            }
            table.templates = templates;
            views.push(Arc::new(table));
            states.push(ViewState {
                answers,
                digests,
                pos,
                referrers,
                soa_refs,
            });
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
        SnapshotBuilder {
            transfer: Arc::new(crate::snapshot::TransferPolicy::from_model(model)),
            queries: crate::metrics::query_counters(views.iter().map(|v| v.name.as_str())),
            zones,
            states,
            views,
            selector,
        }
    }

    /// The snapshot of the last build.
    pub fn snapshot(&self, model: &Model, generation: u64) -> Snapshot {
        Snapshot {
            generation,
            max_udp_payload: model.server.max_udp_payload,
            queries: self.queries.clone(),
            views: self.views.clone(),
            selector: self.selector.clone(),
            transfer: self.transfer.clone(),
        }
    }

    /// Rebuilds the answers of `changed` (endpoint index, view index) pairs, for the same
    /// model and flattened addresses as the last build. Returns how many (view, zone)
    /// tables changed.
    pub fn update(
        &mut self,
        model: &Model,
        active: &ActiveTargets,
        flattened: &HashMap<Name, Flattened>,
        serials: &mut SerialBook,
        changed: &BTreeSet<(usize, usize)>,
    ) -> usize {
        let mut tables = 0;
        for (vi, view) in model.views.iter().enumerate() {
            // zone -> endpoints whose records changed
            let mut by_zone: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            let state = &mut self.states[vi];
            for &(ei, _) in changed.iter().filter(|(_, v)| *v == vi) {
                let ep = &model.endpoints[ei];
                let Some(zi) = ep.zone else {
                    continue; // published only: not served
                };
                let r = endpoint_records(model, ep, vi, &view.name, active, flattened);
                if r == state.answers[ei].0 {
                    continue;
                }
                let d = digest(&r);
                let zd = &mut state.digests[zi];
                *zd = zd.wrapping_sub(state.answers[ei].1).wrapping_add(d);
                state.answers[ei] = (r, d);
                by_zone.entry(zi).or_default().push(ei);
            }
            if by_zone.is_empty() {
                continue;
            }
            let old = self.views[vi].clone();
            let mut zones = old.zones.clone();
            let mut templates = old.templates.clone();
            let mut work: Vec<(usize, usize, BTreeSet<Name>, Option<u32>)> = Vec::new();
            for (zi, eps) in &by_zone {
                let base = &self.zones[*zi];
                let origin = &model.zones[*zi].origin;
                let serial =
                    serials.serial_for(origin, &view.name, base.file_serial, state.digests[*zi]);
                let Some(p) = state.pos[*zi] else { continue };
                let mut zt = (*zones[p]).clone();
                let new_serial = (serial != zt.serial).then_some(serial);
                if new_serial.is_some() {
                    zt.serial = serial;
                    set_serial(&mut zt.soa, serial);
                    if let Some(n) = zt.nodes.get_mut(origin) {
                        for (_, rs) in n.rrsets.iter_mut() {
                            rs.iter_mut().for_each(|r| set_serial(r, serial));
                        }
                    }
                }
                let mut names = BTreeSet::new();
                for ei in eps {
                    let ep = &model.endpoints[*ei];
                    let name = &ep.name;
                    if unavailable(model, ep, vi, &view.name, active, flattened) {
                        zt.unavailable.insert(name.clone());
                    } else {
                        zt.unavailable.remove(name);
                    }
                    let mut node = Node::default();
                    for r in base.at.get(name).into_iter().flatten() {
                        let mut r = r.clone();
                        set_serial(&mut r, zt.serial);
                        node.push(r);
                    }
                    for r in &state.answers[*ei].0 {
                        node.push(r.clone());
                    }
                    if refers_in_zone(origin, &node) {
                        state.referrers[*zi].insert(name.clone());
                    } else {
                        state.referrers[*zi].remove(name);
                    }
                    zt.nodes.insert(name.clone(), node);
                    names.insert(name.clone());
                }
                names.extend(state.referrers[*zi].iter().cloned());
                // Drop the old responses of those names (their type set may shrink).
                for name in &names {
                    if let Some(node) = zones[p].nodes.get(name) {
                        for key in template_keys(name, node) {
                            templates.remove(&key[..]);
                            state.soa_refs.remove(&key[..]);
                        }
                    }
                }
                if new_serial.is_some() {
                    // A new version for IXFR: its difference from the last one.
                    let all: Vec<Record> = zt
                        .nodes
                        .values()
                        .flat_map(|n| n.rrsets.iter().flat_map(|(_, rs)| rs.iter().cloned()))
                        .collect();
                    zt.history = serials.history_for(origin, &view.name, &zt.soa, &all);
                }
                zones[p] = Arc::new(zt);
                work.push((*zi, p, names, new_serial));
                tables += 1;
            }
            let mut table = ViewTable {
                name: old.name.clone(),
                zones,
                templates: FxHashMap::default(),
            };
            for (zi, p, names, new_serial) in work {
                let zone = &table.zones[p];
                let tail = soa_tail(zone);
                for name in &names {
                    for (key, bytes) in encode_name(&table, zone, name) {
                        if let Some(off) = find(&bytes, &tail) {
                            state.soa_refs.insert(key.clone(), (zi, off));
                        }
                        templates.insert(key, bytes);
                    }
                }
                if let Some(serial) = new_serial {
                    for (key, (z, off)) in state.soa_refs.iter() {
                        if *z != zi {
                            continue;
                        }
                        if let Some(v) = templates.get_mut(key) {
                            if v[*off..*off + 4] == serial.to_be_bytes() {
                                continue; // just encoded
                            }
                            let mut b = v.to_vec();
                            b[*off..*off + 4].copy_from_slice(&serial.to_be_bytes());
                            *v = b.into();
                        }
                    }
                }
            }
            table.templates = templates;
            self.views[vi] = Arc::new(table);
        }
        tables
    }
}

/// Shared bytes: a template key or response.
type Bytes = Arc<[u8]>;

/// Whether an endpoint's answer in a view is unavailable (SERVFAIL): its active target is a
/// passthrough whose public answer is not resolved (or came back through regdns).
fn unavailable(
    model: &Model,
    ep: &Endpoint,
    vi: usize,
    view_name: &str,
    active: &ActiveTargets,
    flattened: &HashMap<Name, Flattened>,
) -> bool {
    *active_answer(ep, vi, view_name, active) == TargetAnswer::Passthrough
        && !ep.in_rpz(model)
        && !flattened.contains_key(&ep.name)
}

/// The records an endpoint contributes to its zone in a view.
fn endpoint_records(
    model: &Model,
    ep: &Endpoint,
    vi: usize,
    view_name: &str,
    active: &ActiveTargets,
    flattened: &HashMap<Name, Flattened>,
) -> Vec<Record> {
    if ep.in_rpz(model) {
        return rpz_records(ep, active_answer(ep, vi, view_name, active));
    }
    let mut records = Vec::new();
    let ttl = ep.ttl;
    match active_answer(ep, vi, view_name, active) {
        TargetAnswer::Cname(target) if ep.is_apex(model) => {
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
        TargetAnswer::Addrs { a, aaaa } => push_addrs(&mut records, &ep.name, ttl, a, aaaa),
        // The endpoint's own name as the upstream resolver answers it, resolved like an
        // apex CNAME target (`crate::flatten`).
        TargetAnswer::Passthrough => {
            if let Some(f) = flattened.get(&ep.name) {
                push_addrs(&mut records, &ep.name, ttl, &f.a, &f.aaaa);
            }
        }
    }
    records
}

/// The RPZ target of a passthrough policy: "leave this name alone".
pub const RPZ_PASSTHRU: &str = "rpz-passthru.";

/// The policy records of an endpoint of a response policy zone (a QNAME trigger): a CNAME
/// rewrite, A/AAAA local data, or `CNAME rpz-passthru.` for a passthrough target. Never
/// flattened, never resolved: the resolver that loads the zone applies them.
fn rpz_records(ep: &Endpoint, answer: &TargetAnswer) -> Vec<Record> {
    let cname = |target: Name| {
        vec![Record::from_rdata(
            ep.name.clone(),
            ep.ttl,
            RData::CNAME(CNAME(target)),
        )]
    };
    match answer {
        TargetAnswer::Cname(target) => cname(target.clone()),
        TargetAnswer::Passthrough => cname(Name::from_ascii(RPZ_PASSTHRU).expect("constant name")),
        TargetAnswer::Addrs { a, aaaa } => {
            let mut records = Vec::new();
            push_addrs(&mut records, &ep.name, ep.ttl, a, aaaa);
            records
        }
    }
}

fn set_serial(r: &mut Record, serial: u32) {
    if let RData::SOA(s) = &mut r.data {
        s.serial = serial;
    }
}

/// True when the answers at this node include records of other in-zone names.
fn refers_in_zone(origin: &Name, node: &Node) -> bool {
    node.rrsets.iter().flat_map(|(_, rs)| rs).any(|r| {
        let target = match &r.data {
            RData::CNAME(c) => &c.0,
            RData::NS(n) => &n.0,
            RData::MX(m) => &m.exchange,
            RData::SRV(s) => &s.target,
            _ => return false,
        };
        origin.zone_of(&target.to_lowercase())
    })
}

/// The last 20 bytes of the zone's SOA RDATA (serial, refresh, retry, expire, minimum):
/// where a response carries the SOA, its serial is at the start of these bytes.
fn soa_tail(zone: &ZoneTable) -> [u8; 20] {
    let mut t = [0u8; 20];
    if let RData::SOA(s) = &zone.soa.data {
        t[0..4].copy_from_slice(&s.serial.to_be_bytes());
        t[4..8].copy_from_slice(&s.refresh.to_be_bytes());
        t[8..12].copy_from_slice(&s.retry.to_be_bytes());
        t[12..16].copy_from_slice(&s.expire.to_be_bytes());
        t[16..20].copy_from_slice(&s.minimum.to_be_bytes());
    }
    t
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
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

/// Digest of records ignoring the SOA serial: the wrapping sum of a hash of each record's
/// presentation line, so a zone's digest is its file part's plus its endpoints' (a change
/// here means a new serial).
fn digest(records: &[Record]) -> u64 {
    records.iter().fold(0u64, |acc, r| {
        let line = match &r.data {
            RData::SOA(s) => format!(
                "{} {} SOA {} {} {} {} {} {}",
                r.name, r.ttl, s.mname, s.rname, s.refresh, s.retry, s.expire, s.minimum
            ),
            d => format!("{} {} {} {}", r.name, r.ttl, r.record_type(), d),
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        line.hash(&mut h);
        acc.wrapping_add(h.finish())
    })
}

/// The query types pre-encoded for a name.
fn template_types(node: &Node) -> Vec<RecordType> {
    let mut types: Vec<RecordType> = node.rrsets.iter().map(|(t, _)| *t).collect();
    types.extend_from_slice(ALWAYS_ENCODED);
    if node.get(RecordType::CNAME).is_some() {
        types.push(RecordType::MX);
        types.push(RecordType::TXT);
    }
    types.sort_by_key(|t| u16::from(*t));
    types.dedup();
    types
}

/// Keys of the templates a name may have.
fn template_keys(name: &Name, node: &Node) -> Vec<Vec<u8>> {
    let Ok(wire) = name.to_bytes() else {
        return Vec::new();
    };
    template_types(node)
        .into_iter()
        .map(|t| {
            let mut key = Vec::with_capacity(2 + wire.len());
            key.extend_from_slice(&u16::from(t).to_be_bytes());
            key.extend_from_slice(&wire);
            key
        })
        .collect()
}

/// Pre-encodes the responses for one name of a zone and its common query types.
fn encode_name(table: &ViewTable, zone: &ZoneTable, name: &Name) -> Vec<(Bytes, Bytes)> {
    let mut out = Vec::new();
    let Some(node) = zone.nodes.get(name) else {
        return out;
    };
    if zone.cuts.iter().any(|c| c.zone_of(name)) || zone.unavailable.contains(name) {
        return out; // referrals and SERVFAIL names stay on the general path
    }
    let Ok(wire) = name.to_bytes() else {
        return out;
    };
    for t in template_types(node) {
        let q: u16 = t.into();
        if let (_, Some(bytes)) = answer_general(table, &wire, q, 1) {
            let mut key = Vec::with_capacity(2 + wire.len());
            key.extend_from_slice(&q.to_be_bytes());
            key.extend_from_slice(&wire);
            out.push((key.into(), bytes.into()));
        }
    }
    out
}
