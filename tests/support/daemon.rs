//! regdns as a daemon under test with its admin API: fake registries (axum on 127.0.0.1,
//! switchable between 200 and 503), a config with two instances, one endpoint and two views,
//! a raw HTTP/1.0 client for the admin API, and the CLI.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use tempfile::TempDir;

use super::dns;
use super::proc::{self, Proc};

/// The endpoint of the test config.
pub const ENDPOINT: &str = "cross-region.registry.test.";
/// Answers of the default view (CNAME) per instance.
pub const HZ_CNAME: &str = "a-registry.hangzhou.test.";
/// See [`HZ_CNAME`].
pub const ZJK_CNAME: &str = "b-registry.zhangjiakou.test.";
/// Source address of the `vpc` view.
pub const VPC_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A registry for these synchronous tests: a [`regdns::sim::SimRegistry`] on its own
/// runtime, whose `GET /v2/` answers 200 while up and 503 while down.
pub struct FakeRegistry {
    /// Its port on 127.0.0.1.
    pub port: u16,
    sim: regdns::sim::SimRegistry,
    // Declared last: the runtime serving `sim` lives as long as the registry.
    _rt: tokio::runtime::Runtime,
}

impl FakeRegistry {
    /// Starts one (up).
    pub fn start() -> FakeRegistry {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = rt
            .block_on(regdns::sim::SimRegistry::start(
                ([127, 0, 0, 1], 0).into(),
                false,
            ))
            .expect("simulated registry");
        FakeRegistry {
            port: sim.addr.port(),
            sim,
            _rt: rt,
        }
    }

    /// Makes `/v2/` answer 200 (true) or 503 (false).
    pub fn set_up(&self, up: bool) {
        self.sim.set(if up {
            regdns::sim::Mode::Healthy
        } else {
            regdns::sim::Mode::Unavailable
        });
    }
}

/// Two registries: hangzhou (preferred in `default`) and zhangjiakou (preferred in `vpc`).
pub struct Registries {
    /// hangzhou.
    pub hz: FakeRegistry,
    /// zhangjiakou.
    pub zjk: FakeRegistry,
}

impl Registries {
    /// Both up.
    pub fn start() -> Registries {
        Registries {
            hz: FakeRegistry::start(),
            zjk: FakeRegistry::start(),
        }
    }
}

/// The zone file of the test config.
pub const ZONE: &str = "$ORIGIN registry.test.\n$TTL 300\n\
@ IN SOA ns1.registry.test. hostmaster.registry.test. 2024010101 3600 600 86400 60\n\
@ IN NS ns1.registry.test.\n\
ns1 IN A 127.0.0.1\n\
www IN A 192.0.2.80\n";

/// The test config (paths relative to its directory).
pub fn config(dns: SocketAddr, admin: SocketAddr, regs: &Registries, failback: &str) -> String {
    format!(
        r#"[server]
listen = ["{dns}"]
admin = "{admin}"
admin_token_file = "secrets/admin.token"
state_dir = "state"

[[zone]]
origin = "registry.test."
file = "registry.test.zone"

[[view]]
name = "vpc"
clients = ["127.0.0.2/32"]

[[instance]]
id = "hangzhou"
url = "http://127.0.0.1:{hz}/v2/"
interval = "300ms"
timeout = "250ms"
rise = 1
fall = 1

[[instance]]
id = "zhangjiakou"
url = "http://127.0.0.1:{zjk}/v2/"
interval = "300ms"
timeout = "250ms"
rise = 1
fall = 1

[[endpoint]]
name = "{ENDPOINT}"
ttl = 30
failback = "{failback}"
failback_hold = "0s"

[endpoint.targets]
default = [
  {{ instance = "hangzhou", cname = "{HZ_CNAME}" }},
  {{ instance = "zhangjiakou", cname = "{ZJK_CNAME}" }},
]
vpc = [
  {{ instance = "zhangjiakou", a = ["10.1.3.4"] }},
  {{ instance = "hangzhou", a = ["10.94.205.198"] }},
]
"#,
        hz = regs.hz.port,
        zjk = regs.zjk.port,
    )
}

