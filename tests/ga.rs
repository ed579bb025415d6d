//! Docker Hub through a Global Accelerator, failing back to the public answer, end to end on
//! loopback with real processes (issue 22):
//! - the "origin": a real `docker-registry` behind a Docker-Hub-shaped TLS front whose API,
//!   token realm and blob storage have three names (`tests/support/hub.rs`; a test CA);
//! - "GA": TCP proxies that do not touch TLS, on 127.0.0.40 (the accelerated address clients
//!   are answered) and 127.0.0.41 (a second accelerated address the `ga` instance is
//!   probed through, so the first one sees clients only); each counts connections;
//! - Knot serving the "public" zone (`hub.test`: every name → the origin) and `accel.test`
//!   (`ga.accel.test` → 127.0.0.40);
//! - regdns answering the three names with [ga (CNAME ga.accel.test.), direct (passthrough)];
//! - unbound forwarding the three names to regdns (`forward-first`) and the public zone as a
//!   stub;
//! - pulls by the project's own pull client (the canary pull: token, manifest, blob through
//!   its redirect) resolving every name through unbound.
//!
//! While the proxies run, pulls go through them; killed, pulls succeed with the same digest
//! within the failover bound + TTL without a new connection to the proxy; restarted, pulls go
//! through them again after the hold. The `direct` instance's probes never reach a proxy.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use regdns::probe::{CanarySpec, InstanceSpec, Prober};
use support::config::{Config, targets};
use support::hub::Hub;
use support::knot::{Knot, Zone};
use support::regdns::Regdns;
use support::registry::{Image, Registry};
use support::tls::Pki;
use support::unbound::Unbound;

const DOMAIN: &str = "hub.test";
const REPO: &str = "library/busybox";
const TAG: &str = "latest";
const TTL: u64 = 2;
const HOLD: Duration = Duration::from_secs(2);

/// A TCP proxy to `backend` on `addr` that can be killed and started again, counting the
/// connections it accepted while up.
struct Proxy {
    addr: SocketAddr,
    backend: SocketAddr,
    count: Arc<AtomicUsize>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(addr: SocketAddr, backend: SocketAddr) -> Proxy {
        let mut p = Proxy {
            addr,
            backend,
            count: Arc::default(),
            task: None,
        };
        p.up().await;
        p
    }

