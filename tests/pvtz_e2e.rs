//! PrivateZone publisher end to end: the real `regdns` binary, two fake registries and the
//! strict fake PrivateZone API in this process. Covers failover timing (record changed
//! within 1 s of the DNS answer), CNAME → A type changes, drift repair, unmanaged records,
//! a throttling storm, wrong credentials, and `regdns privatezone plan|apply`. The
//! publisher's status entries are checked in process.

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use tokio::sync::watch;

use regdns::config::env::Env;
use regdns::control::PublisherStatus;
use regdns::publish::Published;
use regdns::publish::privatezone::publisher::{self, PublisherInputs};
use support::config::{Config, targets};
use support::dns::{Query, answer_rdata};
use support::fake_pvtz::{FakeCloud, FaultKind};
use support::proc::{self, Proc};
use support::regdns::Regdns;

const KEY: &str = "LTAI5tE2eKey000000abcd";
const SECRET: &str = "e2e-secret-value";
/// Default view: CNAME of the public name.
const ZONE_PUB: &str = "zone-pub0001";
/// View `vpc1`, record `cr` in `registry.test`: CNAME while `a` is active, A after.
const ZONE_V1: &str = "zone-vpc0001";
/// View `vpc2`, apex of `cr.registry.test`: A records next to an unmanaged TXT.
const ZONE_V2: &str = "zone-vpc0002";
const ENDPOINT: &str = "cr.registry.test.";

//------------ Fake registries --------------------------------------------------------

/// A registry answering `GET /v2/` (the shared simulated registry): 503 on `set(503)`,
/// connection refused after `stop`.
struct Registry {
    port: u16,
    sim: regdns::sim::SimRegistry,
}

impl Registry {
    async fn start() -> Registry {
        let sim = regdns::sim::SimRegistry::start(([127, 0, 0, 1], 0).into(), false)
            .await
            .unwrap();
        Registry {
            port: sim.addr.port(),
            sim,
        }
    }

    fn set(&self, status: u16) {
        self.sim.set(match status {
            200 => regdns::sim::Mode::Healthy,
            503 => regdns::sim::Mode::Unavailable,
            other => panic!("the simulated registry has no {other} mode"),
        });
    }

    fn stop(&self) {
        self.sim.set(regdns::sim::Mode::Refuse);
    }
}

//------------ Setup --------------------------------------------------------------------

async fn fake_cloud() -> FakeCloud {
    let fake = FakeCloud::start().await;
    fake.add_key(KEY, SECRET);
    fake.add_zone(ZONE_PUB, "cr.registry.test", &[("cn-hangzhou", "vpc-pub")]);
    fake.add_zone(ZONE_V1, "registry.test", &[("cn-hangzhou", "vpc-one")]);
    fake.add_zone(ZONE_V2, "cr.registry.test", &[("cn-hangzhou", "vpc-two")]);
    // Stale answer the publisher must replace, and records it must never touch.
    fake.add_record(ZONE_PUB, "@", "CNAME", "old-registry.example.com", 30);
    fake.add_record(ZONE_PUB, "www", "A", "10.9.9.9", 60);
    fake.add_record(ZONE_V2, "@", "A", "10.0.0.9", 30);
    fake.add_record(ZONE_V2, "@", "TXT", "owner=platform-team", 60);
    fake
}

struct Files {
    cfg: Config,
    dir: tempfile::TempDir,
    config: PathBuf,
    dns: SocketAddr,
}

