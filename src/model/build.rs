//! Builds the [`Model`] from a parsed config: zones (with their files), views, TSIG keys,
//! instances and endpoints, in that order, each checked as it is built; the first error
//! stops the build and names its key path.

use std::collections::BTreeSet;

use hickory_proto::rr::Name;

use super::checks::{
    Checker, check_file, check_files, check_instance, check_replication, check_server, parse_fqdn,
};
use super::endpoint::build_endpoint;
use super::*;
use crate::config::LoadedConfig;
use crate::zone;

pub(super) fn parse_secondaries(
    c: &Checker<'_>,
    zone: usize,
    list: &[String],
) -> Result<Vec<Secondary>, ModelError> {
    let mut out = Vec::new();
    for (j, s) in list.iter().enumerate() {
        let mut parts = s.split_whitespace();
        let addr = parts
            .next()
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok());
        let key = match parts.next() {
            None => Some(None),
            Some(k) => k
                .strip_prefix("key:")
                .and_then(|k| Name::from_ascii(k).ok())
                .map(|mut n| {
                    n.set_fqdn(true);
                    Some(n.to_lowercase())
                }),
        };
        match (addr, key, parts.next()) {
            (Some(addr), Some(key), None) => out.push(Secondary { addr, key }),
            _ => {
                return Err(c.err(
                    format!("zone[{zone}].secondaries[{j}]"),
                    format!("{s:?} is not \"ADDR:PORT\" or \"ADDR:PORT key:NAME.\" (e.g. \"192.0.2.53:53 key:xfr-key.\")"),
                ));
            }
        }
    }
    Ok(out)
}

