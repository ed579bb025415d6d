//! Probing a path, not just a name (issue 22): a registry whose token realm and blob
//! storage live on other host names (`tests/support/hub.rs`: `registry.`, `auth.` and
//! `blobs.` of a `.test` domain that resolves nowhere, one TLS address, a real
//! `docker-registry` behind), reached
//! - through one address (`connect` + `connect_hosts`, as a Global Accelerator listener
//!   whose backends are Docker Hub's hosts): a counting TCP proxy on the connect address
//!   sees every connection while SNI and `Host` keep the real names;
//! - through names only a DNS server the test runs knows (`resolver`, Knot): the probe and
//!   the canary reach the registry, status shows the names with their addresses, and a
//!   wrong resolver is a precise DNS failure.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use regdns::probe::{CanarySpec, InstanceSpec, ManifestCheck, Prober, probe_once};
use support::config::Config;
use support::hub::Hub;
use support::knot::{Knot, Zone};
use support::regdns::{Regdns, ZONE};
use support::registry::{Image, Registry};
use support::tls::Pki;

const REPO: &str = "library/busybox";
const TAG: &str = "latest";
const DOMAIN: &str = "gapath.test";

/// A TCP proxy on 127.0.0.1 that copies every connection to `backend` (a Global
/// Accelerator listener, for the test) and counts them.
async fn counting_proxy(backend: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut down, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut up) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                }
            });
        }
    });
    (addr, count)
}

/// A registry with the canary image and the hub in front of it.
async fn hub(pki: &Pki, port_in_urls: bool) -> (Registry, Hub, Image) {
    let reg = Registry::start();
    let img = Image::new("path");
    img.push(&reg.base, REPO, TAG, None).await;
    let hub = Hub::start(pki, DOMAIN, &reg.base, port_in_urls).await;
    (reg, hub, img)
}

/// The instance of the hub's registry dialled through `connect`, with `connect_hosts`.
fn spec(pki: &Pki, connect: SocketAddr, connect_hosts: &[&str]) -> InstanceSpec {
    let mut s = InstanceSpec::new(
        "hub",
        format!("https://{}/v2/", reg_host()).parse().unwrap(),
    );
    s.connect = Some(connect.to_string());
    s.connect_hosts = connect_hosts.iter().map(|h| h.to_string()).collect();
    s.ca_file = Some(pki.ca_file());
    s.auth_check = true;
    s.timeout = Duration::from_secs(2);
    let mut c = CanarySpec::new(REPO, TAG);
    c.timeout = Duration::from_secs(3);
    s.canary = Some(c);
    s
}

fn reg_host() -> String {
    format!("registry.{DOMAIN}")
}

/// Runs the probe and the canary once with a fresh prober: the report's checks by name and
/// the canary's check.
async fn run(s: &InstanceSpec) -> (Vec<(String, bool, String)>, (bool, String)) {
    let p = Prober::new(s).expect("prober");
    let r = probe_once(s, &p).await;
    let checks = r
        .checks
        .iter()
        .map(|c| (c.check.clone(), c.ok, c.detail.clone()))
        .collect();
    let c = p
        .canary(&s.url, s.canary.as_ref().unwrap(), Ok(None))
        .await
        .check;
    eprintln!("{:?} → {checks:?}; canary {}", s.connect_hosts, c.detail);
    (checks, (c.ok, c.detail))
}

