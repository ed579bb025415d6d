//! One `[[endpoint]]`: its name inside a zone, its targets per view (CNAME or addresses)
//! and its publish bindings, checked against the zone data and the views.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use hickory_proto::rr::{Name, RecordType};

use super::checks::{Checker, parse_fqdn};
use super::publish::{build_publish, check_privatezone_binding};
use super::*;

pub(super) fn zone_of(zones: &[Zone], name: &Name) -> Option<usize> {
    zones
        .iter()
        .enumerate()
        .filter(|(_, z)| z.origin.zone_of(name))
        .max_by_key(|(_, z)| z.origin.num_labels())
        .map(|(i, _)| i)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn build_endpoint(
    c: &Checker<'_>,
    i: usize,
    e: &config::EndpointConfig,
    zones: &[Zone],
    views: &[View],
    instances: &BTreeSet<String>,
    has_privatezone: bool,
    keys: &[&crate::tsig::Key],
) -> Result<Endpoint, ModelError> {
    let k = |f: &str| format!("endpoint[{i}].{f}");
    let name = parse_fqdn(c, &k("name"), &e.name)?;
    let zi = zone_of(zones, &name);
    if zi.is_none() && e.privatezone.is_empty() && e.publish.is_empty() {
        let known: Vec<String> = zones.iter().map(|z| z.origin.to_string()).collect();
        return Err(c.err(
            k("name"),
            format!(
                "{name} is not inside any configured zone (zones: {}) and has no [[endpoint.publish]] or [[endpoint.privatezone]] binding; an endpoint is served (in a [[zone]]), published, or both",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ),
        ));
    }
    let empty_zone = Zone {
        origin: Name::root(),
        file: PathBuf::new(),
        records: Vec::new(),
        allow_transfer: Vec::new(),
        secondaries: Vec::new(),
        kind: ZoneKind::Zone,
    };
    let zone = zi.map(|z| &zones[z]).unwrap_or(&empty_zone);
    if zone.is_rpz() {
        super::rpz::check_endpoint(c, i, e, &name, zone)?;
    }
    if e.ttl > i32::MAX as u32 {
        return Err(c.err(k("ttl"), "must be at most 2147483647"));
    }
    // Data at the endpoint name or a delegation above it.
    for r in &zone.records {
        let rr = &r.record;
        if rr.record_type() == RecordType::NS && rr.name != zone.origin && rr.name.zone_of(&name) {
            return Err(c.err(k("name"), format!(
                "{name} is at or below the delegation {} ({}:{}); regdns is not authoritative there",
                rr.name, r.pos.file.display(), r.pos.line)));
        }
    }
    let is_apex = zi.is_some() && name == zone.origin;

    if !e.targets.contains_key(DEFAULT_VIEW) {
        return Err(c.err(k("targets"), "no \"default\" targets; every endpoint needs targets.default, used by clients no view matches"));
    }
    let view_names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
    let mut per_view: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    for (view, list) in &e.targets {
        let vk = format!("endpoint[{i}].targets.{view}");
        if !view_names.contains(&view.as_str()) {
            return Err(c.err(
                vk,
                format!("unknown view {view:?} (known: {})", view_names.join(", ")),
            ));
        }
        if list.is_empty() {
            return Err(c.err(
                vk,
                "empty target list; give at least one { instance = ..., cname = ... | a = [...] }",
            ));
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (j, t) in list.iter().enumerate() {
            let tk = format!("{vk}[{j}]");
            if !instances.contains(&t.instance) {
                let known: Vec<&str> = instances.iter().map(String::as_str).collect();
                return Err(c.err(
                    format!("{tk}.instance"),
                    format!(
                        "unknown instance {:?} (known: {})",
                        t.instance,
                        known.join(", ")
                    ),
                ));
            }
            if !seen.insert(t.instance.clone()) {
                return Err(c.err(
                    format!("{tk}.instance"),
                    format!("instance {:?} listed twice in this view", t.instance),
                ));
            }
            if t.passthrough && (t.cname.is_some() || t.a.is_some() || t.aaaa.is_some()) {
                return Err(c.err(
                    format!("{tk}.passthrough"),
                    "a passthrough target answers the public answer of this very name: give it no cname, a or aaaa",
                ));
            }
            let answer = match (&t.cname, &t.a, &t.aaaa) {
                _ if t.passthrough => TargetAnswer::Passthrough,
                (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                    return Err(c.err(tk, "both cname and a/aaaa given; a target answers either cname = \"public.name.\" (Internet path) or a = [\"10.x.x.x\"] (VPC path)"));
                }
                (None, None, None) => {
                    return Err(c.err(tk, "neither cname nor a given; a target answers either cname = \"public.name.\" (Internet path) or a = [\"10.x.x.x\"] (VPC path), or passthrough = true (the public answer of this name)"));
                }
                (Some(cn), None, None) => {
                    let target = parse_fqdn(c, &format!("{tk}.cname"), cn)?;
                    if target == name {
                        return Err(c.err(
                            format!("{tk}.cname"),
                            "a CNAME to the endpoint itself would loop",
                        ));
                    }
                    TargetAnswer::Cname(target)
                }
                (None, a, aaaa) => {
                    let a = a.clone().unwrap_or_default();
                    let aaaa = aaaa.clone().unwrap_or_default();
                    if a.is_empty() && aaaa.is_empty() {
                        return Err(c.err(format!("{tk}.a"), "empty address list"));
                    }
                    TargetAnswer::Addrs { a, aaaa }
                }
            };
            if matches!(answer, TargetAnswer::Cname(_))
                && !is_apex
                && let Some(r) = zone.records.iter().find(|r| {
                    r.record.name == name
                        && !matches!(
                            r.record.record_type(),
                            RecordType::A | RecordType::AAAA | RecordType::CNAME
                        )
                })
            {
                return Err(c.err(format!("{tk}.cname"), format!(
                        "{name} also has {} data ({}:{}); a CNAME cannot coexist with other data (RFC 1034 §3.6.2): remove it from the zone file or answer with a = [...]",
                        r.record.record_type(), r.pos.file.display(), r.pos.line)));
            }
            out.push(Target {
                instance: t.instance.clone(),
                answer,
            });
        }
        per_view.insert(view.clone(), out);
    }
    if zone.is_rpz() {
        super::rpz::check_targets(c, i, &name, zone, &per_view)?;
    }
    let default = per_view[DEFAULT_VIEW].clone();
    let targets: Vec<Vec<Target>> = views
        .iter()
        .map(|v| {
            per_view
                .get(&v.name)
                .cloned()
                .unwrap_or_else(|| default.clone())
        })
        .collect();

    for (j, b) in e.privatezone.iter().enumerate() {
        let bk = format!("endpoint[{i}].privatezone[{j}]");
        check_privatezone_binding(c, &bk, &k("ttl"), b, e.ttl, &view_names, has_privatezone)?;
    }

    let mut publish: Vec<PublishTarget> = e
        .privatezone
        .iter()
        .map(|b| PublishTarget::PrivateZone {
            view: b.view.clone(),
            zone_id: b.zone_id.clone(),
            rr: b.rr.clone(),
        })
        .collect();
    for (j, b) in e.publish.iter().enumerate() {
        let bk = format!("endpoint[{i}].publish[{j}]");
        let p = build_publish(c, &bk, b, &name, e.ttl, &view_names, keys, has_privatezone)?;
        if !matches!(p, PublishTarget::PrivateZone { .. })
            && let Some(vi) = view_names.iter().position(|v| *v == p.view())
            && let Some(j2) = targets[vi]
                .iter()
                .position(|t| t.answer == TargetAnswer::Passthrough)
        {
            return Err(c.err(
                format!("{bk}.provider"),
                format!(
                    "view {} has a passthrough target (endpoint[{i}].targets.{}[{j2}]): {} owns its zone, so there is no public answer to pass through to; publish another view, or use PrivateZone (a RECORD zone) or RPZ for names you do not own",
                    p.view(),
                    p.view(),
                    match p {
                        PublishTarget::Alidns { .. } => "Alidns",
                        _ => "an RFC 2136 primary",
                    }
                ),
            ));
        }
        match &p {
            PublishTarget::Rfc2136 { rr, view, zone, .. }
                if rr == "@"
                    && view_names.iter().position(|v| v == view).is_some_and(|vi| {
                        targets[vi]
                            .iter()
                            .any(|t| matches!(t.answer, TargetAnswer::Cname(_)))
                    }) =>
            {
                return Err(c.err(
                    format!("{bk}.zone"),
                    format!("{name} is the apex of {zone}, where a CNAME cannot sit (SOA and NS live there), and view {view} answers with a CNAME; publish a name below the apex or give that view a = [...] targets"),
                ));
            }
            // PrivateZone bindings may repeat (as before, when they were a list apart).
            PublishTarget::PrivateZone { .. } => {}
            _ if publish.contains(&p) => {
                return Err(c.err(bk, "the same binding is listed twice"));
            }
            _ => {}
        }
        publish.push(p);
    }

    Ok(Endpoint {
        name,
        zone: zi,
        ttl: e.ttl,
        failback: e.failback,
        failback_hold: e.failback_hold,
        targets,
        publish,
        replication_max_lag: e.replication_max_lag,
    })
}
