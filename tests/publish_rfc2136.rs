//! RFC 2136 publisher end to end against a real Knot DNS primary with a TSIG update ACL:
//! a failover changes the record on Knot (CNAME → A in one update, the endpoint's TTL),
//! records regdns does not manage stay as they are, a manual edit (knsupdate) is detected
//! and repaired at the next drift check and journaled, a wrong key is refused and shown in
//! status, and a concurrent edit between read and write fails the UPDATE's prerequisites
//! (re-read, not overwritten).

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use tokio::sync::watch;

use regdns::config::env::Env;
use regdns::control::PublisherStatus;
use regdns::publish::Published;
use regdns::publish::engine::Provider;
use regdns::publish::engine::task::PublisherInputs;
use regdns::publish::rfc2136::Rfc2136Provider;
use support::config::{Config, targets};
use support::primary::{self, rrset};
use support::proc;
use support::regdns::Regdns;

const CR: &str = "cr.example.net.";
const VPC: &str = "vpc.example.net.";

fn a(v: &str) -> (String, u32) {
    (v.to_string(), 30)
}

struct Files {
    cfg: Config,
    _dir: tempfile::TempDir,
    path: PathBuf,
    config: PathBuf,
    dns: SocketAddr,
}

/// A config whose two endpoints live only in Knot's zone (published only: regdns serves
/// `registry.test` and nothing of `example.net`).
fn write_config(
    knot: SocketAddr,
    pa: u16,
    pb: u16,
    secret: &str,
    drift: &str,
    extra: &str,
) -> Files {
    let dir = proc::temp_dir("rfc2136");
    let dns = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), proc::free_port());
    std::fs::write(
        dir.path().join("registry.test.zone"),
        "$ORIGIN registry.test.\n$TTL 300\n\
         @ IN SOA ns1.registry.test. hostmaster.registry.test. 1 3600 600 86400 60\n\
         @ IN NS ns1.registry.test.\nns1 IN A 127.0.0.1\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("update.key"), primary::key_file(secret)).unwrap();
    let instance = |port: u16| {
        format!(
            "url = \"http://127.0.0.1:{port}/v2/\"\n\
             interval = \"200ms\"\ntimeout = \"150ms\"\nrise = 1\nfall = 1\n"
        )
    };
    let publish = format!(
        "[[endpoint.publish]]\nprovider = \"rfc2136\"\nview = \"default\"\n\
         server = \"{knot}\"\nzone = \"example.net.\"\ntsig_key = \"update-key.\"\n"
    );
    let config = Config::on(dns)
        .zone("registry.test.", "registry.test.zone")
        .raw("[[tsig_key]]\nfile = \"update.key\"\n")
        .instance("a", &instance(pa))
        .instance("b", &instance(pb))
        .endpoint(
            CR,
            &format!(
                "ttl = 30\nfailback = \"manual\"\n\n{}\n{publish}",
                targets(&[(
                    "default",
                    &[
                        ("a", "cname = \"a-registry.example.com.\""),
                        ("b", "a = [\"10.1.3.4\"]"),
                    ]
                )])
            ),
        )
        .endpoint(
            VPC,
            &format!(
                "ttl = 30\nfailback = \"manual\"\n\n{}\n{publish}transport = \"tcp\"\n",
                targets(&[(
                    "default",
                    &[
                        ("a", "a = [\"10.0.0.1\"]"),
                        ("b", "a = [\"10.1.3.4\", \"10.1.3.5\"]"),
                    ]
                )])
            ),
        )
        .raw(&format!(
            "[rfc2136]\ndrift_interval = \"{drift}\"\n{extra}\n"
        ));
    let config_path = dir.path().join("regdns.toml");
    std::fs::write(&config_path, config.render()).unwrap();
    Files {
        cfg: config,
        path: dir.path().to_path_buf(),
        _dir: dir,
        config: config_path,
        dns,
    }
}

async fn registries() -> (regdns::sim::SimRegistry, regdns::sim::SimRegistry) {
    let start = || regdns::sim::SimRegistry::start(([127, 0, 0, 1], 0).into(), false);
    (start().await.unwrap(), start().await.unwrap())
}

