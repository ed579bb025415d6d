//! Response policy zones end to end (docs/dns.md#response-policy-zones-rpz): regdns serves
//! the policy zone `rpz.regdns.` (transfers allowed to 127.0.0.1 and to the key `rpz-key.`,
//! NOTIFY to both resolvers) with the trigger `registry-1.docker.io.rpz.regdns.` (targets
//! `ga`: CNAME `ga.accel.test.`, `direct`: passthrough). Knot serves the "public"
//! `docker.io.` (with `registry-1` at a public address) and `accel.test.`; BIND 9
//! (`response-policy`, a secondary of regdns sending from 127.0.0.3, which the ACL does not
//! list, so it gets in with its TSIG key only) and unbound (`rpz:`, unsigned from 127.0.0.1)
//! resolve both through `forward only` zones to Knot. While `ga` is active both resolvers answer the rewrite; a forced failover to
//! `direct` reaches them by NOTIFY → IXFR (the zone's refresh is an hour) and they answer
//! the public address; the release brings the rewrite back. A client that may not transfer
//! the zone gets REFUSED for any of its names.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use support::bind::Bind;
use support::config::Config;
use support::daemon::{FakeRegistry, run_bounded};
use support::dns::{Message, Query, RecordType, answer_rdata_of, rcode};
use support::knot::{Knot, Zone};
use support::proc::free_port;
use support::regdns::{PROBE, Regdns};
use support::unbound::Unbound;
use support::xfr::TestKey;

const RPZ: &str = "rpz.regdns.";
const TRIGGER: &str = "registry-1.docker.io.rpz.regdns.";
const NAME: &str = "registry-1.docker.io.";
/// What `ga` rewrites to, and its address.
const ACCEL: &str = "ga.accel.test.";
const ACCEL_ADDR: &str = "192.0.2.10";
/// The public answer of [`NAME`].
const PUBLIC_ADDR: &str = "203.0.113.80";

/// BIND's transfer key (it selects the default view).
const KEY: TestKey = TestKey {
    name: "rpz-key.",
    algorithm: "hmac-sha256",
    secret: "cnB6cnB6cnB6cnB6cnB6cnB6cnB6cnB6cnB6cnB6MTI=",
};

/// The policy zone's file: SOA (refresh one hour: only NOTIFY makes a change quick) and NS.
const RPZ_ZONE: &str = "$ORIGIN rpz.regdns.\n$TTL 60\n@ SOA localhost. hostmaster.localhost. 1 3600 600 86400 60\n NS localhost.\n";

fn public_zones() -> [Zone; 2] {
    [
        Zone::new(
            "docker.io.",
            &format!(
                "$ORIGIN docker.io.\n$TTL 5\n@ SOA ns hostmaster 1 3600 600 86400 5\n NS ns\nns A 127.0.0.1\nregistry-1 A {PUBLIC_ADDR}\n"
            ),
        ),
        Zone::new(
            "accel.test.",
            &format!(
                "$ORIGIN accel.test.\n$TTL 5\n@ SOA ns hostmaster 1 3600 600 86400 5\n NS ns\nns A 127.0.0.1\nga A {ACCEL_ADDR}\n"
            ),
        ),
    ]
}

/// regdns with the policy zone, NOTIFY to `secondaries` (`"ADDR:PORT"` or
/// `"ADDR:PORT key:rpz-key."`), and the trigger.
fn config(
    dns: SocketAddr,
    ga: &FakeRegistry,
    direct: &FakeRegistry,
    secondaries: &[String],
) -> Config {
    let secondaries: Vec<String> = secondaries.iter().map(|s| format!("\"{s}\"")).collect();
    Config::on(dns)
        .zone_with(
            RPZ,
            "rpz.zone",
            &format!(
                "kind = \"rpz\"\nallow_transfer = [\"127.0.0.1/32\", \"key:{}\"]\nsecondaries = [{}]",
                KEY.name,
                secondaries.join(", ")
            ),
        )
        .raw("[[tsig_key]]\nfile = \"rpz.key\"\nview = \"default\"\n")
        .instance(
            "ga",
            &format!("url = \"http://127.0.0.1:{}/v2/\"\n{PROBE}", ga.port),
        )
        .instance(
            "direct",
            &format!("url = \"http://127.0.0.1:{}/v2/\"\n{PROBE}", direct.port),
        )
        .endpoint(
            TRIGGER,
            &format!(
                "ttl = 5\nfailback_hold = \"1s\"\n\n[endpoint.targets]\ndefault = [\n  {{ instance = \"ga\", cname = \"{ACCEL}\" }},\n  {{ instance = \"direct\", passthrough = true }},\n]\n"
            ),
        )
}