/// Builds the model from a parsed config, loading zone files relative to the config file.
pub fn build(loaded: &LoadedConfig) -> Result<Model, ModelError> {
    let cfg = &loaded.config;
    let file = loaded.path.display().to_string();
    let c = Checker { file: &file };

    check_server(&c, &cfg.server)?;

    // Zones.
    let mut zones: Vec<Zone> = Vec::new();
    for (i, z) in cfg.zones.iter().enumerate() {
        let key = format!("zone[{i}].origin");
        let origin = parse_fqdn(&c, &key, &z.origin)?;
        if zones.iter().any(|o| o.origin == origin) {
            return Err(c.err(
                key,
                format!("duplicate zone {origin}; each origin may appear once"),
            ));
        }
        for (j, acl) in z.allow_transfer.iter().enumerate() {
            let ok = acl
                .strip_prefix("key:")
                .map(|k| Name::from_ascii(k).is_ok())
                .unwrap_or_else(|| {
                    acl.parse::<ipnet::IpNet>().is_ok() || acl.parse::<std::net::IpAddr>().is_ok()
                });
            if !ok {
                return Err(c.err(
                    format!("zone[{i}].allow_transfer[{j}]"),
                    format!("{acl:?} is neither a CIDR (192.0.2.0/24) nor a TSIG key (key:NAME.)"),
                ));
            }
        }
        super::rpz::check_zone(&c, i, z)?;
        let path = loaded.resolve(&z.file);
        check_file(&c, &format!("zone[{i}].file"), &path)?;
        let data = zone::load_zone(&path, &origin)?;
        zones.push(Zone {
            origin,
            file: path,
            records: data.records,
            allow_transfer: z.allow_transfer.clone(),
            secondaries: parse_secondaries(&c, i, &z.secondaries)?,
            kind: z.kind,
        });
    }
    if zones.is_empty() {
        return Err(c.err(
            "zone",
            "no [[zone]] configured; add at least one zone with origin and file",
        ));
    }

    // Views.
    let mut views: Vec<View> = Vec::new();
    for (i, v) in cfg.views.iter().enumerate() {
        let key = format!("view[{i}].name");
        if v.name == DEFAULT_VIEW {
            return Err(c.err(
                key,
                "\"default\" is the implicit view of unmatched clients; choose another name",
            ));
        }
        if v.name.is_empty()
            || !v
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            return Err(c.err(
                key,
                format!(
                    "{:?} is not a valid view name (letters, digits, '-', '_', '.')",
                    v.name
                ),
            ));
        }
        if views.iter().any(|o| o.name == v.name) {
            return Err(c.err(key, format!("duplicate view {:?}", v.name)));
        }
        if v.clients.is_empty() && v.ecs_from.is_empty() {
            return Err(c.err(
                format!("view[{i}].clients"),
                "a view needs at least one client network (e.g. [\"10.1.0.0/16\"])",
            ));
        }
        views.push(View {
            name: v.name.clone(),
            clients: v.clients.iter().map(|n| n.trunc()).collect(),
            ecs_from: v.ecs_from.iter().map(|n| n.trunc()).collect(),
            probe: v.probe,
            health_quorum: v.health_quorum,
        });
    }
    views.push(View {
        name: DEFAULT_VIEW.into(),
        clients: vec![],
        ecs_from: vec![],
        probe: crate::config::ViewProbe::Instance,
        health_quorum: None,
    });

    // TSIG keys.
    let mut tsig_keys: Vec<TransferKey> = Vec::new();
    let mut update_keys: Vec<crate::tsig::Key> = Vec::new();
    for (i, k) in cfg.tsig_keys.iter().enumerate() {
        let view = match &k.view {
            None => None,
            Some(kv) => match views.iter().position(|v| &v.name == kv) {
                Some(v) => Some(v),
                None => {
                    let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
                    return Err(c.err(
                        format!("tsig_key[{i}].view"),
                        format!("no view {kv:?}; views are {}", names.join(", ")),
                    ));
                }
            },
        };
        let path = loaded.resolve(&k.file);
        check_file(&c, &format!("tsig_key[{i}].file"), &path)?;
        for key in crate::tsig::load_key_file(&path)? {
            if tsig_keys.iter().any(|t| t.key.name == key.name)
                || update_keys.iter().any(|u| u.name == key.name)
            {
                return Err(c.err(
                    format!("tsig_key[{i}].file"),
                    format!(
                        "key {} is defined twice; each key selects one view",
                        key.name
                    ),
                ));
            }
            match view {
                Some(view) => tsig_keys.push(TransferKey { key, view }),
                None => update_keys.push(key),
            }
        }
    }
    for (i, z) in zones.iter().enumerate() {
        for (j, sec) in z.secondaries.iter().enumerate() {
            if let Some(k) = &sec.key
                && !tsig_keys.iter().any(|t| &t.key.name == k)
            {
                return Err(c.err(
                    format!("zone[{i}].secondaries[{j}]"),
                    format!("no [[tsig_key]] defines key {k}"),
                ));
            }
        }
        for (j, acl) in z.allow_transfer.iter().enumerate() {
            if let Some(k) = acl.strip_prefix("key:") {
                let known = Name::from_ascii(k)
                    .map(|mut n| {
                        n.set_fqdn(true);
                        n.to_lowercase()
                    })
                    .map(|n| tsig_keys.iter().any(|t| t.key.name == n))
                    .unwrap_or(false);
                if !known {
                    return Err(c.err(
                        format!("zone[{i}].allow_transfer[{j}]"),
                        format!("no [[tsig_key]] defines key {k}"),
                    ));
                }
            }
        }
    }

    // Instances.
    let mut ids = BTreeSet::new();
    for (i, inst) in cfg.instances.iter().enumerate() {
        check_instance(&c, i, inst)?;
        if !ids.insert(inst.id.clone()) {
            return Err(c.err(
                format!("instance[{i}].id"),
                format!("duplicate instance id {:?}", inst.id),
            ));
        }
    }

    check_files(&c, loaded)?;

    // Endpoints.
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for (i, e) in cfg.endpoints.iter().enumerate() {
        let all_keys: Vec<&crate::tsig::Key> = tsig_keys
            .iter()
            .map(|t| &t.key)
            .chain(update_keys.iter())
            .collect();
        let ep = build_endpoint(
            &c,
            i,
            e,
            &zones,
            &views,
            &ids,
            cfg.privatezone.is_some(),
            &all_keys,
        )?;
        if endpoints.iter().any(|o| o.name == ep.name) {
            return Err(c.err(
                format!("endpoint[{i}].name"),
                format!("duplicate endpoint {}", ep.name),
            ));
        }
        check_replication(&c, i, &ep, &cfg.instances)?;
        endpoints.push(ep);
    }
    check_probed_addresses(&c, &views, &endpoints)?;

    if let Some(a) = &cfg.alidns {
        for (k, v) in [
            ("endpoint", &a.endpoint),
            ("sts_endpoint", &a.sts_endpoint),
            ("metadata_endpoint", &a.metadata_endpoint),
        ] {
            if let Some(u) = v
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return Err(c.err(
                    format!("alidns.{k}"),
                    format!("{u:?} is not an http(s) URL"),
                ));
            }
        }
    }
    if let Some(p) = &cfg.privatezone {
        if p.region.trim().is_empty() {
            return Err(c.err(
                "privatezone.region",
                "empty region; write e.g. \"cn-hangzhou\"",
            ));
        }
        for (k, v) in [
            ("endpoint", &p.endpoint),
            ("sts_endpoint", &p.sts_endpoint),
            ("metadata_endpoint", &p.metadata_endpoint),
        ] {
            if let Some(u) = v
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return Err(c.err(
                    format!("privatezone.{k}"),
                    format!("{u:?} is not an http(s) URL"),
                ));
            }
        }
    }

    // Paths in the config are relative to the config file's directory.
    let mut server = cfg.server.clone();
    server.state_dir = loaded.resolve(&server.state_dir);
    server.admin_token_file = loaded.resolve(&server.admin_token_file);
    let mut instances = cfg.instances.clone();
    for (n, i) in instances.iter_mut().enumerate() {
        if let Some(ca) = &i.ca_file {
            i.ca_file = Some(loaded.resolve(ca));
        }
        if let Some(f) = &i.canary_credentials_file {
            let f = loaded.resolve(f);
            crate::config::instance::read_credentials_file(&f)
                .map_err(|e| c.err(format!("instance[{n}].canary_credentials_file"), e))?;
            i.canary_credentials_file = Some(f);
        }
    }

    let cluster = match &cfg.cluster {
        Some(cl) => {
            let mut cl = cl.clone();
            for p in [
                &mut cl.ca_file,
                &mut cl.cert_file,
                &mut cl.key_file,
                &mut cl.password_file,
            ]
            .into_iter()
            .flatten()
            {
                *p = loaded.resolve(p);
            }
            cl.validate().map_err(|e| c.err(e.key, e.msg))?;
            check_view_names(&c, "cluster.views", &cl.views, &views)?;
            Some(cl)
        }
        None => None,
    };
    if let Some(a) = &cfg.agent {
        if a.views.is_empty() {
            return Err(c.err(
                "agent.views",
                "an agent observes at least one view: name the views whose network it runs in, e.g. [\"vpc-bbbbb\"]",
            ));
        }
        check_view_names(&c, "agent.views", &a.views, &views)?;
    }

    Ok(Model {
        cluster,
        agent: cfg.agent.clone(),
        server,
        zones,
        views,
        instances,
        endpoints,
        privatezone: cfg.privatezone.clone(),
        config_path: loaded.path.clone(),
        tsig_keys,
        update_keys,
        alidns: cfg.alidns.clone(),
        rfc2136: cfg.rfc2136.clone(),
    })
}

