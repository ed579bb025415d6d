//! `regdns status [--json]`: instances, endpoint decisions, overrides, serials and
//! publishers (and the cluster), as tables or JSON. Exits 5 when any endpoint or the
//! cluster is degraded.

use std::process::ExitCode;

use super::client::Client;
use super::{ApiArgs, EXIT_DEGRADED, ago, describe_override, print_json, table};
use crate::control::Status;

/// Flags of `regdns status`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// Print the status as JSON (the admin API's `GET /status`).
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(client: Client, args: Args) -> anyhow::Result<ExitCode> {
    let s = client.status().await?;
    if args.json {
        print_json(&s)?;
    } else {
        print!("{}", render(&s));
    }
    let degraded = s.endpoints.iter().any(|e| e.degraded);
    if degraded && !args.json {
        eprintln!(
            "warning: at least one endpoint is degraded (no target up; serving the last answer)"
        );
    }
    let cluster_degraded = s.cluster.as_ref().is_some_and(|c| c.state != "ok");
    if cluster_degraded && !args.json {
        eprintln!(
            "warning: cluster degraded (etcd unreachable): this node decides on its own observations, overrides are refused, publishers are paused"
        );
    }
    let degraded = degraded || cluster_degraded;
    Ok(if degraded {
        ExitCode::from(EXIT_DEGRADED)
    } else {
        ExitCode::SUCCESS
    })
}

fn or_dash(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or("-").to_string()
}

