//! The bindings that push an endpoint's decision elsewhere (`[[endpoint.publish]]` and
//! `[[endpoint.privatezone]]`), resolved to [`PublishTarget`]s and checked.

use hickory_proto::rr::Name;

use super::checks::{Checker, parse_fqdn};
use super::*;
use crate::config::endpoint::{PublishProvider, UpdateTransport};

pub(super) fn check_privatezone_binding(
    c: &Checker<'_>,
    bk: &str,
    ttl_key: &str,
    b: &PrivateZoneBinding,
    ttl: u32,
    view_names: &[&str],
    has_privatezone: bool,
) -> Result<(), ModelError> {
    if !has_privatezone {
        return Err(c.err(
            bk,
            "a PrivateZone binding needs a [privatezone] section (region = \"cn-hangzhou\")",
        ));
    }
    check_view(c, bk, &b.view, view_names)?;
    if b.zone_id.trim().is_empty() {
        return Err(c.err(
            format!("{bk}.zone_id"),
            "empty zone id; copy it from the PrivateZone console or `aliyun pvtz DescribeZones`",
        ));
    }
    if b.rr.is_empty() || b.rr.ends_with('.') {
        return Err(c.err(format!("{bk}.rr"), format!("{:?} is not a host record; write \"@\" for the zone apex or a relative name like \"cr\"", b.rr)));
    }
    if !PRIVATEZONE_TTLS.contains(&ttl) {
        return Err(c.err(ttl_key, format!("{ttl} is not a TTL PrivateZone accepts ({PRIVATEZONE_TTLS:?}); this endpoint is pushed to PrivateZone")));
    }
    Ok(())
}

pub(super) fn check_view(
    c: &Checker<'_>,
    bk: &str,
    view: &str,
    view_names: &[&str],
) -> Result<(), ModelError> {
    if view_names.contains(&view) {
        return Ok(());
    }
    Err(c.err(
        format!("{bk}.view"),
        format!("unknown view {view:?} (known: {})", view_names.join(", ")),
    ))
}