fn write_config(fake: &FakeCloud, a: &Registry, b: &Registry, extra_pz: &str) -> Files {
    let dir = proc::temp_dir("pvtz");
    let dns = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), proc::free_port());
    let zone = "$ORIGIN registry.test.\n$TTL 300\n\
        @ IN SOA ns1.registry.test. hostmaster.registry.test. 1 3600 600 86400 60\n\
        @ IN NS ns1.registry.test.\nns1 IN A 127.0.0.1\n";
    std::fs::write(dir.path().join("registry.test.zone"), zone).unwrap();
    let instance = |port: u16| {
        format!(
            "url = \"http://127.0.0.1:{port}/v2/\"\n\
             interval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n"
        )
    };
    let config = Config::on(dns)
        .zone("registry.test.", "registry.test.zone")
        .view("vpc1", &["127.0.0.2/32"])
        .view("vpc2", &["127.0.0.3/32"])
        .instance("a", &instance(a.port))
        .instance("b", &instance(b.port))
        .endpoint(
            ENDPOINT,
            &format!(
                "ttl = 30\nfailback = \"manual\"\n\n{}\n\
                 [[endpoint.privatezone]]\nview = \"default\"\nzone_id = \"{ZONE_PUB}\"\nrr = \"@\"\n\n\
                 [[endpoint.privatezone]]\nview = \"vpc1\"\nzone_id = \"{ZONE_V1}\"\nrr = \"cr\"\n\n\
                 [[endpoint.privatezone]]\nview = \"vpc2\"\nzone_id = \"{ZONE_V2}\"\nrr = \"@\"\n",
                targets(&[
                    (
                        "default",
                        &[
                            ("a", "cname = \"a-registry.example.com.\""),
                            ("b", "cname = \"b-registry.example.com.\""),
                        ]
                    ),
                    (
                        "vpc1",
                        &[
                            ("a", "cname = \"a-registry.example.com.\""),
                            ("b", "a = [\"10.1.3.4\"]"),
                        ]
                    ),
                    (
                        "vpc2",
                        &[
                            ("a", "a = [\"10.0.0.1\"]"),
                            ("b", "a = [\"10.1.3.4\", \"10.1.3.5\"]"),
                        ]
                    ),
                ])
            ),
        )
        .raw(&format!(
            "[privatezone]\nregion = \"cn-hangzhou\"\nendpoint = \"{}\"\n\
             drift_interval = \"1s\"\n{extra_pz}\n",
            fake.pvtz_endpoint
        ));
    let path = dir.path().join("regdns.toml");
    std::fs::write(&path, config.render()).unwrap();
    Files {
        cfg: config,
        dir,
        config: path,
        dns,
    }
}

/// A command for the regdns binary with the given AccessKey and no other credential
/// source reachable.
fn regdns(home: &Path, key: &str, secret: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regdns"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ALIBABA_CLOUD_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("ALIBABA_CLOUD_ACCESS_KEY_ID", key)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
        .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
        .env("HOME", home)
        .env("RUST_LOG", "info");
    cmd
}

/// Starts `regdns serve` and waits until it answers for the endpoint.
fn serve(files: Files, key: &str, secret: &str) -> (Regdns, SocketAddr) {
    let dns = files.dns;
    let r = tokio::task::block_in_place(|| {
        Regdns::launch(files.cfg)
            .in_dir(files.dir)
            .cloud_key(key, secret)
            .ready(move || !cname(dns).is_empty())
            .start()
    });
    (r, dns)
}

/// The default view's CNAME answer for the endpoint (empty on timeout).
fn cname(dns: SocketAddr) -> Vec<String> {
    Query::new(ENDPOINT, RecordType::CNAME)
        .timeout(Duration::from_millis(200))
        .udp(dns)
        .map(|m| answer_rdata(&m))
        .unwrap_or_default()
}

fn rec(t: &str, v: &str, ttl: u32) -> (String, String, u32) {
    (t.into(), v.into(), ttl)
}

/// Polls `cond` every 20 ms for up to `limit`; panics with `what` and the logs on timeout.
async fn wait_for(p: &Proc, limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}\n{}", p.logs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True when the last successful update of `record` was followed by a read of `zone`
/// (the reconcile that made the update confirmed it).
fn confirmed_after_update(fake: &FakeCloud, record: u64, zone: &str) -> bool {
    let log = fake.log();
    let id = record.to_string();
    let Some(update) = log.iter().rposition(|e| {
        e.action == "UpdateZoneRecord" && e.code == "OK" && e.params.get("RecordId") == Some(&id)
    }) else {
        return false;
    };
    log[update + 1..].iter().any(|e| {
        e.action == "DescribeZoneRecords"
            && e.code == "OK"
            && e.params.get("ZoneId").map(String::as_str) == Some(zone)
    })
}

