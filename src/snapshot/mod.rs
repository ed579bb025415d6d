//! The serving snapshot: per view, every zone's final records (zone file plus the active
//! endpoint answers), its SOA serial, and pre-encoded responses for the common questions.
//! Built off the serving path by [`build`], published through an
//! [`SnapshotHandle`] (`ArcSwap`), read lock-free by the DNS server. Immutable once built.

pub mod answer;
pub mod build;
pub mod lookup;
#[cfg(test)]
pub(crate) mod rpz_tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rustc_hash::FxHashMap;

/// Shared handle to the current snapshot.
pub type SnapshotHandle = Arc<ArcSwap<Snapshot>>;

/// Everything the DNS path needs to answer, for every view.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every published snapshot.
    pub generation: u64,
    /// Largest UDP response we send.
    pub max_udp_payload: u16,
    /// Views in match order (the last is `default`); shared with the previous snapshot
    /// when unchanged.
    pub views: Vec<Arc<ViewTable>>,
    /// Chooses a view for a client.
    pub selector: ViewSelector,
    /// Query counters indexed like `views` (see [`crate::metrics::QueryCounters`]).
    pub queries: Arc<crate::metrics::QueryCounters>,
    /// Who may transfer which zone, and the TSIG keys.
    pub transfer: Arc<TransferPolicy>,
}

impl Snapshot {
    /// The placeholder in the handle before the controller serves its first build: no
    /// views, no keys.
    pub fn empty(max_udp_payload: u16) -> Snapshot {
        Snapshot {
            generation: 0,
            max_udp_payload,
            views: Vec::new(),
            selector: Default::default(),
            queries: crate::metrics::query_counters([]),
            transfer: Default::default(),
        }
    }
}

/// Zone transfer permissions and TSIG keys (from `[[zone]] allow_transfer`, `[[tsig_key]]`).
#[derive(Debug, Default)]
pub struct TransferPolicy {
    /// Every TSIG key.
    pub keys: Vec<crate::tsig::Key>,
    /// The view each key selects, indexed like `keys`.
    pub key_views: Vec<usize>,
    /// Per zone (lower-case origin): the networks and key names allowed to transfer it.
    pub zones: Vec<ZoneAcl>,
    /// Some zone is a response policy zone: a refused query may be one of its transfer
    /// clients' (the one flag the serving path reads for RPZ, on refusals only).
    pub rpz: bool,
}

/// Transfer ACL of one zone.
#[derive(Debug, Default, Clone)]
pub struct ZoneAcl {
    /// Apex.
    pub origin: Name,
    /// Source networks allowed without a key.
    pub nets: Vec<ipnet::IpNet>,
    /// Key names allowed (any address).
    pub keys: Vec<Name>,
    /// Secondaries sent NOTIFY (address, key).
    pub secondaries: Vec<crate::model::Secondary>,
}

impl TransferPolicy {
    /// Builds the policy from the model.
    pub fn from_model(model: &crate::model::Model) -> TransferPolicy {
        let zones = model
            .zones
            .iter()
            .map(|z| {
                let mut acl = ZoneAcl {
                    origin: z.origin.clone(),
                    secondaries: z.secondaries.clone(),
                    ..Default::default()
                };
                for a in &z.allow_transfer {
                    if let Some(k) = a.strip_prefix("key:") {
                        if let Ok(mut n) = Name::from_ascii(k) {
                            n.set_fqdn(true);
                            acl.keys.push(n.to_lowercase());
                        }
                    } else if let Ok(n) = a.parse::<ipnet::IpNet>() {
                        acl.nets.push(n.trunc());
                    } else if let Ok(ip) = a.parse::<IpAddr>() {
                        acl.nets.push(ipnet::IpNet::from(ip));
                    }
                }
                acl
            })
            .collect();
        TransferPolicy {
            keys: model.tsig_keys.iter().map(|t| t.key.clone()).collect(),
            key_views: model.tsig_keys.iter().map(|t| t.view).collect(),
            zones,
            rpz: model.zones.iter().any(|z| z.is_rpz()),
        }
    }