/// Resolves one `[[endpoint.publish]]` binding; keys of another provider are errors.
#[allow(clippy::too_many_arguments)]
pub(super) fn build_publish(
    c: &Checker<'_>,
    bk: &str,
    b: &config::PublishBinding,
    name: &Name,
    ttl: u32,
    view_names: &[&str],
    keys: &[&crate::tsig::Key],
    has_privatezone: bool,
) -> Result<PublishTarget, ModelError> {
    check_view(c, bk, &b.view, view_names)?;
    let (provider, allowed): (&str, &[&str]) = match b.provider {
        PublishProvider::Alidns => ("alidns", &["domain", "rr"]),
        PublishProvider::Rfc2136 => ("rfc2136", &["server", "zone", "tsig_key", "transport"]),
        PublishProvider::Privatezone => ("privatezone", &["zone_id", "rr"]),
    };
    let given = [
        ("domain", b.domain.is_some()),
        ("rr", b.rr.is_some()),
        ("zone_id", b.zone_id.is_some()),
        ("server", b.server.is_some()),
        ("zone", b.zone.is_some()),
        ("tsig_key", b.tsig_key.is_some()),
        ("transport", b.transport.is_some()),
    ];
    for (key, set) in given {
        if set && !allowed.contains(&key) {
            return Err(c.err(
                format!("{bk}.{key}"),
                format!(
                    "not a key of provider \"{provider}\" (its keys: provider, view, {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    let need = |key: &str, v: &Option<String>, example: &str| -> Result<String, ModelError> {
        match v.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(c.err(
                format!("{bk}.{key}"),
                format!("provider \"{provider}\" needs {key} (e.g. {key} = \"{example}\")"),
            )),
        }
    };
    match b.provider {
        PublishProvider::Privatezone => {
            let p = PrivateZoneBinding {
                view: b.view.clone(),
                zone_id: need("zone_id", &b.zone_id, "zone-0123abcd")?,
                rr: b.rr.clone().unwrap_or_else(|| "@".into()),
            };
            check_privatezone_binding(
                c,
                bk,
                &format!("{bk}.view"),
                &p,
                ttl,
                view_names,
                has_privatezone,
            )?;
            Ok(PublishTarget::PrivateZone {
                view: p.view,
                zone_id: p.zone_id,
                rr: p.rr,
            })
        }
        PublishProvider::Alidns => {
            let domain = need("domain", &b.domain, "registry.io")?
                .trim_end_matches('.')
                .to_ascii_lowercase();
            if Name::from_ascii(&domain).is_err() || !domain.contains('.') {
                return Err(c.err(format!("{bk}.domain"), format!("{domain:?} is not a domain name; write the domain as registered in Alibaba Cloud DNS, e.g. \"registry.io\"")));
            }
            let computed = relative_rr(&name.to_string(), &domain);
            let rr = match (&b.rr, computed) {
                (Some(rr), _) if rr.is_empty() || rr.ends_with('.') => {
                    return Err(c.err(format!("{bk}.rr"), format!("{rr:?} is not a host record; write \"@\" for the apex or a relative name like \"cr\"")));
                }
                (Some(rr), Some(comp)) if !rr.eq_ignore_ascii_case(&comp) => {
                    return Err(c.err(format!("{bk}.rr"), format!("{rr:?} in domain {domain} is not the endpoint {name} (that is rr = \"{comp}\"); omit rr to compute it")));
                }
                (Some(rr), _) => rr.to_ascii_lowercase(),
                (None, Some(comp)) => comp,
                (None, None) => {
                    return Err(c.err(
                        format!("{bk}.domain"),
                        format!("the endpoint {name} is not inside domain {domain}"),
                    ));
                }
            };
            Ok(PublishTarget::Alidns {
                view: b.view.clone(),
                domain,
                rr,
            })
        }
        PublishProvider::Rfc2136 => {
            let server_s = need("server", &b.server, "192.0.2.1:53")?;
            let server = server_s
                .parse::<std::net::SocketAddr>()
                .or_else(|_| {
                    server_s
                        .parse::<std::net::IpAddr>()
                        .map(|ip| std::net::SocketAddr::new(ip, 53))
                })
                .map_err(|_| {
                    c.err(
                        format!("{bk}.server"),
                        format!("{server_s:?} is not an address; write \"ADDR:PORT\" (e.g. \"192.0.2.1:53\" or \"[2001:db8::1]:53\")"),
                    )
                })?;
            let zone_s = need("zone", &b.zone, "example.net.")?;
            let zone = parse_fqdn(c, &format!("{bk}.zone"), &zone_s)?.to_lowercase();
            if !zone.zone_of(name) {
                return Err(c.err(
                    format!("{bk}.zone"),
                    format!("the endpoint {name} is not inside zone {zone}"),
                ));
            }
            let rr =
                relative_rr(&name.to_string(), &zone.to_string()).unwrap_or_else(|| "@".into());
            let key_s = need("tsig_key", &b.tsig_key, "update-key.")?;
            let key_name = Name::from_ascii(&key_s).map(|mut n| {
                n.set_fqdn(true);
                n.to_lowercase()
            });
            let Some(key) = key_name
                .ok()
                .and_then(|n| keys.iter().find(|k| k.name == n))
            else {
                let known: Vec<String> = keys.iter().map(|k| k.name.to_string()).collect();
                return Err(c.err(
                    format!("{bk}.tsig_key"),
                    format!(
                        "no [[tsig_key]] defines key {key_s} (known: {}); add [[tsig_key]] file = \"keys/update.key\" (a key without view signs updates only)",
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ),
                ));
            };
            Ok(PublishTarget::Rfc2136 {
                view: b.view.clone(),
                server,
                zone,
                rr,
                key: Box::new((*key).clone()),
                tcp: b.transport == Some(UpdateTransport::Tcp),
            })
        }
    }
}

/// The host record of `name` relative to `zone` (`@` for the apex); None when `name` is
/// not inside `zone`. Both fully qualified or not, any case.
pub fn relative_rr(name: &str, zone: &str) -> Option<String> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    let z = zone.trim_end_matches('.').to_ascii_lowercase();
    if n == z {
        return Some("@".into());
    }
    n.strip_suffix(&format!(".{z}"))
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names() {
        assert_eq!(
            relative_rr("Registry.io.", "registry.io").as_deref(),
            Some("@")
        );
        assert_eq!(
            relative_rr("cr.registry.io.", "registry.io.").as_deref(),
            Some("cr")
        );
        assert_eq!(
            relative_rr("a.b.registry.io", "registry.io").as_deref(),
            Some("a.b")
        );
        assert_eq!(relative_rr("xregistry.io.", "registry.io."), None);
        assert_eq!(relative_rr("registry.io.", "cr.registry.io."), None);
    }
}
