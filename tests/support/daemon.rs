//! regdns as a daemon under test with its admin API: fake registries (simulated, switchable
//! between 200 and 503), a config with two instances, one endpoint and two views (started by
//! the one launcher, [`Regdns`]), a raw HTTP/1.0 client for the admin API, and the CLI.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::config::{self, Config};
use super::dns;
use super::regdns::Regdns;

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

/// Probe settings of the test config: fast, one result to change state.
pub const PROBE: &str = "interval = \"300ms\"\ntimeout = \"250ms\"\nrise = 1\nfall = 1\n";

/// The test config with [`PROBE`].
pub fn config(regs: &Registries, failback: &str) -> Config {
    config_with_probe(regs, failback, PROBE)
}

/// The test config: zone `registry.test.` ([`ZONE`]), view `vpc` for [`VPC_CLIENT`], the two
/// registries probed with `probe`, and [`ENDPOINT`] with `failback`; the token in
/// `secrets/admin.token`.
pub fn config_with_probe(regs: &Registries, failback: &str, probe: &str) -> Config {
    Config::new()
        .server_str("admin_token_file", "secrets/admin.token")
        .zone("registry.test.", "registry.test.zone")
        .view("vpc", &["127.0.0.2/32"])
        .instance(
            "hangzhou",
            &format!("url = \"http://127.0.0.1:{}/v2/\"\n{probe}", regs.hz.port),
        )
        .instance(
            "zhangjiakou",
            &format!("url = \"http://127.0.0.1:{}/v2/\"\n{probe}", regs.zjk.port),
        )
        .endpoint(
            ENDPOINT,
            &format!(
                "ttl = 30\nfailback = \"{failback}\"\nfailback_hold = \"0s\"\n\n{}",
                config::targets(&[
                    (
                        "default",
                        &[
                            ("hangzhou", &format!("cname = \"{HZ_CNAME}\"")),
                            ("zhangjiakou", &format!("cname = \"{ZJK_CNAME}\"")),
                        ]
                    ),
                    (
                        "vpc",
                        &[
                            ("zhangjiakou", "a = [\"10.1.3.4\"]"),
                            ("hangzhou", "a = [\"10.94.205.198\"]"),
                        ]
                    ),
                ])
            ),
        )
}

/// regdns started by [`Regdns::launch`] on a [`config`], with its zone file; everything of
/// [`Regdns`] (`proc`, `dir`, `call`, `cli`, `wait_status`...) through `Deref`, plus the
/// endpoint's answers.
pub struct Daemon(pub Regdns);

impl std::ops::Deref for Daemon {
    type Target = Regdns;
    fn deref(&self) -> &Regdns {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Regdns {
        &mut self.0
    }
}

impl Daemon {
    /// Starts regdns on `config` (and [`ZONE`]), ready once `/readyz` answers 200.
    pub fn start(config: Config) -> Daemon {
        Daemon(
            Regdns::launch(config)
                .file("registry.test.zone", ZONE)
                .start(),
        )
    }

    /// `kill -9` and start again on the same directory (config, state, ports).
    pub fn restart(self) -> Daemon {
        Daemon(self.0.kill().start())
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
