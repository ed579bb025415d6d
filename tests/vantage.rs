//! Vantage points inside each network, for real: network namespaces stand for VPCs (root,
//! `ip netns`, veth pairs; all removed by the test), dummy interfaces on the host for the
//! two regions, real etcd, a real `regdns serve` node on the host and `regdns agent`
//! processes inside the namespaces. Cutting one namespace's route to a region (its "CEN
//! link") fails over only that network's view; quorum per view decides what one cut-off
//! agent among three can do.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use regdns::sim::SimRegistry;
use support::config::{Config, targets};
use support::etcd::Etcd;
use support::netns::Lab;
use support::proc::{self, Proc};
use support::regdns::{PRIMARY, PROBE, Regdns, SECONDARY, ZONE, answer};

const HOLD: Duration = Duration::from_secs(2);

/// Which namespace observes which view, and the views' quorum line.
struct Setup {
    tag: &'static str,
    base: u8,
    /// The view each namespace's agent declares.
    agents: &'static [&'static str],
    /// Extra lines of both VPC views (e.g. `health_quorum = "any"`).
    view_lines: &'static str,
}

struct World {
    lab: Lab,
    _etcd: Etcd,
    _registries: Vec<SimRegistry>,
    node: Regdns,
    agents: Vec<Proc>,
    dns: SocketAddr,
    _dirs: Vec<tempfile::TempDir>,
}

/// The config every process shares: views `vpc-a` (client 127.0.0.2) and `vpc-b`
/// (127.0.0.3) answered with the regions' addresses and probed at them, instances
/// hangzhou (region 0) and zhangjiakou (region 1), `[cluster]` on `etcd` as `node`.
fn config(
    dns: SocketAddr,
    regions: [(IpAddr, u16); 2],
    view_lines: &str,
    etcd: &str,
    node: &str,
) -> Config {
    let view = format!("probe = \"addresses\"\n{view_lines}");
    let addrs = |r: (IpAddr, u16)| format!("a = [\"{}\"]", r.0);
    Config::on(dns)
        .zone("registry.io.", "registry.io.zone")
        .view_with("vpc-a", &["127.0.0.2/32"], &view)
        .view_with("vpc-b", &["127.0.0.3/32"], &view)
        .instance(
            "hangzhou",
            &format!("url = \"http://{}:{}/v2/\"\n{PROBE}", regions[0].0, regions[0].1),
        )
        .instance(
            "zhangjiakou",
            &format!("url = \"http://{}:{}/v2/\"\n{PROBE}", regions[1].0, regions[1].1),
        )
        .endpoint(
            "cross-region.registry.io.",
            &format!(
                "ttl = 5\nfailback_hold = \"{}s\"\n\n{}",
                HOLD.as_secs(),
                targets(&[
                    (
                        "default",
                        &[
                            ("hangzhou", &format!("cname = \"{PRIMARY}\"")),
                            ("zhangjiakou", &format!("cname = \"{SECONDARY}\"")),
                        ],
                    ),
                    (
                        "vpc-a",
                        &[
                            ("hangzhou", &addrs(regions[0])),
                            ("zhangjiakou", &addrs(regions[1])),
                        ],
                    ),
                    (
                        "vpc-b",
                        &[
                            ("hangzhou", &addrs(regions[0])),
                            ("zhangjiakou", &addrs(regions[1])),
                        ],
                    ),
                ])
            ),
        )
        .raw(&format!(
            "[cluster]\netcd = [\"{etcd}\"]\nnode = \"{node}\"\nlease_ttl = \"2s\"\nrequest_timeout = \"1s\"\n"
        ))
}

