//! Cluster mode (issue 17, docs/design.md#10-scale-and-high-availability) end to end: real etcd on loopback (one member, and a
//! three-member cluster), two or three real `regdns serve` processes, simulated registries,
//! and the strict PrivateZone fake (one AccessKey per node, so its request log says which
//! node wrote). lease_ttl is 2 s to keep the file short.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::Value;

use support::config::{Config, targets};
use support::daemon::{FakeRegistry, http};
use support::dns;
use support::etcd::Etcd;
use support::fake_pvtz::FakeCloud;
use support::proc::{self, Proc};
use support::regdns::{Launch, Regdns};

const ENDPOINT: &str = "cross-region.registry.test.";
const HZ: &str = "a-registry.hangzhou.test.";
const ZJK: &str = "b-registry.zhangjiakou.test.";
const ZONE_ID: &str = "zone-pub0001";
const LEASE_TTL: Duration = Duration::from_secs(2);
const ZONE: &str = "$ORIGIN registry.test.\n$TTL 300\n\
@ IN SOA ns1.registry.test. hostmaster.registry.test. 2024010101 3600 600 86400 60\n\
@ IN NS ns1.registry.test.\nns1 IN A 127.0.0.1\n";

/// How a node reaches the two registries (its `connect` overrides), its quorum and
/// whether it has a PrivateZone binding.
struct NodeSpec {
    name: String,
    hz_connect: u16,
    zjk_connect: u16,
    quorum: &'static str,
    pvtz: Option<String>,
    /// Extra `[cluster]` lines (TLS, auth).
    cluster_extra: String,
}

struct Node {
    name: String,
    /// Config and state (kept across [`Node::kill9`] and [`Node::start`]).
    dir: PathBuf,
    dns: SocketAddr,
    admin: SocketAddr,
    run: Run,
}

/// A node's process: running, or killed and ready to start again on the same directory.
enum Run {
    Running(Regdns),
    Stopped(Launch),
    Gone,
}

fn config(spec: &NodeSpec, etcd: &Etcd) -> Config {
    let pvtz = match &spec.pvtz {
        Some(endpoint) => format!(
            "[[endpoint.privatezone]]\nview = \"default\"\nzone_id = \"{ZONE_ID}\"\nrr = \"cross-region\"\n\n\
             [privatezone]\nregion = \"cn-hangzhou\"\nendpoint = \"{endpoint}\"\ndrift_interval = \"1h\"\n\n"
        ),
        None => String::new(),
    };
    let instance = |host: &str, port: u16| {
        format!(
            "url = \"http://{host}.registry.test:{port}/v2/\"\nconnect = \"127.0.0.1:{port}\"\n\
             interval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n"
        )
    };
    Config::new()
        .server("status_public", "true")
        .zone("registry.test.", "registry.test.zone")
        .instance("hangzhou", &instance("hz", spec.hz_connect))
        .instance("zhangjiakou", &instance("zjk", spec.zjk_connect))
        .endpoint(
            ENDPOINT,
            &format!(
                "ttl = 30\nfailback = \"auto\"\nfailback_hold = \"0s\"\n\n{}\n{pvtz}",
                targets(&[(
                    "default",
                    &[
                        ("hangzhou", &format!("cname = \"{HZ}\"")),
                        ("zhangjiakou", &format!("cname = \"{ZJK}\"")),
                    ]
                )])
            ),
        )
        .raw(&format!(
            "[cluster]\netcd = [{endpoints}]\nprefix = \"/regdns/test\"\nnode = \"{name}\"\n\
             lease_ttl = \"{ttl}s\"\nhealth_quorum = \"{quorum}\"\nrequest_timeout = \"500ms\"\n{extra}\n",
            extra = spec.cluster_extra,
            endpoints = etcd.endpoints_toml(),
            name = spec.name,
            ttl = LEASE_TTL.as_secs(),
            quorum = spec.quorum,
        ))
}

