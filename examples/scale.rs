//! Scale benchmark driver (`bench/scale.sh` runs it): generates 1,000 endpoints × 3 views and
//! 300 instances on two simulated registries (`regdns::sim`, in this process), starts
//! `regdns serve` on that configuration as a child process, and measures the first answer
//! after start, the CPU and RSS of the startup, steady probing, and a region outage (the
//! registry behind the first half of the instances, every endpoint's primary, refuses
//! connections): the time until every endpoint answers its second target in every view,
//! per view, with the controller's CPU and the journal bytes it added.
//!
//! `cargo run --release --example scale -- --regdns target/release/regdns [--endpoints N]
//! [--instances N] [--dir DIR]`

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use regdns::sim::{self, Mode, SCALE_VIEWS, ScaleParams, SimRegistry};

struct Args {
    regdns: PathBuf,
    dir: Option<PathBuf>,
    p: ScaleParams,
}

fn args() -> Args {
    let mut a = Args {
        regdns: PathBuf::from("target/release/regdns"),
        dir: None,
        p: ScaleParams::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().expect("missing value");
        match k.as_str() {
            "--regdns" => a.regdns = v().into(),
            "--dir" => a.dir = Some(v().into()),
            "--endpoints" => a.p.endpoints = v().parse().expect("--endpoints N"),
            "--instances" => a.p.instances = v().parse().expect("--instances N"),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// utime + stime of a process or thread, in seconds.
fn cpu_of(stat: &Path) -> f64 {
    let s = std::fs::read_to_string(stat).unwrap_or_default();
    let rest = s.rsplit_once(") ").map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0 // fields 14 and 15 (after pid and comm)
}

/// CPU per thread name, summed.
fn threads_cpu(pid: u32) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            let name = std::fs::read_to_string(e.path().join("comm"))
                .unwrap_or_default()
                .trim()
                .to_string();
            *out.entry(name).or_insert(0.0) += cpu_of(&e.path().join("stat"));
        }
    }
    out
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse().ok())
        .unwrap_or(0)
}

/// A counter from `/metrics`.
fn metric(admin: SocketAddr, name: &str) -> f64 {
    let Ok(mut s) = TcpStream::connect_timeout(&admin, Duration::from_secs(2)) else {
        return f64::NAN;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|x| x.parse().ok())
        .unwrap_or(f64::NAN)
}