/// The text form of `regdns status`.
pub(crate) fn render(s: &Status) -> String {
    let mut out = format!(
        "regdns {}, started {}, snapshot generation {}\n\n",
        s.version,
        ago(s.started_ms),
        s.generation
    );
    out.push_str("INSTANCES\n");
    let rows: Vec<Vec<String>> = s
        .instances
        .iter()
        .map(|i| {
            let last = i
                .checks
                .iter()
                .map(|c| {
                    format!(
                        "{}: {}{}",
                        c.check,
                        c.detail,
                        if c.ok { "" } else { " (FAIL)" }
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let latency = i
                .checks
                .iter()
                .map(|c| format!("{:.1}ms", c.latency_ms))
                .collect::<Vec<_>>()
                .join("/");
            let mut state = i.state.clone();
            if i.drained {
                state.push_str(" (drained)");
            }
            vec![
                i.id.clone(),
                state,
                i.since_ms.map(ago).unwrap_or_else(|| "-".into()),
                or_dash(Some(&last)),
                or_dash(Some(&latency)),
            ]
        })
        .collect();
    out.push_str(&table(
        &["ID", "STATE", "SINCE", "LAST CHECK", "LATENCY"],
        &rows,
    ));
    if s.instances.iter().any(|i| i.canary_digest.is_some()) {
        out.push_str("\nREPLICATION (canary digests)\n");
        let rows: Vec<Vec<String>> = s
            .instances
            .iter()
            .filter(|i| i.canary_digest.is_some())
            .map(|i| {
                vec![
                    i.id.clone(),
                    i.canary_digest
                        .as_deref()
                        .map(crate::probe::canary::short_digest)
                        .unwrap_or_default(),
                    i.canary_digest_since_ms
                        .map(ago)
                        .unwrap_or_else(|| "-".into()),
                    or_dash(i.replication_reference.as_deref()),
                    match (i.replication_lag_ms, &i.replication_reference) {
                        (_, Some(r)) if r == &i.id => "reference".to_string(),
                        (Some(0), _) => "in sync".to_string(),
                        (Some(l), _) => crate::decide::format_duration(l / 1000 * 1000),
                        (None, _) => "-".to_string(),
                    },
                    if i.replication_behind {
                        "BEHIND (not eligible)".to_string()
                    } else {
                        "no".to_string()
                    },
                ]
            })
            .collect();
        out.push_str(&table(
            &["ID", "DIGEST", "SEEN SINCE", "REFERENCE", "LAG", "BEHIND"],
            &rows,
        ));
    }
    if s.instances.iter().any(|i| !i.resolved.is_empty()) {
        out.push_str("\nRESOLVED (through each instance's resolver)\n");
        out.push_str(&resolved_table(s));
    }
    out.push_str("\nENDPOINTS\n");
    let rows: Vec<Vec<String>> = s
        .endpoints
        .iter()
        .map(|e| {
            vec![
                e.endpoint.clone(),
                e.view.clone(),
                e.active.clone(),
                e.answer.clone(),
                if e.degraded { "DEGRADED" } else { "no" }.to_string(),
                or_dash(e.forced_by.as_deref()),
                or_dash(e.failback_pending.as_deref()),
                e.reason.clone(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "ENDPOINT",
            "VIEW",
            "ACTIVE",
            "ANSWER",
            "DEGRADED",
            "FORCED BY",
            "FAILBACK PENDING",
            "REASON",
        ],
        &rows,
    ));
    out.push_str("\nOVERRIDES\n");
    if s.overrides.is_empty() {
        out.push_str("none\n");
    }
    for o in &s.overrides {
        out.push_str(&describe_override(o));
        out.push('\n');
    }
    out.push_str("\nSERIALS\n");
    let rows: Vec<Vec<String>> = s
        .zones
        .iter()
        .map(|z| vec![z.zone.clone(), z.view.clone(), z.serial.to_string()])
        .collect();
    out.push_str(&table(&["ZONE", "VIEW", "SERIAL"], &rows));
    out.push_str("\nPUBLISHERS\n");
    let rows: Vec<Vec<String>> = s
        .publishers
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.state.clone(),
                p.failures.to_string(),
                p.last_ok_ms.map(ago).unwrap_or_else(|| "-".into()),
                p.detail.clone(),
            ]
        })
        .collect();
    out.push_str(&table(
        &["NAME", "STATE", "FAILURES", "LAST OK", "DETAIL"],
        &rows,
    ));
    // Per-view health, where a view is judged otherwise than the instances are: at its
    // addresses, or by observers that declare it.
    let special: Vec<&crate::control::ViewTargetStatus> = s
        .view_health
        .iter()
        .filter(|t| t.declared || t.checked != "instance")
        .collect();
    if !special.is_empty() {
        out.push_str("\nHEALTH PER VIEW\n");
        let rows: Vec<Vec<String>> = special
            .iter()
            .map(|t| {
                let observers = t
                    .observers
                    .iter()
                    .map(|(o, h)| format!("{o}: {h}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                vec![
                    t.view.clone(),
                    t.target.clone(),
                    t.state.clone(),
                    t.checked.clone(),
                    format!(
                        "{} of {}{}",
                        t.quorum,
                        if t.declared { "declared" } else { "all" },
                        if observers.is_empty() {
                            String::new()
                        } else {
                            format!(" ({observers})")
                        }
                    ),
                    or_dash(t.reason.as_deref()),
                ]
            })
            .collect();
        out.push_str(&table(
            &["VIEW", "TARGET", "STATE", "CHECKED", "OBSERVERS", "REASON"],
            &rows,
        ));
    }
    if let Some(c) = &s.cluster {
        out.push_str(&format!(
            "\nCLUSTER: {} (node {}, leader {}, health_quorum {}){}\n",
            c.state,
            c.node,
            c.leader.as_deref().unwrap_or("none"),
            c.health_quorum,
            c.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
        let instances: Vec<String> = s.instances.iter().map(|i| i.id.clone()).collect();
        let mut header = vec!["NODE".to_string()];
        header.extend(instances.iter().cloned());
        let rows: Vec<Vec<String>> = c
            .nodes
            .iter()
            .map(|n| {
                let mut row = vec![if Some(&n.node) == c.leader.as_ref() {
                    format!("{} (leader)", n.node)
                } else if n.role == "agent" {
                    format!("{} (agent: {})", n.node, n.views.join(", "))
                } else {
                    n.node.clone()
                }];
                row.extend(
                    instances
                        .iter()
                        .map(|i| n.instances.get(i).cloned().unwrap_or_else(|| "-".into())),
                );
                row
            })
            .collect();
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        out.push_str(&table(&header, &rows));
        if !c.propagation.is_empty() {
            out.push_str("\nPROPAGATION (agents' network resolvers)\n");
            let rows: Vec<Vec<String>> = c
                .propagation
                .iter()
                .map(|p| {
                    vec![
                        p.agent.clone(),
                        p.view.clone(),
                        format!("{} -> {}", p.endpoint, p.to),
                        p.seconds
                            .map(|x| format!("{x:.1}s (TTL {}s)", p.ttl))
                            .unwrap_or_else(|| "not seen".into()),
                        ago(p.switched_ms),
                    ]
                })
                .collect();
            out.push_str(&table(
                &["AGENT", "VIEW", "SWITCH", "SEEN AFTER", "WHEN"],
                &rows,
            ));
        }
    }
    out
}

/// One row per name an instance's checks resolved through its `resolver`: instance, resolver,
/// name, addresses.
fn resolved_table(s: &Status) -> String {
    let rows: Vec<Vec<String>> = s
        .instances
        .iter()
        .flat_map(|i| {
            i.resolved.iter().map(move |n| {
                vec![
                    i.id.clone(),
                    n.resolver.to_string(),
                    n.name.clone(),
                    n.addresses
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
        })
        .collect();
    table(&["ID", "RESOLVER", "NAME", "ADDRESSES"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{InstanceStatus, ResolvedStatus};

    #[test]
    fn resolved_names_are_listed_per_instance() {
        let mut s: Status = serde_json::from_value(serde_json::json!({
            "version": "0", "started_ms": 0, "generation": 1,
            "instances": [], "endpoints": [], "overrides": [], "zones": [], "publishers": []
        }))
        .unwrap();
        let inst = |id: &str, resolved: Vec<ResolvedStatus>| InstanceStatus {
            id: id.into(),
            state: "up".into(),
            since_ms: None,
            reason: None,
            drained: false,
            last_probe_ms: None,
            checks: Vec::new(),
            canary_digest: None,
            canary_digest_since_ms: None,
            replication_reference: None,
            replication_lag_ms: None,
            replication_behind: false,
            resolved,
        };
        s.instances = vec![inst("plain", Vec::new())];
        assert!(!render(&s).contains("RESOLVED"));
        s.instances.push(inst(
            "hub-ga",
            vec![
                ResolvedStatus {
                    name: "auth.docker.io".into(),
                    addresses: vec!["10.0.0.7".parse().unwrap()],
                    resolver: "223.5.5.5:53".parse().unwrap(),
                },
                ResolvedStatus {
                    name: "registry-1.docker.io".into(),
                    addresses: vec!["10.0.0.7".parse().unwrap(), "fd00::7".parse().unwrap()],
                    resolver: "223.5.5.5:53".parse().unwrap(),
                },
            ],
        ));
        let out = render(&s);
        let section = out
            .split("RESOLVED (through each instance's resolver)\n")
            .nth(1)
            .expect("a RESOLVED section")
            .split("\n\n")
            .next()
            .unwrap();
        let lines: Vec<Vec<&str>> = section
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines,
            [
                vec!["ID", "RESOLVER", "NAME", "ADDRESSES"],
                vec!["hub-ga", "223.5.5.5:53", "auth.docker.io", "10.0.0.7"],
                vec![
                    "hub-ga",
                    "223.5.5.5:53",
                    "registry-1.docker.io",
                    "10.0.0.7,",
                    "fd00::7"
                ],
            ],
            "{out}"
        );
    }
}