/// What a resolver answered for [`NAME`] A: `rewrite` (CNAME to [`ACCEL`] and its address),
/// `public` (the public address, no CNAME), or the response itself.
fn seen(m: &Message) -> String {
    let cnames = answer_rdata_of(m, RecordType::CNAME);
    let addrs = answer_rdata_of(m, RecordType::A);
    if rcode(m) == "NOERROR" && cnames == [ACCEL] && addrs == [ACCEL_ADDR] {
        "rewrite".into()
    } else if rcode(m) == "NOERROR" && cnames.is_empty() && addrs == [PUBLIC_ADDR] {
        "public".into()
    } else {
        format!("{} CNAME {cnames:?} A {addrs:?}", rcode(m))
    }
}

/// Polls `ask` every 100 ms until it gives `want` (at most `within`); returns how long it took.
fn wait_for(
    who: &str,
    want: &str,
    within: Duration,
    ask: impl Fn() -> String,
    logs: impl Fn() -> String,
) -> Duration {
    let t0 = Instant::now();
    loop {
        let got = ask();
        if got == want {
            return t0.elapsed();
        }
        if t0.elapsed() > within {
            panic!(
                "{who} still answers {got:?}, not {want:?}, after {within:?}\n{}",
                logs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One query to regdns from `src` (a lost datagram retried: three tries of 500 ms).
fn ask_regdns(dns: SocketAddr, src: &str, name: &str, rtype: RecordType) -> Message {
    let src: IpAddr = src.parse().unwrap();
    (0..3)
        .find_map(|_| {
            Query::new(name, rtype)
                .edns(1232)
                .source(src)
                .timeout(Duration::from_millis(500))
                .udp(dns)
                .ok()
        })
        .unwrap_or_else(|| panic!("no answer from regdns for {name} {rtype} from {src}"))
}

/// Lines of regdns's log that report a zone transfer of the policy zone of `kind`.
fn transfers(regdns: &Regdns, kind: &str) -> usize {
    regdns
        .proc
        .logs()
        .lines()
        .filter(|l| {
            l.contains("zone transfer")
                && l.contains(RPZ)
                && l.contains(&format!("kind=\"{kind}\""))
        })
        .count()
}

#[test]
fn bind_and_unbound_apply_the_policy_through_a_failover_and_back() {
    let (ga, direct) = (FakeRegistry::start(), FakeRegistry::start());
    let public = Knot::start(&public_zones());
    let (bind_port, unbound_port) = (free_port(), free_port());
    let dns = support::config::free_addr();
    let secondaries = [
        format!("127.0.0.1:{bind_port} key:{}", KEY.name),
        format!("127.0.0.1:{unbound_port}"),
    ];
    let regdns = Regdns::launch(config(dns, &ga, &direct, &secondaries))
        .file("rpz.zone", RPZ_ZONE)
        .file("rpz.key", KEY.bind_file())
        .start();

    // Only transfer clients get answers from the policy zone: not 127.0.0.2, nor BIND's
    // address without its key.
    for (src, name, rtype) in [
        ("127.0.0.2", TRIGGER, RecordType::A),
        ("127.0.0.2", RPZ, RecordType::SOA),
        ("127.0.0.2", NAME, RecordType::A),
        ("127.0.0.3", TRIGGER, RecordType::A),
        ("127.0.0.3", RPZ, RecordType::SOA),
    ] {
        let m = ask_regdns(dns, src, name, rtype);
        assert_eq!(
            rcode(&m),
            "REFUSED",
            "{name} {rtype} from {src}, not a transfer client: {m:?}"
        );
        assert!(m.answers.is_empty());
    }
    let m = ask_regdns(dns, "127.0.0.1", TRIGGER, RecordType::A);
    assert_eq!(rcode(&m), "NOERROR", "{m:?}");
    assert_eq!(answer_rdata_of(&m, RecordType::CNAME), [ACCEL]);
    let m = ask_regdns(dns, "127.0.0.1", RPZ, RecordType::SOA);
    assert_eq!(answer_rdata_of(&m, RecordType::SOA).len(), 1, "{m:?}");

    let bind = Bind::builder()
        .port(bind_port)
        .source("127.0.0.3")
        .response_policy(RPZ, dns, Some(KEY))
        .forward_zone("docker.io.", &[public.addr])
        .forward_zone("accel.test.", &[public.addr])
        .start()
        .unwrap_or_else(|e| panic!("{e}\n{}", regdns.proc.logs()));
    let unbound = Unbound::builder()
        .port(unbound_port)
        .rpz(RPZ, dns)
        .forward_zone("docker.io.", &[public.addr])
        .forward_zone("accel.test.", &[public.addr])
        .cache_max_ttl(5)
        .start()
        .unwrap_or_else(|e| panic!("{e}\n{}", regdns.proc.logs()));
    let logs = || {
        format!(
            "{}\n{}\n{}",
            regdns.proc.logs(),
            bind.proc.logs(),
            unbound.proc.logs()
        )
    };
    let bind_ask = || seen(&bind.resolve(NAME, RecordType::A));
    let unbound_ask = || seen(&unbound.resolve(NAME, RecordType::A));

    // ga active: the rewrite (unbound may still be loading the zone it just transferred).
    let limit = Duration::from_secs(15);
    wait_for("BIND", "rewrite", limit, bind_ask, logs);
    wait_for("unbound", "rewrite", limit, unbound_ask, logs);

    // Failover to direct: NOTIFY, IXFR, passthrough: both answer the public address.
    let ixfr_before = transfers(&regdns, "IXFR");
    let body = serde_json::json!({"type": "force", "endpoint": TRIGGER, "instance": "direct",
        "reason": "rpz test", "actor": "tester"})
    .to_string();
    let t0 = Instant::now();
    let (code, ov) = regdns.call("POST", "/overrides", Some(&body));
    assert_eq!(code, 201, "{ov}");
    let id = ov["id"].as_str().expect("override id").to_string();
    let m = ask_regdns(dns, "127.0.0.1", TRIGGER, RecordType::A);
    assert_eq!(
        answer_rdata_of(&m, RecordType::CNAME),
        ["rpz-passthru."],
        "{m:?}"
    );
    // Each wait's own time, and the time since the override (unbound is asked after BIND).
    let bind_took = wait_for("BIND", "public", limit, bind_ask, logs);
    let bind_at = t0.elapsed();
    wait_for("unbound", "public", limit, unbound_ask, logs);
    eprintln!(
        "failover reached BIND after {bind_took:?} ({bind_at:?} after the override), unbound by {:?} after it",
        t0.elapsed()
    );
    assert!(
        transfers(&regdns, "IXFR") >= ixfr_before + 2,
        "both resolvers transferred the change by IXFR:\n{}",
        logs()
    );

    // Release: back to ga, back to the rewrite.
    let t0 = Instant::now();
    let (code, body) = regdns.call(
        "DELETE",
        &format!("/overrides/{id}?actor=tester&reason=done"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    wait_for("BIND", "rewrite", limit, bind_ask, logs);
    let bind_at = t0.elapsed();
    wait_for("unbound", "rewrite", limit, unbound_ask, logs);
    eprintln!(
        "release reached BIND {bind_at:?} after the release, unbound by {:?} after it",
        t0.elapsed()
    );

    // Still nothing for anyone else.
    let m = ask_regdns(dns, "127.0.0.2", TRIGGER, RecordType::A);
    assert_eq!(rcode(&m), "REFUSED");
}

#[test]
fn check_says_what_an_rpz_zone_is_for() {
    let dir = support::proc::temp_dir("rpz-check");
    let (ga, direct) = (FakeRegistry::start(), FakeRegistry::start());
    let cfg = config(support::config::free_addr(), &ga, &direct, &[]);
    std::fs::write(dir.path().join("regdns.toml"), cfg.render()).unwrap();
    std::fs::write(dir.path().join("rpz.key"), KEY.bind_file()).unwrap();
    std::fs::write(dir.path().join("rpz.zone"), RPZ_ZONE).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regdns"));
    cmd.arg("check")
        .arg("-c")
        .arg(dir.path().join("regdns.toml"));
    let out = run_bounded(cmd, Duration::from_secs(20));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("    RPZ: policy for resolvers that transfer it (response-policy / rpz:), not answered to ordinary queries\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{TRIGGER} ttl 5, failback Auto after 1s (RPZ trigger: the policy for {NAME}, as written below)")),
        "{text}"
    );
    assert!(
        text.contains(
            "2. direct         CNAME rpz-passthru. (passthrough: the resolver's own answer)"
        ),
        "{text}"
    );
}