fn cr_id(fake: &FakeCloud) -> Vec<u64> {
    fake.records(ZONE_V1)
        .iter()
        .filter(|r| r.rr == "cr")
        .map(|r| r.record_id)
        .collect()
}

fn initial_answers(fake: &FakeCloud) -> bool {
    fake.answers(ZONE_PUB, "@") == vec![rec("CNAME", "a-registry.example.com", 30)]
        && fake.answers(ZONE_V1, "cr") == vec![rec("CNAME", "a-registry.example.com", 30)]
        && fake.answers(ZONE_V2, "@")
            == vec![
                rec("A", "10.0.0.1", 30),
                rec("TXT", "owner=platform-team", 60),
            ]
}

fn failed_over(fake: &FakeCloud) -> [bool; 3] {
    [
        fake.answers(ZONE_PUB, "@") == vec![rec("CNAME", "b-registry.example.com", 30)],
        fake.answers(ZONE_V1, "cr") == vec![rec("A", "10.1.3.4", 30)],
        fake.answers(ZONE_V2, "@")
            == vec![
                rec("A", "10.1.3.4", 30),
                rec("A", "10.1.3.5", 30),
                rec("TXT", "owner=platform-team", 60),
            ],
    ]
}

//------------ Tests --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_reaches_privatezone_within_a_second_and_drift_is_repaired() {
    let fake = fake_cloud().await;
    let (a, b) = (Registry::start().await, Registry::start().await);
    let files = write_config(&fake, &a, &b, "");
    let (r, dns) = serve(files, KEY, SECRET);
    let p = &r.proc;
    wait_for(p, Duration::from_secs(10), "the initial sync", || {
        initial_answers(&fake)
    })
    .await;
    let www_before = fake.answers(ZONE_PUB, "www");
    let v1_id = cr_id(&fake);
    let txt_id = fake
        .records(ZONE_V2)
        .iter()
        .find(|r| r.rtype == "TXT")
        .map(|r| r.record_id);

    // Registry a fails: DNS flips, and every binding follows within 1 s.
    a.set(503);
    let start = Instant::now();
    let mut dns_flip: Option<Instant> = None;
    let mut pz_flip: [Option<Instant>; 3] = [None; 3];
    while start.elapsed() < Duration::from_secs(15) {
        let answer = tokio::task::block_in_place(|| cname(dns));
        let now = Instant::now();
        if dns_flip.is_none() && answer == vec!["b-registry.example.com.".to_string()] {
            dns_flip = Some(now);
        }
        for (i, done) in failed_over(&fake).into_iter().enumerate() {
            if done && pz_flip[i].is_none() {
                pz_flip[i] = Some(now);
            }
        }
        if dns_flip.is_some() && pz_flip.iter().all(|t| t.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dns_flip = dns_flip.unwrap_or_else(|| panic!("DNS never flipped\n{}", p.logs()));
    for (i, t) in pz_flip.iter().enumerate() {
        let t = t.unwrap_or_else(|| {
            panic!(
                "binding {i} never converged: {:?} {:?} {:?}\n{}",
                fake.answers(ZONE_PUB, "@"),
                fake.answers(ZONE_V1, "cr"),
                fake.answers(ZONE_V2, "@"),
                p.logs()
            )
        });
        let lag = t.saturating_duration_since(dns_flip);
        assert!(
            lag <= Duration::from_secs(1),
            "binding {i} changed {lag:?} after the DNS answer"
        );
    }
    // The CNAME → A switch was one in-place update: same record, no gap.
    assert_eq!(cr_id(&fake), v1_id, "CNAME -> A was not an in-place update");

    // Unmanaged records untouched.
    assert_eq!(fake.answers(ZONE_PUB, "www"), www_before);
    assert_eq!(
        fake.records(ZONE_V2)
            .iter()
            .find(|r| r.rtype == "TXT")
            .map(|r| r.record_id),
        txt_id
    );

    // A manual edit is repaired at the next drift check (drift_interval = 1s). It is made
    // once the failover's own reconcile has confirmed its change (a read after the update):
    // an edit made before that confirming read is repaired by the failover's reconcile.
    let id = fake
        .records(ZONE_PUB)
        .into_iter()
        .find(|r| r.rr == "@")
        .unwrap()
        .record_id;
    wait_for(
        p,
        Duration::from_secs(4),
        "the failover's confirming read",
        || confirmed_after_update(&fake, id, ZONE_PUB),
    )
    .await;
    fake.add_record_with_id(id, ZONE_PUB, "@", "CNAME", "manual-edit.example.com", 30);
    assert_eq!(
        fake.answers(ZONE_PUB, "@"),
        vec![rec("CNAME", "manual-edit.example.com", 30)]
    );
    wait_for(p, Duration::from_secs(4), "the drift repair", || {
        failed_over(&fake)[0]
    })
    .await;
    wait_for(p, Duration::from_secs(2), "the drift log line", || {
        p.logs().contains("changed outside regdns")
    })
    .await;
    // The publisher hands the entry to the controller, which appends it: wait for the file.
    let events = r.dir.path().join("state/events.jsonl");
    wait_for(p, Duration::from_secs(4), "the drift journal entry", || {
        std::fs::read_to_string(&events)
            .unwrap_or_default()
            .contains("privatezone-drift")
    })
    .await;

    // `plan` reads the decisions the daemon saved: b is active, nothing to do.
    let out = tokio::task::block_in_place(|| {
        regdns(r.dir.path(), KEY, SECRET)
            .args(["privatezone", "plan", "-c"])
            .arg(r.dir.path().join("regdns.toml"))
            .output()
            .unwrap()
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("decisions: saved in"), "{text}");
    assert!(text.contains("(active b)"), "{text}");
    assert_eq!(text.matches("ops: none (in sync)").count(), 3, "{text}");
    a.stop();
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_storm_converges() {
    let fake = fake_cloud().await;
    let (a, b) = (Registry::start().await, Registry::start().await);
    let files = write_config(&fake, &a, &b, "");
    let (r, dns) = serve(files, KEY, SECRET);
    let p = &r.proc;
    wait_for(p, Duration::from_secs(10), "the initial sync", || {
        initial_answers(&fake)
    })
    .await;
    fake.inject(
        FaultKind::Throttle {
            status: 400,
            retry_after_ms: None,
        },
        10,
        &[],
    );
    a.stop();
    wait_for(p, Duration::from_secs(5), "the DNS flip", || {
        tokio::task::block_in_place(|| cname(dns)) == vec!["b-registry.example.com.".to_string()]
    })
    .await;
    wait_for(
        p,
        Duration::from_secs(30),
        "convergence after throttling",
        || failed_over(&fake).iter().all(|d| *d),
    )
    .await;
    let throttled = fake
        .log()
        .iter()
        .filter(|e| e.code == "Throttling.User")
        .count();
    assert_eq!(throttled, 10, "every injected fault was hit");
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_reported_and_dns_still_fails_over() {
    let fake = fake_cloud().await;
    let (a, b) = (Registry::start().await, Registry::start().await);
    let files = write_config(&fake, &a, &b, "");
    let before = (fake.answers(ZONE_PUB, "@"), fake.answers(ZONE_V2, "@"));
    let (mut r, dns) = serve(files, KEY, "not-the-secret");
    let p = &mut r.proc;
    wait_for(p, Duration::from_secs(10), "the credential error", || {
        let l = p.logs();
        l.contains("SignatureDoesNotMatch") && l.contains("PrivateZone sync failed")
    })
    .await;
    a.set(503);
    wait_for(p, Duration::from_secs(5), "the DNS flip", || {
        tokio::task::block_in_place(|| cname(dns)) == vec!["b-registry.example.com.".to_string()]
    })
    .await;
    assert!(p.is_running(), "regdns exited\n{}", p.logs());
    assert_eq!(
        (fake.answers(ZONE_PUB, "@"), fake.answers(ZONE_V2, "@")),
        before
    );
    let logs = p.logs();
    assert!(
        logs.contains("RequestId") || logs.contains("request_id"),
        "{logs}"
    );
    assert!(
        !logs.contains("not-the-secret"),
        "secret leaked into the logs"
    );
    a.stop();
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_plan_then_apply() {
    let fake = fake_cloud().await;
    let (a, b) = (Registry::start().await, Registry::start().await);
    let files = write_config(&fake, &a, &b, "");
    let run = |action: &str, secret: &str| {
        let out = tokio::task::block_in_place(|| {
            regdns(files.dir.path(), KEY, secret)
                .args(["privatezone", action, "-c"])
                .arg(&files.config)
                .output()
                .unwrap()
        });
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let seeded = fake.records(ZONE_PUB);

    let (code, out, err) = run("plan", SECRET);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("first target of each view"), "{out}");
    assert!(
        out.contains(&format!("privatezone:{ZONE_PUB}/@")) && out.contains("current:"),
        "{out}"
    );
    assert!(
        out.contains(
            "CNAME old-registry.example.com ttl 30 -> CNAME a-registry.example.com ttl 30"
        ),
        "{out}"
    );
    assert!(
        out.contains("add cr CNAME a-registry.example.com ttl 30"),
        "{out}"
    );
    assert!(out.contains("TXT owner=platform-team"), "{out}");
    assert_eq!(fake.records(ZONE_PUB), seeded, "plan changed something");

    let (code, out, err) = run("apply", SECRET);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("RequestId"), "{out}");
    assert!(initial_answers(&fake), "{out}");
    let (code, out, _) = run("apply", SECRET);
    assert_eq!(code, Some(0));
    assert_eq!(
        out.matches("changed: nothing (in sync)").count(),
        3,
        "{out}"
    );

    let (code, out, err) = run("apply", "wrong");
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("SignatureDoesNotMatch"), "{out}");
    a.stop();
    b.stop();
}

/// The publisher in process: status entries for wrong and right credentials and dry run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_status_entries() {
    let fake = fake_cloud().await;
    let (a, b) = (Registry::start().await, Registry::start().await);
    let name = format!("privatezone:{ZONE_PUB}/@");
    for (secret, dry_run) in [("wrong", false), (SECRET, true), (SECRET, false)] {
        let files = write_config(&fake, &a, &b, &format!("dry_run = {dry_run}"));
        let model = Arc::new(regdns::model::load(&files.config).unwrap());
        let (_ptx, prx) = watch::channel(Arc::new(Published {
            model: model.clone(),
            decisions: BTreeMap::new(),
        }));
        let (stx, srx) = watch::channel(BTreeMap::<String, PublisherStatus>::new());
        let handle = publisher::spawn(
            &model,
            PublisherInputs {
                published: prx,
                status: stx,
                journal: None,
                env: Env::from_pairs([
                    ("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY),
                    ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret),
                    ("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true"),
                ]),
            },
        )
        .expect("bindings present");
        let want = match (secret, dry_run) {
            ("wrong", _) => "failing",
            (_, true) => "dry-run",
            _ => "ok",
        };
        let mut rx = srx.clone();
        let st = tokio::time::timeout(
            Duration::from_secs(10),
            rx.wait_for(|m| {
                m.get(&name).is_some_and(|s| {
                    s.state == want && (want != "dry-run" || s.detail.contains("would"))
                })
            }),
        )
        .await
        .unwrap_or_else(|_| panic!("no {want} status: {:?}", srx.borrow()))
        .unwrap()
        .clone();
        let s = &st[&name];
        let creds = &st[publisher::CREDENTIALS_STATUS];
        assert!(creds.detail.contains("environment"), "{creds:?}");
        match want {
            "failing" => {
                assert!(s.detail.contains("SignatureDoesNotMatch"), "{s:?}");
                assert!(s.detail.contains("RequestId"), "{s:?}");
                assert!(s.failures >= 1 && s.last_ok_ms.is_none(), "{s:?}");
            }
            "dry-run" => {
                assert!(s.detail.contains("would update"), "{s:?}");
                assert_eq!(
                    fake.answers(ZONE_PUB, "@"),
                    vec![rec("CNAME", "old-registry.example.com", 30)]
                );
            }
            _ => {
                assert!(
                    s.detail
                        .starts_with("CNAME a-registry.example.com, ttl 30 since "),
                    "{s:?}"
                );
                assert!(s.detail.contains("RequestId"), "{s:?}");
                assert!(s.last_ok_ms.is_some() && s.failures == 0, "{s:?}");
            }
        }
        handle.abort();
    }
    a.stop();
    b.stop();
}

/// A value regdns did not write is drift whatever reconcile finds it: here the manual edit
/// is made while `a` is active (the drift check is an hour away) and found by the reconcile
/// of the failover to `b`, which journals it as `privatezone-drift`, not as an ordinary change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_edit_found_by_a_decision_is_journaled_as_drift() {
    let fake = fake_cloud().await;
    let (a, b) = (Registry::start().await, Registry::start().await);
    let files = write_config(&fake, &a, &b, "");
    let text = std::fs::read_to_string(&files.config)
        .unwrap()
        .replace("drift_interval = \"1s\"", "drift_interval = \"1h\"");
    std::fs::write(&files.config, text).unwrap();
    let model = Arc::new(regdns::model::load(&files.config).unwrap());
    let (ptx, prx) = watch::channel(Arc::new(Published {
        model: model.clone(),
        decisions: BTreeMap::new(),
    }));
    let (stx, srx) = watch::channel(BTreeMap::<String, PublisherStatus>::new());
    let (jtx, mut jrx) = tokio::sync::mpsc::channel(64);
    let handle = publisher::spawn(
        &model,
        PublisherInputs {
            published: prx,
            status: stx,
            journal: Some(jtx),
            env: Env::from_pairs([
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY),
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET),
                ("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true"),
            ]),
        },
    )
    .expect("bindings present");
    let name = format!("privatezone:{ZONE_PUB}/@");
    let wait_ok = |want: &'static str| {
        let mut rx = srx.clone();
        let name = name.clone();
        async move {
            tokio::time::timeout(
                Duration::from_secs(10),
                rx.wait_for(|m| {
                    m.get(&name)
                        .is_some_and(|s| s.state == "ok" && s.detail.starts_with(want))
                }),
            )
            .await
            .unwrap_or_else(|_| panic!("{name} never ok with {want}"))
            .unwrap();
        }
    };
    wait_ok("CNAME a-registry.example.com,").await;

    let id = fake
        .records(ZONE_PUB)
        .into_iter()
        .find(|r| r.rr == "@")
        .unwrap()
        .record_id;
    fake.add_record_with_id(id, ZONE_PUB, "@", "CNAME", "manual-edit.example.com", 30);
    let decisions = ["default", "vpc1", "vpc2"]
        .into_iter()
        .map(|v| {
            (
                (ENDPOINT.to_string(), v.to_string()),
                regdns::decide::Decision {
                    active: "b".into(),
                    base: "b".into(),
                    reason: "a down".into(),
                    since: 1,
                    degraded: false,
                    forced_by: None,
                    failback_pending: None,
                    forced_actor: None,
                },
            )
        })
        .collect();
    ptx.send_replace(Arc::new(Published {
        model: model.clone(),
        decisions,
    }));
    wait_ok("CNAME b-registry.example.com,").await;
    assert_eq!(
        fake.answers(ZONE_PUB, "@"),
        vec![rec("CNAME", "b-registry.example.com", 30)]
    );
    let mut entries = Vec::new();
    while let Ok(e) = jrx.try_recv() {
        entries.push(e);
    }
    let pubs: Vec<_> = entries
        .iter()
        .filter(|e| e.reason.starts_with(&name))
        .collect();
    let drift = pubs
        .iter()
        .find(|e| e.kind == "privatezone-drift")
        .unwrap_or_else(|| panic!("the manual edit was not journaled as drift: {pubs:#?}"));
    assert!(
        drift.reason.contains("manual-edit.example.com"),
        "{drift:?}"
    );
    assert!(
        drift.reason.contains("b-registry.example.com"),
        "the change it made: {drift:?}"
    );
    // The other bindings were only switched: no drift there.
    assert!(
        entries
            .iter()
            .filter(|e| !e.reason.starts_with(&name))
            .all(|e| e.kind == "privatezone"),
        "{entries:#?}"
    );
    handle.abort();
    a.stop();
    b.stop();
}