    /// The ACL of a zone.
    pub fn zone(&self, origin: &Name) -> Option<&ZoneAcl> {
        self.zones.iter().find(|z| &z.origin == origin)
    }

    /// The view a key selects.
    pub fn view_of_key(&self, name: &Name) -> Option<usize> {
        self.keys
            .iter()
            .position(|k| &k.name == name)
            .and_then(|i| self.key_views.get(i).copied())
    }
}

impl ZoneAcl {
    /// Whether a transfer from `src`, signed with `key` (verified) or not, is allowed:
    /// a listed key from anywhere, or a listed network (signed or not).
    pub fn allows(&self, src: IpAddr, key: Option<&Name>) -> bool {
        let src = canonical_ip(src);
        key.is_some_and(|k| self.keys.contains(k)) || self.nets.iter().any(|n| n.contains(&src))
    }
}

/// The zones as one view sees them.
#[derive(Debug)]
pub struct ViewTable {
    /// View name.
    pub name: String,
    /// Zones, most specific origin first; shared with the previous snapshot when unchanged.
    pub zones: Vec<Arc<ZoneTable>>,
    /// Pre-encoded responses keyed by `[qtype (2 bytes BE)] + lower-case QNAME wire`:
    /// complete responses with ID 0, RD/CD clear, the question lower-cased and no OPT.
    /// Keys and responses are shared with the previous snapshot when unchanged.
    pub templates: FxHashMap<Arc<[u8]>, Arc<[u8]>>,
}

/// One zone's data in one view.
#[derive(Debug, Clone)]
pub struct ZoneTable {
    /// Apex (lower case).
    pub origin: Name,
    /// SOA serial in this view.
    pub serial: u32,
    /// The SOA record (with `serial`).
    pub soa: Record,
    /// Owner name → node. Contains every empty non-terminal as an empty node.
    pub nodes: HashMap<Name, Node>,
    /// Delegation points (NS below the apex).
    pub cuts: Vec<Name>,
    /// The last serial changes of this zone in this view, oldest first (for IXFR).
    pub history: Arc<Vec<Arc<Diff>>>,
    /// Names whose answer is unavailable right now: a passthrough target whose public
    /// answer could not be resolved (docs/passthrough.md). They answer SERVFAIL.
    pub unavailable: BTreeSet<Name>,
    /// A response policy zone: answered only to the clients its transfer ACL admits
    /// ([`answer::answer_policy`]); the general answer refuses it and nothing of it is
    /// pre-encoded.
    pub rpz: bool,
}

/// One serial change of a zone in a view (RFC 1995 §4 difference sequence).
#[derive(Debug, Clone)]
pub struct Diff {
    /// SOA before.
    pub old_soa: Record,
    /// Records removed (SOA excluded).
    pub removed: Vec<Record>,
    /// SOA after.
    pub new_soa: Record,
    /// Records added (SOA excluded).
    pub added: Vec<Record>,
}

impl Diff {
    fn serial(soa: &Record) -> u32 {
        match &soa.data {
            RData::SOA(s) => s.serial,
            _ => 0,
        }
    }
    /// Serial before.
    pub fn from(&self) -> u32 {
        Diff::serial(&self.old_soa)
    }
    /// Serial after.
    pub fn to(&self) -> u32 {
        Diff::serial(&self.new_soa)
    }
}

/// Serial changes kept per zone and view for IXFR; older clients get AXFR.
pub const IXFR_HISTORY: usize = 64;

/// RRsets at one owner name, in a stable type order.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// (type, records) pairs.
    pub rrsets: Vec<(RecordType, Vec<Record>)>,
}

impl Node {
    /// Adds a record to its RRset (a duplicate of a record already there is dropped).
    pub fn push(&mut self, r: Record) {
        let t = r.record_type();
        match self.rrsets.iter_mut().find(|(rt, _)| *rt == t) {
            Some((_, v)) => {
                if !v.iter().any(|x| x.data == r.data) {
                    v.push(r)
                }
            }
            None => self.rrsets.push((t, vec![r])),
        }
    }