/// A regdns daemon. The config and state live in `dir`, which outlives the process so that a
/// test can restart regdns on the same state.
pub struct Daemon {
    /// DNS address (UDP and TCP).
    pub dns: SocketAddr,
    /// Admin API address.
    pub admin: SocketAddr,
    /// Config and state directory.
    pub dir: PathBuf,
    /// The process.
    pub proc: Proc,
}

/// A fresh config directory for [`Daemon::start_in`].
pub fn write_config_dir(regs: &Registries, failback: &str) -> (TempDir, SocketAddr, SocketAddr) {
    let dir = proc::temp_dir("regdns-admin");
    let dns = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), proc::free_port());
    let admin = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), proc::free_port());
    std::fs::write(
        dir.path().join("regdns.toml"),
        config(dns, admin, regs, failback),
    )
    .unwrap();
    std::fs::write(dir.path().join("registry.test.zone"), ZONE).unwrap();
    (dir, dns, admin)
}

impl Daemon {
    /// `regdns serve -c DIR/regdns.toml`, ready once `/readyz` answers 200.
    pub fn start_in(dir: &Path, dns: SocketAddr, admin: SocketAddr) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_regdns"));
        cmd.arg("serve").arg("-c").arg(dir.join("regdns.toml"));
        cmd.env("RUST_LOG", "info");
        let logs = proc::temp_dir("regdns-logs");
        let p = Proc::start("regdns", cmd, logs, proc::READY_TIMEOUT, || {
            http(admin, "GET", "/readyz", None, None)
                .map(|(s, _)| s == 200)
                .unwrap_or(false)
        })
        .unwrap_or_else(|e| panic!("regdns did not start: {e}"));
        Daemon {
            dns,
            admin,
            dir: dir.to_path_buf(),
            proc: p,
        }
    }

    /// The admin token the daemon generated.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.join("secrets/admin.token"))
            .expect("token file")
            .trim()
            .to_string()
    }

    /// An authenticated admin call; panics when the daemon cannot be reached.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let token = self.token();
        let (status, text) = http(self.admin, method, path, Some(&token), body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.proc.logs()));
        let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, v)
    }

    /// `regdns ARGS -c DIR/regdns.toml` (the CLI), with a bounded run time.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_regdns"));
        cmd.args(args)
            .arg("-c")
            .arg(self.dir.join("regdns.toml"))
            .arg("--actor")
            .arg("tester");
        run_bounded(cmd, Duration::from_secs(20))
    }

    /// The answer of the endpoint in the default view (CNAME target) or, from
    /// [`VPC_CLIENT`], the vpc view (A).
    pub fn answer(&self, vpc: bool) -> Vec<String> {
        let mut q = dns::Query::new(ENDPOINT, RecordType::A);
        if vpc {
            q = q.source(VPC_CLIENT);
        }
        match q.udp(self.dns) {
            Ok(m) => dns::answer_rdata(&m),
            Err(e) => vec![format!("error: {e}")],
        }
    }

    /// Polls [`Daemon::answer`] until it contains `want` (at most `within`).
    pub fn wait_answer(&self, vpc: bool, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let got = self.answer(vpc);
            if got.iter().any(|a| a == want) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "answer (vpc={vpc}) is {got:?}, wanted {want} within {within:?}\n{}",
                    self.proc.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `GET /status` until `pred` holds (at most `within`).
    pub fn wait_status(
        &self,
        what: &str,
        within: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let (code, s) = self.call("GET", "/status", None);
            if code == 200 && pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("status never showed {what} within {within:?}: {s:#}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until both instances are up.
    pub fn wait_both_up(&self) {
        self.wait_status("both instances up", Duration::from_secs(10), |s| {
            s["instances"]
                .as_array()
                .is_some_and(|v| v.iter().all(|i| i["state"] == "up"))
        });
    }
}

/// Runs `cmd` and kills it (by PID) if it takes longer than `limit`.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn CLI");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("{cmd:?} ran longer than {limit:?}: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP/1.0 request (the connection closes after the answer); returns status and body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP head in {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    Ok((status, body.to_string()))
}