/// `cluster.views` and `agent.views` name views that exist, each once.
fn check_view_names(
    c: &Checker<'_>,
    key: &str,
    names: &[String],
    views: &[View],
) -> Result<(), ModelError> {
    for (i, n) in names.iter().enumerate() {
        if !views.iter().any(|v| &v.name == n) {
            let all: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
            return Err(c.err(
                format!("{key}[{i}]"),
                format!("no view {n:?}; views are {}", all.join(", ")),
            ));
        }
        if names[..i].contains(n) {
            return Err(c.err(format!("{key}[{i}]"), format!("view {n:?} is listed twice")));
        }
    }
    Ok(())
}

/// In a view with `probe = "addresses"`, an instance is probed at one set of addresses:
/// every endpoint that answers the view with that instance's addresses must answer the
/// same ones (the probe result is the instance's health in the view, for all of them).
fn check_probed_addresses(
    c: &Checker<'_>,
    views: &[View],
    endpoints: &[Endpoint],
) -> Result<(), ModelError> {
    for (vi, v) in views.iter().enumerate() {
        if v.probe != crate::config::ViewProbe::Addresses {
            continue;
        }
        let mut seen: std::collections::BTreeMap<&str, (usize, &TargetAnswer)> = Default::default();
        for (ei, e) in endpoints.iter().enumerate() {
            for (ti, t) in e.targets[vi].iter().enumerate() {
                if !matches!(t.answer, TargetAnswer::Addrs { .. }) {
                    continue;
                }
                match seen.get(t.instance.as_str()) {
                    Some((first, answer)) if *answer != &t.answer => {
                        return Err(c.err(
                            format!("endpoint[{ei}].targets.{}[{ti}]", v.name),
                            format!(
                                "view {:?} has probe = \"addresses\": instance {:?} is probed at {} (endpoint {}), so every endpoint must answer it with the same addresses in this view, not {}",
                                v.name, t.instance, answer, endpoints[*first].name, t.answer
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        seen.insert(&t.instance, (ei, &t.answer));
                    }
                }
            }
        }
    }
    Ok(())
}
