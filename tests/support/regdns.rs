//! The one launcher of `regdns serve` in tests ([`Regdns::launch`]: a [`Config`], extra
//! files, environment, readiness), its admin API helpers, and the two-instance, two-view
//! fixture around `cross-region.registry.io` ([`two_regions`]) with the endpoint's answer
//! read over the wire.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::config::{self, Config};
use super::daemon::{http as admin_http, run_bounded};
use super::dns::{Query, RecordType};
use super::proc::{self, Proc};

pub const PRIMARY: &str = "a-registry.cn-hangzhou.cr.aliyuncs.com.";
pub const SECONDARY: &str = "b-registry.cn-zhangjiakou.cr.aliyuncs.com.";

/// Instance settings used by these tests: fast, so the suite stays short.
pub const PROBE: &str = "interval = \"300ms\"\ntimeout = \"250ms\"\nrise = 2\nfall = 2\n";

/// How to start `regdns serve`: built by [`Regdns::launch`], run by [`Launch::start`].
pub struct Launch {
    config: Config,
    /// Config and state directory; `None`: a fresh one.
    dir: Option<TempDir>,
    /// Write the config and the files (false when restarting on the same directory).
    write: bool,
    files: Vec<(String, Vec<u8>)>,
    spec: Spec,
}

/// What a restart reuses: how the process is started and when it is ready.
struct Spec {
    name: String,
    env: Vec<(String, String)>,
    cloud_key: Option<(String, String)>,
    timeout: Duration,
    ready: Option<Box<dyn FnMut() -> bool>>,
}

/// A running `regdns serve` (killed on drop). Its config and state live in `dir`, which
/// outlives the process ([`Regdns::kill`] restarts on it); its output in the process's own
/// temp dir ([`Proc::logs`]).
pub struct Regdns {
    /// The process.
    pub proc: Proc,
    /// Config, files and state.
    pub dir: TempDir,
    /// The config it was started with.
    pub config: Config,
    /// DNS address (UDP and TCP).
    pub dns: SocketAddr,
    /// Admin API address.
    pub admin: SocketAddr,
    spec: Spec,
}

impl Regdns {
    /// `regdns serve -c DIR/regdns.toml` with `config`, in a fresh temp dir; by default with
    /// `RUST_LOG=info`, ready once `GET /readyz` answers 200 (first snapshot published, DNS
    /// sockets bound).
    pub fn launch(config: Config) -> Launch {
        Launch {
            config,
            dir: None,
            write: true,
            files: Vec::new(),
            spec: Spec {
                name: "regdns".into(),
                env: vec![("RUST_LOG".into(), "info".into())],
                cloud_key: None,
                timeout: proc::READY_TIMEOUT,
                ready: None,
            },
        }
    }

