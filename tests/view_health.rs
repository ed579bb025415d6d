//! Health as each network sees it, on loopback with the real binary: a view with
//! `probe = "addresses"` is judged at the addresses it is answered (each instance's
//! "internal endpoint" is its own simulated registry on another loopback address, same
//! port as its public one). The internal endpoint refusing while the public one answers
//! moves only that view; the default view never moves; the view comes back after the
//! address recovers and the hold.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use regdns::sim::{Mode, SimRegistry};
use regdns::state::journal;
use support::config::{Config, targets};
use support::regdns::{PRIMARY, PROBE, Regdns, SECONDARY, ZONE, answer};

const HOLD: Duration = Duration::from_secs(2);

struct World {
    hz_internal: SimRegistry,
    _others: Vec<SimRegistry>,
    regdns: Regdns,
    dns: SocketAddr,
}

/// hangzhou public on 127.0.0.1:P and internal on 127.0.0.5:P; zhangjiakou public on
/// 127.0.0.1:Q and internal on 127.0.0.6:Q. View `vpc` (client 127.0.0.2) is answered
/// with the internal addresses and probed at them.
/// The four simulated registries: hangzhou public on 127.0.0.1:P and internal on
/// 127.0.0.5:P, zhangjiakou public on 127.0.0.1:Q and internal on 127.0.0.6:Q.
async fn registries() -> [SimRegistry; 4] {
    let sim = |ip: [u8; 4], port: u16| async move {
        SimRegistry::start(SocketAddr::from((ip, port)), false)
            .await
            .expect("simulated registry")
    };
    let hz = sim([127, 0, 0, 1], 0).await;
    let hz_internal = sim([127, 0, 0, 5], hz.addr.port()).await;
    let zjk = sim([127, 0, 0, 1], 0).await;
    let zjk_internal = sim([127, 0, 0, 6], zjk.addr.port()).await;
    [hz, hz_internal, zjk, zjk_internal]
}

/// View `vpc` (client 127.0.0.2) answered with the internal addresses and probed at them;
/// the default view with CNAMEs; `hold` the failback hold.
fn config(dns: SocketAddr, hz: &SimRegistry, zjk: &SimRegistry, hold: Duration) -> Config {
    Config::on(dns)
        .zone("registry.io.", "registry.io.zone")
        .view_with("vpc", &["127.0.0.2/32"], "probe = \"addresses\"")
        .instance(
            "hangzhou",
            &format!("url = \"http://{}/v2/\"\n{PROBE}", hz.addr),
        )
        .instance(
            "zhangjiakou",
            &format!("url = \"http://{}/v2/\"\n{PROBE}", zjk.addr),
        )
        .endpoint(
            "cross-region.registry.io.",
            &format!(
                "ttl = 5\nfailback_hold = \"{}ms\"\n\n{}",
                hold.as_millis(),
                targets(&[
                    (
                        "default",
                        &[
                            ("hangzhou", &format!("cname = \"{PRIMARY}\"")),
                            ("zhangjiakou", &format!("cname = \"{SECONDARY}\"")),
                        ],
                    ),
                    (
                        "vpc",
                        &[
                            ("hangzhou", "a = [\"127.0.0.5\"]"),
                            ("zhangjiakou", "a = [\"127.0.0.6\"]"),
                        ],
                    ),
                ])
            ),
        )
}

async fn world() -> World {
    let [hz, hz_internal, zjk, zjk_internal] = registries().await;
    let dns = SocketAddr::new([127, 0, 0, 1].into(), support::proc::free_port());
    let config = config(dns, &hz, &zjk, HOLD);
    let regdns = Regdns::launch(config)
        .file("registry.io.zone", ZONE)
        .ready(move || answer(dns, "127.0.0.1").is_some())
        .start();
    World {
        hz_internal,
        _others: vec![hz, zjk, zjk_internal],
        regdns,
        dns,
    }
}

fn row<'a>(s: &'a serde_json::Value, view: &str, target: &str) -> &'a serde_json::Value {
    s["view_health"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["view"] == view && r["target"] == target)
        })
        .unwrap_or_else(|| panic!("no view_health row for {view}/{target}: {s:#}"))
}

