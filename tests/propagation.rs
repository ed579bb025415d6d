//! "Did the network get the new answer?" on loopback, all real processes: etcd, a
//! `regdns serve` node, an unbound forwarding the zone to it (the network's resolver, its
//! cache warm with the old answer) and a `regdns agent` naming that unbound as its
//! `[agent] resolver`. After a forced switch the agent reports the time until unbound
//! answered the new target: in the node's status, the shared journal and its own metrics,
//! within the endpoint's TTL + 1 s.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use regdns::sim::SimRegistry;
use support::config::{Config, targets};
use support::dns::RecordType;
use support::etcd::Etcd;
use support::proc::{self, Proc};
use support::regdns::{PRIMARY, PROBE, Regdns, SECONDARY, ZONE, answer};
use support::unbound::Unbound;

const TTL: u64 = 3;
const ENDPOINT: &str = "cross-region.registry.io.";

fn config(dns: SocketAddr, hz: &SimRegistry, zjk: &SimRegistry, etcd: &str, node: &str) -> Config {
    Config::on(dns)
        .zone("registry.io.", "registry.io.zone")
        .instance(
            "hangzhou",
            &format!("url = \"http://{}/v2/\"\n{PROBE}", hz.addr),
        )
        .instance(
            "zhangjiakou",
            &format!("url = \"http://{}/v2/\"\n{PROBE}", zjk.addr),
        )
        .endpoint(
            ENDPOINT,
            &format!(
                "ttl = {TTL}\n\n{}",
                targets(&[(
                    "default",
                    &[
                        ("hangzhou", &format!("cname = \"{PRIMARY}\"")),
                        ("zhangjiakou", &format!("cname = \"{SECONDARY}\"")),
                    ],
                )])
            ),
        )
        .raw(&format!(
            "[cluster]\netcd = [\"{etcd}\"]\nnode = \"{node}\"\nlease_ttl = \"2s\"\n"
        ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_reports_how_long_its_resolver_took_to_follow_a_switch() {
    let etcd = Etcd::start_one();
    let url = etcd.members[0].url.clone();
    let hz = SimRegistry::start(([127, 0, 0, 1], 0).into(), false)
        .await
        .unwrap();
    let zjk = SimRegistry::start(([127, 0, 0, 1], 0).into(), false)
        .await
        .unwrap();
    let dns = SocketAddr::new([127, 0, 0, 1].into(), proc::free_port());
    let node = Regdns::launch(config(dns, &hz, &zjk, &url, "node-1"))
        .file("registry.io.zone", ZONE)
        .ready(move || answer(dns, "127.0.0.1").is_some())
        .start();
    let unbound = Unbound::builder()
        .forward_zone("registry.io.", &[dns])
        .start()
        .expect("unbound");

    let dir = proc::temp_dir("agent");
    let metrics = SocketAddr::new([127, 0, 0, 1].into(), proc::free_port());
    let text = config(dns, &hz, &zjk, &url, "agent-vpc")
        .raw(&format!(
            "[agent]\nviews = [\"default\"]\nresolver = \"{}\"\nmetrics = \"{metrics}\"\n",
            unbound.addr
        ))
        .render();
    std::fs::write(dir.path().join("regdns.toml"), text).unwrap();
    std::fs::write(dir.path().join("registry.io.zone"), ZONE).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_regdns"));
    cmd.arg("agent")
        .arg("-c")
        .arg(dir.path().join("regdns.toml"))
        .env("RUST_LOG", "info");
    let agent = Proc::spawn("agent", cmd, proc::temp_dir("agent-logs")).expect("agent");
    node.wait_status(
        "the agent concluded both instances up",
        Duration::from_secs(15),
        |s| {
            s["cluster"]["nodes"].as_array().is_some_and(|a| {
                a.iter().any(|n| {
                    n["node"] == "agent-vpc"
                        && n["role"] == "agent"
                        && n["instances"]["hangzhou"] == "up"
                        && n["instances"]["zhangjiakou"] == "up"
                })
            })
        },
    );
    // The network's resolver holds the old answer in its cache.
    let before = unbound.resolve(ENDPOINT, RecordType::CNAME);
    assert!(
        format!("{before:?}").contains(PRIMARY.trim_end_matches('.')),
        "{before:?}"
    );

    let body = serde_json::json!({"type": "force", "endpoint": ENDPOINT, "instance": "zhangjiakou",
        "reason": "propagation test", "actor": "tester"})
    .to_string();
    let (code, ov) = node.call("POST", "/overrides", Some(&body));
    assert_eq!(code, 201, "{ov:#}");

    let s = node.wait_status(
        "the agent's propagation report",
        Duration::from_secs(TTL + 15),
        |s| {
            s["cluster"]["propagation"]
                .as_array()
                .is_some_and(|a| a.iter().any(|p| p["to"] == "zhangjiakou"))
        },
    );
    let p = &s["cluster"]["propagation"][0];
    eprintln!("{p:#}");
    assert_eq!(p["agent"], "agent-vpc");
    assert_eq!(p["view"], "default");
    assert_eq!(p["endpoint"], ENDPOINT);
    assert_eq!(p["resolver"], unbound.addr.to_string());
    let secs = p["seconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("not seen: {p:#}\n{}", agent.logs()));
    // unbound keeps a record until the end of the second its TTL ends in (its clock has
    // whole seconds): at most TTL + 1 s after it cached the old answer, just before the
    // switch. The report's resolution is one poll (1 % of the TTL).
    let poll = regdns::daemon::propagation::poll(TTL as u32).as_secs_f64();
    assert!(
        secs <= (TTL + 1) as f64 + poll,
        "the resolver followed within TTL + 1 s (+ {poll} s resolution): {secs} s\n{p:#}"
    );
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains(SECONDARY.trim_end_matches('.'))),
        "{p:#}"
    );
    // The shared journal has it, from the agent.
    let (code, ev) = node.call("GET", "/events?since=10m", None);
    assert_eq!(code, 200);
    let text = ev.to_string();
    assert!(
        text.contains("\"propagation\"") && text.contains("agent-vpc"),
        "{ev:#}"
    );
    // And the agent's own histogram.
    let (code, body) = support::daemon::http(metrics, "GET", "/metrics", None, None).unwrap();
    assert_eq!(code, 200);
    assert!(
        body.contains("regdns_propagation_seconds_count{view=\"default\"} 1"),
        "{body}"
    );
    drop(agent);
}