    async fn up(&mut self) {
        let l = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("proxy");
        let (count, backend) = (self.count.clone(), self.backend);
        self.task = Some(tokio::spawn(async move {
            while let Ok((mut down, _)) = l.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
            }
        }));
    }

    /// Closes the port (connection refused from now on).
    fn kill(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    fn connections(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// One pull of the canary image by the project's pull client, every name resolved through
/// `resolver`: the manifest digest, or the failure.
async fn pull(pki: &Pki, port: u16, resolver: SocketAddr) -> Result<String, String> {
    let mut s = InstanceSpec::new(
        "client",
        format!("https://registry.{DOMAIN}:{port}/v2/")
            .parse()
            .unwrap(),
    );
    s.ca_file = Some(pki.ca_file());
    s.resolver = Some(resolver);
    s.timeout = Duration::from_secs(2);
    let mut c = CanarySpec::new(REPO, TAG);
    c.timeout = Duration::from_secs(3);
    let p = Prober::new(&s).map_err(|e| e.to_string())?;
    let out = p.canary(&s.url, &c, Ok(None)).await;
    match (out.check.ok, out.digest) {
        (true, Some(d)) => Ok(d),
        _ => Err(out.check.detail),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_go_through_the_accelerator_and_fail_back_to_the_public_answer() {
    let pki = Pki::new();
    let reg = Registry::start();
    let img = Image::new("ga");
    img.push(&reg.base, REPO, TAG, None).await;
    let hub = Hub::start(&pki, DOMAIN, &reg.base, true).await;
    let port = hub.addr.port();
    let mut ga = Proxy::start(SocketAddr::from(([127, 0, 0, 40], port)), hub.addr).await;
    let mut ga_probe = Proxy::start(SocketAddr::from(([127, 0, 0, 41], port)), hub.addr).await;

    let soa = |o: &str| {
        format!(
            "$ORIGIN {o}\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n NS ns1\nns1 A 127.0.0.1\n"
        )
    };
    let public = Knot::start(&[
        Zone::new(
            &format!("{DOMAIN}."),
            &format!(
                "{}registry {TTL} A 127.0.0.1\nauth {TTL} A 127.0.0.1\nblobs {TTL} A 127.0.0.1\n",
                soa(&format!("{DOMAIN}."))
            ),
        ),
        Zone::new(
            "accel.test.",
            &format!("{}ga {TTL} A 127.0.0.40\n", soa("accel.test.")),
        ),
    ]);

    let dns = support::config::free_addr();
    let names = ["registry", "auth", "blobs"];
    let url = format!("https://registry.{DOMAIN}:{port}/v2/");
    let probe = "interval = \"500ms\"\ntimeout = \"500ms\"\nrise = 2\nfall = 2\n";
    let mut cfg = Config::on(dns)
        .server_str("upstream", &public.addr.to_string())
        .zone(&format!("{DOMAIN}."), "hub.zone")
        .instance(
            "ga",
            &format!(
                "url = \"{url}\"\nconnect = \"127.0.0.41:{port}\"\nconnect_hosts = [\"*\"]\nca_file = \"{}\"\nauth_check = true\n{probe}",
                pki.ca_file().display()
            ),
        )
        .instance(
            "direct",
            &format!(
                "url = \"{url}\"\nresolver = \"{}\"\nca_file = \"{}\"\nauth_check = true\n{probe}",
                public.addr,
                pki.ca_file().display()
            ),
        );
    for n in names {
        cfg = cfg.endpoint(
            &format!("{n}.{DOMAIN}."),
            &format!(
                "ttl = {TTL}\nfailback_hold = \"{}s\"\n\n{}",
                HOLD.as_secs(),
                targets(&[(
                    "default",
                    &[
                        ("ga", "cname = \"ga.accel.test.\""),
                        ("direct", "passthrough = true"),
                    ],
                )])
            ),
        );
    }
    let zone = soa(&format!("{DOMAIN}."));
    let r = Regdns::launch(cfg).file("hub.zone", &zone).start();
    // unbound answers `.test` names NXDOMAIN itself unless told otherwise (RFC 6761).
    let mut ub = Unbound::builder()
        .server_lines("    local-zone: \"test.\" nodefault")
        .stub_zone(&format!("{DOMAIN}."), &[public.addr])
        .forward_zone("accel.test.", &[public.addr]);
    for n in names {
        ub = ub.forward_zone_first(&format!("{n}.{DOMAIN}."), &[dns]);
    }
    let unbound = ub.start().expect("unbound");

    // Both instances up, every name on the accelerator.
    r.wait_status("ga and direct up", Duration::from_secs(15), |s| {
        s["instances"]
            .as_array()
            .is_some_and(|a| a.iter().all(|i| i["state"] == "up"))
            && s["endpoints"]
                .as_array()
                .is_some_and(|e| e.len() == 3 && e.iter().all(|x| x["active"] == "ga"))
    });
    let want = img.digest();
    let before = ga.connections();
    assert_eq!(pull(&pki, port, unbound.addr).await, Ok(want.clone()));
    assert!(
        ga.connections() >= before + 3,
        "the pull went through the accelerator (token, manifest, blob): {} → {}",
        before,
        ga.connections()
    );
    // The direct instance is probed through the public DNS: never through a proxy. Only the
    // ga instance reaches the second address; nothing but pulls reaches the first.
    let quiet = ga.connections();
    r.wait_probes(3, Duration::from_secs(10));
    assert_eq!(
        ga.connections(),
        quiet,
        "no probe reached the clients' accelerated address"
    );
    assert!(
        ga_probe.connections() > 0,
        "the ga instance is probed through its accelerated address"
    );

    // The accelerator fails.
    ga.kill();
    ga_probe.kill();
    let killed_at = Instant::now();
    // interval + (fall - 1) x fast_interval + timeout + 200 ms, then the TTL (unbound: + 1 s).
    let bound = Duration::from_millis(500 + 200 + 500 + 200) + Duration::from_secs(TTL + 1);
    let took = loop {
        match pull(&pki, port, unbound.addr).await {
            Ok(d) => {
                assert_eq!(d, want, "the same image through the public answer");
                break killed_at.elapsed();
            }
            Err(e) => assert!(
                killed_at.elapsed() < bound + Duration::from_secs(5),
                "no successful pull {:?} after the accelerator failed: {e}\n{:#}",
                killed_at.elapsed(),
                r.status()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("pulls succeed again {took:?} after the accelerator failed (bound {bound:?} + TTL)");
    let seen = ga.connections();
    for _ in 0..3 {
        assert_eq!(pull(&pki, port, unbound.addr).await, Ok(want.clone()));
    }
    assert_eq!(
        ga.connections(),
        seen,
        "no connection to the accelerator after the failover"
    );

    // The accelerator is back: after the hold (and the TTL), pulls go through it again.
    ga.up().await;
    ga_probe.up().await;
    let back_at = Instant::now();
    let before = ga.connections();
    loop {
        assert_eq!(pull(&pki, port, unbound.addr).await, Ok(want.clone()));
        if ga.connections() > before {
            break;
        }
        assert!(
            back_at.elapsed() < Duration::from_secs(20),
            "pulls never went through the accelerator again\n{:#}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        back_at.elapsed() >= HOLD,
        "failback waited the hold ({:?})",
        back_at.elapsed()
    );
    drop((hub, reg));
}