impl Node {
    /// Starts a node; on a port taken meanwhile by another test (free ports are only free
    /// when picked) it tries again on new ports.
    fn new(spec: &NodeSpec, etcd: &Etcd) -> Node {
        let mut last = String::new();
        for _ in 0..3 {
            let launch = Regdns::launch(config(spec, etcd))
                .file("registry.test.zone", ZONE)
                .name(&spec.name)
                // One AccessKey per node: the fake's log says who wrote.
                .cloud_key(&key_of(&spec.name), "cluster-secret")
                .env("RUST_LOG", "info,regdns::cluster=debug");
            match launch.try_start() {
                Ok(r) => {
                    return Node {
                        name: spec.name.clone(),
                        dir: r.dir.path().to_path_buf(),
                        dns: r.dns,
                        admin: r.admin,
                        run: Run::Running(r),
                    };
                }
                Err(e) if e.to_string().contains("already in use") => last = e.to_string(),
                Err(e) => panic!("{} did not start: {e}", spec.name),
            }
        }
        panic!("{} did not start: {last}", spec.name)
    }

    /// Starts the node again after [`Node::kill9`] (same directory, config and ports).
    fn start(&mut self) {
        let Run::Stopped(launch) = std::mem::replace(&mut self.run, Run::Gone) else {
            panic!("{} is running", self.name)
        };
        match launch.try_start() {
            Ok(r) => self.run = Run::Running(r),
            Err(e) => panic!("{} did not start: {e}", self.name),
        }
    }

    /// The process while the node runs.
    fn proc(&mut self) -> Option<&mut Proc> {
        match &mut self.run {
            Run::Running(r) => Some(&mut r.proc),
            _ => None,
        }
    }

    /// Waits until this node has concluded `n` more probes of every instance.
    fn wait_probes(&self, n: usize) {
        match &self.run {
            Run::Running(r) => r.wait_probes(n, Duration::from_secs(10)),
            _ => panic!("{} is not running", self.name),
        }
    }

    fn kill9(&mut self) {
        if let Run::Running(r) = std::mem::replace(&mut self.run, Run::Gone) {
            self.run = Run::Stopped(r.kill());
        }
    }