/// Polls `cond` every 20 ms for up to `limit`; panics with `what` and `logs()` on timeout.
async fn wait_for(limit: Duration, what: &str, logs: impl Fn() -> String, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}\n{}", logs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn untouched(knot: SocketAddr) {
    assert_eq!(
        rrset(knot, VPC, RecordType::TXT),
        vec![("owner=platform-team".to_string(), 300)],
        "TXT at a managed name untouched"
    );
    assert_eq!(rrset(knot, VPC, RecordType::MX).len(), 1, "MX untouched");
    assert_eq!(
        rrset(knot, "other.example.net.", RecordType::A),
        vec![("192.0.2.7".to_string(), 300)],
        "other names untouched"
    );
    assert_eq!(
        rrset(knot, "ns1.example.net.", RecordType::A),
        vec![("127.0.0.1".to_string(), 300)]
    );
}

/// What the publishers show in status, by binding.
type Board = watch::Receiver<BTreeMap<String, PublisherStatus>>;

/// The publishers of `model` with no decisions yet (each binding wants its first target),
/// no journal and an empty environment: the task, its status board and the decisions'
/// sender (kept alive by the caller).
fn start_publishers(
    model: &Arc<regdns::model::Model>,
) -> (
    tokio::task::JoinHandle<()>,
    Board,
    watch::Sender<Arc<Published>>,
) {
    let (ptx, prx) = watch::channel(Arc::new(Published {
        model: model.clone(),
        decisions: BTreeMap::new(),
    }));
    let (stx, srx) = watch::channel(BTreeMap::<String, PublisherStatus>::new());
    let handle = regdns::publish::spawn(
        model,
        PublisherInputs {
            published: prx,
            status: stx,
            journal: None,
            env: Env::from_pairs(Vec::<(String, String)>::new()),
        },
    )
    .expect("bindings present");
    (handle, srx, ptx)
}

/// The real binary: startup sync, failover (CNAME → A, several A), unmanaged records,
/// a manual edit repaired at the next drift check, `regdns publish plan`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_updates_the_primary_and_drift_is_repaired() {
    let knot = primary::start();
    let k = knot.addr;
    let serial0 = primary::serial(k);
    let (ra, rb) = registries().await;
    let files = write_config(k, ra.addr.port(), rb.addr.port(), primary::SECRET, "1s", "");
    let Files {
        cfg,
        _dir: dir,
        path,
        config,
        dns,
    } = files;
    let mut r = tokio::task::block_in_place(|| {
        Regdns::launch(cfg)
            .in_dir(dir)
            .ready(move || {
                support::dns::Query::new("registry.test.", RecordType::SOA)
                    .timeout(Duration::from_millis(200))
                    .udp(dns)
                    .is_ok()
            })
            .start()
    });
    let p = &mut r.proc;
    let logs = || p.logs();

    // Startup: the stale answers are replaced with the first targets' (TTL 30).
    wait_for(Duration::from_secs(10), "startup sync", &logs, || {
        rrset(k, CR, RecordType::CNAME) == vec![a("a-registry.example.com.")]
            && rrset(k, VPC, RecordType::A) == vec![a("10.0.0.1")]
    })
    .await;
    untouched(k);
    assert!(primary::serial(k) > serial0, "the primary bumps its serial");
    // regdns does not serve the published-only names.
    let m = support::dns::Query::new(CR, RecordType::CNAME)
        .udp(dns)
        .unwrap();
    assert!(m.answers.is_empty(), "published only: {m:?}");

    // Failover: a is down; cr becomes an A record (one UPDATE), vpc two A records.
    ra.set(regdns::sim::Mode::Refuse);
    let t0 = Instant::now();
    wait_for(
        Duration::from_secs(10),
        "failover on the primary",
        &logs,
        || {
            rrset(k, CR, RecordType::A) == vec![a("10.1.3.4")]
                && rrset(k, VPC, RecordType::A) == vec![a("10.1.3.4"), a("10.1.3.5")]
        },
    )
    .await;
    eprintln!("failover visible on the primary after {:?}", t0.elapsed());
    assert!(rrset(k, CR, RecordType::CNAME).is_empty(), "CNAME gone");
    untouched(k);

    // A manual edit on the primary is repaired at the next drift check (1 s).
    primary::knsupdate(
        k,
        &[
            "update delete cr.example.net. A",
            "update add cr.example.net. 300 CNAME manual-edit.example.com.",
        ],
    );
    // (Not asserted here: the drift check may already have repaired it. The journal entry
    // below proves regdns saw the edit.)
    wait_for(Duration::from_secs(10), "drift repaired", &logs, || {
        rrset(k, CR, RecordType::A) == vec![a("10.1.3.4")]
            && rrset(k, CR, RecordType::CNAME).is_empty()
    })
    .await;
    wait_for(Duration::from_secs(5), "drift logged", &logs, || {
        p.logs()
            .contains("RFC 2136 records were changed outside regdns; repaired")
    })
    .await;
    // The controller appends the publisher's journal entry after the log line: wait for it.
    let journal = path.join("state/events.jsonl");
    wait_for(Duration::from_secs(5), "drift journaled", &logs, || {
        let events = std::fs::read_to_string(&journal).unwrap_or_default();
        events
            .lines()
            .any(|l| l.contains("rfc2136-drift") && l.contains("manual-edit.example.com"))
    })
    .await;

    // `regdns publish plan` reads the same state: in sync.
    let out = Command::new(env!("CARGO_BIN_EXE_regdns"))
        .args(["publish", "plan", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("rfc2136:{k}/{CR}")), "{text}");
    assert!(text.contains("ops: none (in sync)"), "{text}");
    assert!(p.is_running(), "regdns exited\n{}", p.logs());
    p.terminate(Duration::from_secs(5));
}