/// `host` did not resolve: the system resolver says so, or (without DNS service at all) the
/// connection's budget ran out while resolving.
fn unresolved(detail: &str, host: &str) -> bool {
    detail.contains(&format!("DNS: cannot resolve {host}")) || detail.ends_with("(dns)")
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_hosts_dial_the_realm_and_the_blob_host_through_the_connect_address() {
    let pki = Pki::new();
    let (_reg, hub, img) = hub(&pki, false).await;
    let (proxy, connections) = counting_proxy(hub.addr).await;

    // `connect` alone: `/v2/` goes through the proxy, the realm's name does not resolve.
    let (checks, (ok, canary)) = run(&spec(&pki, proxy, &[])).await;
    assert_eq!(
        (checks[0].0.as_str(), checks[0].1, checks[0].2.as_str()),
        ("v2", true, "HTTP 401 Bearer challenge")
    );
    assert_eq!((checks[1].0.as_str(), checks[1].1), ("auth", false));
    assert!(
        checks[1]
            .2
            .starts_with(&format!("token service https://{}/token: ", hub.auth_host)),
        "{}",
        checks[1].2
    );
    assert!(unresolved(&checks[1].2, &hub.auth_host), "{}", checks[1].2);
    assert!(!ok);
    assert!(
        canary.starts_with(&format!("token from {}: ", hub.auth_host)),
        "{canary}"
    );
    assert!(unresolved(&canary, &hub.auth_host), "{canary}");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        hub.sni().len(),
        "every connection the hub saw came through the connect address"
    );
    assert!(
        hub.sni().iter().all(|n| *n == reg_host()),
        "{:?}",
        hub.sni()
    );

    // The realm's name listed: the probe passes; the blob redirect's name is not listed.
    let (checks, (ok, canary)) = run(&spec(&pki, proxy, &["auth.gapath.test"])).await;
    assert!(checks.iter().all(|c| c.1), "{checks:?}");
    assert_eq!(checks[1].2, "token service 200");
    assert!(!ok);
    let blob = regdns::probe::canary::short_digest(&support::registry::digest(&img.layer));
    assert!(
        canary.starts_with(&format!("blob {blob} via redirect to {}: ", hub.blobs_host)),
        "{canary}"
    );
    assert!(unresolved(&canary, &hub.blobs_host), "{canary}");

    // Both names listed, then `*`: the probe and the whole pull go through the one address,
    // with the real names for SNI and Host.
    for hosts in [&["AUTH.gapath.test", "blobs.gapath.test."][..], &["*"][..]] {
        hub.clear();
        let before = connections.load(Ordering::SeqCst);
        let (checks, (ok, canary)) = run(&spec(&pki, proxy, hosts)).await;
        assert!(checks.iter().all(|c| c.1), "{hosts:?}: {checks:?}");
        assert!(ok, "{hosts:?}: {canary}");
        assert!(
            canary.starts_with(&format!(
                "pulled {REPO}:{TAG} {} (manifest, blob ",
                regdns::probe::canary::short_digest(&img.digest())
            )),
            "{canary}"
        );
        let names: BTreeSet<String> = hub.sni().into_iter().collect();
        let all: BTreeSet<String> = [&reg_host(), &hub.auth_host, &hub.blobs_host]
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(names, all, "SNI keeps the real names");
        let hosts_sent: BTreeSet<String> = hub.hits().into_iter().map(|h| h.host).collect();
        assert_eq!(hosts_sent, all, "Host keeps the real names");
        assert_eq!(
            connections.load(Ordering::SeqCst) - before,
            hub.sni().len(),
            "every connection went through the connect address"
        );
        // v2 + auth, then the canary: v2-less pull of token, manifest (401, then with the
        // token) and the blob (registry, then storage): one connection per request.
        assert_eq!(hub.sni().len(), hub.hits().len());
        assert!(
            hub.count("GET", &hub.blobs_host, "/") == 1,
            "{:?}",
            hub.hits()
        );
    }
}

/// The hub's instance in a daemon config: dialled through `connect` + `connect_hosts =
/// ["*"]`, with `auth_check` and a canary.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_probes_a_path_given_by_connect_hosts() {
    let pki = Pki::new();
    let (_reg, hub, _img) = hub(&pki, false).await;
    let (proxy, connections) = counting_proxy(hub.addr).await;
    let ca = pki.ca_file();
    let instance = |connect_hosts: &str| {
        format!(
            "url = \"https://{}/v2/\"\nconnect = \"{proxy}\"\n{connect_hosts}\nca_file = \"{}\"\nauth_check = true\ninterval = \"1s\"\ntimeout = \"1s\"\nrise = 1\nfall = 1\ncanary = {{ repository = \"{REPO}\", reference = \"{TAG}\", interval = \"1s\", timeout = \"1s\" }}",
            reg_host(),
            ca.display()
        )
    };
    let r = daemon(
        &instance("connect_hosts = [\"*\"]"),
        &instance(""),
        support::regdns::ZONE,
    );
    let s = r.wait_status(
        "hangzhou up and zhangjiakou down",
        Duration::from_secs(20),
        |s| {
            state(s, "hangzhou") == "up"
                && state(s, "zhangjiakou") == "down"
                && has_check(inst(s, "zhangjiakou"), "auth")
        },
    );
    let hz = inst(&s, "hangzhou");
    let checks: Vec<(&str, bool)> = hz["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["check"].as_str().unwrap(), c["ok"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        checks,
        [("v2", true), ("auth", true), ("canary", true)],
        "{hz:#}"
    );
    let zjk = inst(&s, "zhangjiakou");
    let auth = check_of(zjk, "auth")["detail"].as_str().unwrap();
    assert!(
        auth.starts_with(&format!("token service https://{}/token: ", hub.auth_host)),
        "{auth}"
    );
    assert!(unresolved(auth, &hub.auth_host), "{auth}");
    assert_eq!(check_of(zjk, "v2")["ok"], true, "{zjk:#}");
    assert!(connections.load(Ordering::SeqCst) > 0);
    assert!(hub.sni().contains(&hub.blobs_host), "{:?}", hub.sni());

    // `regdns check` says where each instance is dialled.
    let out = check(&r);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "GET https://{}/v2/ via {proxy} (and every other host the checks contact), every 1s",
            reg_host()
        )),
        "{text}"
    );
}