    /// The RRset of a type.
    pub fn get(&self, t: RecordType) -> Option<&[Record]> {
        self.rrsets
            .iter()
            .find(|(rt, _)| *rt == t)
            .map(|(_, r)| r.as_slice())
    }
}

impl ZoneTable {
    /// Builds the table from records (SOA included; owners lower-case).
    pub fn new(origin: Name, records: Vec<Record>) -> Option<ZoneTable> {
        let mut nodes: HashMap<Name, Node> = HashMap::new();
        let mut soa = None;
        for r in records {
            if r.record_type() == RecordType::SOA {
                soa = Some(r.clone());
            }
            nodes.entry(r.name.clone()).or_default().push(r);
        }
        let soa = soa?;
        let serial = match &soa.data {
            RData::SOA(s) => s.serial,
            _ => 0,
        };
        // Empty non-terminals: every ancestor of every owner up to the apex exists.
        let owners: Vec<Name> = nodes.keys().cloned().collect();
        for o in owners {
            let mut n = o;
            while n.num_labels() > origin.num_labels() {
                n = n.base_name();
                nodes.entry(n.clone()).or_default();
            }
        }
        let mut cuts: Vec<Name> = nodes
            .iter()
            .filter(|(n, node)| **n != origin && node.get(RecordType::NS).is_some())
            .map(|(n, _)| n.clone())
            .collect();
        cuts.sort();
        Some(ZoneTable {
            origin,
            serial,
            soa,
            nodes,
            cuts,
            history: Arc::default(),
            unavailable: BTreeSet::new(),
            rpz: false,
        })
    }

    /// The SOA to put in the authority section of a negative answer: TTL is the lesser of
    /// the SOA's TTL and its MINIMUM field (RFC 2308 §3).
    pub fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        if let RData::SOA(s) = &soa.data {
            soa.ttl = soa.ttl.min(s.minimum);
        }
        soa
    }
}

impl ViewTable {
    /// The zone that holds `name` (most specific origin).
    pub fn zone_for(&self, name: &Name) -> Option<&ZoneTable> {
        self.zones
            .iter()
            .map(|z| &**z)
            .find(|z| z.origin.zone_of(name))
    }
}

/// Maps a client to a view: source address first-match over the views' `clients`, or the
/// EDNS Client Subnet when the source is a trusted resolver (`ecs_from`).
#[derive(Debug, Clone, Default)]
pub struct ViewSelector {
    /// (network, view index) in match order.
    pub rules: Vec<(ipnet::IpNet, usize)>,
    /// Resolvers whose ECS is trusted.
    pub ecs_trusted: Vec<ipnet::IpNet>,
    /// Index of `default`.
    pub default: usize,
}

/// IPv4-mapped IPv6 sources (dual-stack sockets) compare as IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl ViewSelector {
    /// True when ECS from this source is honoured.
    pub fn trusts_ecs(&self, src: IpAddr) -> bool {
        let src = canonical_ip(src);
        !self.ecs_trusted.is_empty() && self.ecs_trusted.iter().any(|n| n.contains(&src))
    }

    /// View of a source address.
    pub fn by_addr(&self, src: IpAddr) -> usize {
        let src = canonical_ip(src);
        self.rules
            .iter()
            .find(|(n, _)| n.contains(&src))
            .map(|(_, v)| *v)
            .unwrap_or(self.default)
    }

    /// View of a client subnet, and the scope prefix length to return (RFC 7871 §7.2.1):
    /// the answer holds for the whole source prefix unless a more specific view network
    /// lies inside it, in which case the scope is that network's length.
    pub fn by_subnet(&self, addr: IpAddr, source_prefix: u8) -> (usize, u8) {
        let Ok(subnet) = ipnet::IpNet::new(canonical_ip(addr), source_prefix) else {
            return (self.default, 0);
        };
        let view = self
            .rules
            .iter()
            .find(|(n, _)| n.prefix_len() <= source_prefix && n.contains(&subnet.network()))
            .map(|(_, v)| *v)
            .unwrap_or(self.default);
        let scope = self
            .rules
            .iter()
            .filter(|(n, _)| n.prefix_len() > source_prefix && subnet.contains(&n.network()))
            .map(|(n, _)| n.prefix_len())
            .max()
            .unwrap_or(source_prefix);
        (view, scope)
    }
}

