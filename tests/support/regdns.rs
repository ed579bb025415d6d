//! The real `regdns` binary in tests: a two-instance, two-view config around
//! `cross-region.registry.io`, started on loopback with its state in a temp dir, and the
//! endpoint's answer read over the wire.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::dns::{Query, RecordType};
use super::proc::{self, Proc};

pub const PRIMARY: &str = "a-registry.cn-hangzhou.cr.aliyuncs.com.";
pub const SECONDARY: &str = "b-registry.cn-zhangjiakou.cr.aliyuncs.com.";

/// Instance settings used by these tests: fast, so the suite stays short.
pub const PROBE: &str = "interval = \"300ms\"\ntimeout = \"250ms\"\nrise = 2\nfall = 2\n";

pub struct Regdns {
    /// The process (killed on drop).
    pub proc: Proc,
    /// Config, zone and `state/`.
    pub dir: tempfile::TempDir,
}

/// Writes the config into `dir` and starts regdns; ready when the endpoint answers.
pub fn start(
    dir: tempfile::TempDir,
    dns: SocketAddr,
    hz: &str,
    zjk: &str,
    failback: &str,
) -> Regdns {
    start_with_env(dir, dns, hz, zjk, failback, &[])
}

/// [`start`] with extra environment variables for the regdns process.
pub fn start_with_env(
    dir: tempfile::TempDir,
    dns: SocketAddr,
    hz: &str,
    zjk: &str,
    failback: &str,
    env: &[(&str, &str)],
) -> Regdns {
    let config = format!(
        r#"[server]
listen = ["{dns}"]
admin = "127.0.0.1:{admin}"
admin_token_file = "admin.token"
state_dir = "state"

[[zone]]
origin = "registry.io."
file = "registry.io.zone"

[[view]]
name = "vpc"
clients = ["127.0.0.2/32"]

[[instance]]
id = "hangzhou"
{hz}
{PROBE}
[[instance]]
id = "zhangjiakou"
{zjk}
{PROBE}
[[endpoint]]
name = "cross-region.registry.io."
ttl = 5
{failback}

[endpoint.targets]
default = [
  {{ instance = "hangzhou", cname = "{PRIMARY}" }},
  {{ instance = "zhangjiakou", cname = "{SECONDARY}" }},
]
vpc = [
  {{ instance = "hangzhou", a = ["10.94.205.198"] }},
  {{ instance = "zhangjiakou", a = ["10.1.3.4"] }},
]
"#,
        admin = proc::free_port()
    );
    std::fs::write(dir.path().join("regdns.toml"), config).unwrap();
    std::fs::write(
        dir.path().join("registry.io.zone"),
        "$ORIGIN registry.io.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n NS ns1\nns1 A 127.0.0.1\n",
    )
    .unwrap();
    spawn_with_env(dir, dns, env)
}

/// Starts regdns on an existing directory (restart tests reuse it).
pub fn spawn(dir: tempfile::TempDir, dns: SocketAddr) -> Regdns {
    spawn_with_env(dir, dns, &[])
}

/// [`spawn`] with extra environment variables.
pub fn spawn_with_env(dir: tempfile::TempDir, dns: SocketAddr, env: &[(&str, &str)]) -> Regdns {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_regdns"));
    cmd.envs(env.iter().copied());
    cmd.arg("serve")
        .arg("-c")
        .arg(dir.path().join("regdns.toml"));
    let proc = Proc::start(
        "regdns",
        cmd,
        proc::temp_dir("regdns-logs"),
        Duration::from_secs(15),
        || answer(dns, "127.0.0.1").is_some(),
    )
    .expect("regdns starts");
    Regdns { proc, dir }
}

/// The endpoint's answer for a client at `src`, e.g. `CNAME a-registry...` or `A 10.1.3.4`.
pub fn answer(dns: SocketAddr, src: &str) -> Option<String> {
    let src: IpAddr = src.parse().unwrap();
    // A lost datagram or a starved scheduler on a loaded 2-core CI machine must not read as
    // "no answer": three tries, 300 ms each.
    let m = (0..3).find_map(|_| {
        Query::new("cross-region.registry.io.", RecordType::A)
            .source(src)
            .timeout(Duration::from_millis(300))
            .udp(dns)
            .ok()
    })?;
    Some(
        m.answers
            .iter()
            .map(|r| format!("{} {}", r.record_type(), r.data))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// Waits until the default view's answer contains `want`; returns how long it took.
pub async fn wait_answer(dns: SocketAddr, want: &str, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let a = tokio::task::spawn_blocking(move || answer(dns, "127.0.0.1"))
            .await
            .unwrap();
        if a.as_deref().is_some_and(|a| a.contains(want)) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "answer is {a:?}, still not {want} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Two simulated registries (hangzhou plain 200; zhangjiakou 200, or a Bearer challenge when
/// `zjk_bearer`) and a free DNS address for regdns.
pub async fn registries(
    zjk_bearer: bool,
) -> (
    regdns::sim::SimRegistry,
    regdns::sim::SimRegistry,
    SocketAddr,
) {
    let hz = regdns::sim::SimRegistry::start(([127, 0, 0, 1], 0).into(), false)
        .await
        .unwrap();
    let zjk = regdns::sim::SimRegistry::start(([127, 0, 0, 1], 0).into(), zjk_bearer)
        .await
        .unwrap();
    (
        hz,
        zjk,
        SocketAddr::new([127, 0, 0, 1].into(), proc::free_port()),
    )
}

/// The `url = ...` line of an instance probing a simulated registry.
pub fn http(sim: &regdns::sim::SimRegistry) -> String {
    format!("url = \"http://{}/v2/\"", sim.addr)
}