fn model_with(secret: &str, drift: &str, knot: SocketAddr) -> (Files, Arc<regdns::model::Model>) {
    model_extra(secret, drift, knot, "")
}

fn model_extra(
    secret: &str,
    drift: &str,
    knot: SocketAddr,
    extra: &str,
) -> (Files, Arc<regdns::model::Model>) {
    let files = write_config(knot, 1, 2, secret, drift, extra);
    let model = Arc::new(regdns::model::load(&files.config).unwrap());
    (files, model)
}

/// In process: a wrong key is refused by the primary and shown in status (BADSIG),
/// records untouched; the right key converges and shows `ok`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_is_refused_and_reported() {
    let knot = primary::start();
    let k = knot.addr;
    let name = format!("rfc2136:{k}/{CR}");
    for (secret, want) in [(primary::WRONG_SECRET, "failing"), (primary::SECRET, "ok")] {
        let (_files, model) = model_with(secret, "1h", k);
        let (handle, srx, _ptx) = start_publishers(&model);
        let mut rx = srx.clone();
        let st = tokio::time::timeout(
            Duration::from_secs(15),
            rx.wait_for(|m| m.get(&name).is_some_and(|s| s.state == want)),
        )
        .await
        .unwrap_or_else(|_| panic!("no {want} status: {:?}", srx.borrow()))
        .unwrap()
        .clone();
        let s = &st[&name];
        if want == "failing" {
            assert!(s.detail.contains("BADSIG"), "{s:?}");
            assert!(s.detail.contains("wrong secret"), "{s:?}");
            assert!(s.failures >= 1 && s.last_ok_ms.is_none(), "{s:?}");
            assert_eq!(
                rrset(k, CR, RecordType::CNAME),
                vec![("old-registry.example.com.".to_string(), 300)],
                "nothing written with a wrong key"
            );
        } else {
            assert!(
                s.detail
                    .starts_with("CNAME a-registry.example.com, ttl 30 since"),
                "{s:?}"
            );
            assert_eq!(
                rrset(k, CR, RecordType::CNAME),
                vec![a("a-registry.example.com.")]
            );
        }
        // Aborting the one handle stops every publisher task: the last holder of the status
        // sender (the supervisor and each binding task hold it) is gone.
        handle.abort();
        let mut rx = srx.clone();
        tokio::time::timeout(Duration::from_secs(5), async {
            while rx.changed().await.is_ok() {}
        })
        .await
        .expect("publisher tasks still running after abort");
    }
}