/// The answer an endpoint gives in one view, or a flattened apex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointRecords {
    /// CNAME (not at an apex).
    Cname(Name),
    /// Addresses (a target's `a`/`aaaa`, or the flattened A/AAAA of a CNAME at an apex).
    Addrs(Vec<std::net::Ipv4Addr>, Vec<std::net::Ipv6Addr>),
}

/// Per (zone origin, view) serial bookkeeping: a serial moves when the content changes.
/// Also keeps, in memory only, the last version's records and the recent differences for
/// IXFR (after a restart, secondaries behind the current serial get AXFR).
#[derive(Debug, Clone, Default)]
pub struct SerialBook {
    entries: BTreeMap<(String, String), (u32, u64)>,
    versions: BTreeMap<(String, String), Version>,
}

#[derive(Debug, Clone)]
struct Version {
    serial: u32,
    soa: Record,
    records: Vec<Record>,
    history: Arc<Vec<Arc<Diff>>>,
}

fn record_key(r: &Record) -> String {
    format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data)
}

impl SerialBook {
    /// Records the content published for (zone, view) at `soa`'s serial and returns the
    /// history of differences up to it (bounded by [`IXFR_HISTORY`]).
    pub fn history_for(
        &mut self,
        zone: &Name,
        view: &str,
        soa: &Record,
        records: &[Record],
    ) -> Arc<Vec<Arc<Diff>>> {
        let serial = Diff::serial(soa);
        let key = (zone.to_string(), view.to_string());
        let body: Vec<Record> = records
            .iter()
            .filter(|r| r.record_type() != RecordType::SOA)
            .cloned()
            .collect();
        let history = match self.versions.get(&key) {
            Some(v) if v.serial == serial => return v.history.clone(),
            Some(v) if serial_gt(serial, v.serial) => {
                let old: std::collections::HashSet<String> =
                    v.records.iter().map(record_key).collect();
                let new: std::collections::HashSet<String> = body.iter().map(record_key).collect();
                let diff = Diff {
                    old_soa: v.soa.clone(),
                    removed: v
                        .records
                        .iter()
                        .filter(|r| !new.contains(&record_key(r)))
                        .cloned()
                        .collect(),
                    new_soa: soa.clone(),
                    added: body
                        .iter()
                        .filter(|r| !old.contains(&record_key(r)))
                        .cloned()
                        .collect(),
                };
                let mut h: Vec<Arc<Diff>> = v.history.iter().cloned().collect();
                h.push(Arc::new(diff));
                if h.len() > IXFR_HISTORY {
                    h.drain(..h.len() - IXFR_HISTORY);
                }
                Arc::new(h)
            }
            _ => Arc::default(),
        };
        self.versions.insert(
            key,
            Version {
                serial,
                soa: soa.clone(),
                records: body,
                history: history.clone(),
            },
        );
        history
    }

    /// Serial to publish for a zone whose content digest is `digest` and whose file says
    /// `file_serial`. The first time: the file's serial. After a change: one more than
    /// before, or the file's serial if that is ahead (RFC 1982 comparison).
    pub fn serial_for(&mut self, zone: &Name, view: &str, file_serial: u32, digest: u64) -> u32 {
        let key = (zone.to_string(), view.to_string());
        match self.entries.get(&key) {
            Some(&(serial, d)) if d == digest => serial,
            Some(&(serial, _)) => {
                let next = serial.wrapping_add(1);
                let s = if serial_gt(file_serial, next) {
                    file_serial
                } else {
                    next
                };
                self.entries.insert(key, (s, digest));
                s
            }
            None => {
                self.entries.insert(key, (file_serial, digest));
                file_serial
            }
        }
    }