/// `regdns check -c CONFIG` of a running daemon's config (bounded run time).
fn check(r: &Regdns) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_regdns"));
    cmd.arg("check").arg("-c").arg(r.config_path());
    let out = support::daemon::run_bounded(cmd, Duration::from_secs(20));
    assert!(out.status.success(), "{out:?}");
    out
}

/// The check `name` of an instance's status.
fn check_of<'a>(inst: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    inst["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["check"] == name))
        .unwrap_or_else(|| panic!("no check {name}: {inst:#}"))
}

fn has_check(inst: &serde_json::Value, name: &str) -> bool {
    inst["checks"]
        .as_array()
        .is_some_and(|a| a.iter().any(|c| c["check"] == name))
}

fn state(s: &serde_json::Value, id: &str) -> String {
    inst(s, id)["state"].as_str().unwrap_or("").to_string()
}

fn inst<'a>(s: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    s["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap()
}

/// `regdns serve` with the two instances `hangzhou` and `zhangjiakou` (TOML lines) behind
/// one endpoint.
fn daemon(hz: &str, zjk: &str, zone: &str) -> Regdns {
    let config = Config::on(support::config::free_addr())
        .zone("registry.io.", "registry.io.zone")
        .instance("hangzhou", hz)
        .instance("zhangjiakou", zjk)
        .endpoint(
            "cross-region.registry.io.",
            &format!(
                "ttl = 5\n\n{}",
                support::config::targets(&[(
                    "default",
                    &[
                        ("hangzhou", "cname = \"a.example.\""),
                        ("zhangjiakou", "cname = \"b.example.\""),
                    ],
                )])
            ),
        );
    Regdns::launch(config)
        .file("registry.io.zone", zone)
        .start()
}

/// The hub's names in a zone served by Knot (the blob host through a CNAME).
fn knot() -> Knot {
    Knot::start(&[Zone::new(
        DOMAIN,
        "$ORIGIN gapath.test.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n  NS ns\nns A 127.0.0.1\nregistry A 127.0.0.1\nauth A 127.0.0.1\nblobs CNAME edge\nedge A 127.0.0.1\n",
    )])
}