/// A concurrent edit between the read and the UPDATE fails the prerequisites (the RRsets
/// as read): the primary answers NXRRSET/YXRRSET, nothing is overwritten, and the engine's
/// reconcile re-reads and converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edit_fails_the_prerequisites() {
    let knot = primary::start();
    let k = knot.addr;
    let (_files, model) = model_with(primary::SECRET, "1h", k);
    let provider =
        Rfc2136Provider::connect(&model, &Env::from_pairs(Vec::<(String, String)>::new()))
            .await
            .unwrap();
    let targets = Rfc2136Provider::targets(&model, &BTreeMap::new());
    let t = targets.iter().find(|t| t.endpoint == CR).unwrap();
    let found = provider.read(&t.binding).await.unwrap();
    let plan = regdns::publish::engine::plan::plan(&t.desired, &found).unwrap();
    assert_eq!(plan.ops.len(), 1, "{plan:?}");
    // Someone edits the record after regdns read it.
    primary::knsupdate(
        k,
        &[
            "update delete cr.example.net. CNAME",
            "update add cr.example.net. 300 CNAME manual-edit.example.com.",
        ],
    );
    let e = provider
        .execute(&t.binding, &plan.ops, &found, "t")
        .await
        .unwrap_err();
    assert!(e.reread, "{e}");
    assert!(
        e.code.contains("RRSet") || e.code.contains("RRset") || e.code.contains("exist"),
        "{e}"
    );
    assert_eq!(
        rrset(k, CR, RecordType::CNAME),
        vec![("manual-edit.example.com.".to_string(), 300)],
        "the concurrent edit was not overwritten blindly"
    );
    // The engine re-reads and converges.
    let opts = regdns::publish::engine::task::reconcile_options(false);
    let r = regdns::publish::engine::reconcile(&provider, &t.binding, &t.desired, &opts)
        .await
        .unwrap();
    assert!(r.changed());
    assert_eq!(
        rrset(k, CR, RecordType::CNAME),
        vec![a("a-registry.example.com.")]
    );
    // A second run only reads.
    let r = regdns::publish::engine::reconcile(&provider, &t.binding, &t.desired, &opts)
        .await
        .unwrap();
    assert!(!r.changed() && r.drift.is_empty(), "{r:?}");
}

/// `[rfc2136] dry_run = true`: the plan is shown in status, nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_without_writing() {
    let knot = primary::start();
    let k = knot.addr;
    let serial0 = primary::serial(k);
    let (_files, model) = model_extra(primary::SECRET, "1h", k, "dry_run = true");
    let (handle, srx, _ptx) = start_publishers(&model);
    let name = format!("rfc2136:{k}/{CR}");
    let mut rx = srx.clone();
    let st = tokio::time::timeout(
        Duration::from_secs(10),
        rx.wait_for(|m| {
            m.get(&name)
                .is_some_and(|s| s.state == "dry-run" && s.detail.contains("would"))
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("no dry-run status: {:?}", srx.borrow()))
    .unwrap()
    .clone();
    let s = &st[&name];
    assert!(
        s.detail.contains("would update") && s.detail.contains("a-registry.example.com"),
        "{s:?}"
    );
    assert_eq!(
        rrset(k, CR, RecordType::CNAME),
        vec![("old-registry.example.com.".to_string(), 300)]
    );
    assert_eq!(primary::serial(k), serial0, "no UPDATE was sent");
    handle.abort();
}

/// Records regdns does not manage are read (shown as unmanaged) and block a CNAME: the
/// switch is refused as a conflict before any UPDATE, so the A records are not deleted for
/// a CNAME the primary would silently ignore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmanaged_records_block_a_cname_and_are_kept() {
    let knot = primary::start();
    let k = knot.addr;
    let serial0 = primary::serial(k);
    let (_files, model) = model_with(primary::SECRET, "1h", k);
    let provider =
        Rfc2136Provider::connect(&model, &Env::from_pairs(Vec::<(String, String)>::new()))
            .await
            .unwrap();
    let targets = Rfc2136Provider::targets(&model, &BTreeMap::new());
    let t = targets.iter().find(|t| t.endpoint == VPC).unwrap();
    let opts = regdns::publish::engine::task::reconcile_options(true);
    let want =
        regdns::publish::engine::Desired::new("vpc", "CNAME", &["b-registry.example.com."], 30);
    let r = regdns::publish::engine::reconcile(&provider, &t.binding, &want, &opts)
        .await
        .unwrap();
    let mut unmanaged: Vec<String> = r.unmanaged.iter().map(|u| u.rtype.clone()).collect();
    unmanaged.sort();
    assert_eq!(unmanaged, vec!["MX", "TXT"], "{r:?}");
    assert_eq!(r.conflicts.len(), 2, "{r:?}");
    let opts = regdns::publish::engine::task::reconcile_options(false);
    let e = regdns::publish::engine::reconcile(&provider, &t.binding, &want, &opts)
        .await
        .unwrap_err();
    assert_eq!(e.code, "Regdns.Conflict", "{e}");
    assert!(e.to_string().contains("cannot coexist"), "{e}");
    assert_eq!(
        rrset(k, VPC, RecordType::A),
        vec![("10.0.0.9".to_string(), 300)]
    );
    assert_eq!(primary::serial(k), serial0, "no UPDATE was sent");
    untouched(k);
}
