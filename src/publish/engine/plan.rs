//! Pure planning, shared by every provider: from the records a provider has at one name
//! (`rr`) and the answer regdns wants there, the list of changes (`docs/design.md#8-publishers`,
//! `docs/providers/alibaba-cloud-api.md#rules-that-shape-the-reconcile-loop`). Only the managed RRsets (CNAME, A, AAAA) are
//! touched; a CNAME ⇄ A switch is one in-place update. No I/O, no clock, no randomness.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Record types a binding manages: whatever of these sits at the managed `rr` is made equal
/// to the desired answer. Every other type is left alone.
pub const MANAGED_TYPES: [&str; 3] = ["CNAME", "A", "AAAA"];

/// One record as a provider reports it (PrivateZone `Records.Record[]`, Alidns
/// `DomainRecords.Record[]`, an RRset member read from an RFC 2136 primary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordInfo {
    /// Record id (the provider's; RFC 2136 uses `TYPE value`).
    pub record_id: String,
    /// Host record relative to the zone (`@` for the apex).
    pub rr: String,
    /// `A`, `AAAA`, `CNAME`, `TXT`, `MX`, ...
    pub rtype: String,
    /// Value as stored (CNAME targets without the trailing dot).
    pub value: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// `ENABLE` / `DISABLE` (absent is taken as enabled).
    pub status: Option<String>,
    /// Resolution line (`default`).
    pub line: Option<String>,
    /// Weight among records of one name.
    pub weight: Option<u32>,
    /// MX priority.
    pub priority: Option<u32>,
}

impl RecordInfo {
    /// True unless the record is disabled.
    pub fn enabled(&self) -> bool {
        !self
            .status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("DISABLE"))
    }

    fn is_managed(&self) -> bool {
        is_managed_type(&self.rtype)
    }
}

impl fmt::Display for RecordInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} {} {} ttl {}",
            self.record_id, self.rr, self.rtype, self.value, self.ttl
        )?;
        if !self.enabled() {
            write!(f, " (disabled)")?;
        }
        Ok(())
    }
}

/// Sort key of a record id: numeric ids in numeric order, then by text.
fn id_order(id: &str) -> (usize, String) {
    (id.len(), id.to_string())
}

/// True for `CNAME`, `A`, `AAAA` (any case).
pub fn is_managed_type(t: &str) -> bool {
    MANAGED_TYPES.iter().any(|m| m.eq_ignore_ascii_case(t))
}

/// The answer wanted at `rr`: one CNAME alone, or A and/or AAAA records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Host record relative to the zone (`@` for the apex).
    pub rr: String,
    /// Wanted records as `(type, value)`; types among [`MANAGED_TYPES`].
    pub records: Vec<(String, String)>,
    /// TTL of every managed record.
    pub ttl: u32,
}

impl Desired {
    /// Records of one type: one value for a CNAME, one or more addresses for A/AAAA.
    pub fn new(rr: &str, rtype: &str, values: &[&str], ttl: u32) -> Self {
        Desired {
            rr: rr.to_string(),
            records: values
                .iter()
                .map(|v| (rtype.to_string(), v.to_string()))
                .collect(),
            ttl,
        }
    }

    /// `CNAME x, ttl 30` / `A 10.0.0.1, AAAA 2001:db8::1, ttl 30`, for logs and status.
    pub fn summary(&self) -> String {
        if self.records.is_empty() {
            return "no record: pass through to recursion (a passthrough target; the managed record is deleted)".into();
        }
        let mut parts: Vec<String> = self
            .records
            .iter()
            .map(|(t, v)| format!("{} {}", t.to_ascii_uppercase(), v.trim_end_matches('.')))
            .collect();
        parts.push(format!("ttl {}", self.ttl));
        parts.join(", ")
    }
}