    /// SIGKILL by PID (`kill -9`), then a [`Launch`] that restarts regdns on the same
    /// directory, config, ports, environment and readiness (nothing is rewritten).
    pub fn kill(self) -> Launch {
        let Regdns {
            mut proc,
            dir,
            config,
            spec,
            ..
        } = self;
        proc.kill();
        drop(proc);
        Launch {
            config,
            dir: Some(dir),
            write: false,
            files: Vec::new(),
            spec,
        }
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("regdns.toml")
    }

    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join(self.config.state_dir())
    }

    /// Rewrites the config file (e.g. before `POST /reload`); the process is not told.
    pub fn write_config(&mut self, config: Config) {
        std::fs::write(self.config_path(), config.render()).unwrap();
        self.config = config;
    }

    /// The admin token regdns generated.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(self.config.token_file()))
            .expect("token file")
            .trim()
            .to_string()
    }

    /// An authenticated admin call; panics when regdns cannot be reached.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let token = self.token();
        let (status, text) = admin_http(self.admin, method, path, Some(&token), body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.proc.logs()));
        let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, v)
    }

    /// `GET /status`.
    pub fn status(&self) -> serde_json::Value {
        let (code, s) = self.call("GET", "/status", None);
        assert_eq!(code, 200, "{s:#}");
        s
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

    /// Waits until regdns has concluded `n` more probes of every instance than when called
    /// (`last_probe_ms` in `GET /status` moved `n` times): the positive event after which a
    /// test asserts that something did not happen.
    pub fn wait_probes(&self, n: usize, within: Duration) {
        let last = |s: &serde_json::Value| -> Vec<(String, u64)> {
            s["instances"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .map(|i| {
                            (
                                i["id"].as_str().unwrap_or("").to_string(),
                                i["last_probe_ms"].as_u64().unwrap_or(0),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut seen = last(&self.status());
        let mut moved = vec![0usize; seen.len()];
        let deadline = Instant::now() + within;
        while moved.iter().any(|m| *m < n) {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} more probes of every instance within {within:?}: {:#}\n{}",
                self.status(),
                self.proc.logs()
            );
            std::thread::sleep(Duration::from_millis(25));
            let now = last(&self.status());
            for (i, (id, at)) in now.iter().enumerate() {
                if let Some(j) = seen.iter().position(|(s, _)| s == id)
                    && seen[j].1 != *at
                {
                    seen[j].1 = *at;
                    moved[i] += 1;
                }
            }
        }
    }

    /// `regdns ARGS -c DIR/regdns.toml --actor tester` (the CLI), with a bounded run time.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_regdns"));
        cmd.args(args)
            .arg("-c")
            .arg(self.config_path())
            .arg("--actor")
            .arg("tester");
        run_bounded(cmd, Duration::from_secs(20))
    }
}

impl Launch {
    /// Starts in `dir` instead of a fresh temp dir.
    pub fn in_dir(mut self, dir: TempDir) -> Launch {
        self.dir = Some(dir);
        self
    }

    /// Writes `contents` to `name` (relative to the config's directory) before the start.
    pub fn file(mut self, name: &str, contents: impl AsRef<[u8]>) -> Launch {
        self.files
            .push((name.to_string(), contents.as_ref().to_vec()));
        self
    }

    /// An environment variable of the process (`RUST_LOG` replaces the default `info`).
    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.spec.env.retain(|(k, _)| k != key);
        self.spec.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Alibaba Cloud credentials from the environment only: every `ALIBABA_CLOUD_*` of the
    /// test's environment removed, this AccessKey set, ECS metadata disabled and `HOME` in
    /// the config's directory (no `~/.aliyun/config.json`).
    pub fn cloud_key(mut self, id: &str, secret: &str) -> Launch {
        self.spec.cloud_key = Some((id.to_string(), secret.to_string()));
        self
    }

    /// The process's name in logs and failure messages (default `regdns`).
    pub fn name(mut self, name: &str) -> Launch {
        self.spec.name = name.to_string();
        self
    }

    /// Ready once `ready` returns true (instead of `GET /readyz`).
    pub fn ready(mut self, ready: impl FnMut() -> bool + 'static) -> Launch {
        self.spec.ready = Some(Box::new(ready));
        self
    }

    /// Ready once the SOA of `origin` is answered on the DNS address.
    pub fn ready_soa(self, origin: &str) -> Launch {
        let dns = self.config.dns;
        let origin = super::knot::fqdn(origin);
        self.ready(move || super::knot::soa_ready(dns, &origin))
    }

    /// Starts regdns and waits until it is ready; panics with its output if it does not.
    pub fn start(self) -> Regdns {
        self.try_start()
            .unwrap_or_else(|e| panic!("regdns did not start: {e}"))
    }

    /// Writes the files and runs `regdns serve` to its exit (at most 20 s), for a server that
    /// must refuse to start.
    pub fn run_to_exit(self) -> Output {
        let (dir, path, mut cmd, _spec) = self.prepare().expect("write the config");
        cmd.arg("serve").arg("-c").arg(&path);
        let out = run_bounded(cmd, Duration::from_secs(20));
        drop(dir);
        out
    }

    /// [`Launch::start`], with the error (and the output) when regdns does not get ready.
    pub fn try_start(self) -> std::io::Result<Regdns> {
        let config = self.config.clone();
        let (dir, path, mut cmd, mut spec) = self.prepare()?;
        cmd.arg("serve").arg("-c").arg(&path);
        let logs = proc::temp_dir(&format!("{}-logs", spec.name));
        let admin = config.admin;
        let p = match spec.ready.as_mut() {
            Some(ready) => Proc::start(&spec.name, cmd, logs, spec.timeout, ready)?,
            None => Proc::start(&spec.name, cmd, logs, spec.timeout, || {
                admin_http(admin, "GET", "/readyz", None, None).is_ok_and(|(s, _)| s == 200)
            })?,
        };
        Ok(Regdns {
            proc: p,
            dir,
            dns: config.dns,
            admin: config.admin,
            config,
            spec,
        })
    }

    /// Writes the config and the files; the command with its environment.
    fn prepare(self) -> std::io::Result<(TempDir, PathBuf, Command, Spec)> {
        let Launch {
            config,
            dir,
            write,
            files,
            spec,
        } = self;
        let dir = dir.unwrap_or_else(|| proc::temp_dir("regdns"));
        let path = dir.path().join("regdns.toml");
        if write {
            std::fs::write(&path, config.render())?;
            for (name, contents) in &files {
                let file = dir.path().join(name);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(file, contents)?;
            }
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_regdns"));
        if let Some((id, secret)) = &spec.cloud_key {
            for (k, _) in std::env::vars() {
                if k.starts_with("ALIBABA_CLOUD_") {
                    cmd.env_remove(k);
                }
            }
            cmd.env("ALIBABA_CLOUD_ACCESS_KEY_ID", id)
                .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
                .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
                .env("HOME", dir.path());
        }
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        Ok((dir, path, cmd, spec))
    }
}

/// The two-region config: zone `registry.io.` (file `registry.io.zone`, see [`ZONE`]), view
/// `vpc` for 127.0.0.2, instances hangzhou (`hz` lines) and zhangjiakou (`zjk` lines) with
/// [`PROBE`], and the endpoint `cross-region.registry.io.` (TTL 5, `endpoint_lines`).
pub fn two_regions(dns: SocketAddr, hz: &str, zjk: &str, endpoint_lines: &str) -> Config {
    Config::on(dns)
        .zone("registry.io.", "registry.io.zone")
        .view("vpc", &["127.0.0.2/32"])
        .instance("hangzhou", &format!("{hz}\n{PROBE}"))
        .instance("zhangjiakou", &format!("{zjk}\n{PROBE}"))
        .endpoint(
            "cross-region.registry.io.",
            &format!("ttl = 5\n{endpoint_lines}\n\n{}", two_region_targets()),
        )
}

/// The `[endpoint.targets]` of [`two_regions`].
pub fn two_region_targets() -> String {
    config::targets(&[
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
                ("hangzhou", "a = [\"10.94.205.198\"]"),
                ("zhangjiakou", "a = [\"10.1.3.4\"]"),
            ],
        ),
    ])
}

/// The zone file of [`two_regions`].
pub const ZONE: &str = "$ORIGIN registry.io.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n NS ns1\nns1 A 127.0.0.1\n";

/// [`two_regions`] launched with its zone; ready when the endpoint answers.
pub fn launch_two_regions(dns: SocketAddr, hz: &str, zjk: &str, endpoint_lines: &str) -> Launch {
    Regdns::launch(two_regions(dns, hz, zjk, endpoint_lines))
        .file("registry.io.zone", ZONE)
        .ready(move || answer(dns, "127.0.0.1").is_some())
}

/// [`launch_two_regions`], started.
pub fn start(dns: SocketAddr, hz: &str, zjk: &str, endpoint_lines: &str) -> Regdns {
    launch_two_regions(dns, hz, zjk, endpoint_lines).start()
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
