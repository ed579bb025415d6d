//! Passthrough targets ("this name as the public DNS answers it"), end to end with the real
//! binary: the DNS answer is the public answer resolved through `server.upstream` (Knot
//! serving a "public" `docker.io`), SERVFAIL once the upstream fails and the last answer's
//! TTL has run out, a loop through an upstream that forwards the name back to regdns is
//! detected and never served; PrivateZone (the signature-checking fake) deletes exactly the
//! managed record in a `RECORD` zone and recreates it on failback, and deletes nothing in a
//! `ZONE` zone, saying why.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use regdns::sim::{Mode, SimRegistry};
use support::config::{Config, targets};
use support::dns::{Query, RecordType, answer_rdata, rcode};
use support::fake_pvtz::FakeCloud;
use support::knot::{Knot, Zone};
use support::regdns::{PROBE, Regdns};
use support::unbound::Unbound;

const NAME: &str = "registry-1.docker.io.";
const GA: &str = "ga.accel.test.";
const PUBLIC: &str = "127.0.0.31";

const DOCKER_IO: &str = "$ORIGIN docker.io.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n NS ns1\nns1 A 127.0.0.1\n";

/// The "public" DNS: `registry-1.docker.io` (TTL 2 s) and `ga.accel.test`.
fn public_dns() -> Knot {
    Knot::start(&[
        Zone::new(
            "docker.io.",
            &format!("{DOCKER_IO}registry-1 2 IN A {PUBLIC}\n"),
        ),
        Zone::new(
            "accel.test.",
            "$ORIGIN accel.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n NS ns1\nns1 A 127.0.0.1\nga A 127.0.0.40\n",
        ),
    ])
}

/// regdns authoritative for `docker.io.` with the one endpoint `registry-1.docker.io.`:
/// targets [ga (CNAME ga.accel.test.), direct (passthrough)], `upstream` the resolver.
fn config(
    dns: SocketAddr,
    ga: &SimRegistry,
    direct: &SimRegistry,
    upstream: SocketAddr,
    extra: &str,
) -> Config {
    Config::on(dns)
        .server_str("upstream", &upstream.to_string())
        .zone("docker.io.", "docker.io.zone")
        .instance("ga", &format!("url = \"http://{}/v2/\"\n{PROBE}", ga.addr))
        .instance(
            "direct",
            &format!("url = \"http://{}/v2/\"\n{PROBE}", direct.addr),
        )
        .endpoint(
            NAME,
            &format!(
                "ttl = 5\nfailback_hold = \"1s\"\n{extra}\n{}",
                targets(&[(
                    "default",
                    &[
                        ("ga", &format!("cname = \"{GA}\"")),
                        ("direct", "passthrough = true")
                    ],
                )])
            ),
        )
}

fn ask(dns: SocketAddr) -> (String, Vec<String>) {
    match Query::new(NAME, RecordType::A)
        .timeout(Duration::from_millis(500))
        .udp(dns)
    {
        Ok(m) => (rcode(&m), answer_rdata(&m)),
        Err(e) => ("no answer".into(), vec![e.to_string()]),
    }
}