/// One API change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `UpdateZoneRecord` of an existing record (type, value and/or TTL).
    Update {
        /// Record to change.
        record_id: String,
        /// New type.
        rtype: String,
        /// New value.
        value: String,
        /// New TTL.
        ttl: u32,
    },
    /// `AddZoneRecord`.
    Add {
        /// Type.
        rtype: String,
        /// Value.
        value: String,
        /// TTL.
        ttl: u32,
    },
    /// `DeleteZoneRecord`.
    Delete {
        /// Record to delete.
        record_id: String,
    },
}

/// A record that blocks the desired answer and that regdns does not manage (so it is
/// reported, never deleted): anything at the name of a CNAME.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The blocking record.
    pub record: RecordInfo,
    /// Why it blocks, for the operator.
    pub reason: String,
}

/// Desired answers that cannot be planned at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A type regdns does not manage.
    #[error("record type {0:?} cannot be managed (use CNAME, A or AAAA)")]
    UnsupportedType(String),
    /// A CNAME together with other records.
    #[error("a CNAME must be the only record at its name, got {0} records")]
    CnameValues(usize),
    /// A value that is not valid for its type.
    #[error("{value:?} is not a valid {rtype} value")]
    BadValue {
        /// Type.
        rtype: String,
        /// Value as given.
        value: String,
    },
}

/// The result of [`plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Host record planned.
    pub rr: String,
    /// Ordered: deletes, then updates, then adds. Empty when converged or when blocked by
    /// conflicts.
    pub ops: Vec<Op>,
    /// Unmanaged records that block the desired CNAME; when not empty, `ops` is empty.
    pub conflicts: Vec<Conflict>,
    /// How the managed records differ from the desired answer (empty when converged).
    pub drift: Vec<String>,
    /// Records at `rr` of types the binding does not manage (left untouched).
    pub unmanaged: Vec<RecordInfo>,
    /// The managed records before the change (for [`Plan::describe`]).
    pub before: Vec<RecordInfo>,
}

impl Plan {
    /// True when nothing needs to change and nothing blocks.
    pub fn is_converged(&self) -> bool {
        self.ops.is_empty() && self.conflicts.is_empty()
    }

    /// One human line per op, for `regdns privatezone plan`.
    pub fn describe(&self) -> Vec<String> {
        self.ops.iter().map(|op| self.describe_op(op)).collect()
    }

    /// Human line for one op, e.g. `update #5809 @: CNAME a.example. ttl 60 -> A 10.0.0.1 ttl 30`.
    pub fn describe_op(&self, op: &Op) -> String {
        let find = |id: &str| self.before.iter().find(|r| r.record_id == id);
        match op {
            Op::Update {
                record_id,
                rtype,
                value,
                ttl,
            } => match find(record_id) {
                Some(r) => format!(
                    "update #{record_id} {}: {} {} ttl {} -> {rtype} {value} ttl {ttl}",
                    self.rr, r.rtype, r.value, r.ttl
                ),
                None => format!(
                    "update #{record_id} {}: -> {rtype} {value} ttl {ttl}",
                    self.rr
                ),
            },
            Op::Add { rtype, value, ttl } => {
                format!("add {} {rtype} {value} ttl {ttl}", self.rr)
            }
            Op::Delete { record_id } => match find(record_id) {
                Some(r) => format!("delete {r}"),
                None => format!("delete #{record_id} {}", self.rr),
            },
        }
    }
}

/// Canonical form of a value for comparison: CNAME targets lower-case without the trailing
/// dot, addresses in their canonical text form.
pub fn normalize_value(rtype: &str, value: &str) -> String {
    let v = value.trim();
    match rtype.to_ascii_uppercase().as_str() {
        "A" => v
            .parse::<Ipv4Addr>()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| v.to_string()),
        "AAAA" => v
            .parse::<Ipv6Addr>()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| v.to_ascii_lowercase()),
        "CNAME" => v.trim_end_matches('.').to_ascii_lowercase(),
        _ => v.to_string(),
    }
}