/// Waits until the vpc view answers `want`, checking at every step that the default view
/// still answers the primary.
fn wait_vpc(w: &World, want: &str, within: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let default = answer(w.dns, "127.0.0.1");
        assert!(
            default.as_deref().is_some_and(|a| a.contains(PRIMARY)),
            "the default view moved: {default:?}\n{}",
            w.regdns.proc.logs()
        );
        let vpc = answer(w.dns, "127.0.0.2");
        if vpc.as_deref() == Some(want) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < within,
            "vpc answers {vpc:?}, not {want:?} after {within:?}: {:#}",
            w.regdns.status()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_endpoint_that_refuses_moves_only_its_view() {
    let w = world().await;
    let s = w
        .regdns
        .wait_status("every view target up", Duration::from_secs(10), |s| {
            s["view_health"]
                .as_array()
                .is_some_and(|a| a.len() == 4 && a.iter().all(|r| r["state"] == "up"))
        });
    let hz_vpc = row(&s, "vpc", "hangzhou");
    assert_eq!(hz_vpc["checked"], "addresses 127.0.0.5", "{hz_vpc:#}");
    assert_eq!(hz_vpc["checks"][0]["check"], "v2@127.0.0.5", "{hz_vpc:#}");
    assert_eq!(row(&s, "default", "hangzhou")["checked"], "instance");
    wait_vpc(&w, "A 127.0.0.5", Duration::from_secs(5));

    // The internal endpoint refuses; the public one (the instance's URL) still answers.
    w.hz_internal.set(Mode::Refuse);
    let took = wait_vpc(&w, "A 127.0.0.6", Duration::from_secs(10));
    eprintln!("vpc view failed over after {took:?}");
    let s = w.regdns.status();
    let hz_vpc = row(&s, "vpc", "hangzhou");
    assert_eq!(hz_vpc["state"], "down", "{hz_vpc:#}");
    assert!(
        hz_vpc["reason"]
            .as_str()
            .is_some_and(|r| r.contains("127.0.0.5") && r.contains("refused")),
        "{hz_vpc:#}"
    );
    assert_eq!(row(&s, "default", "hangzhou")["state"], "up");
    let hz = s["instances"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["id"] == "hangzhou"))
        .unwrap();
    assert_eq!(hz["state"], "up", "the instance itself stays up: {hz:#}");
    let (_, metrics) = w.regdns.call("GET", "/metrics", None);
    let text = metrics.as_str().map(str::to_string).unwrap_or_default();
    assert!(
        text.contains("regdns_view_target_up{view=\"vpc\",target=\"hangzhou\"} 0")
            && text.contains("regdns_view_target_up{view=\"default\",target=\"hangzhou\"} 1"),
        "{text}"
    );
    let journal = journal::read_since(&w.regdns.state_dir(), 0, 3);
    assert!(
        journal.iter().any(|e| e.kind == "health"
            && e.instance.as_deref() == Some("hangzhou")
            && e.view.as_deref() == Some("vpc")
            && e.to.as_deref() == Some("down")),
        "the view's health transition is journaled with its view: {journal:#?}"
    );
    let sw: Vec<_> = journal.iter().filter(|e| e.kind == "switch").collect();
    assert!(
        sw.iter()
            .all(|e| e.view.as_deref() == Some("vpc") || e.from.is_none()),
        "only the vpc view switched: {sw:#?}"
    );

    // Back: the view returns after the address recovers and the hold.
    w.hz_internal.set(Mode::Healthy);
    let back = wait_vpc(&w, "A 127.0.0.5", Duration::from_secs(15));
    assert!(back >= HOLD, "failback waited the {HOLD:?} hold ({back:?})");
}

/// An agent keeps probing through an etcd outage and keeps its latest conclusion (not a
/// history): the down it concluded while etcd was paused (and its lease lapsed) is what the
/// node reads from etcd once it is back, with no new transition on the agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reports_what_it_concluded_during_an_etcd_outage() {
    let mut etcd = support::etcd::Etcd::start_one();
    let url = etcd.members[0].url.clone();
    let [hz, hz_internal, zjk, zjk_internal] = registries().await;
    let dns = SocketAddr::new([127, 0, 0, 1].into(), support::proc::free_port());
    let config = |node: &str| {
        config(dns, &hz, &zjk, Duration::ZERO).raw(&format!(
            "[cluster]\netcd = [\"{url}\"]\nnode = \"{node}\"\nlease_ttl = \"2s\"\nrequest_timeout = \"1s\"\n"
        ))
    };
    let node = Regdns::launch(config("node-1"))
        .file("registry.io.zone", ZONE)
        .ready(move || answer(dns, "127.0.0.1").is_some())
        .start();
    let dir = support::proc::temp_dir("agent");
    let text = config("agent-1")
        .raw("[agent]\nviews = [\"vpc\"]\n")
        .render();
    std::fs::write(dir.path().join("regdns.toml"), text).unwrap();
    std::fs::write(dir.path().join("registry.io.zone"), ZONE).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_regdns"));
    cmd.arg("agent")
        .arg("-c")
        .arg(dir.path().join("regdns.toml"))
        .env("RUST_LOG", "info");
    let mut agent =
        support::proc::Proc::spawn("agent", cmd, support::proc::temp_dir("agent-logs")).unwrap();
    let observed = |s: &serde_json::Value, want: &str| {
        s["view_health"].as_array().is_some_and(|a| {
            a.iter().any(|r| {
                r["view"] == "vpc" && r["target"] == "hangzhou" && r["observers"]["agent-1"] == want
            })
        })
    };
    node.wait_status(
        "agent-1 decides vpc, hangzhou up",
        Duration::from_secs(15),
        |s| observed(s, "up"),
    );

    etcd.pause();
    hz_internal.set(Mode::Refuse);
    // The agent concludes down while etcd is away (its own log), and its lease lapses.
    let t0 = Instant::now();
    while !agent.logs().contains("up=false") {
        assert!(
            agent.is_running() && t0.elapsed() < Duration::from_secs(10),
            "the agent did not conclude down while etcd was paused: {}",
            agent.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3));
    etcd.resume();
    node.wait_status(
        "agent-1's down, concluded during the outage",
        Duration::from_secs(20),
        |s| observed(s, "down"),
    );
    let logs = agent.logs();
    assert_eq!(
        logs.matches("up=false").count(),
        1,
        "one transition, reported once etcd was back: {logs}"
    );
    drop((hz, zjk, zjk_internal, agent));
}