fn wait(r: &Regdns, what: &str, within: Duration, ok: impl Fn(&(String, Vec<String>)) -> bool) {
    let t0 = Instant::now();
    loop {
        let a = ask(r.dns);
        if ok(&a) {
            return;
        }
        assert!(
            t0.elapsed() < within,
            "{what}: still {a:?} after {within:?}\n{:#}\n{}",
            r.status(),
            r.proc.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn passthrough_row(s: &serde_json::Value) -> serde_json::Value {
    s["publishers"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|p| p["name"] == format!("passthrough:{NAME}"))
                .cloned()
        })
        .unwrap_or(serde_json::Value::Null)
}

async fn sims() -> (SimRegistry, SimRegistry) {
    let s = || SimRegistry::start(([127, 0, 0, 1], 0).into(), false);
    (s().await.unwrap(), s().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_answer_is_served_and_servfail_when_the_upstream_fails() {
    let mut public = public_dns();
    let (ga, direct) = sims().await;
    let dns = support::config::free_addr();
    let r = Regdns::launch(config(dns, &ga, &direct, public.addr, ""))
        .file("docker.io.zone", DOCKER_IO)
        .ready(move || ask(dns).0 != "no answer")
        .start();
    wait(&r, "the accelerated answer", Duration::from_secs(5), |a| {
        a.1 == [GA.to_string()]
    });
    r.wait_status("the public answer resolved", Duration::from_secs(10), |s| {
        passthrough_row(s)["state"] == "ok"
            && passthrough_row(s)["detail"]
                .as_str()
                .is_some_and(|d| d.contains(PUBLIC))
    });

    // The accelerated path fails: the public answer of the very name.
    ga.set(Mode::Refuse);
    wait(&r, "the public answer", Duration::from_secs(10), |a| {
        a.0 == "NOERROR" && a.1 == [PUBLIC.to_string()]
    });

    // The upstream fails: once the last answer's TTL (2 s) is over, SERVFAIL.
    public.proc.kill();
    wait(&r, "SERVFAIL", Duration::from_secs(20), |a| {
        a.0 == "SERVFAIL"
    });
    let s = r.status();
    assert_eq!(passthrough_row(&s)["state"], "error", "{s:#}");
    let (_, metrics) = r.call("GET", "/metrics", None);
    assert!(
        metrics.as_str().is_some_and(|m| m.contains(&format!(
            "regdns_passthrough_errors_total{{name=\"{NAME}\",reason=\"error\"}}"
        ))),
        "{metrics}"
    );

    // The accelerated path is back: its answer after the hold, whatever the upstream.
    ga.set(Mode::Healthy);
    wait(
        &r,
        "the accelerated answer again",
        Duration::from_secs(10),
        |a| a.1 == [GA.to_string()],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_through_the_upstream_is_detected_and_never_served() {
    let public = public_dns();
    let (ga, direct) = sims().await;
    let dns = support::config::free_addr();
    // The mistake `check` warns about: the upstream forwards docker.io back to regdns.
    let unbound = Unbound::builder()
        .forward_zone("docker.io.", &[dns])
        .forward_zone("accel.test.", &[public.addr])
        .start()
        .expect("unbound");
    let r = Regdns::launch(config(dns, &ga, &direct, unbound.addr, ""))
        .file("docker.io.zone", DOCKER_IO)
        .ready(move || ask(dns).0 != "no answer")
        .start();
    let s = r.wait_status("the loop reported", Duration::from_secs(15), |s| {
        passthrough_row(s)["state"] == "loop"
    });
    let row = passthrough_row(&s);
    assert!(
        row["detail"]
            .as_str()
            .is_some_and(|d| d.contains(GA) && d.contains("forwards")),
        "{row:#}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_regdns"))
        .args(["check", "-c"])
        .arg(r.config_path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("must not forward this name to regdns"),
        "check warns about the upstream: {text}"
    );
    // Failing over to the passthrough: SERVFAIL, never the looped answer.
    ga.set(Mode::Refuse);
    r.wait_status("direct active", Duration::from_secs(10), |s| {
        s["endpoints"][0]["active"] == "direct"
    });
    for _ in 0..5 {
        let a = ask(r.dns);
        assert_eq!(a.0, "SERVFAIL", "{a:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, metrics) = r.call("GET", "/metrics", None);
    assert!(
        metrics
            .as_str()
            .is_some_and(|m| m.contains("reason=\"loop\"")),
        "{metrics}"
    );
}

const KEY: &str = "LTAI5tPassthrough000abcd";
const SECRET: &str = "passthrough-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privatezone_deletes_only_in_a_record_zone_and_recreates_on_failback() {
    let (ga, direct) = sims().await;
    let pvtz = FakeCloud::start().await;
    pvtz.add_key(KEY, SECRET);
    // docker.io resolves names without a record recursively; io does not (the default).
    pvtz.add_zone("zone-rec", "docker.io", &[("cn-hangzhou", "vpc-a")]);
    pvtz.set_proxy_pattern("zone-rec", "RECORD");
    pvtz.add_zone("zone-io", "io", &[("cn-hangzhou", "vpc-a")]);
    pvtz.add_record("zone-rec", "auth", "A", "127.0.0.77", 60);
    let endpoint = |zone: &str, rr: &str| {
        format!(
            "ttl = 5\nfailback_hold = \"1s\"\n\n{}\n[[endpoint.privatezone]]\nview = \"default\"\nzone_id = \"{zone}\"\nrr = \"{rr}\"\n",
            targets(&[(
                "default",
                &[
                    ("ga", &format!("cname = \"{GA}\"")),
                    ("direct", "passthrough = true")
                ],
            )])
        )
    };
    // Both names are published only (no [[zone]] of regdns holds them).
    let cfg = Config::new()
        .zone("registry.test.", "registry.test.zone")
        .instance("ga", &format!("url = \"http://{}/v2/\"\n{PROBE}", ga.addr))
        .instance(
            "direct",
            &format!("url = \"http://{}/v2/\"\n{PROBE}", direct.addr),
        )
        .endpoint(NAME, &endpoint("zone-rec", "registry-1"))
        .endpoint("docker.io.", &endpoint("zone-io", "docker"))
        .raw(&format!(
            "[privatezone]\nregion = \"cn-hangzhou\"\nendpoint = \"{}\"\n",
            pvtz.pvtz_endpoint
        ));
    let r = Regdns::launch(cfg)
        .file(
            "registry.test.zone",
            "$ORIGIN registry.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n NS ns1\nns1 A 127.0.0.1\n",
        )
        .cloud_key(KEY, SECRET)
        .start();
    let cname = vec![("CNAME".to_string(), GA.trim_end_matches('.').to_string(), 5)];
    let wait_fake = |what: &str, ok: &dyn Fn() -> bool| {
        let t0 = Instant::now();
        while !ok() {
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "{what}: {:?} / {:?}\n{:#}\n{}",
                pvtz.records("zone-rec"),
                pvtz.records("zone-io"),
                r.status(),
                r.proc.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_fake("both records on the accelerator", &|| {
        pvtz.answers("zone-rec", "registry-1") == cname
            && pvtz.answers("zone-io", "docker") == cname
    });

    ga.set(Mode::Refuse);
    // RECORD zone: exactly the managed record is deleted (auth stays).
    wait_fake("registry-1 deleted in the RECORD zone", &|| {
        pvtz.answers("zone-rec", "registry-1").is_empty()
    });
    assert_eq!(
        pvtz.answers("zone-rec", "auth"),
        vec![("A".to_string(), "127.0.0.77".to_string(), 60)]
    );
    // ZONE zone: nothing deleted, and the binding's status says why.
    let s = r.wait_status("the ZONE zone refused", Duration::from_secs(15), |s| {
        s["publishers"].as_array().is_some_and(|a| {
            a.iter().any(|p| {
                p["name"] == "privatezone:zone-io/docker"
                    && p["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("ProxyPattern ZONE"))
            })
        })
    });
    assert_eq!(pvtz.answers("zone-io", "docker"), cname, "{s:#}");
    let deletes: Vec<_> = pvtz
        .calls("DeleteZoneRecord")
        .into_iter()
        .filter(|c| c.code == "OK")
        .collect();
    assert_eq!(
        deletes.len(),
        1,
        "one delete, in the RECORD zone: {deletes:?}"
    );

    // Failback: the record is recreated.
    ga.set(Mode::Healthy);
    wait_fake("registry-1 recreated on failback", &|| {
        pvtz.answers("zone-rec", "registry-1") == cname
    });
    drop(direct);
}
