//! `regdns check -c FILE`: validates everything and prints the resolved plan.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use crate::model::{self, DEFAULT_VIEW, Model};

pub(super) fn run(config: &Path) -> ExitCode {
    match model::load(config) {
        Ok(m) => {
            print!("{}", plan(&m));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(super::EXIT_CONFIG)
        }
    }
}

/// The human-readable plan of a model.
pub(crate) fn plan(m: &Model) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "config {}: OK", m.config_path.display());
    let _ = writeln!(s, "\nserver:");
    let listen: Vec<String> = m.server.listen.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(s, "  listen      {} (udp+tcp)", listen.join(", "));
    let _ = writeln!(s, "  admin       {}", m.server.admin);
    let _ = writeln!(s, "  state_dir   {}", m.server.state_dir.display());
    let _ = writeln!(s, "\nzones:");
    for z in &m.zones {
        let serial = z
            .records
            .iter()
            .find_map(|r| match &r.record.data {
                hickory_proto::rr::RData::SOA(soa) => Some(soa.serial),
                _ => None,
            })
            .unwrap_or(0);
        let _ = writeln!(
            s,
            "  {:<40} {} ({} records, serial {serial})",
            z.origin.to_string(),
            z.file.display(),
            z.records.len()
        );
        if z.is_rpz() {
            let _ = writeln!(
                s,
                "    RPZ: policy for resolvers that transfer it (response-policy / rpz:), not answered to ordinary queries"
            );
        }
    }
    let _ = writeln!(s, "\nviews (first match wins):");
    for v in &m.views {
        if v.name == DEFAULT_VIEW {
            let _ = writeln!(s, "  {:<16} every other client", v.name);
            continue;
        }
        let clients: Vec<String> = v.clients.iter().map(|n| n.to_string()).collect();
        let mut line = format!("  {:<16} clients {}", v.name, clients.join(", "));
        if !v.ecs_from.is_empty() {
            let ecs: Vec<String> = v.ecs_from.iter().map(|n| n.to_string()).collect();
            let _ = write!(line, "; ECS trusted from {}", ecs.join(", "));
        }
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(s, "\ninstances:");
    for i in &m.instances {
        let mut via = i
            .connect
            .as_deref()
            .map(|c| format!(" via {c}"))
            .unwrap_or_default();
        match &i.connect_hosts[..] {
            [] => {}
            [all] if all == "*" => via.push_str(" (and every other host the checks contact)"),
            hosts => {
                let _ = write!(via, " (and {} too)", hosts.join(", "));
            }
        }
        if let Some(r) = &i.resolver {
            let _ = write!(via, ", names resolved through {r}");
        }
        let _ = writeln!(
            s,
            "  {:<16} GET {}{via}, every {}, timeout {}, rise {}, fall {}{}",
            i.id,
            i.url,
            humantime::format_duration(i.interval),
            humantime::format_duration(i.timeout),
            i.rise,
            i.fall,
            if i.auth_check { ", auth check" } else { "" }
        );
        for x in &i.extra {
            let what = x
                .url
                .clone()
                .or_else(|| x.tcp.as_ref().map(|t| format!("tcp {t}")))
                .unwrap_or_default();
            let _ = writeln!(s, "  {:<16}   + {} {what}", "", x.name);
        }
        if !i.require_api_version {
            let _ = writeln!(
                s,
                "  {:<16}   (Docker-Distribution-API-Version not required)",
                ""
            );
        }
        if let Some(c) = &i.canary {
            let creds = match (&i.canary_credentials_file, &i.canary_credentials) {
                (Some(f), _) => format!("credentials from {}", f.display()),
                (None, Some(a)) => {
                    format!("temporary ACR login for {} ({})", a.acr_instance, a.region)
                }
                (None, None) => "anonymous".to_string(),
            };
            let mode = match (
                c.manifest,
                c.blob_every
                    .unwrap_or(crate::config::instance::DEFAULT_BLOB_EVERY),
            ) {
                (crate::config::instance::CanaryManifest::Get, 1) => String::new(),
                (m, n) => format!(
                    " (manifest by {}, {})",
                    match m {
                        crate::config::instance::CanaryManifest::Get => "GET",
                        crate::config::instance::CanaryManifest::Head => "HEAD",
                    },
                    match n {
                        0 => "no blob".to_string(),
                        1 => "a blob every run".to_string(),
                        n => format!("a blob every {n} runs"),
                    }
                ),
            };
            let _ = writeln!(
                s,
                "  {:<16}   + canary pull {}{mode} every {}, timeout {}, {creds}",
                "",
                crate::probe::canary::reference_display(&c.repository, &c.reference),
                humantime::format_duration(crate::model::canary_interval(i)),
                humantime::format_duration(
                    c.timeout
                        .unwrap_or(crate::config::instance::DEFAULT_CANARY_TIMEOUT)
                ),
            );
        }
    }
    let _ = writeln!(s, "\nendpoints:");
    for e in &m.endpoints {
        let trigger = e
            .rpz_trigger(m)
            .map(|t| format!(" (RPZ trigger: the policy for {t}, as written below)"));
        let apex = if e.zone.is_none() {
            " (published only: in no [[zone]], not served by regdns)"
        } else if let Some(t) = &trigger {
            t.as_str()
        } else if e.is_apex(m) {
            " (zone apex: CNAME targets are flattened)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  {} ttl {}, failback {:?}{}{apex}",
            e.name,
            e.ttl,
            e.failback,
            if e.failback == crate::config::FailbackMode::Auto {
                format!(" after {}", humantime::format_duration(e.failback_hold))
            } else {
                String::new()
            }
        );
        if let Some(lag) = e.replication_max_lag {
            let _ = writeln!(
                s,
                "    replication: a target whose canary digest is behind the primary's for more than {} is not eligible",
                humantime::format_duration(lag)
            );
        }
        for (vi, v) in m.views.iter().enumerate() {
            let _ = writeln!(s, "    view {}:", v.name);
            for (j, t) in e.targets[vi].iter().enumerate() {
                let answer = match &t.answer {
                    crate::model::TargetAnswer::Passthrough if trigger.is_some() => {
                        "CNAME rpz-passthru. (passthrough: the resolver's own answer)".to_string()
                    }
                    a => a.to_string(),
                };
                let _ = writeln!(s, "      {}. {:<14} {answer}", j + 1, t.instance);
            }
        }
        let passes = |view: &str| {
            m.view_index(view).is_some_and(|vi| {
                e.targets[vi]
                    .iter()
                    .any(|t| t.answer == crate::model::TargetAnswer::Passthrough)
            })
        };
        if e.zone.is_some() && m.views.iter().any(|v| passes(&v.name)) {
            let _ = writeln!(
                s,
                "    passthrough: answered with {}'s public addresses as server.upstream ({}) resolves them; SERVFAIL when it cannot. WARNING: that resolver must not forward this name to regdns (a loop is detected and answered SERVFAIL, never served)",
                e.name,
                crate::flatten::default_upstream(m.server.upstream)
            );
        }
        for p in &e.publish {
            if let crate::model::PublishTarget::PrivateZone { view, zone_id, rr } = p {
                let _ = writeln!(
                    s,
                    "    privatezone: view {view} -> zone {zone_id} record {rr}{}",
                    if passes(view) {
                        "; a passthrough target deletes the record (pass through to recursion) and recreates it on failback: only in a zone whose ProxyPattern is RECORD (read from DescribeZoneInfo before the first delete; refused otherwise)"
                    } else {
                        ""
                    }
                );
            }
        }
        for p in &e.publish {
            let line = match p {
                crate::model::PublishTarget::PrivateZone { .. } => continue,
                crate::model::PublishTarget::Alidns { view, domain, rr } => {
                    let mut l =
                        format!("alidns: view {view} -> domain {domain} RR {rr} (line default)");
                    if e.ttl < 600 {
                        l.push_str(&format!(
                            "; note: ttl {} needs a paid Alidns edition (free and personal editions accept 600-86400 s)",
                            e.ttl
                        ));
                    }
                    l
                }
                crate::model::PublishTarget::Rfc2136 {
                    view,
                    server,
                    zone,
                    rr,
                    key,
                    tcp,
                } => format!(
                    "rfc2136: view {view} -> {server} zone {zone} name {rr}, TSIG key {} ({}), {}",
                    key.name,
                    key.algorithm.name(),
                    if *tcp { "TCP" } else { "UDP, TCP fallback" }
                ),
            };
            let _ = writeln!(s, "    {line}");
        }
    }
    if let Some(p) = &m.privatezone {
        let _ = writeln!(
            s,
            "\nprivatezone: region {}, endpoint {}{}",
            p.region,
            p.endpoint
                .as_deref()
                .unwrap_or(crate::config::DEFAULT_PVTZ_ENDPOINT),
            if p.dry_run { ", dry run" } else { "" }
        );
    }
    let has = |alidns: bool| {
        m.endpoints
            .iter()
            .flat_map(|e| &e.publish)
            .any(|p| match p {
                crate::model::PublishTarget::Alidns { .. } => alidns,
                crate::model::PublishTarget::Rfc2136 { .. } => !alidns,
                crate::model::PublishTarget::PrivateZone { .. } => false,
            })
    };
    if has(true) {
        let a = m.alidns.clone().unwrap_or_default();
        let _ = writeln!(
            s,
            "
alidns: endpoint {}, drift check every {}{} (credentials: Alibaba Cloud chain; RAM actions alidns:Describe*, AddDomainRecord, UpdateDomainRecord, DeleteDomainRecord)",
            a.endpoint.as_deref().unwrap_or(crate::config::DEFAULT_ALIDNS_ENDPOINT),
            humantime::format_duration(a.drift()),
            if a.dry_run { ", dry run" } else { "" }
        );
    }
    if has(false) {
        let r = m.rfc2136.clone().unwrap_or_default();
        let _ = writeln!(
            s,
            "
rfc2136: drift check every {}{}",
            humantime::format_duration(r.drift()),
            if r.dry_run { ", dry run" } else { "" }
        );
    }
    health_per_view(&mut s, m);
    if let Some(c) = &m.cluster {
        let _ = writeln!(
            s,
            "\ncluster: node {}, etcd {}, prefix {}, lease_ttl {}, health_quorum {}{}{}",
            c.node_name(),
            c.etcd.join(" "),
            c.prefix,
            humantime::format_duration(c.lease_ttl),
            c.health_quorum,
            if c.cert_file.is_some() {
                ", client certificate"
            } else {
                ""
            },
            c.username
                .as_deref()
                .map(|u| format!(", user {u}"))
                .unwrap_or_default()
        );
    }
    s
}

