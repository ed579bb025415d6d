//! Response policy zones (`[[zone]] kind = "rpz"`): what a policy zone and its endpoints may
//! be. An endpoint under an RPZ origin is a QNAME trigger (the overridden name followed by
//! the origin) and its targets become the policy records a recursive resolver applies: a
//! CNAME rewrite, A/AAAA local data, or `CNAME rpz-passthru.` for a passthrough target.
//! What RPZ cannot express is refused here, with the key path.

use std::collections::BTreeMap;

use hickory_proto::rr::Name;

use super::checks::Checker;
use super::*;

/// The name a trigger overrides: `name` without the labels of `origin`; `None` when
/// `name` is not strictly below `origin`.
pub(super) fn trigger(name: &Name, origin: &Name) -> Option<Name> {
    // Count with `iter` (a leading `*` is a label here: `*.docker.io.` is a trigger too).
    let (n, o) = (name.iter().count(), origin.iter().count());
    if !origin.zone_of(name) || n <= o {
        return None;
    }
    let mut t = Name::from_labels(name.iter().take(n - o)).ok()?;
    t.set_fqdn(true);
    Some(t)
}

/// A policy zone is answered only to the resolvers that transfer it: it needs some.
pub(super) fn check_zone(
    c: &Checker<'_>,
    i: usize,
    z: &crate::config::ZoneConfig,
) -> Result<(), ModelError> {
    if z.kind == ZoneKind::Rpz && z.allow_transfer.is_empty() {
        return Err(c.err(
            format!("zone[{i}].allow_transfer"),
            "an RPZ zone is answered only to the resolvers allowed to transfer it, and none is: list their addresses (\"192.0.2.53/32\") or keys (\"key:NAME.\")",
        ));
    }
    Ok(())
}

/// The name of an endpoint of an RPZ zone is a QNAME trigger below the origin, and it has
/// no publish bindings (the trigger is not a name anyone resolves).
pub(super) fn check_endpoint(
    c: &Checker<'_>,
    i: usize,
    e: &config::EndpointConfig,
    name: &Name,
    zone: &Zone,
) -> Result<(), ModelError> {
    let origin = &zone.origin;
    let example = format!("registry-1.docker.io.{origin}");
    let Some(overridden) = trigger(name, origin) else {
        return Err(c.err(
            format!("endpoint[{i}].name"),
            format!(
                "{name} is the origin of the RPZ zone {origin}, where its SOA and NS live; a trigger is the overridden name written below it (e.g. {example})"
            ),
        ));
    };
    if let Some(label) = overridden.iter().next_back()
        && label.starts_with(b"rpz-")
    {
        return Err(c.err(
            format!("endpoint[{i}].name"),
            format!(
                "{name} is an {} trigger; regdns writes QNAME triggers only: the overridden name followed by the zone origin (e.g. {example})",
                String::from_utf8_lossy(label)
            ),
        ));
    }
    let binding = e
        .privatezone
        .iter()
        .enumerate()
        .map(|(j, _)| format!("endpoint[{i}].privatezone[{j}]"))
        .chain(
            e.publish
                .iter()
                .enumerate()
                .map(|(j, _)| format!("endpoint[{i}].publish[{j}].provider")),
        )
        .next();
    if let Some(key) = binding {
        return Err(c.err(
            key,
            format!(
                "{name} is an RPZ trigger (it overrides {overridden} for the resolvers that load {origin}), not a name anyone resolves: there is nothing to publish to PrivateZone, Alidns or RFC 2136; to push that answer too, add an endpoint named {overridden} with this binding"
            ),
        ));
    }
    Ok(())
}

/// Every CNAME target of an RPZ endpoint is read as a rewrite: not a policy action, not
/// the overridden name itself, not a name inside the policy zone.
pub(super) fn check_targets(
    c: &Checker<'_>,
    i: usize,
    name: &Name,
    zone: &Zone,
    per_view: &BTreeMap<String, Vec<Target>>,
) -> Result<(), ModelError> {
    let overridden = trigger(name, &zone.origin);
    for (view, list) in per_view {
        for (j, t) in list.iter().enumerate() {
            let TargetAnswer::Cname(target) = &t.answer else {
                continue;
            };
            let key = format!("endpoint[{i}].targets.{view}[{j}].cname");
            if let Some(what) = action(target) {
                return Err(c.err(
                    key,
                    format!(
                        "{target} is read by RPZ resolvers as the policy action {what}, not as a rewrite to that name; a target of an RPZ endpoint rewrites to a real name (cname), answers addresses (a/aaaa) or passes through (passthrough = true)"
                    ),
                ));
            }
            if overridden.as_ref() == Some(target) {
                return Err(c.err(
                    key,
                    format!(
                        "a CNAME to the overridden name itself ({target}) is the old RPZ spelling of passthrough; write {{ instance = \"{}\", passthrough = true }}",
                        t.instance
                    ),
                ));
            }
            if zone.origin.zone_of(target) {
                return Err(c.err(
                    key,
                    format!(
                        "{target} is inside the RPZ zone {}, which is not answered to ordinary queries (only to its transfer clients): rewrite to a name resolvers can resolve",
                        zone.origin
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The policy action an RPZ resolver reads a CNAME target as, when it is one (RPZ
/// specification: `.` NXDOMAIN, `*.` NODATA, `*.NAME` wildcard substitution, the
/// `rpz-` top-level names).
fn action(target: &Name) -> Option<&'static str> {
    let labels: Vec<&[u8]> = target.iter().collect();
    match labels.as_slice() {
        [] => Some("NXDOMAIN (CNAME .)"),
        [b"*"] => Some("NODATA (CNAME *.)"),
        [b"*", ..] => {
            Some("wildcard substitution (CNAME *.NAME puts the query name in place of *)")
        }
        [b"rpz-passthru"] => Some("PASSTHRU (write passthrough = true)"),
        [b"rpz-drop"] => Some("DROP"),
        [b"rpz-tcp-only"] => Some("TCP-ONLY"),
        [l] if l.starts_with(b"rpz-") => Some("of a reserved rpz- name"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn triggers_are_the_names_below_the_origin() {
        let origin = n("rpz.regdns.");
        assert_eq!(
            trigger(&n("registry-1.docker.io.rpz.regdns."), &origin),
            Some(n("registry-1.docker.io."))
        );
        assert_eq!(
            trigger(&n("*.docker.io.rpz.regdns."), &origin),
            Some(n("*.docker.io."))
        );
        assert_eq!(trigger(&origin, &origin), None);
        assert_eq!(trigger(&n("docker.io."), &origin), None);
    }

    #[test]
    fn policy_actions_are_recognised() {
        assert!(action(&Name::root()).unwrap().starts_with("NXDOMAIN"));
        assert!(action(&n("*.")).unwrap().starts_with("NODATA"));
        assert!(
            action(&n("*.garden.example."))
                .unwrap()
                .starts_with("wildcard")
        );
        assert!(action(&n("rpz-passthru.")).unwrap().starts_with("PASSTHRU"));
        assert_eq!(action(&n("rpz-drop.")), Some("DROP"));
        assert_eq!(action(&n("rpz-tcp-only.")), Some("TCP-ONLY"));
        assert!(action(&n("rpz-other.")).is_some());
        assert_eq!(action(&n("ga.accel.test.")), None);
        assert_eq!(action(&n("rpz-passthru.example.")), None);
    }
}