fn journal_bytes(state: &Path) -> u64 {
    std::fs::read_dir(state)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("events.jsonl"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn journal_count(state: &Path, what: &str) -> usize {
    let pat = format!("\"kind\":\"{what}\"");
    std::fs::read_to_string(state.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&pat))
        .count()
}

/// Latest `time_ms` of health and switch entries at or after `since`.
fn journal_times(state: &Path, since: u64) -> (u64, u64) {
    let (mut h, mut s) = (0, 0);
    for l in std::fs::read_to_string(state.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
    {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        let t = v["time_ms"].as_u64().unwrap_or(0);
        if t < since {
            continue;
        }
        match v["kind"].as_str() {
            Some("health") => h = h.max(t),
            Some("switch") => s = s.max(t),
            _ => {}
        }
    }
    (h, s)
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

/// The answer (CNAME target or first A) of a response.
fn answer_of(buf: &[u8]) -> Option<(u16, String)> {
    let m = Message::from_vec(buf).ok()?;
    let a = m.answers.first()?;
    let s = match &a.data {
        RData::CNAME(c) => c.0.to_string(),
        RData::A(a) => a.0.to_string(),
        _ => return None,
    };
    Some((m.metadata.id, s))
}

/// Sends every endpoint's A query in view `vi` once; returns the answers received.
fn sweep(sock: &UdpSocket, dns: SocketAddr, names: &[String]) -> BTreeMap<usize, String> {
    let mut out = BTreeMap::new();
    for (k, n) in names.iter().enumerate() {
        let _ = sock.send_to(&query(k as u16, n), dns);
        // Drain as we go so the socket buffer never overflows.
        if k % 64 == 63 {
            drain(sock, &mut out, Duration::from_millis(0));
        }
    }
    let deadline = Instant::now() + Duration::from_millis(200);
    while out.len() < names.len() && Instant::now() < deadline {
        drain(sock, &mut out, Duration::from_millis(5));
    }
    out
}

fn drain(sock: &UdpSocket, out: &mut BTreeMap<usize, String>, wait: Duration) {
    let mut buf = [0u8; 1500];
    let _ = sock.set_read_timeout(Some(wait.max(Duration::from_micros(100))));
    while let Ok(n) = sock.recv(&mut buf) {
        if let Some((id, a)) = answer_of(&buf[..n]) {
            out.insert(id as usize, a);
        }
        let _ = sock.set_read_timeout(Some(Duration::from_micros(100)));
    }
}

/// In process, on the generated model: a full snapshot build, and the update after one
/// endpoint switches in one view (the median of 200).
fn rebuild_figures(dir: &Path, names: &[String]) {
    use regdns::snapshot::build::{ActiveTargets, SnapshotBuilder};
    let m = regdns::model::load(&dir.join("regdns.toml")).unwrap();
    let mut book = regdns::snapshot::SerialBook::default();
    let mut active = ActiveTargets::new();
    let t = Instant::now();
    let mut b = SnapshotBuilder::new(&m, &active, &Default::default(), &mut book);
    let full = t.elapsed();
    let mut times = Vec::new();
    for i in 0..200usize {
        let k = i % names.len();
        let vi = i % m.views.len();
        let (p, s) = sim::scale_targets(&ScaleParams::default(), k);
        let to = if (i / names.len()).is_multiple_of(2) {
            s
        } else {
            p
        };
        active.insert(
            (names[k].clone(), m.views[vi].name.clone()),
            format!("i{to:03}"),
        );
        let pairs = std::iter::once((k, vi)).collect();
        let t = Instant::now();
        b.update(&m, &active, &Default::default(), &mut book, &pairs);
        let snap = b.snapshot(&m, i as u64);
        times.push(t.elapsed());
        drop(snap);
    }
    times.sort();
    println!(
        "snapshot: full build {:.1} ms; one endpoint switched in one view: update {:.2} ms (median of 200, p99 {:.2} ms, max {:.2} ms)",
        full.as_secs_f64() * 1000.0,
        times[100].as_secs_f64() * 1000.0,
        times[197].as_secs_f64() * 1000.0,
        times[199].as_secs_f64() * 1000.0
    );
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (ra, rb) = rt.block_on(async {
        (
            SimRegistry::start(([127, 0, 0, 1], 0).into(), false)
                .await
                .unwrap(),
            SimRegistry::start(([127, 0, 0, 1], 0).into(), false)
                .await
                .unwrap(),
        )
    });
    let dir = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("regdns-scale-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (cfg, zone) = sim::scale_config(&a.p, dns, admin, &state, ra.addr, rb.addr);
    std::fs::write(dir.join("regdns.toml"), cfg).unwrap();
    std::fs::write(dir.join("scale.test.zone"), zone).unwrap();
    let names: Vec<String> = (0..a.p.endpoints).map(sim::scale_endpoint).collect();
    let socks: Vec<UdpSocket> = SCALE_VIEWS
        .iter()
        .map(|(_, ip)| UdpSocket::bind(format!("{ip}:0")).unwrap())
        .collect();
    let expected = |second: bool| -> Vec<Vec<String>> {
        (0..SCALE_VIEWS.len())
            .map(|vi| {
                (0..a.p.endpoints)
                    .map(|k| {
                        let (p, s) = sim::scale_targets(&a.p, k);
                        let i = if second { s } else { p };
                        sim::scale_answer(i, vi)
                    })
                    .collect()
            })
            .collect()
    };
    let (first, second) = (expected(false), expected(true));

    println!(
        "config: {} endpoints x {} views, {} instances (interval 1s, timeout 500ms, rise 1, fall 2), registries {} and {}",
        a.p.endpoints,
        SCALE_VIEWS.len(),
        a.p.instances,
        ra.addr,
        rb.addr
    );
    let t = Instant::now();
    let out = Command::new(&a.regdns)
        .args(["check", "-c"])
        .arg(dir.join("regdns.toml"))
        .output()
        .unwrap();
    println!(
        "check: {} ms ({})",
        t.elapsed().as_millis(),
        if out.status.success() { "ok" } else { "FAILED" }
    );

    rebuild_figures(&dir, &names);

    let log = std::fs::File::create(dir.join("regdns.log")).unwrap();
    let t_start = Instant::now();
    let mut child: Child = Command::new(&a.regdns)
        .args(["serve", "-c"])
        .arg(dir.join("regdns.toml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = child.id();
    let probe = query(1, &names[0]);
    let mut buf = [0u8; 1500];
    let _ = socks[2].set_read_timeout(Some(Duration::from_millis(5)));
    let first_ms = loop {
        let _ = socks[2].send_to(&probe, dns);
        if let Ok(n) = socks[2].recv(&mut buf)
            && answer_of(&buf[..n]).is_some()
        {
            break t_start.elapsed().as_secs_f64() * 1000.0;
        }
        assert!(t_start.elapsed() < Duration::from_secs(20), "no answer");
    };
    println!("first answer: {first_ms:.0} ms after start");

    // Startup: until every instance concluded (one health entry each), plus a second.
    let deadline = Instant::now() + Duration::from_secs(30);
    while journal_count(&state, "health") < a.p.instances && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let concluded = t_start.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let main_stat = PathBuf::from(format!("/proc/{pid}/task/{pid}/stat"));
    let cpu_start = cpu_of(&PathBuf::from(format!("/proc/{pid}/stat")));
    let main_start = cpu_of(&main_stat);
    let ctl_start = metric(admin, "regdns_controller_cpu_seconds_total");
    let rounds_start = metric(admin, "regdns_controller_rounds_total");
    println!(
        "startup: all {} instances concluded {:.2} s after start; process CPU {:.2} s, main thread (controller loop) {:.2} s; controller rounds: CPU {:.3} s in {} rounds; RSS {} KiB",
        a.p.instances,
        concluded.as_secs_f64(),
        cpu_start,
        main_start,
        ctl_start,
        rounds_start,
        status_kib(pid, "VmRSS:")
    );
    println!("  threads: {:?}", threads_cpu(pid));

    // Steady probing.
    let c0 = cpu_of(&PathBuf::from(format!("/proc/{pid}/stat")));
    std::thread::sleep(Duration::from_secs(5));
    let c1 = cpu_of(&PathBuf::from(format!("/proc/{pid}/stat")));
    println!(
        "steady: {:.1} % of a core, {:.0} µs CPU per instance per second",
        (c1 - c0) / 5.0 * 100.0,
        (c1 - c0) / 5.0 / a.p.instances as f64 * 1e6
    );
    for (vi, s) in socks.iter().enumerate() {
        let got = sweep(s, dns, &names);
        let ok = (0..a.p.endpoints)
            .filter(|k| got.get(k) == Some(&first[vi][*k]))
            .count();
        println!(
            "  before the outage, view {}: {ok}/{} on the first target",
            SCALE_VIEWS[vi].0, a.p.endpoints
        );
    }

    // Region outage.
    let j0 = journal_bytes(&state);
    let sw0 = journal_count(&state, "switch");
    let p0 = cpu_of(&PathBuf::from(format!("/proc/{pid}/stat")));
    let m0 = cpu_of(&main_stat);
    let ctl0 = metric(admin, "regdns_controller_cpu_seconds_total");
    let r0 = metric(admin, "regdns_controller_rounds_total");
    let t0 = Instant::now();
    let t0_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    ra.set(Mode::Refuse);
    let mut switched: Vec<BTreeMap<usize, f64>> = vec![BTreeMap::new(); SCALE_VIEWS.len()];
    while switched.iter().map(|m| m.len()).sum::<usize>() < a.p.endpoints * SCALE_VIEWS.len()
        && t0.elapsed() < Duration::from_secs(30)
    {
        for (vi, s) in socks.iter().enumerate() {
            let got = sweep(s, dns, &names);
            let at = t0.elapsed().as_secs_f64() * 1000.0;
            for (k, ans) in got {
                if ans == second[vi][k] {
                    switched[vi].entry(k).or_insert(at);
                }
            }
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let p1 = cpu_of(&PathBuf::from(format!("/proc/{pid}/stat")));
    let m1 = cpu_of(&main_stat);
    let ctl1 = metric(admin, "regdns_controller_cpu_seconds_total");
    let r1 = metric(admin, "regdns_controller_rounds_total");
    let j1 = journal_bytes(&state);
    let sw1 = journal_count(&state, "switch");
    let (last_health, last_switch) = journal_times(&state, t0_ms);
    let mut last = 0.0f64;
    println!("region outage (registry A refuses; bound 1950 ms = 1 s + 250 ms + 500 ms + 200 ms):");
    for (vi, m) in switched.iter().enumerate() {
        let lo = m.values().cloned().fold(f64::INFINITY, f64::min);
        let hi = m.values().cloned().fold(0.0, f64::max);
        last = last.max(hi);
        println!(
            "  view {:8} {}/{} switched, first {:.0} ms, last {:.0} ms, spread {:.0} ms",
            SCALE_VIEWS[vi].0,
            m.len(),
            a.p.endpoints,
            lo,
            hi,
            hi - lo
        );
    }
    println!(
        "  last endpoint switched {last:.0} ms after the fault (sweep of all names ~ every 50-100 ms)"
    );
    println!(
        "  process CPU {:.2} s, main thread (controller loop) {:.2} s; controller rounds: CPU {:.3} s in {} rounds; journal +{} bytes ({} switch entries); RSS {} KiB, peak {} KiB",
        p1 - p0,
        m1 - m0,
        ctl1 - ctl0,
        r1 - r0,
        j1 - j0,
        sw1 - sw0,
        status_kib(pid, "VmRSS:"),
        status_kib(pid, "VmHWM:")
    );
    println!(
        "  journal times after the fault: last health transition +{} ms, last switch +{} ms (the controller's delay behind the prober: {} ms)",
        last_health.saturating_sub(t0_ms),
        last_switch.saturating_sub(t0_ms),
        last_switch as i64 - last_health as i64
    );
    println!("  threads: {:?}", threads_cpu(pid));
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = child.wait();
    if a.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    drop(rt);
}
