//! Provider independence, end to end with the real binary: one regdns publishes to
//! PrivateZone (strict fake), Alibaba Cloud DNS (strict fake) and an RFC 2136 primary
//! (real Knot) while serving DNS. With every Alidns call held far longer than the client
//! timeout, a failover still reaches the DNS answers, PrivateZone and Knot while Alidns is
//! still stuck on the old answer; once Alidns answers again it converges too.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use support::config::{Config, targets};
use support::dns::{Query, answer_rdata};
use support::fake_alidns::{FakeAlidns, FaultKind};
use support::fake_pvtz::FakeCloud;
use support::primary::{self, rrset};
use support::proc::Proc;
use support::regdns::Regdns;

const KEY: &str = "LTAI5tIndependence00abcd";
const SECRET: &str = "independence-secret";
const ZONE_ID: &str = "zone-ind0001";
const SERVED: &str = "cr.registry.test.";
const PUBLISHED: &str = "cr.example.net.";

async fn wait_for(limit: Duration, what: &str, p: &Proc, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}\n{}", p.logs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn served(dns: SocketAddr) -> Vec<String> {
    Query::new(SERVED, RecordType::CNAME)
        .timeout(Duration::from_millis(200))
        .udp(dns)
        .map(|m| answer_rdata(&m))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_alidns_delays_nothing_else() {
    let knot = primary::start();
    let k = knot.addr;
    let pvtz = FakeCloud::start().await;
    pvtz.add_key(KEY, SECRET);
    pvtz.add_zone(ZONE_ID, "cr.registry.test", &[("cn-hangzhou", "vpc-one")]);
    let alidns = FakeAlidns::start().await;
    alidns.add_key(KEY, SECRET);
    alidns.add_domain("registry.test", 1);
    let start = || regdns::sim::SimRegistry::start(([127, 0, 0, 1], 0).into(), false);
    let (ra, rb) = (start().await.unwrap(), start().await.unwrap());

    let instance = |port: u16| {
        format!(
            "url = \"http://127.0.0.1:{port}/v2/\"\n\
             interval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n"
        )
    };
    let targets = targets(&[(
        "default",
        &[
            ("a", "cname = \"a-registry.example.com.\""),
            ("b", "cname = \"b-registry.example.com.\""),
        ],
    )]);
    let config = Config::new()
        .zone("registry.test.", "registry.test.zone")
        .raw("[[tsig_key]]\nfile = \"update.key\"\n")
        .instance("a", &instance(ra.addr.port()))
        .instance("b", &instance(rb.addr.port()))
        .endpoint(
            SERVED,
            &format!(
                "ttl = 30\nfailback = \"manual\"\n\n{targets}\n\
                 [[endpoint.privatezone]]\nview = \"default\"\nzone_id = \"{ZONE_ID}\"\nrr = \"@\"\n\n\
                 [[endpoint.publish]]\nprovider = \"alidns\"\nview = \"default\"\ndomain = \"registry.test\"\n"
            ),
        )
        .endpoint(
            PUBLISHED,
            &format!(
                "ttl = 30\nfailback = \"manual\"\n\n{targets}\n\
                 [[endpoint.publish]]\nprovider = \"rfc2136\"\nview = \"default\"\n\
                 server = \"{k}\"\nzone = \"example.net.\"\ntsig_key = \"update-key.\"\n"
            ),
        )
        .raw(&format!(
            "[privatezone]\nregion = \"cn-hangzhou\"\nendpoint = \"{}\"\n\n\
             [alidns]\nendpoint = \"{}\"\n",
            pvtz.pvtz_endpoint, alidns.endpoint
        ));
    let dns = config.dns;
    let mut r = tokio::task::block_in_place(|| {
        Regdns::launch(config)
            .file(
                "registry.test.zone",
                "$ORIGIN registry.test.\n$TTL 300\n\
                 @ IN SOA ns1.registry.test. hostmaster.registry.test. 1 3600 600 86400 60\n\
                 @ IN NS ns1.registry.test.\nns1 IN A 127.0.0.1\n",
            )
            .file("update.key", primary::key_file(primary::SECRET))
            .cloud_key(KEY, SECRET)
            .ready(move || !served(dns).is_empty())
            .start()
    });
    let config_path = r.config_path();
    let p = &mut r.proc;

    let a_pvtz = vec![(
        "CNAME".to_string(),
        "a-registry.example.com".to_string(),
        30,
    )];
    let b_pvtz = vec![(
        "CNAME".to_string(),
        "b-registry.example.com".to_string(),
        30,
    )];
    let cname = |v: &str| vec![(v.to_string(), 30u32)];
    wait_for(Duration::from_secs(15), "first sync everywhere", p, || {
        pvtz.answers(ZONE_ID, "@") == a_pvtz
            && alidns.answers("registry.test", "cr") == a_pvtz
            && rrset(k, PUBLISHED, RecordType::CNAME) == cname("a-registry.example.com.")
    })
    .await;

    // Every Alidns call now hangs for longer than the client's 10 s timeout.
    alidns.inject(FaultKind::Latency(Duration::from_secs(12)), 1000, &[]);
    ra.set(regdns::sim::Mode::Refuse);
    wait_for(
        Duration::from_secs(8),
        "DNS, PrivateZone and Knot switched",
        p,
        || {
            served(dns) == vec!["b-registry.example.com.".to_string()]
                && pvtz.answers(ZONE_ID, "@") == b_pvtz
                && rrset(k, PUBLISHED, RecordType::CNAME) == cname("b-registry.example.com.")
        },
    )
    .await;
    assert_eq!(
        alidns.answers("registry.test", "cr"),
        a_pvtz,
        "Alidns is still stuck on the old answer: the others did not wait for it"
    );
    // `regdns status`: the other publishers are ok with the new answer, Alidns is not.
    let state = |st: &serde_json::Value, prefix: &str| -> (String, String) {
        st["publishers"]
            .as_array()
            .and_then(|a| {
                a.iter().find(|p| {
                    p["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with(prefix) && !n.ends_with(":credentials"))
                })
            })
            .map(|p| {
                (
                    p["state"].as_str().unwrap_or("").to_string(),
                    p["detail"].as_str().unwrap_or("").to_string(),
                )
            })
            .unwrap_or_default()
    };
    let status = || -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_regdns"))
            .args(["status", "--json", "-c"])
            .arg(&config_path)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    };
    wait_for(
        Duration::from_secs(5),
        "status of the switched publishers",
        p,
        || {
            let st = tokio::task::block_in_place(status);
            ["privatezone:", "rfc2136:"].iter().all(|pre| {
                let (state, detail) = state(&st, pre);
                state == "ok" && detail.starts_with("CNAME b-registry.example.com")
            })
        },
    )
    .await;
    let st = tokio::task::block_in_place(status);
    let (astate, adetail) = state(&st, "alidns:");
    assert!(
        astate == "pending" || astate == "failing",
        "Alidns must not show ok while stuck: {astate} {adetail}"
    );
    assert!(adetail.contains("b-registry.example.com"), "{adetail}");

    // Alidns answers again: it converges too (its stuck call times out and is retried).
    alidns.clear_faults();
    wait_for(Duration::from_secs(40), "Alidns converged", p, || {
        alidns.answers("registry.test", "cr") == b_pvtz
    })
    .await;
    assert!(p.is_running(), "regdns exited\n{}", p.logs());
    p.terminate(Duration::from_secs(5));
}