    /// Seeds a serial (from persisted state).
    pub fn seed(&mut self, zone: &str, view: &str, serial: u32, digest: u64) {
        self.entries
            .insert((zone.to_string(), view.to_string()), (serial, digest));
    }

    /// All entries: ((zone, view), (serial, digest)).
    pub fn entries(&self) -> impl Iterator<Item = (&(String, String), &(u32, u64))> {
        self.entries.iter()
    }
}

/// RFC 1982 serial number comparison: is `a` after `b`?
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel() -> ViewSelector {
        ViewSelector {
            rules: vec![
                ("127.0.0.2/32".parse().unwrap(), 0),
                ("10.1.0.0/16".parse().unwrap(), 1),
            ],
            ecs_trusted: vec!["127.0.0.3/32".parse().unwrap()],
            default: 2,
        }
    }

    #[test]
    fn selects_by_address_first_match() {
        let s = sel();
        assert_eq!(s.by_addr("127.0.0.2".parse().unwrap()), 0);
        assert_eq!(s.by_addr("10.1.200.3".parse().unwrap()), 1);
        assert_eq!(s.by_addr("::ffff:10.1.0.9".parse().unwrap()), 1);
        assert_eq!(s.by_addr("127.0.0.1".parse().unwrap()), 2);
        assert!(s.trusts_ecs("127.0.0.3".parse().unwrap()));
        assert!(!s.trusts_ecs("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn subnet_scope_covers_more_specific_views() {
        let s = sel();
        assert_eq!(s.by_subnet("10.1.2.0".parse().unwrap(), 24), (1, 24));
        assert_eq!(s.by_subnet("10.0.0.0".parse().unwrap(), 8), (2, 16));
        assert_eq!(s.by_subnet("192.0.2.0".parse().unwrap(), 24), (2, 24));
    }

    #[test]
    fn serials_move_only_on_change() {
        let mut b = SerialBook::default();
        let z = Name::from_ascii("registry.io.").unwrap();
        assert_eq!(b.serial_for(&z, "default", 10, 1), 10);
        assert_eq!(b.serial_for(&z, "default", 10, 1), 10);
        assert_eq!(b.serial_for(&z, "default", 10, 2), 11);
        assert_eq!(b.serial_for(&z, "vpc", 10, 2), 10);
        assert_eq!(b.serial_for(&z, "default", 2026112601, 3), 2026112601);
        assert_eq!(b.serial_for(&z, "default", 0, 4), 2026112602);
        assert!(serial_gt(1, u32::MAX));
    }

    #[test]
    fn history_keeps_the_last_changes() {
        use hickory_proto::rr::rdata::{A, SOA};
        let z = Name::from_ascii("registry.io.").unwrap();
        let soa = |serial| {
            Record::from_rdata(
                z.clone(),
                300,
                RData::SOA(SOA::new(z.clone(), z.clone(), serial, 1, 1, 1, 1)),
            )
        };
        let a = |i: u8| Record::from_rdata(z.clone(), 5, RData::A(A::new(10, 0, 0, i)));
        let mut b = SerialBook::default();
        assert!(b.history_for(&z, "v", &soa(1), &[soa(1), a(1)]).is_empty());
        let h = b.history_for(&z, "v", &soa(2), &[soa(2), a(2)]);
        assert_eq!(h.len(), 1);
        assert_eq!((h[0].from(), h[0].to()), (1, 2));
        assert_eq!(h[0].removed, vec![a(1)]);
        assert_eq!(h[0].added, vec![a(2)]);
        assert_eq!(b.history_for(&z, "v", &soa(2), &[soa(2), a(2)]).len(), 1);
        for s in 3..100u32 {
            b.history_for(&z, "v", &soa(s), &[soa(s), a(s as u8)]);
        }
        let h = b.history_for(&z, "v", &soa(100), &[soa(100), a(100)]);
        assert_eq!(h.len(), IXFR_HISTORY);
        assert_eq!(h[0].from(), 100 - IXFR_HISTORY as u32);
        assert!(b.history_for(&z, "other", &soa(7), &[soa(7)]).is_empty());
    }
}