/// The value as it should be sent: CNAME without the trailing dot (PrivateZone stores it
/// so), addresses canonical.
fn wire_value(rtype: &str, value: &str) -> String {
    match rtype {
        "CNAME" => value.trim().trim_end_matches('.').to_string(),
        _ => normalize_value(rtype, value),
    }
}

fn key(r: &RecordInfo) -> (String, String) {
    let t = r.rtype.to_ascii_uppercase();
    let v = normalize_value(&t, &r.value);
    (t, v)
}

/// One wanted record: type, normalized value, value as sent.
struct Want {
    rtype: String,
    norm: String,
    wire: String,
}

impl Want {
    fn matches(&self, k: &(String, String)) -> bool {
        self.rtype == k.0 && self.norm == k.1
    }
}

/// Validates and de-duplicates the desired records.
fn wanted(desired: &Desired) -> Result<Vec<Want>, PlanError> {
    let mut want: Vec<Want> = Vec::new();
    for (t, v) in &desired.records {
        let rtype = t.to_ascii_uppercase();
        if !is_managed_type(&rtype) {
            return Err(PlanError::UnsupportedType(t.clone()));
        }
        let norm = normalize_value(&rtype, v);
        let valid = match rtype.as_str() {
            "A" => norm.parse::<Ipv4Addr>().is_ok(),
            "AAAA" => norm.parse::<Ipv6Addr>().is_ok(),
            _ => !norm.is_empty() && !norm.contains(char::is_whitespace),
        };
        if !valid {
            return Err(PlanError::BadValue {
                rtype,
                value: v.clone(),
            });
        }
        if !want.iter().any(|w| w.rtype == rtype && w.norm == norm) {
            want.push(Want {
                wire: wire_value(&rtype, v),
                rtype,
                norm,
            });
        }
    }
    if want.iter().any(|w| w.rtype == "CNAME") && want.len() > 1 {
        return Err(PlanError::CnameValues(want.len()));
    }
    Ok(want)
}

