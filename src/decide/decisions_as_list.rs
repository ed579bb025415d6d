//! `#[serde(with = "…")]` helper that (de)serializes a decision map keyed by
//! (endpoint, view) as a sequence of entries. Usable for persisting
//! `previous` too.

use super::Decision;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

#[derive(Serialize)]
struct EntryRef<'a> {
    endpoint: &'a str,
    view: &'a str,
    decision: &'a Decision,
}

#[derive(Deserialize)]
struct Entry {
    endpoint: String,
    view: String,
    decision: Decision,
}

/// Serializes the map as a sequence of `{endpoint, view, decision}`.
pub fn serialize<S: Serializer>(
    map: &BTreeMap<(String, String), Decision>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(map.iter().map(|((endpoint, view), decision)| EntryRef {
        endpoint,
        view,
        decision,
    }))
}

/// Deserializes a sequence of `{endpoint, view, decision}` into the map;
/// a later duplicate (endpoint, view) entry replaces an earlier one.
pub fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<(String, String), Decision>, D::Error> {
    let entries = Vec::<Entry>::deserialize(deserializer)?;
    Ok(entries
        .into_iter()
        .map(|e| ((e.endpoint, e.view), e.decision))
        .collect())
}
