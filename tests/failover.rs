//! Failover end to end: the real `regdns` binary probing real HTTP servers on loopback.
//! For every way a registry fails (connection refused, accept-then-hang, 503, slow body,
//! 401 without challenge, TLS certificate for the wrong name, expired, untrusted) the DNS
//! answer, queried over the wire, moves to the next target, the switch is journaled with
//! the precise reason, and it moves back according to the failback policy. Also the real
//! CNCF distribution registry (Debian `docker-registry`) when installed.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use regdns::sim::{Mode, SimRegistry};
use regdns::state::journal;
use support::proc::{self, Proc};

use support::regdns::{PRIMARY, SECONDARY, answer, http, registries, start, wait_answer};

fn switches(state_dir: &Path) -> Vec<journal::Entry> {
    journal::read_since(state_dir, 0, 3)
        .into_iter()
        .filter(|e| e.kind == "switch")
        .collect()
}

/// One full cycle for a fault: healthy → fault → answer moves (journaled with `reason`)
/// → heal → answer returns after the hold.
async fn cycle(mode: Mode, reason: &str) {
    let (hz, zjk, dns) = registries(true).await;
    let r = start(
        dns,
        &http(&hz),
        &format!("{}\nauth_check = true", http(&zjk)),
        "failback_hold = \"1s\"",
    );
    wait_answer(dns, PRIMARY, Duration::from_secs(5)).await;
    hz.set(mode);
    let took = wait_answer(dns, SECONDARY, Duration::from_secs(10)).await;
    eprintln!("{mode:?}: failover after {took:?}");
    assert_eq!(
        answer(dns, "127.0.0.2").unwrap(),
        "A 10.1.3.4",
        "the VPC view moved too"
    );
    let sw = switches(&r.state_dir());
    let last = sw.last().expect("switch journaled");
    assert_eq!(last.to.as_deref(), Some("zhangjiakou"));
    assert_eq!(last.actor, "regdns");
    assert!(
        last.reason.contains(reason),
        "journaled reason {:?} should mention {reason:?}",
        last.reason
    );
    hz.set(Mode::Healthy);
    let back = wait_answer(dns, PRIMARY, Duration::from_secs(10)).await;
    assert!(
        back >= Duration::from_secs(1),
        "failback waited the 1 s hold (took {back:?})"
    );
    let sw = switches(&r.state_dir());
    assert!(
        sw.last().unwrap().reason.contains("failback to hangzhou"),
        "{:?}",
        sw.last()
    );
    drop(r.proc);
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_refused() {
    cycle(Mode::Refuse, "connection refused").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn accept_then_hang() {
    cycle(Mode::Hang, "timeout").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn service_unavailable() {
    cycle(Mode::Unavailable, "HTTP 503").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_body() {
    cycle(Mode::SlowBody, "timeout").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthorized_without_challenge() {
    cycle(Mode::NoChallenge, "without WWW-Authenticate").await;
}

/// TLS faults: the instance must present a valid certificate for the custom name.
#[tokio::test(flavor = "multi_thread")]
async fn tls_certificate_faults() {
    let pki = support::tls::Pki::new();
    let backend = SimRegistry::start(([127, 0, 0, 1], 0).into(), false)
        .await
        .unwrap();
    let good = pki.leaf(&["cross-region.registry.io"], false);
    let (front, cert) = support::tls::tls_front(backend.addr, good.clone()).await;
    let zjk = SimRegistry::start(([127, 0, 0, 1], 0).into(), false)
        .await
        .unwrap();
    let hz_cfg = format!(
        "url = \"https://cross-region.registry.io:{}/v2/\"\nconnect = \"{front}\"\nca_file = \"{}\"",
        front.port(),
        pki.ca_file().display()
    );
    let dns = SocketAddr::new([127, 0, 0, 1].into(), proc::free_port());
    let r = start(dns, &hz_cfg, &http(&zjk), "failback_hold = \"500ms\"");
    wait_answer(dns, PRIMARY, Duration::from_secs(5)).await;
    for (bad, reason) in [
        (
            pki.leaf(&["other.example"], false),
            "not valid for cross-region.registry.io",
        ),
        (pki.leaf(&["cross-region.registry.io"], true), "expired"),
        (
            support::tls::self_signed(&["cross-region.registry.io"]),
            "unknown issuer",
        ),
    ] {
        cert.set(bad);
        wait_answer(dns, SECONDARY, Duration::from_secs(10)).await;
        let sw = switches(&r.state_dir());
        assert!(
            sw.last().unwrap().reason.contains(reason),
            "{:?} should mention {reason}",
            sw.last().unwrap().reason
        );
        cert.set(good.clone());
        wait_answer(dns, PRIMARY, Duration::from_secs(10)).await;
    }
}

/// Manual failback: after the primary recovers the answer stays, with failback pending.
#[tokio::test(flavor = "multi_thread")]
async fn manual_failback_stays_until_confirmed() {
    let (hz, zjk, dns) = registries(false).await;
    let r = start(dns, &http(&hz), &http(&zjk), "failback = \"manual\"");
    wait_answer(dns, PRIMARY, Duration::from_secs(5)).await;
    hz.set(Mode::Refuse);
    wait_answer(dns, SECONDARY, Duration::from_secs(10)).await;
    hz.set(Mode::Healthy);
    // Wait until hangzhou is seen up again (journaled).
    let t0 = Instant::now();
    let state = r.state_dir();
    while !journal::read_since(&state, 0, 3).iter().any(|e| {
        e.kind == "health" && e.to.as_deref() == Some("up") && e.from.as_deref() == Some("down")
    }) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "hangzhou never came back up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Three more probes of every instance (each a chance to decide) after that.
    tokio::task::block_in_place(|| r.wait_probes(3, Duration::from_secs(10)));
    assert!(
        answer(dns, "127.0.0.1").unwrap().contains(SECONDARY),
        "manual failback: no automatic return"
    );
    let saved = std::fs::read_to_string(state.join("state.json")).unwrap();
    assert!(
        saved.contains("\"failback_pending\": \"hangzhou\""),
        "{saved}"
    );
}

/// The real CNCF distribution registry (Debian `docker-registry`), killed by PID.
#[tokio::test(flavor = "multi_thread")]
async fn real_docker_registry_killed() {
    let Some(bin) = proc::which("docker-registry") else {
        eprintln!("SKIP: docker-registry is not installed (apt-get install docker-registry)");
        return;
    };
    let dir = proc::temp_dir("docker-registry");
    let port = proc::free_port();
    std::fs::write(
        dir.path().join("config.yml"),
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: regdns-test\n",
            dir.path().join("storage").display()
        ),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("serve").arg(dir.path().join("config.yml"));
    let mut registry = Proc::start("docker-registry", cmd, dir, Duration::from_secs(15), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .expect("docker-registry starts");
    let zjk = SimRegistry::start(([127, 0, 0, 1], 0).into(), true)
        .await
        .unwrap();
    let dns = SocketAddr::new([127, 0, 0, 1].into(), proc::free_port());
    let r = start(
        dns,
        &format!("url = \"http://127.0.0.1:{port}/v2/\""),
        &http(&zjk),
        "failback_hold = \"1s\"",
    );
    wait_answer(dns, PRIMARY, Duration::from_secs(5)).await;
    registry.kill();
    wait_answer(dns, SECONDARY, Duration::from_secs(10)).await;
    let sw = switches(&r.state_dir());
    assert!(
        sw.last().unwrap().reason.contains("connection refused"),
        "{:?}",
        sw.last()
    );
}