/// Plans the changes that make the managed records at `desired.rr` equal `desired`.
///
/// Rules: record sets are compared (order and duplicates of `desired.records` do not
/// matter); an existing record is updated in place rather than deleted and re-added (a
/// CNAME ⇄ A switch is one update); surplus records are deleted first, so switching several
/// A records to a CNAME deletes all but one and then updates the last; missing values are
/// added last; disabled managed records are deleted (their values are re-added when
/// wanted); records of unmanaged types are never touched, but block a CNAME (reported as
/// [`Conflict`]s, and then no op is planned). A and AAAA are managed together: a desired
/// answer with only A records removes AAAA records at the name, and the reverse.
pub fn plan(desired: &Desired, actual: &[RecordInfo]) -> Result<Plan, PlanError> {
    let want = wanted(desired)?;
    // Nothing wanted (a passthrough target): every managed record is deleted.
    let wants_cname = want.first().is_some_and(|w| w.rtype == "CNAME");

    let at_rr: Vec<&RecordInfo> = actual
        .iter()
        .filter(|r| r.rr.eq_ignore_ascii_case(&desired.rr))
        .collect();
    let managed: Vec<RecordInfo> = at_rr
        .iter()
        .filter(|r| r.is_managed())
        .map(|r| (*r).clone())
        .collect();
    let unmanaged: Vec<RecordInfo> = at_rr
        .iter()
        .filter(|r| !r.is_managed())
        .map(|r| (*r).clone())
        .collect();

    let mut result = Plan {
        rr: desired.rr.clone(),
        ops: Vec::new(),
        conflicts: Vec::new(),
        drift: Vec::new(),
        unmanaged: unmanaged.clone(),
        before: managed.clone(),
    };

    if wants_cname {
        result.conflicts = unmanaged
            .iter()
            .map(|r| Conflict {
                record: r.clone(),
                reason: format!(
                    "a CNAME at {} cannot coexist with the {} record #{} ({}), which regdns does not manage",
                    desired.rr, r.rtype, r.record_id, r.value
                ),
            })
            .collect();
    }

    // Keep one enabled record per wanted value; everything else managed is reusable.
    let mut kept: Vec<&RecordInfo> = Vec::new();
    let mut matched: Vec<bool> = vec![false; want.len()];
    let mut reusable: Vec<&RecordInfo> = Vec::new();
    let mut disabled: Vec<&RecordInfo> = Vec::new();
    for r in &managed {
        let k = key(r);
        if !r.enabled() {
            disabled.push(r);
            continue;
        }
        match want
            .iter()
            .enumerate()
            .position(|(i, w)| !matched[i] && w.matches(&k))
        {
            Some(i) => {
                matched[i] = true;
                kept.push(r);
            }
            None => reusable.push(r),
        }
    }
    let missing: Vec<&Want> = want
        .iter()
        .zip(&matched)
        .filter(|(_, m)| !**m)
        .map(|(w, _)| w)
        .collect();

    // Each missing value reuses a record of its own type first, then a CNAME, then any
    // other; stable by id. Values left over are added; records left over are deleted.
    let rank = |r: &RecordInfo, rtype: &str| -> (u8, (usize, String)) {
        let t = r.rtype.to_ascii_uppercase();
        let class = if t == rtype {
            0
        } else if t == "CNAME" {
            1
        } else {
            2
        };
        (class, id_order(&r.record_id))
    };
    let mut pairs: Vec<(&RecordInfo, &Want)> = Vec::new();
    let mut unpaired: Vec<&Want> = Vec::new();
    for w in &missing {
        match reusable
            .iter()
            .enumerate()
            .min_by_key(|(_, r)| rank(r, &w.rtype))
            .map(|(i, _)| i)
        {
            Some(i) => pairs.push((reusable.remove(i), w)),
            None => unpaired.push(w),
        }
    }
    reusable.sort_by_key(|r| id_order(&r.record_id));

    let mut deletes: Vec<Op> = Vec::new();
    let mut updates: Vec<Op> = Vec::new();
    let mut adds: Vec<Op> = Vec::new();
    for r in disabled.iter().chain(reusable.iter()) {
        deletes.push(Op::Delete {
            record_id: r.record_id.clone(),
        });
    }
    for (r, w) in &pairs {
        updates.push(Op::Update {
            record_id: r.record_id.clone(),
            rtype: w.rtype.clone(),
            value: w.wire.clone(),
            ttl: desired.ttl,
        });
    }
    for r in &kept {
        if r.ttl != desired.ttl {
            let t = r.rtype.to_ascii_uppercase();
            updates.push(Op::Update {
                record_id: r.record_id.clone(),
                value: wire_value(&t, &r.value),
                rtype: t,
                ttl: desired.ttl,
            });
        }
    }
    for w in &unpaired {
        adds.push(Op::Add {
            rtype: w.rtype.clone(),
            value: w.wire.clone(),
            ttl: desired.ttl,
        });
    }

    // Drift, described against the desired answer.
    for r in &managed {
        if !r.enabled() {
            result.drift.push(format!("{r} is disabled"));
        } else if !kept.iter().any(|k| k.record_id == r.record_id) {
            result.drift.push(format!("{r} is not wanted"));
        } else if r.ttl != desired.ttl {
            result
                .drift
                .push(format!("{r} has ttl {} (want {})", r.ttl, desired.ttl));
        }
    }
    for w in &missing {
        result
            .drift
            .push(format!("{} {} {} is missing", desired.rr, w.rtype, w.wire));
    }

    if result.conflicts.is_empty() {
        result.ops = deletes.into_iter().chain(updates).chain(adds).collect();
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn rec(id: u64, rr: &str, t: &str, v: &str, ttl: u32) -> RecordInfo {
        RecordInfo {
            record_id: id.to_string(),
            rr: rr.into(),
            rtype: t.into(),
            value: v.into(),
            ttl,
            status: Some("ENABLE".into()),
            line: Some("default".into()),
            weight: Some(1),
            priority: None,
        }
    }

    fn want(t: &str, vals: &[&str], ttl: u32) -> Desired {
        Desired::new("@", t, vals, ttl)
    }

    fn dual(a: &[&str], aaaa: &[&str], ttl: u32) -> Desired {
        let mut d = Desired::new("@", "A", a, ttl);
        d.records
            .extend(aaaa.iter().map(|v| ("AAAA".to_string(), v.to_string())));
        d
    }

    fn upd(id: u64, t: &str, v: &str, ttl: u32) -> Op {
        Op::Update {
            record_id: id.to_string(),
            rtype: t.into(),
            value: v.into(),
            ttl,
        }
    }
    fn add(t: &str, v: &str, ttl: u32) -> Op {
        Op::Add {
            rtype: t.into(),
            value: v.into(),
            ttl,
        }
    }
    fn del(id: u64) -> Op {
        Op::Delete {
            record_id: id.to_string(),
        }
    }

    #[test]
    fn table() {
        let cases: Vec<(&str, Desired, Vec<RecordInfo>, Vec<Op>)> = vec![
            (
                "cname to a is one update",
                want("A", &["10.0.0.1"], 30),
                vec![rec(1, "@", "CNAME", "a.example.com", 30)],
                vec![upd(1, "A", "10.0.0.1", 30)],
            ),
            (
                "a to cname with two a records: delete one, update the other",
                want("CNAME", &["b.example.com."], 30),
                vec![
                    rec(1, "@", "A", "10.0.0.1", 30),
                    rec(2, "@", "A", "10.0.0.2", 30),
                ],
                vec![del(2), upd(1, "CNAME", "b.example.com", 30)],
            ),
            (
                "add when missing",
                want("A", &["10.0.0.1", "10.0.0.2"], 30),
                vec![],
                vec![add("A", "10.0.0.1", 30), add("A", "10.0.0.2", 30)],
            ),
            (
                "equal: nothing (cname compared without dot, any case)",
                want("CNAME", &["A.Example.COM."], 30),
                vec![rec(7, "@", "CNAME", "a.example.com", 30)],
                vec![],
            ),
            (
                "equal sets in another order",
                want("A", &["10.0.0.2", "10.0.0.1", "10.0.0.1"], 5),
                vec![
                    rec(1, "@", "A", "10.0.0.1", 5),
                    rec(2, "@", "A", "10.0.0.2", 5),
                ],
                vec![],
            ),
            (
                "ttl change is an update of the same value",
                want("A", &["10.0.0.1"], 5),
                vec![rec(1, "@", "A", "10.0.0.1", 60)],
                vec![upd(1, "A", "10.0.0.1", 5)],
            ),
            (
                "replace one a of two, add third",
                want("A", &["10.0.0.1", "10.0.0.3", "10.0.0.4"], 30),
                vec![
                    rec(1, "@", "A", "10.0.0.1", 30),
                    rec(2, "@", "A", "10.0.0.2", 30),
                ],
                vec![upd(2, "A", "10.0.0.3", 30), add("A", "10.0.0.4", 30)],
            ),
            (
                "surplus deleted",
                want("A", &["10.0.0.1"], 30),
                vec![
                    rec(1, "@", "A", "10.0.0.1", 30),
                    rec(2, "@", "A", "10.0.0.2", 30),
                ],
                vec![del(2)],
            ),
            (
                "txt at @ and records at other rrs untouched",
                want("A", &["10.0.0.1"], 30),
                vec![
                    rec(1, "@", "TXT", "v=spf1", 60),
                    rec(2, "www", "A", "10.9.9.9", 60),
                    rec(3, "@", "MX", "mx.example.com", 60),
                    rec(4, "@", "CNAME", "x.example.com", 30),
                ],
                vec![upd(4, "A", "10.0.0.1", 30)],
            ),
            (
                "aaaa surplus when a wanted; the a reuses",
                want("A", &["10.0.0.1"], 30),
                vec![
                    rec(1, "@", "AAAA", "2001:db8::1", 30),
                    rec(2, "@", "A", "10.0.0.9", 30),
                ],
                vec![del(1), upd(2, "A", "10.0.0.1", 30)],
            ),
            (
                "disabled record with the wanted value is deleted and re-added",
                want("A", &["10.0.0.1"], 30),
                vec![RecordInfo {
                    status: Some("DISABLE".into()),
                    ..rec(1, "@", "A", "10.0.0.1", 30)
                }],
                vec![del(1), add("A", "10.0.0.1", 30)],
            ),
            (
                "dual stack from a cname: update to A, add AAAA",
                dual(&["10.0.0.1"], &["2001:db8::1"], 30),
                vec![rec(1, "@", "CNAME", "a.example.com", 30)],
                vec![upd(1, "A", "10.0.0.1", 30), add("AAAA", "2001:db8::1", 30)],
            ),
            (
                "dual stack kept; each type reuses its own records",
                dual(&["10.0.0.2"], &["2001:db8::2"], 30),
                vec![
                    rec(1, "@", "AAAA", "2001:db8::1", 30),
                    rec(2, "@", "A", "10.0.0.1", 30),
                ],
                vec![
                    upd(2, "A", "10.0.0.2", 30),
                    upd(1, "AAAA", "2001:db8::2", 30),
                ],
            ),
            (
                "dual stack to cname: delete one, update the lowest id",
                want("CNAME", &["b.example.com"], 30),
                vec![
                    rec(1, "@", "AAAA", "2001:db8::1", 30),
                    rec(2, "@", "A", "10.0.0.1", 30),
                ],
                vec![del(2), upd(1, "CNAME", "b.example.com", 30)],
            ),
            (
                "type compared case-insensitively, addresses canonically",
                want("AAAA", &["2001:DB8:0::1"], 30),
                vec![rec(1, "@", "aaaa", "2001:db8::1", 30)],
                vec![],
            ),
        ];
        for (name, d, actual, expected) in cases {
            let p = plan(&d, &actual).unwrap();
            assert_eq!(p.ops, expected, "{name}");
            assert!(p.conflicts.is_empty(), "{name}");
            assert_eq!(
                p.ops.is_empty(),
                p.drift.is_empty(),
                "{name}: {:?}",
                p.drift
            );
            assert_eq!(p.describe().len(), p.ops.len());
        }
    }

    #[test]
    fn cname_conflicts_with_unmanaged() {
        let p = plan(
            &want("CNAME", &["b.example.com"], 30),
            &[
                rec(1, "@", "A", "10.0.0.1", 30),
                rec(2, "@", "TXT", "hello", 60),
            ],
        )
        .unwrap();
        assert!(p.ops.is_empty());
        assert_eq!(p.conflicts.len(), 1);
        assert_eq!(p.conflicts[0].record.record_id, "2");
        assert!(p.conflicts[0].reason.contains("TXT"));
        assert!(!p.is_converged());
    }

    #[test]
    fn invalid_desired() {
        assert!(matches!(
            plan(&want("TXT", &["x"], 30), &[]),
            Err(PlanError::UnsupportedType(_))
        ));
        assert!(matches!(
            plan(&want("CNAME", &["a.com", "b.com"], 30), &[]),
            Err(PlanError::CnameValues(2))
        ));
        let mut mixed = want("CNAME", &["a.com"], 30);
        mixed.records.push(("A".into(), "10.0.0.1".into()));
        assert!(matches!(plan(&mixed, &[]), Err(PlanError::CnameValues(2))));
        assert!(matches!(
            plan(&want("A", &["a.com"], 30), &[]),
            Err(PlanError::BadValue { .. })
        ));
    }

    /// Nothing wanted (a passthrough target): exactly the managed records are deleted, an
    /// unmanaged record at the same name is left, and nothing is added.
    #[test]
    fn nothing_wanted_deletes_the_managed_records_only() {
        let actual = [
            rec(1, "@", "CNAME", "ga.accel.test", 5),
            rec(2, "@", "TXT", "keep me", 5),
        ];
        let p = plan(&want("A", &[], 5), &actual).unwrap();
        assert_eq!(
            p.ops,
            vec![Op::Delete {
                record_id: "1".into()
            }]
        );
        assert!(p.conflicts.is_empty());
        let again = plan(&want("A", &[], 5), &[actual[1].clone()]).unwrap();
        assert!(again.ops.is_empty(), "idempotent");
    }

    #[test]
    fn describe_lines() {
        let actual = [
            rec(5809, "@", "CNAME", "reg-a.example.com", 60),
            rec(5810, "@", "CNAME", "reg-b.example.com", 60),
        ];
        let p = plan(&want("A", &["10.0.0.1"], 30), &actual).unwrap();
        assert_eq!(
            p.describe(),
            vec![
                "delete #5810 @ CNAME reg-b.example.com ttl 60".to_string(),
                "update #5809 @: CNAME reg-a.example.com ttl 60 -> A 10.0.0.1 ttl 30".to_string(),
            ]
        );
    }

    // ---- property test: applying the ops yields the desired set ----

    fn cname_ok(records: &BTreeMap<String, RecordInfo>, rr: &str) -> bool {
        let at: Vec<&RecordInfo> = records
            .values()
            .filter(|r| r.rr.eq_ignore_ascii_case(rr))
            .collect();
        let cnames = at.iter().filter(|r| r.rtype == "CNAME").count();
        cnames == 0 || at.len() == 1
    }

    fn no_duplicates(records: &BTreeMap<String, RecordInfo>) -> bool {
        let mut seen = BTreeSet::new();
        records
            .values()
            .all(|r| seen.insert((r.rr.to_ascii_lowercase(), key(r))))
    }

    fn arb_record() -> impl Strategy<Value = (String, String, String, u32, bool)> {
        let rr = prop::sample::select(vec!["@", "@", "@", "www"]);
        let typed = prop_oneof![
            prop::sample::select(vec!["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"])
                .prop_map(|v| ("A", v)),
            prop::sample::select(vec!["2001:db8::1", "2001:db8::2"]).prop_map(|v| ("AAAA", v)),
            prop::sample::select(vec!["a.example.com", "b.example.com", "B.example.com."])
                .prop_map(|v| ("CNAME", v)),
            prop::sample::select(vec!["txt1", "txt2"]).prop_map(|v| ("TXT", v)),
            prop::sample::select(vec!["mx.example.com"]).prop_map(|v| ("MX", v)),
        ];
        (
            rr,
            typed,
            prop::sample::select(vec![5u32, 30, 60]),
            prop::bool::weighted(0.9),
        )
            .prop_map(|(rr, (t, v), ttl, en)| {
                (rr.to_string(), t.to_string(), v.to_string(), ttl, en)
            })
    }

    fn arb_desired() -> impl Strategy<Value = Desired> {
        let a = prop::sample::select(vec!["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5"]);
        let aaaa = prop::sample::select(vec!["2001:db8::1", "2001:db8::3"]);
        let recs = prop_oneof![
            prop::collection::vec(a.clone(), 1..4).prop_map(|v| typed("A", v)),
            prop::collection::vec(aaaa.clone(), 1..3).prop_map(|v| typed("AAAA", v)),
            (
                prop::collection::vec(a, 1..3),
                prop::collection::vec(aaaa, 1..3)
            )
                .prop_map(|(a, aaaa)| {
                    let mut r = typed("A", a);
                    r.extend(typed("AAAA", aaaa));
                    r
                }),
            prop::sample::select(vec!["a.example.com.", "b.example.com", "c.example.com"])
                .prop_map(|v| typed("CNAME", vec![v])),
        ];
        (recs, prop::sample::select(vec![5u32, 30])).prop_map(|(records, ttl)| Desired {
            rr: "@".into(),
            records,
            ttl,
        })
    }

    fn typed(t: &str, values: Vec<&str>) -> Vec<(String, String)> {
        values
            .into_iter()
            .map(|v| (t.to_string(), v.to_string()))
            .collect()
    }

    /// Builds a state that PrivateZone could really hold: no duplicates, CNAME exclusive.
    fn valid_state(raw: Vec<(String, String, String, u32, bool)>) -> BTreeMap<String, RecordInfo> {
        let mut m = BTreeMap::new();
        for (i, (rr, t, v, ttl, en)) in raw.into_iter().enumerate() {
            let mut r = rec(100 + i as u64, &rr, &t, &v, ttl);
            if !en {
                r.status = Some("DISABLE".into());
            }
            let mut trial = m.clone();
            trial.insert(r.record_id.clone(), r.clone());
            if cname_ok(&trial, &rr) && no_duplicates(&trial) {
                m = trial;
            }
        }
        m
    }

    proptest! {
        #[test]
        fn applying_ops_yields_desired(raw in prop::collection::vec(arb_record(), 0..7), d in arb_desired()) {
            let mut state = valid_state(raw);
            let before = state.clone();
            let actual: Vec<RecordInfo> = state.values().cloned().collect();
            let p = plan(&d, &actual).unwrap();
            let unmanaged_ids: BTreeSet<String> = before
                .values()
                .filter(|r| !r.rr.eq_ignore_ascii_case("@") || !is_managed_type(&r.rtype))
                .map(|r| r.record_id.clone())
                .collect();
            if !p.conflicts.is_empty() {
                prop_assert!(p.ops.is_empty());
                prop_assert_eq!(d.records[0].0.as_str(), "CNAME");
                return Ok(());
            }
            let mut next_id = 10_000;
            for op in &p.ops {
                match op {
                    Op::Delete { record_id } => {
                        prop_assert!(!unmanaged_ids.contains(record_id));
                        prop_assert!(state.remove(record_id).is_some());
                    }
                    Op::Update { record_id, rtype, value, ttl } => {
                        prop_assert!(!unmanaged_ids.contains(record_id));
                        let r = state.get_mut(record_id).unwrap();
                        r.rtype = rtype.clone();
                        r.value = value.clone();
                        r.ttl = *ttl;
                    }
                    Op::Add { rtype, value, ttl } => {
                        next_id += 1;
                        state.insert(next_id.to_string(), rec(next_id, "@", rtype, value, *ttl));
                    }
                }
                // Every intermediate state is one the service accepts.
                prop_assert!(cname_ok(&state, "@"), "CNAME exclusivity broken by {:?}", op);
                prop_assert!(no_duplicates(&state), "duplicate after {:?}", op);
            }
            // Unmanaged records are exactly as before.
            for id in &unmanaged_ids {
                prop_assert_eq!(state.get(id), before.get(id));
            }
            // Managed records at @ equal the desired set, with the desired TTL, all enabled.
            let got: BTreeSet<(String, String)> = state
                .values()
                .filter(|r| r.rr == "@" && is_managed_type(&r.rtype))
                .inspect(|r| assert!(r.enabled() && r.ttl == d.ttl))
                .map(key)
                .collect();
            let n_managed = state
                .values()
                .filter(|r| r.rr == "@" && is_managed_type(&r.rtype))
                .count();
            let wanted: BTreeSet<(String, String)> = d
                .records
                .iter()
                .map(|(t, v)| (t.clone(), normalize_value(t, v)))
                .collect();
            prop_assert_eq!(&got, &wanted);
            prop_assert_eq!(n_managed, wanted.len());
            // Idempotent: planning again against the result changes nothing.
            let again = plan(&d, &state.values().cloned().collect::<Vec<_>>()).unwrap();
            prop_assert!(again.ops.is_empty(), "not idempotent: {:?}", again.ops);
            prop_assert!(again.drift.is_empty());
        }
    }
}