#[tokio::test(flavor = "multi_thread")]
async fn names_resolve_through_the_instance_resolver() {
    let pki = Pki::new();
    let (_reg, hub, img) = hub(&pki, true).await;
    let knot = knot();
    let url = format!("https://{}:{}/v2/", reg_host(), hub.addr.port());
    let mut s = InstanceSpec::new("hub", url.parse().unwrap());
    s.resolver = Some(knot.addr);
    s.ca_file = Some(pki.ca_file());
    s.auth_check = true;
    s.timeout = Duration::from_secs(2);
    let mut c = CanarySpec::new(REPO, TAG);
    c.timeout = Duration::from_secs(3);
    let p = Prober::new(&s).unwrap();
    let canary = p.canary(&s.url, &c, Ok(None)).await.check;
    assert!(canary.ok, "{}", canary.detail);
    assert!(
        canary
            .detail
            .contains(&regdns::probe::canary::short_digest(&img.digest())),
        "{}",
        canary.detail
    );
    let r = probe_once(&s, &p).await;
    assert!(r.ok, "{}", r.summary());
    let resolved: Vec<(String, Vec<String>, SocketAddr)> = r
        .resolved
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                n.addresses.iter().map(|a| a.to_string()).collect(),
                n.resolver,
            )
        })
        .collect();
    let lo = vec!["127.0.0.1".to_string()];
    assert_eq!(
        resolved,
        [
            (hub.auth_host.clone(), lo.clone(), knot.addr),
            (hub.blobs_host.clone(), lo.clone(), knot.addr),
            (reg_host(), lo.clone(), knot.addr),
        ]
    );
    let hosts: BTreeSet<String> = hub
        .hits()
        .into_iter()
        .map(|h| h.host.split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(hosts.len(), 3, "{hosts:?}");

    // A name the server does not know, and a name outside its zones.
    let mut s2 = s.clone();
    s2.url = format!("https://missing.{DOMAIN}:{}/v2/", hub.addr.port())
        .parse()
        .unwrap();
    let r = probe_once(&s2, &Prober::new(&s2).unwrap()).await;
    assert_eq!(
        r.checks[0].detail,
        format!(
            "DNS: cannot resolve missing.{DOMAIN} (resolver {}: NXDOMAIN for missing.{DOMAIN}. A)",
            knot.addr
        )
    );
    s2.url = "https://registry.elsewhere.test/v2/".parse().unwrap();
    let p2 = Prober::new(&s2).unwrap();
    let r = probe_once(&s2, &p2).await;
    assert_eq!(
        r.checks[0].detail,
        format!(
            "DNS: cannot resolve registry.elsewhere.test (resolver {}: REFUSED for registry.elsewhere.test. A)",
            knot.addr
        )
    );
    assert!(r.resolved.is_empty(), "a failed name is not shown");

    // With `connect`, the connect name is resolved through the resolver too.
    let mut s3 = s.clone();
    s3.connect = Some(format!("edge.{DOMAIN}:{}", hub.addr.port()));
    s3.connect_hosts = vec!["*".into()];
    let p3 = Prober::new(&s3).unwrap();
    let r = probe_once(&s3, &p3).await;
    assert!(r.ok, "{}", r.summary());
    let names: Vec<&str> = r.resolved.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, [format!("edge.{DOMAIN}")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_the_names_resolved_and_a_wrong_resolver_is_a_dns_failure() {
    let pki = Pki::new();
    let (_reg, hub, _img) = hub(&pki, true).await;
    let knot = knot();
    // A UDP port nothing listens on (bound, then released): queries to it are refused.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let ca = pki.ca_file();
    let instance = |resolver: SocketAddr| {
        format!(
            "url = \"https://{}:{}/v2/\"\nresolver = \"{resolver}\"\nca_file = \"{}\"\nauth_check = true\ninterval = \"1s\"\ntimeout = \"1s\"\nrise = 1\nfall = 1\ncanary = {{ repository = \"{REPO}\", reference = \"{TAG}\", interval = \"1s\", timeout = \"1s\", manifest = \"head\", blob_every = 2 }}",
            reg_host(),
            hub.addr.port(),
            ca.display()
        )
    };
    let r = daemon(&instance(knot.addr), &instance(silent), ZONE);
    let s = r.wait_status(
        "hangzhou up with three names resolved, zhangjiakou down",
        Duration::from_secs(20),
        |s| {
            state(s, "hangzhou") == "up"
                && inst(s, "hangzhou")["resolved"]
                    .as_array()
                    .is_some_and(|a| a.len() == 3)
                && state(s, "zhangjiakou") == "down"
                && has_check(inst(s, "zhangjiakou"), "v2")
        },
    );
    let hz = inst(&s, "hangzhou");
    let resolved: Vec<(String, String, String)> = hz["resolved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["addresses"].to_string(),
                n["resolver"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let k = knot.addr.to_string();
    assert_eq!(
        resolved,
        [
            (hub.auth_host.clone(), "[\"127.0.0.1\"]".into(), k.clone()),
            (hub.blobs_host.clone(), "[\"127.0.0.1\"]".into(), k.clone()),
            (reg_host(), "[\"127.0.0.1\"]".into(), k.clone()),
        ],
        "{hz:#}"
    );
    let canary = check_of(hz, "canary");
    assert!(
        canary["detail"].as_str().unwrap().contains("with HEAD"),
        "{canary}"
    );
    let zjk = inst(&s, "zhangjiakou");
    assert_eq!(
        check_of(zjk, "v2")["detail"].as_str().unwrap(),
        format!(
            "DNS: cannot resolve {} (resolver {silent}: connection refused)",
            reg_host()
        ),
        "{zjk:#}"
    );
    assert!(
        zjk["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("(resolver {silent}: connection refused)")),
        "{zjk:#}"
    );
    assert!(zjk.get("resolved").is_none(), "{zjk:#}");

    // `regdns check` names the resolver and the canary's mode.
    let out = check(&r);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(", names resolved through {k}, every 1s")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "+ canary pull {REPO}:{TAG} (manifest by HEAD, a blob every 2 runs) every 1s"
        )),
        "{text}"
    );

    // `regdns status`: the RESOLVED table.
    let out = r.cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text
        .split("RESOLVED (through each instance's resolver)\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no RESOLVED section: {text}"))
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["ID", "RESOLVER", "NAME", "ADDRESSES"],
            vec!["hangzhou", &k, &hub.auth_host, "127.0.0.1"],
            vec!["hangzhou", &k, &hub.blobs_host, "127.0.0.1"],
            vec!["hangzhou", &k, &reg_host(), "127.0.0.1"],
        ],
        "{text}"
    );
}

/// `ManifestCheck` is re-exported for specs built in code.
#[test]
fn manifest_check_defaults_to_get() {
    assert_eq!(CanarySpec::new(REPO, TAG).manifest, ManifestCheck::Get);
    assert_eq!(CanarySpec::new(REPO, TAG).blob_every, 1);
}
