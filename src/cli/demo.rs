//! `regdns demo`: the whole product on one machine with no setup. Starts two simulated
//! registries on loopback (one answering `/v2/` with 200, one with a 401 Bearer challenge
//! like ACR and Harbor), writes the example config and zone from `zones/demo/`, serves DNS
//! on 127.0.0.1:5353, runs a short guided failover and failback with real DNS queries,
//! then stays up for you to break things (commands on stdin) until Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;

use crate::daemon::{self, RunOptions};
use crate::model;
use crate::sim::{Mode, SimRegistry};

const DEMO_CONFIG: &str = include_str!("../../zones/demo/regdns.toml");
const DEMO_ZONE: &str = include_str!("../../zones/demo/registry.io.zone");
const DEMO_DOCKER_ZONE: &str = include_str!("../../zones/demo/docker.io.zone");
const DOCKER: &str = "registry-1.docker.io.";
/// The public answer of registry-1.docker.io the stand-in public DNS gives.
const DOCKER_PUBLIC: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 31);

/// The ports the demo's simulated parts listen on.
pub(crate) struct DemoPorts {
    pub(crate) hangzhou: u16,
    pub(crate) zhangjiakou: u16,
    pub(crate) ga: u16,
    pub(crate) direct: u16,
    pub(crate) public_dns: u16,
}
const ENDPOINT: &str = "cross-region.registry.io.";

/// Writes the demo files into `dir`; returns the config path.
pub(crate) fn write_files(
    dir: &Path,
    listen: SocketAddr,
    admin: SocketAddr,
    ports: &DemoPorts,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let cfg = DEMO_CONFIG
        .replace(
            "listen = [\"127.0.0.1:5353\"]",
            &format!("listen = [\"{listen}\"]"),
        )
        .replace(
            "admin = \"127.0.0.1:8053\"",
            &format!("admin = \"{admin}\""),
        )
        .replace("@HANGZHOU_PORT@", &ports.hangzhou.to_string())
        .replace("@ZHANGJIAKOU_PORT@", &ports.zhangjiakou.to_string())
        .replace("@GA_PORT@", &ports.ga.to_string())
        .replace("@DIRECT_PORT@", &ports.direct.to_string())
        .replace("@PUBLIC_DNS_PORT@", &ports.public_dns.to_string());
    let path = dir.join("regdns.toml");
    std::fs::write(&path, cfg)?;
    std::fs::write(dir.join("registry.io.zone"), DEMO_ZONE)?;
    std::fs::write(dir.join("docker.io.zone"), DEMO_DOCKER_ZONE)?;
    Ok(path)
}

/// Options of `regdns demo`.
#[derive(Debug, Clone)]
pub(crate) struct DemoOptions {
    pub(crate) listen: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) tour: bool,
    pub(crate) exit_after_tour: bool,
}

pub(super) fn run(o: DemoOptions) -> ExitCode {
    super::init_logging(crate::config::LogFormat::Text);
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(demo(o));
    // The stdin reader sits in a blocking read that only a new line would end.
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How to call this binary from a shell: `regdns` when that is on PATH, else the path of
/// the running binary (after `cargo run`, `target/release/regdns` is not on PATH).
fn command_name() -> String {
    let on_path = std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::metadata(d.join("regdns")).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
    });
    if on_path {
        return "regdns".into();
    }
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "regdns".into())
}

/// SIGINT and SIGTERM, registered before anything starts so that a signal at any point
/// (setup, tour, interactive part) ends the demo.
struct Interrupt {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn new() -> Result<Interrupt, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let err = |e: std::io::Error| format!("cannot handle signals: {e}");
        Ok(Interrupt {
            int: signal(SignalKind::interrupt()).map_err(err)?,
            term: signal(SignalKind::terminate()).map_err(err)?,
        })
    }

    /// The name of the next signal received.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