async fn world(s: Setup) -> World {
    let mut lab = Lab::new(s.tag, s.base);
    let hz_ip = lab.region();
    let zjk_ip = lab.region();
    for _ in s.agents {
        lab.vpc();
    }
    let hosts: Vec<IpAddr> = lab.vpcs.iter().map(|v| IpAddr::V4(v.host)).collect();
    let etcd = Etcd::start_on(1, &hosts);
    let etcd_port = etcd.members[0].url.rsplit(':').next().unwrap().to_string();
    let hz = SimRegistry::start(SocketAddr::new(hz_ip, 0), false)
        .await
        .expect("registry in region 0");
    let zjk = SimRegistry::start(SocketAddr::new(zjk_ip, 0), false)
        .await
        .expect("registry in region 1");
    let regions = [(hz_ip, hz.addr.port()), (zjk_ip, zjk.addr.port())];
    let dns = SocketAddr::new([127, 0, 0, 1].into(), proc::free_port());
    let node = Regdns::launch(config(
        dns,
        regions,
        s.view_lines,
        &etcd.members[0].url,
        "node-1",
    ))
    .file("registry.io.zone", ZONE)
    .ready(move || answer(dns, "127.0.0.1").is_some())
    .start();
    let mut agents = Vec::new();
    let mut dirs = Vec::new();
    for (i, view) in s.agents.iter().enumerate() {
        let dir = proc::temp_dir("agent");
        let name = format!("agent-{i}");
        let text = config(
            dns,
            regions,
            s.view_lines,
            &format!("http://{}:{etcd_port}", lab.vpcs[i].host),
            &name,
        )
        .raw(&format!("[agent]\nviews = [\"{view}\"]\n"))
        .render();
        std::fs::write(dir.path().join("regdns.toml"), text).unwrap();
        std::fs::write(dir.path().join("registry.io.zone"), ZONE).unwrap();
        let mut cmd = lab.command(i, std::path::Path::new(env!("CARGO_BIN_EXE_regdns")));
        cmd.arg("agent")
            .arg("-c")
            .arg(dir.path().join("regdns.toml"))
            .env("RUST_LOG", "info");
        agents.push(Proc::spawn(&name, cmd, proc::temp_dir(&name)).expect("agent"));
        dirs.push(dir);
    }
    let w = World {
        lab,
        _etcd: etcd,
        _registries: vec![hz, zjk],
        node,
        agents,
        dns,
        _dirs: dirs,
    };
    let n = s.agents.len();
    w.node.wait_status(
        "every agent reporting and every view target up",
        Duration::from_secs(20),
        |st| {
            let agents_up = st["cluster"]["nodes"].as_array().is_some_and(|a| {
                a.iter()
                    .filter(|x| x["role"] == "agent" && x["instances"]["hangzhou"] == "up")
                    .count()
                    == n
            });
            agents_up
                && st["view_health"]
                    .as_array()
                    .is_some_and(|a| a.iter().all(|r| r["state"] == "up"))
        },
    );
    w
}

impl World {
    fn logs(&self) -> String {
        let mut s = self.node.proc.logs();
        for a in &self.agents {
            s.push_str(&a.logs());
        }
        s
    }