/// Who judges each target in each view, and where it is dialled
/// (docs/health-checks.md#health-as-each-network-sees-it).
fn health_per_view(s: &mut String, m: &crate::model::Model) {
    let plan = crate::vantage::Plan::new(m);
    let node_views = m
        .cluster
        .as_ref()
        .map(|c| c.views.clone())
        .unwrap_or_default();
    let agent_views = m
        .agent
        .as_ref()
        .map(|a| a.views.clone())
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "\nhealth per view (what judges each target, who observes it):"
    );
    for v in &m.views {
        let Some(judged) = plan.judged_by.get(&v.name) else {
            continue;
        };
        let mut who = Vec::new();
        if node_views.contains(&v.name) {
            who.push("this node (cluster.views)".to_string());
        }
        if agent_views.contains(&v.name) {
            who.push("`regdns agent` with this file ([agent] views)".to_string());
        }
        let observers = if who.is_empty() {
            "the nodes and agents that declare it, else every observer".to_string()
        } else {
            format!(
                "{} and any other node or agent declaring it",
                who.join(", ")
            )
        };
        let _ = writeln!(
            s,
            "  {:<16} probe {}, quorum {}; observers: {observers}",
            v.name,
            v.probe,
            plan.quorum(&v.name)
        );
        for (instance, key) in judged {
            let Some(i) = m.instance(instance) else {
                continue;
            };
            let line = match plan.subjects.get(key) {
                Some(sub) if !sub.addresses.is_empty() => {
                    let host = url::Url::parse(&i.url).ok().and_then(|u| {
                        Some((u.host_str()?.to_string(), u.port_or_known_default()?))
                    });
                    let at: Vec<String> = sub
                        .addresses
                        .iter()
                        .map(|a| match &host {
                            Some((_, port)) => std::net::SocketAddr::new(*a, *port).to_string(),
                            None => a.to_string(),
                        })
                        .collect();
                    format!(
                        "the instance's checks at {} (URL {}, Host/SNI {}); every address must pass",
                        at.join(", "),
                        i.url,
                        host.map(|h| h.0).unwrap_or_default()
                    )
                }
                _ => "the instance's own checks".to_string(),
            };
            let _ = writeln!(s, "    {instance:<14} {line}");
        }
    }
    if let Some(a) = &m.agent {
        let _ = writeln!(
            s,
            "\nagent (regdns agent): views {}{}{}",
            a.views.join(", "),
            a.resolver
                .map(|r| format!(", propagation checked at resolver {r}"))
                .unwrap_or_default(),
            a.metrics
                .map(|r| format!(", /metrics on {r}"))
                .unwrap_or_default()
        );
    }
}