    fn logs(&self) -> String {
        match &self.run {
            Run::Running(r) => r.proc.logs(),
            _ => String::new(),
        }
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.dir.join("admin.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let (code, text) = http(self.admin, method, path, Some(&self.token()), body)
            .unwrap_or_else(|e| panic!("{} {method} {path}: {e}\n{}", self.name, self.logs()));
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn status(&self) -> Value {
        self.call("GET", "/status", None).1
    }

    fn answer(&self) -> Vec<String> {
        match dns::Query::new(ENDPOINT, RecordType::A).udp(self.dns) {
            Ok(m) => dns::answer_rdata(&m),
            Err(e) => vec![format!("error: {e}")],
        }
    }

    fn serial(&self) -> Option<u32> {
        let m = dns::Query::new("registry.test.", RecordType::SOA)
            .udp(self.dns)
            .ok()?;
        m.answers.iter().find_map(|r| match &r.data {
            hickory_proto::rr::RData::SOA(s) => Some(s.serial),
            _ => None,
        })
    }

    fn wait_answer(&self, want: &str, within: Duration) -> Duration {
        let t0 = Instant::now();
        loop {
            let got = self.answer();
            if got.iter().any(|a| a == want) {
                return t0.elapsed();
            }
            if t0.elapsed() > within {
                panic!(
                    "{}: answer {got:?}, wanted {want} within {within:?}\n{}",
                    self.name,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_status(&self, what: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let t0 = Instant::now();
        loop {
            let s = self.status();
            if pred(&s) {
                return s;
            }
            if t0.elapsed() > within {
                panic!(
                    "{}: status never showed {what}: {s:#}\n{}",
                    self.name,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until this node sees `n` live nodes and a leader, with etcd reachable.
    fn wait_cluster(&self, n: usize) -> Value {
        self.wait_status(
            &format!("{n} nodes and a leader"),
            Duration::from_secs(15),
            |s| {
                let c = &s["cluster"];
                c["state"] == "ok"
                    && c["leader"].is_string()
                    && c["nodes"].as_array().is_some_and(|v| v.len() == n)
                    && s["instances"]
                        .as_array()
                        .is_some_and(|v| v.iter().all(|i| i["state"] != "unknown"))
            },
        )
    }
}

fn key_of(node: &str) -> String {
    format!("LTAI5tCluster{node}")
}

fn spec(name: &str, hz: u16, zjk: u16, quorum: &'static str) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        hz_connect: hz,
        zjk_connect: zjk,
        quorum,
        pvtz: None,
        cluster_extra: String::new(),
    }
}

fn force(to: &str) -> String {
    serde_json::json!({"type": "force", "endpoint": ENDPOINT, "instance": to,
        "reason": "cluster test", "actor": "tester"})
    .to_string()
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    proc::free_port()
}

//------------ Overrides ---------------------------------------------------------------------

fn overrides_are_shared(etcd: Etcd) {
    let (hz, zjk) = (FakeRegistry::start(), FakeRegistry::start());
    let mut a = Node::new(&spec("a", hz.port, zjk.port, "majority"), &etcd);
    let b = Node::new(&spec("b", hz.port, zjk.port, "majority"), &etcd);
    a.wait_cluster(2);
    b.wait_cluster(2);
    a.wait_answer(HZ, Duration::from_secs(5));
    b.wait_answer(HZ, Duration::from_secs(5));

    // Through A; served by B within 1 s of A's acknowledgement.
    let (code, ov) = a.call("POST", "/overrides", Some(&force("zhangjiakou")));
    assert_eq!(code, 201, "{ov}");
    let id = ov["id"].as_str().expect("override id").to_string();
    let took = b.wait_answer(ZJK, Duration::from_secs(1));
    eprintln!("override through a served by b after {took:?}");
    a.wait_answer(ZJK, Duration::from_millis(200));

    // kill -9 of A loses nothing: B still has it, and A restarted serves it again.
    a.kill9();
    b.wait_probes(2);
    assert_eq!(b.answer(), vec![ZJK.to_string()]);
    a.start();
    a.wait_cluster(2);
    a.wait_answer(ZJK, Duration::from_secs(2));
    let s = a.status();
    assert!(
        s["overrides"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == id.as_str()),
        "{s:#}"
    );

    // Release through B; both back to the rules within 1 s.
    let (code, body) = b.call(
        "DELETE",
        &format!("/overrides/{id}?actor=tester&reason=done"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    a.wait_answer(HZ, Duration::from_secs(1));
    b.wait_answer(HZ, Duration::from_millis(200));

    // Every node's events are visible from any node, with the node name. The operator's
    // entries are committed with the change; the decisions' follow within a moment.
    let t0 = Instant::now();
    loop {
        let (code, ev) = b.call("GET", "/events?since=1h", None);
        assert_eq!(code, 200);
        let events = ev["events"].as_array().unwrap();
        let has = |kind: &str, node: &str| {
            events.iter().any(|e| {
                e["kind"] == kind
                    && e["node"] == node
                    && (kind == "switch" || e["override_id"] == id.as_str())
            })
        };
        if t0.elapsed() < Duration::from_millis(10) {
            assert!(
                has("override-added", "a"),
                "committed with the override: {ev:#}"
            );
            assert!(
                has("override-released", "b"),
                "committed with the release: {ev:#}"
            );
        }
        if has("switch", "a") && has("switch", "b") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(2), "{ev:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn override_through_one_node_is_served_by_the_other_within_a_second() {
    overrides_are_shared(Etcd::start_one());
}

#[test]
fn overrides_are_shared_on_a_three_member_etcd_that_loses_a_member() {
    let mut etcd = Etcd::start(3);
    // One member down: the other two still form a quorum.
    etcd.members[2].proc.kill();
    overrides_are_shared(etcd);
}

//------------ Health quorum -----------------------------------------------------------------

/// Three nodes; node c reaches hangzhou at a dead port (its probes fail).
fn quorum_run(quorum: &'static str) -> (Vec<Node>, FakeRegistry, FakeRegistry, Etcd) {
    let etcd = Etcd::start_one();
    let (hz, zjk) = (FakeRegistry::start(), FakeRegistry::start());
    let nodes = vec![
        Node::new(&spec("a", hz.port, zjk.port, quorum), &etcd),
        Node::new(&spec("b", hz.port, zjk.port, quorum), &etcd),
        Node::new(&spec("c", dead_port(), zjk.port, quorum), &etcd),
    ];
    for n in &nodes {
        n.wait_cluster(3);
    }
    (nodes, hz, zjk, etcd)
}

#[test]
fn one_node_with_a_broken_path_does_not_move_the_answer_with_majority() {
    let (nodes, _hz, _zjk, _etcd) = quorum_run("majority");
    // c sees hangzhou down, and every node shows that view of c.
    for n in &nodes {
        n.wait_status("c's view of hangzhou", Duration::from_secs(5), |s| {
            s["cluster"]["nodes"].as_array().is_some_and(|v| {
                v.iter()
                    .any(|x| x["node"] == "c" && x["instances"]["hangzhou"] == "down")
                    && v.iter()
                        .any(|x| x["node"] == "a" && x["instances"]["hangzhou"] == "up")
            })
        });
    }
    // Three more probes on every node (each a chance to decide): the answer stays.
    for n in &nodes {
        n.wait_probes(3);
    }
    for n in &nodes {
        assert_eq!(n.answer(), vec![HZ.to_string()], "{}\n{}", n.name, n.logs());
    }
}

#[test]
fn one_node_with_a_broken_path_moves_the_answer_everywhere_with_any() {
    let (nodes, _hz, _zjk, _etcd) = quorum_run("any");
    for n in &nodes {
        n.wait_answer(ZJK, Duration::from_secs(5));
    }
}

//------------ Publisher on the leader only --------------------------------------------------

const WRITES: &[&str] = &["AddZoneRecord", "UpdateZoneRecord", "DeleteZoneRecord"];

struct Cloud {
    fake: FakeCloud,
    _rt: tokio::runtime::Runtime,
}

fn cloud(nodes: &[&str]) -> Cloud {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = rt.block_on(FakeCloud::start());
    for n in nodes {
        fake.add_key(&key_of(n), "cluster-secret");
    }
    fake.add_zone(ZONE_ID, "registry.test", &[("cn-hangzhou", "vpc-pub")]);
    Cloud { fake, _rt: rt }
}

fn pvtz_spec(name: &str, hz: u16, zjk: u16, c: &Cloud) -> NodeSpec {
    NodeSpec {
        pvtz: Some(c.fake.pvtz_endpoint.clone()),
        ..spec(name, hz, zjk, "majority")
    }
}

fn record(c: &Cloud) -> Vec<String> {
    c.fake
        .answers(ZONE_ID, "cross-region")
        .into_iter()
        .map(|(_, v, _)| v)
        .collect()
}

fn wait_record(c: &Cloud, want: &str, within: Duration) -> Duration {
    let t0 = Instant::now();
    let want = want.trim_end_matches('.');
    loop {
        let got = record(c);
        if got.iter().any(|v| v.trim_end_matches('.') == want) {
            return t0.elapsed();
        }
        if t0.elapsed() > within {
            panic!("record {got:?}, wanted {want} within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writers of the fake's log in order, runs of one key collapsed.
fn writer_runs(c: &Cloud) -> Vec<String> {
    let mut runs: Vec<String> = Vec::new();
    for e in c.fake.log() {
        if !WRITES.contains(&e.action.as_str()) {
            continue;
        }
        let k = e.key_id.unwrap_or_default();
        if runs.last() != Some(&k) {
            runs.push(k);
        }
    }
    runs
}

fn leader(n: &Node) -> String {
    n.wait_cluster(2)["cluster"]["leader"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn publishers_run_on_the_leader_only_and_move_when_it_dies() {
    let c = cloud(&["a", "b"]);
    let (hz, zjk) = (FakeRegistry::start(), FakeRegistry::start());
    let etcd = Etcd::start_one();
    let mut nodes = [
        Node::new(&pvtz_spec("a", hz.port, zjk.port, &c), &etcd),
        Node::new(&pvtz_spec("b", hz.port, zjk.port, &c), &etcd),
    ];
    let l = leader(&nodes[0]);
    assert_eq!(leader(&nodes[1]), l);
    wait_record(&c, HZ, Duration::from_secs(5));
    // Both decide (three more probes each), one writes.
    for n in &nodes {
        n.wait_probes(3);
    }
    assert_eq!(writer_runs(&c), vec![key_of(&l)], "{:?}", c.fake.log());
    let readers: std::collections::BTreeSet<String> =
        c.fake.log().into_iter().filter_map(|e| e.key_id).collect();
    assert_eq!(
        readers,
        [key_of(&l)].into_iter().collect(),
        "only the leader calls the API"
    );

    // kill -9 of the leader, then a registry failure: the record follows.
    let li = nodes.iter().position(|n| n.name == l).unwrap();
    nodes[li].kill9();
    let t0 = Instant::now();
    hz.set_up(false);
    let other = &nodes[1 - li];
    other.wait_answer(ZJK, Duration::from_secs(3));
    wait_record(&c, ZJK, LEASE_TTL + Duration::from_secs(2));
    eprintln!(
        "record followed {:?} after the leader was killed",
        t0.elapsed()
    );
    assert_eq!(leader_of_live(other), other.name);
    // No two nodes wrote in the same period: one run per leader, in order.
    let runs = writer_runs(&c);
    assert_eq!(
        runs,
        vec![key_of(&l), key_of(&other.name)],
        "{:?}",
        c.fake.log()
    );
}

fn leader_of_live(n: &Node) -> String {
    n.wait_cluster(1)["cluster"]["leader"]
        .as_str()
        .unwrap()
        .to_string()
}

//------------ etcd unreachable --------------------------------------------------------------

#[test]
fn etcd_unreachable_keeps_answering_refuses_overrides_pauses_publishers_then_reconverges() {
    let c = cloud(&["a", "b"]);
    let (hz, zjk) = (FakeRegistry::start(), FakeRegistry::start());
    let mut etcd = Etcd::start_one();
    let a = Node::new(&pvtz_spec("a", hz.port, zjk.port, &c), &etcd);
    let b = Node::new(&pvtz_spec("b", hz.port, zjk.port, &c), &etcd);
    let l = leader(&a);
    wait_record(&c, HZ, Duration::from_secs(5));

    etcd.pause();
    for n in [&a, &b] {
        n.wait_status("cluster degraded", Duration::from_secs(5), |s| {
            s["cluster"]["state"] == "degraded"
        });
    }
    // The former leader's PrivateZone row says it no longer publishes.
    let former = if l == "a" { &a } else { &b };
    former.wait_status("publishers standby", Duration::from_secs(3), |s| {
        s["publishers"].as_array().is_some_and(|v| {
            v.iter().any(|p| {
                p["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("privatezone:"))
                    && p["state"] == "standby"
            })
        })
    });
    // Publishers stop before a lease could expire; nothing is written from then on.
    std::thread::sleep(LEASE_TTL / 2);
    c.fake.clear_log();
    // Still answering, and still deciding on their own observations.
    hz.set_up(false);
    a.wait_answer(ZJK, Duration::from_secs(3));
    b.wait_answer(ZJK, Duration::from_secs(3));
    let (code, body) = a.call("POST", "/overrides", Some(&force("hangzhou")));
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"], "cluster_unavailable");
    let msg = body["message"].as_str().unwrap();
    assert!(msg.contains("etcd is unreachable"), "{msg}");
    let out = Command::new(env!("CARGO_BIN_EXE_regdns"))
        .args([
            "drain",
            "zhangjiakou",
            "--reason",
            "test",
            "--actor",
            "tester",
            "-c",
        ])
        .arg(b.dir.join("regdns.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("etcd is unreachable"),
        "{out:?}"
    );
    let metrics = http(a.admin, "GET", "/metrics", None, None).unwrap().1;
    assert!(metrics.contains("regdns_cluster_connected 0"), "{metrics}");
    // Three more probes on both nodes (each a chance to publish): nothing written.
    a.wait_probes(3);
    b.wait_probes(3);
    assert!(writer_runs(&c).is_empty(), "{:?}", c.fake.log());

    // etcd back: overrides work again, the leader publishes the current answer.
    etcd.resume();
    for n in [&a, &b] {
        n.wait_cluster(2);
    }
    wait_record(&c, ZJK, Duration::from_secs(5));
    let (code, body) = b.call("POST", "/overrides", Some(&force("hangzhou")));
    assert_eq!(code, 201, "{body}");
    a.wait_answer(HZ, Duration::from_secs(1));
    wait_record(&c, HZ, Duration::from_secs(3));
    let metrics = http(a.admin, "GET", "/metrics", None, None).unwrap().1;
    assert!(metrics.contains("regdns_cluster_connected 1"), "{metrics}");
}

//------------ Serials -----------------------------------------------------------------------

/// Waits until both nodes answer the same with the same SOA serial; returns it.
fn equal_serials(a: &Node, b: &Node, what: &str) -> u32 {
    let t0 = Instant::now();
    loop {
        let (sa, sb) = (a.serial(), b.serial());
        if let Some(s) = sa
            && sa == sb
            && a.answer() == b.answer()
        {
            return s;
        }
        if t0.elapsed() > Duration::from_secs(3) {
            panic!(
                "{what}: serials {sa:?} / {sb:?}, answers {:?} / {:?}\n{}\n{}",
                a.answer(),
                b.answer(),
                a.logs(),
                b.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serials_are_equal_on_every_node_after_a_failover() {
    let etcd = Etcd::start_one();
    let (hz, zjk) = (FakeRegistry::start(), FakeRegistry::start());
    // A alone moves its serial twice; B, started later from nothing, would begin at the
    // zone file's serial without the shared one.
    let a = Node::new(&spec("a", hz.port, zjk.port, "majority"), &etcd);
    a.wait_cluster(1);
    let s0 = a.serial().expect("serial");
    hz.set_up(false);
    a.wait_answer(ZJK, Duration::from_secs(3));
    hz.set_up(true);
    a.wait_answer(HZ, Duration::from_secs(3));
    assert!(a.serial().unwrap() > s0);
    let b = Node::new(&spec("b", hz.port, zjk.port, "majority"), &etcd);
    a.wait_cluster(2);
    b.wait_cluster(2);
    let s1 = equal_serials(&a, &b, "after b joined");
    assert!(s1 > s0, "{s0} -> {s1}");
    hz.set_up(false);
    a.wait_answer(ZJK, Duration::from_secs(3));
    b.wait_answer(ZJK, Duration::from_secs(3));
    let s2 = equal_serials(&a, &b, "after the failover");
    assert!(s2 > s1, "{s1} -> {s2}");
    hz.set_up(true);
    a.wait_answer(HZ, Duration::from_secs(3));
    b.wait_answer(HZ, Duration::from_secs(3));
    let s3 = equal_serials(&a, &b, "after the failback");
    assert!(s3 > s2, "{s2} -> {s3}");
}

//------------ TLS and authentication --------------------------------------------------------

#[test]
fn etcd_with_tls_client_certificates_and_a_password_user() {
    let (etcd, files) = Etcd::start_tls_auth();
    let (hz, zjk) = (FakeRegistry::start(), FakeRegistry::start());
    let extra = format!(
        "ca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\nusername = \"regdns\"\npassword_file = {:?}\n",
        files.ca, files.cert, files.key, files.password
    );
    let tls = |name: &str| NodeSpec {
        cluster_extra: extra.clone(),
        ..spec(name, hz.port, zjk.port, "majority")
    };
    let a = Node::new(&tls("a"), &etcd);
    let b = Node::new(&tls("b"), &etcd);
    a.wait_cluster(2);
    b.wait_cluster(2);
    let (code, body) = a.call("POST", "/overrides", Some(&force("zhangjiakou")));
    assert_eq!(code, 201, "{body}");
    b.wait_answer(ZJK, Duration::from_secs(1));
    // B learnt it from its watch (authenticated like every other call).
    assert!(b.logs().contains("cluster watch: change"), "{}", b.logs());

    // A wrong password is refused by etcd: the node says so and stays degraded.
    std::fs::write(files.dir.path().join("wrong"), "nope\n").unwrap();
    let wrong = NodeSpec {
        cluster_extra: extra.replace(
            &format!("{:?}", files.password),
            &format!("{:?}", files.dir.path().join("wrong")),
        ),
        ..spec("c", hz.port, zjk.port, "majority")
    };
    let c = Node::new(&wrong, &etcd);
    let s = c.wait_status("cluster degraded", Duration::from_secs(5), |s| {
        s["cluster"]["state"] == "degraded" && s["cluster"]["error"].is_string()
    });
    let err = s["cluster"]["error"].as_str().unwrap();
    assert!(err.contains("authentication failed"), "{err}");
}

#[test]
fn a_leader_stopped_by_sigterm_hands_over_before_its_lease_could_lapse() {
    let etcd = Etcd::start_one();
    let (hz, zjk) = (FakeRegistry::start(), FakeRegistry::start());
    let mut nodes = [
        Node::new(&spec("a", hz.port, zjk.port, "majority"), &etcd),
        Node::new(&spec("b", hz.port, zjk.port, "majority"), &etcd),
    ];
    let l = leader(&nodes[0]);
    let li = nodes.iter().position(|n| n.name == l).unwrap();
    let status = nodes[li].proc().unwrap().terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{}", nodes[li].logs());
    let other = &nodes[1 - li];
    // The lease was revoked: the other node leads well before lease_ttl.
    other.wait_status("leading", LEASE_TTL / 2, |s| {
        s["cluster"]["leading"] == true && s["cluster"]["nodes"].as_array().unwrap().len() == 1
    });
}

//------------ Status page -------------------------------------------------------------------

#[test]
fn the_status_page_shows_every_nodes_view() {
    let Some(chromium) = proc::which("chromium") else {
        eprintln!("SKIPPED: chromium is not installed");
        return;
    };
    let etcd = Etcd::start_one();
    let (hz, zjk) = (FakeRegistry::start(), FakeRegistry::start());
    let a = Node::new(&spec("a", hz.port, zjk.port, "majority"), &etcd);
    let b = Node::new(&spec("b", dead_port(), zjk.port, "majority"), &etcd);
    a.wait_cluster(2);
    b.wait_status("b sees hangzhou down", Duration::from_secs(5), |s| {
        s["cluster"]["nodes"].as_array().is_some_and(|v| {
            v.iter()
                .any(|x| x["node"] == "b" && x["instances"]["hangzhou"] == "down")
        })
    });
    let profile = proc::temp_dir("chromium");
    let out = support::daemon::run_bounded(
        {
            let mut c = Command::new(chromium);
            c.args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--dump-dom")
            .arg(format!("http://{}/", a.admin));
            c
        },
        Duration::from_secs(60),
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("cluster: ok"), "{dom}");
    let row = |node: &str| {
        let start = dom
            .find(&format!("<tr data-node=\"{node}\">"))
            .unwrap_or_else(|| panic!("no row for {node}: {dom}"));
        dom[start..start + dom[start..].find("</tr>").unwrap()].to_string()
    };
    assert!(row("b").contains(">down<"), "{}", row("b"));
    assert!(!row("a").contains(">down<"), "{}", row("a"));
}

//------------ The agent alone ---------------------------------------------------------------

/// A decision round over many endpoints journals hundreds of entries at once; etcd refuses
/// transactions of more than 128 operations, so the agent shares them in several.
#[test]
fn hundreds_of_journal_entries_reach_the_shared_journal() {
    let etcd = Etcd::start_one();
    let cfg: regdns::config::ClusterConfig = toml::from_str(&format!(
        "etcd = [{}]\nprefix = \"/regdns/agent\"\nnode = \"solo\"\nlease_ttl = \"2s\"",
        etcd.endpoints_toml()
    ))
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut agent = regdns::cluster::agent::spawn(&cfg, "solo".into(), 0).unwrap();
        // Connected once the first view arrives.
        let t0 = Instant::now();
        loop {
            match tokio::time::timeout(Duration::from_secs(5), agent.views.recv()).await {
                Ok(Some(regdns::cluster::ToController::View(v))) if v.connected => break,
                Ok(Some(_)) => {}
                other => panic!("no connected view: {other:?}"),
            }
            assert!(t0.elapsed() < Duration::from_secs(10));
        }
        let entries: Vec<regdns::state::journal::Entry> = (0..300)
            .map(|i| regdns::state::journal::Entry::new("switch", 1_000 + i, format!("e{i}"), "t"))
            .collect();
        agent
            .writes
            .send(regdns::cluster::ClusterWrite::Events(entries))
            .await
            .unwrap();
        let client = agent.client.clone();
        let t0 = Instant::now();
        loop {
            let end = regdns::cluster::etcd::prefix_end("/regdns/agent/events/");
            let kvs = client
                .range("/regdns/agent/events/", &end, 0, false)
                .await
                .unwrap();
            if kvs.len() == 300 {
                let first: regdns::state::journal::Entry =
                    serde_json::from_slice(&kvs[0].value).unwrap();
                assert_eq!(first.node.as_deref(), Some("solo"));
                assert_eq!(first.reason, "e0");
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{} of 300 entries shared",
                kvs.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        agent.stop().await;
    });
}

/// etcd killed and started again on its data: the nodes ride it out on their own
/// observations, then re-register, re-read the shared state (the override committed
/// before the crash is still there) and accept changes again.
#[test]
fn etcd_killed_and_restarted_nodes_reconverge() {
    let mut etcd = Etcd::start_one();
    let (hz, zjk) = (FakeRegistry::start(), FakeRegistry::start());
    let a = Node::new(&spec("a", hz.port, zjk.port, "majority"), &etcd);
    let b = Node::new(&spec("b", hz.port, zjk.port, "majority"), &etcd);
    a.wait_cluster(2);
    b.wait_cluster(2);
    let (code, ov) = a.call("POST", "/overrides", Some(&force("zhangjiakou")));
    assert_eq!(code, 201, "{ov}");
    let id = ov["id"].as_str().unwrap().to_string();
    b.wait_answer(ZJK, Duration::from_secs(1));

    etcd.kill();
    for n in [&a, &b] {
        n.wait_status("cluster degraded", Duration::from_secs(5), |s| {
            s["cluster"]["state"] == "degraded"
        });
        // The last shared override stays in force while etcd is away.
        assert_eq!(n.answer(), vec![ZJK.to_string()]);
    }
    let (code, body) = b.call(
        "DELETE",
        &format!("/overrides/{id}?actor=tester&reason=done"),
        None,
    );
    assert_eq!(code, 503, "{body}");

    etcd.restart();
    a.wait_cluster(2);
    b.wait_cluster(2);
    let (code, body) = b.call(
        "DELETE",
        &format!("/overrides/{id}?actor=tester&reason=done"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    a.wait_answer(HZ, Duration::from_secs(1));
    b.wait_answer(HZ, Duration::from_secs(1));
    equal_serials(&a, &b, "after etcd came back");
    // And the combined health still moves both nodes.
    hz.set_up(false);
    a.wait_answer(ZJK, Duration::from_secs(3));
    b.wait_answer(ZJK, Duration::from_secs(3));
}