async fn demo(o: DemoOptions) -> Result<(), String> {
    let mut interrupt = Interrupt::new()?;
    let temp = o.dir.is_none();
    let dir = o.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("regdns-demo-{}", std::process::id()))
    });
    let hz = SimRegistry::start(([127, 0, 0, 1], 0).into(), false)
        .await
        .map_err(|e| format!("simulated registry: {e}"))?;
    let zjk = SimRegistry::start(([127, 0, 0, 1], 0).into(), true)
        .await
        .map_err(|e| format!("simulated registry: {e}"))?;
    let ga = SimRegistry::start(([127, 0, 0, 1], 0).into(), false)
        .await
        .map_err(|e| format!("simulated accelerator: {e}"))?;
    let direct = SimRegistry::start(([127, 0, 0, 1], 0).into(), false)
        .await
        .map_err(|e| format!("simulated registry: {e}"))?;
    let public = crate::sim::PublicDns::start(
        ([127, 0, 0, 1], 0).into(),
        vec![(
            Name::from_ascii(DOCKER).expect("constant name"),
            DOCKER_PUBLIC,
        )],
    )
    .await
    .map_err(|e| format!("stand-in public DNS: {e}"))?;
    let ports = DemoPorts {
        hangzhou: hz.addr.port(),
        zhangjiakou: zjk.addr.port(),
        ga: ga.addr.port(),
        direct: direct.addr.port(),
        public_dns: public.addr.port(),
    };
    let config = write_files(&dir, o.listen, o.admin, &ports)
        .map_err(|e| format!("cannot write the demo files into {}: {e}", dir.display()))?;
    let m = model::load(&config).map_err(|e| format!("demo config: {e}"))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (_running, fut) = daemon::start(
        m,
        config.clone(),
        RunOptions {
            listen: Some(vec![o.listen]),
        },
        stop_rx,
    )
    .await
    .map_err(|e| e.to_string())?;
    let daemon = tokio::spawn(fut);
    let dns = o.listen;
    println!();
    println!(
        "regdns demo: DNS on {dns} (udp+tcp), files in {}",
        dir.display()
    );
    println!(
        "  simulated registry hangzhou    http://{}/v2/  (200, like the CNCF registry)",
        hz.addr
    );
    println!(
        "  simulated registry zhangjiakou http://{}/v2/  (401 Bearer challenge, like ACR/Harbor)",
        zjk.addr
    );
    println!(
        "  stand-in accelerator ga        http://{}/v2/  (fail ga: registry-1.docker.io passes through to the public answer {DOCKER_PUBLIC})",
        ga.addr
    );
    println!("  endpoint {ENDPOINT}: default view = CNAME to the active instance's public name,");
    println!(
        "                                     vpc-demo view (source 127.0.0.2) = A of its internal address"
    );
    println!();
    println!("Try, in another terminal:");
    println!(
        "  dig @{} -p {} cross-region.registry.io A",
        dns.ip(),
        dns.port()
    );
    println!(
        "  dig -b 127.0.0.2 @{} -p {} cross-region.registry.io A",
        dns.ip(),
        dns.port()
    );
    let regdns = command_name();
    println!("  {regdns} check -c {}", config.display());
    println!("  {regdns} status -c {}", config.display());
    println!(
        "  {regdns} failover cross-region.registry.io --to zhangjiakou --for 5m --reason test -c {}",
        config.display()
    );
    println!(
        "  {regdns} release --all --reason done -c {}",
        config.display()
    );
    println!("  {regdns} events --since 10m -c {}", config.display());
    println!("  curl -s http://{}/metrics | grep ^regdns_", o.admin);
    println!(
        "  status page: http://{}/ (token: {}/admin.token)",
        o.admin,
        dir.display()
    );
    println!();

    let mut daemon = daemon;
    if o.tour {
        tokio::select! {
            _ = tour(dns, &hz) => {}
            sig = interrupt.recv() => {
                println!();
                println!("Tour interrupted ({sig}): stopping the demo.");
                stop_daemon(&stop_tx, daemon).await;
                if temp {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                return Ok(());
            }
        }
    }
    if o.exit_after_tour {
        let _ = stop_tx.send(true);
        let _ = daemon.await;
        if temp {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return Ok(());
    }
    println!("Break a registry by typing a command here (then watch the log and dig):");
    println!(
        "  fail hangzhou [refuse|hang|503|slow|no-challenge|storage|html]   heal hangzhou   fail ga   heal ga   show   help"
    );
    println!("Ctrl-C stops the demo.");
    let sims = [
        ("hangzhou", hz),
        ("zhangjiakou", zjk),
        ("ga", ga),
        ("direct", direct),
    ];
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(l)) => command(&l, &sims, dns).await,
                // stdin closed (e.g. run in the background): keep serving until a signal.
                _ => stdin_open = false,
            },
            sig = interrupt.recv() => {
                println!("Interrupted ({sig}): stopping the demo.");
                stop_daemon(&stop_tx, daemon).await;
                break;
            }
            _ = &mut daemon => break,
        }
    }
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Asks the daemon to stop (it also sees the signal itself) and waits briefly for it to save
/// its state: the demo must end within a second or two of Ctrl-C.
async fn stop_daemon<T: Send + 'static>(
    stop: &watch::Sender<bool>,
    daemon: tokio::task::JoinHandle<T>,
) {
    let _ = stop.send(true);
    let abort = daemon.abort_handle();
    if tokio::time::timeout(Duration::from_secs(1), daemon)
        .await
        .is_err()
    {
        abort.abort();
    }
}