    /// Waits until `src`'s view answers `want`; at every step checks that each of `fixed`
    /// (source, answer) still holds.
    fn wait(&self, src: &str, want: &str, fixed: &[(&str, &str)], within: Duration) -> Duration {
        let t0 = Instant::now();
        loop {
            for (s, a) in fixed {
                let got = answer(self.dns, s);
                assert!(
                    got.as_deref().is_some_and(|g| g.contains(a)),
                    "{s}'s answer moved: {got:?}, want {a}\n{:#}\n{}",
                    self.node.status(),
                    self.logs()
                );
            }
            let got = answer(self.dns, src);
            if got.as_deref().is_some_and(|g| g.contains(want)) {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < within,
                "{src} answers {got:?}, not {want} after {within:?}\n{:#}\n{}",
                self.node.status(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn row<'a>(s: &'a serde_json::Value, view: &str, target: &str) -> &'a serde_json::Value {
    s["view_health"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["view"] == view && r["target"] == target)
        })
        .unwrap_or_else(|| panic!("no view_health row {view}/{target}: {s:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_fails_over_only_the_network_behind_it() {
    let w = world(Setup {
        tag: "cut",
        base: 10,
        agents: &["vpc-a", "vpc-b"],
        view_lines: "",
    })
    .await;
    let hz = w.lab.regions[0].addr.to_string();
    let zjk = w.lab.regions[1].addr.to_string();
    let s = w.node.status();
    let r = row(&s, "vpc-b", "hangzhou");
    assert_eq!(r["declared"], true, "{r:#}");
    assert_eq!(
        r["observers"]
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["agent-1".to_string()]),
        "only the agent inside vpc-b decides vpc-b: {r:#}"
    );
    assert_eq!(row(&s, "default", "hangzhou")["declared"], false);

    // The CEN link between vpc-b and region 0 fails.
    w.lab.cut(1, 0);
    let took = w.wait(
        "127.0.0.3",
        &zjk,
        &[("127.0.0.2", &hz), ("127.0.0.1", PRIMARY)],
        Duration::from_secs(15),
    );
    eprintln!("vpc-b failed over {took:?} after the cut");
    let s = w.node.status();
    let r = row(&s, "vpc-b", "hangzhou");
    assert_eq!(r["state"], "down", "{r:#}");
    assert_eq!(r["observers"]["agent-1"], "down", "{r:#}");
    assert_eq!(row(&s, "vpc-a", "hangzhou")["state"], "up");
    // The default view counts every observer: the node and agent-0 still see hangzhou up.
    assert_eq!(row(&s, "default", "hangzhou")["state"], "up");
    // Probes keep running while the path is cut: view a's answer never changed meanwhile.
    w.node.wait_probes(3, Duration::from_secs(10));
    assert!(answer(w.dns, "127.0.0.2").is_some_and(|a| a.contains(&hz)));

    // The link comes back: vpc-b fails back after the hold; vpc-a never moved.
    w.lab.restore(1, 0);
    let back = w.wait(
        "127.0.0.3",
        &hz,
        &[("127.0.0.2", &hz), ("127.0.0.1", PRIMARY)],
        Duration::from_secs(20),
    );
    assert!(back >= HOLD, "failback waited the {HOLD:?} hold ({back:?})");
}

/// Three agents in vpc-b, the first cut off from region 0.
async fn one_of_three_cut(view_lines: &'static str, tag: &'static str, base: u8) -> World {
    let w = world(Setup {
        tag,
        base,
        agents: &["vpc-b", "vpc-b", "vpc-b"],
        view_lines,
    })
    .await;
    w.lab.cut(0, 0);
    // The cut agent concluded hangzhou down (its own report in the status).
    w.node
        .wait_status("agent-0 sees hangzhou down", Duration::from_secs(15), |s| {
            s["view_health"].as_array().is_some_and(|a| {
                a.iter().any(|r| {
                    r["view"] == "vpc-b"
                        && r["target"] == "hangzhou"
                        && r["observers"]["agent-0"] == "down"
                })
            })
        });
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn majority_keeps_a_view_when_one_agent_of_three_is_cut_off() {
    let w = one_of_three_cut("health_quorum = \"majority\"", "maj", 40).await;
    let hz = w.lab.regions[0].addr.to_string();
    // Well after agent-0's conclusion: a few more probe rounds on the node.
    w.node.wait_probes(4, Duration::from_secs(10));
    let s = w.node.status();
    let r = row(&s, "vpc-b", "hangzhou");
    assert_eq!(r["state"], "up", "{r:#}");
    assert_eq!(r["quorum"], "majority");
    let got = answer(w.dns, "127.0.0.3");
    assert!(got.as_deref().is_some_and(|a| a.contains(&hz)), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_moves_a_view_when_one_agent_of_three_is_cut_off() {
    let w = one_of_three_cut("health_quorum = \"any\"", "any", 70).await;
    let zjk = w.lab.regions[1].addr.to_string();
    w.wait(
        "127.0.0.3",
        &zjk,
        &[("127.0.0.1", PRIMARY)],
        Duration::from_secs(10),
    );
    let s = w.node.status();
    assert_eq!(row(&s, "vpc-b", "hangzhou")["quorum"], "any");
    assert_eq!(row(&s, "vpc-b", "hangzhou")["state"], "down");
}