async fn command(line: &str, sims: &[(&str, SimRegistry)], dns: SocketAddr) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let find = |name: &str| sims.iter().find(|(n, _)| *n == name).map(|(_, s)| s);
    match words.as_slice() {
        [] => {}
        ["show"] => show(dns).await,
        ["fail", name, rest @ ..] => match find(name) {
            Some(s) => match rest.first().copied().unwrap_or("refuse").parse::<Mode>() {
                Ok(m) => {
                    s.set(m);
                    if m == Mode::Storage {
                        println!(
                            "{name} is now {m:?}: /v2/ still answers 200, manifests and blobs 500; the canary pull sees it within about 2-3 s"
                        );
                    } else if *name == "ga" {
                        println!(
                            "ga is now {m:?}; after the fall threshold (about 1.5 s) {DOCKER} answers the public answer ({DOCKER_PUBLIC}) instead of the accelerator's CNAME"
                        );
                    } else {
                        println!(
                            "{name} is now {m:?}; the answer moves after the fall threshold (about 1.5 s)"
                        );
                    }
                }
                Err(e) => println!("{e}"),
            },
            None => println!("unknown registry {name:?} (hangzhou, zhangjiakou, ga, direct)"),
        },
        ["heal", name] => match find(name) {
            Some(s) => {
                s.set(Mode::Healthy);
                let preferred = if matches!(*name, "ga" | "direct") {
                    "ga"
                } else {
                    "hangzhou"
                };
                println!(
                    "{name} is healthy again; failback to {preferred} waits failback_hold (10 s)"
                );
            }
            None => println!("unknown registry {name:?} (hangzhou, zhangjiakou, ga, direct)"),
        },
        _ => println!(
            "commands: fail NAME [refuse|hang|503|slow|no-challenge|storage|html], heal NAME, show"
        ),
    }
}

/// Queries the endpoint in both views over UDP and prints the answers.
async fn show(dns: SocketAddr) {
    for (label, src) in [
        ("default view ", "127.0.0.1"),
        ("vpc-demo view", "127.0.0.2"),
    ] {
        let src: IpAddr = src.parse().expect("constant address");
        let answer = match ask(dns, src, ENDPOINT).await {
            Ok(a) => a,
            Err(e) => format!("no answer ({e})"),
        };
        println!("  {label} (from {src}): {answer}");
    }
    let src: IpAddr = "127.0.0.1".parse().expect("constant address");
    let answer = match ask(dns, src, DOCKER).await {
        Ok(a) => a,
        Err(e) => format!("no answer ({e})"),
    };
    println!("  {DOCKER}: {answer}");
}

/// One A query for `name` from `src`, rendered as `CNAME x` / `A 1.2.3.4`.
async fn ask(dns: SocketAddr, src: IpAddr, name: &str) -> Result<String, String> {
    let sock = tokio::net::UdpSocket::bind(SocketAddr::new(src, 0))
        .await
        .map_err(|e| e.to_string())?;
    let mut q = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    q.add_query(Query::query(
        Name::from_ascii(name).map_err(|e| e.to_string())?,
        RecordType::A,
    ));
    let bytes = q.to_vec().map_err(|e| e.to_string())?;
    sock.send_to(&bytes, dns).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1500];
    let n = tokio::time::timeout(Duration::from_secs(1), sock.recv(&mut buf))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let m = Message::from_vec(&buf[..n]).map_err(|e| e.to_string())?;
    Ok(m.answers
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect::<Vec<_>>()
        .join(", "))
}

async fn wait_for(dns: SocketAddr, want: &str, limit: Duration) -> Option<Duration> {
    let t0 = tokio::time::Instant::now();
    while t0.elapsed() < limit {
        if ask(dns, "127.0.0.1".parse().expect("constant"), ENDPOINT)
            .await
            .is_ok_and(|a| a.contains(want))
        {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The guided part: fail hangzhou, watch the answer move, heal it, watch it come back.
async fn tour(dns: SocketAddr, hz: &SimRegistry) {
    println!("== Guided tour ==");
    println!("Waiting for the first probes to conclude (rise = 2 at a 1 s interval)...");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    show(dns).await;
    println!();
    println!("Breaking hangzhou: its port now refuses connections.");
    hz.set(Mode::Refuse);
    match wait_for(dns, "b-registry", Duration::from_secs(10)).await {
        Some(t) => println!(
            "Failover: the answer moved to zhangjiakou {:.1} s after the failure.",
            t.as_secs_f64()
        ),
        None => println!("The answer did not move within 10 s (see the log above)."),
    }
    show(dns).await;
    println!();
    println!("Healing hangzhou. Automatic failback waits failback_hold = 10 s of steady health.");
    hz.set(Mode::Healthy);
    match wait_for(dns, "a-registry", Duration::from_secs(20)).await {
        Some(t) => println!(
            "Failback: the answer returned to hangzhou {:.1} s after it recovered.",
            t.as_secs_f64()
        ),
        None => println!("No failback within 20 s (see the log above)."),
    }
    show(dns).await;
    println!("== End of tour ==");
    println!();
}
