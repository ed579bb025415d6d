//! The Grafana dashboard (`deploy/grafana/regdns.json`) checked against a real Prometheus:
//! regdns runs with two simulated registries (canary pulls, replication lag), a second
//! endpoint published by RFC 2136 to a real Knot primary, and DNS traffic in two views;
//! Debian's `prometheus` scrapes it every second with the shipped scrape job
//! (`deploy/prometheus/prometheus.yml`, alert rules loaded). hangzhou then fails, the answer
//! moves, an operator drains hangzhou, and every query of the dashboard (each panel's
//! targets, the annotations, the variables) is evaluated through Prometheus's HTTP API the
//! way Grafana asks it: each returns data, and the active-target panel shows hangzhou, then
//! zhangjiakou. A metric name the Prometheus does not know fails the test by name.
//!
//! Cluster panels: without `[cluster]` the cluster gauges are exported as 0, which is what
//! those queries return here (a cluster of real etcd nodes is `tests/cluster.rs`'s subject).

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use regdns::sim::Mode;
use serde_json::Value;
use support::config::{Config, targets};
use support::primary;
use support::prometheus::{Prometheus, Series};
use support::regdns::{
    PROBE, Regdns, SECONDARY, ZONE, answer, http, registries, two_region_targets, wait_answer,
};

const ENDPOINT: &str = "cross-region.registry.io.";
const PUBLISHED: &str = "cr.example.net.";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `text` with `from` replaced by `to`; panics when `from` is not there (the shipped file
/// changed shape: the test must follow).
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in:\n{text}");
    text.replacen(from, to, 1)
}

/// A dashboard query as Prometheus gets it: every variable on "All" (`.*`), Grafana's
/// interval variables for a 1 s scrape interval.
fn substitute(expr: &str) -> String {
    let e = expr
        .replace("$__rate_interval", "5s")
        .replace("$__interval", "2s")
        .replace("$node", ".*")
        .replace("$endpoint", ".*")
        .replace("$view", ".*")
        .replace("$instance", ".*");
    assert!(!e.contains('$'), "unknown variable left in {e}");
    e
}

/// Every metric name (`regdns_*`, `process_*`) a query uses.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let rest = &expr[i..];
        let starts = (rest.starts_with("regdns_") || rest.starts_with("process_"))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'));
        if starts {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.insert(rest[..end].to_string());
            i += end;
        } else {
            i += 1;
        }
    }
    out
}

/// One query of the dashboard: where it is, and its expression.
struct Query {
    place: String,
    expr: String,
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(root().join("deploy/grafana/regdns.json")).unwrap();
    serde_json::from_str(&text).expect("deploy/grafana/regdns.json is JSON")
}

/// Panels' targets and the annotations' queries.
fn queries(d: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        if p["type"] == "row" {
            continue;
        }
        for t in p["targets"].as_array().unwrap() {
            out.push(Query {
                place: format!("panel {:?} {}", p["title"].as_str().unwrap(), t["refId"]),
                expr: t["expr"].as_str().unwrap().to_string(),
            });
        }
    }
    for a in d["annotations"]["list"].as_array().unwrap() {
        if let Some(expr) = a["expr"].as_str() {
            out.push(Query {
                place: format!("annotation {:?}", a["name"].as_str().unwrap()),
                expr: expr.to_string(),
            });
        }
    }
    out
}

/// The dashboard's shape: current schema, a Prometheus datasource variable that every panel,
/// target and annotation uses, node/endpoint/view/instance variables, unique ids, a layout
/// inside 24 columns.
#[test]
fn the_dashboard_is_well_formed() {
    let d = dashboard();
    assert!(d["schemaVersion"].as_u64().unwrap() >= 39);
    assert_eq!(d["uid"], "regdns-overview");
    let vars = d["templating"]["list"].as_array().unwrap();
    let ds = vars.iter().find(|v| v["name"] == "datasource").unwrap();
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    for name in ["node", "endpoint", "view", "instance"] {
        let v = vars
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no {name} variable"));
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{name}");
        assert_eq!(v["allValue"], ".*", "{name}");
    }
    let mut ids = BTreeSet::new();
    let is_ours = |ds: &Value| ds["type"] == "prometheus" && ds["uid"] == "${datasource}";
    for p in d["panels"].as_array().unwrap() {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id {}",
            p["id"]
        );
        let g = &p["gridPos"];
        assert!(
            g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24,
            "{}",
            p["title"]
        );
        if p["type"] == "row" {
            continue;
        }
        assert!(is_ours(&p["datasource"]), "{}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            assert!(is_ours(&t["datasource"]), "{} {}", p["title"], t["refId"]);
        }
    }
    for a in d["annotations"]["list"].as_array().unwrap() {
        if a["expr"].is_string() {
            assert!(is_ours(&a["datasource"]), "{}", a["name"]);
        }
    }
    let active = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "Active target per endpoint and view")
        .unwrap();
    assert_eq!(active["type"], "state-timeline");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_panel_query_returns_data_from_a_real_prometheus() {
    let d = dashboard();
    let (hz, zjk, dns) = registries(false).await;
    let knot = primary::start();
    let canary = "canary = { repository = \"demo/canary\", reference = \"canary\", interval = \"1s\", timeout = \"500ms\" }";
    let config = Config::on(dns)
        .zone("registry.io.", "registry.io.zone")
        .view("vpc", &["127.0.0.2/32"])
        .raw("[[tsig_key]]\nfile = \"update.key\"\n")
        .instance("hangzhou", &format!("{}\n{canary}\n{PROBE}", http(&hz)))
        .instance("zhangjiakou", &format!("{}\n{canary}\n{PROBE}", http(&zjk)))
        .endpoint(
            ENDPOINT,
            &format!(
                "ttl = 5\nreplication_max_lag = \"10m\"\n\n{}",
                two_region_targets()
            ),
        )
        .endpoint(
            PUBLISHED,
            &format!(
                "ttl = 30\n\n{}\n[[endpoint.publish]]\nprovider = \"rfc2136\"\nview = \"default\"\n\
                 server = \"{}\"\nzone = \"example.net.\"\ntsig_key = \"update-key.\"\n",
                targets(&[(
                    "default",
                    &[
                        ("hangzhou", "cname = \"a-registry.example.com.\""),
                        ("zhangjiakou", "a = [\"10.1.3.4\"]"),
                    ]
                )]),
                knot.addr
            ),
        );
    let r = Regdns::launch(config)
        .file("registry.io.zone", ZONE)
        .file("update.key", primary::key_file(primary::SECRET))
        .start();
    let logs = || r.proc.logs();

    // The shipped scrape job, every second, with the shipped alert rules.
    let shipped = std::fs::read_to_string(root().join("deploy/prometheus/prometheus.yml")).unwrap();
    let cfg = replace_once(&shipped, "scrape_interval: 15s", "scrape_interval: 1s");
    let cfg = replace_once(&cfg, "evaluation_interval: 15s", "evaluation_interval: 1s");
    let cfg = replace_once(
        &cfg,
        "targets: [\"127.0.0.1:8053\"]",
        &format!("targets: [\"{}\"]", r.admin),
    );
    let rules =
        std::fs::read_to_string(root().join("deploy/prometheus/regdns-alerts.yml")).unwrap();
    let prom = Prometheus::start(&cfg, &[("regdns-alerts.yml", &rules)]);
    let t0 = now();
    let within = Duration::from_secs(30);

    // Before the failure: hangzhou active for a few scrapes, the failover counters seen at 0.
    let active = format!("regdns_active_target{{endpoint=\"{ENDPOINT}\",view=\"default\"}}");
    prom.wait_for(
        "hangzhou active for 3 scrapes",
        &format!("count_over_time({active}[1m])"),
        within,
        |v| v.len() == 1 && v[0].0["instance"] == "hangzhou" && v[0].1 >= 3.0,
        &logs,
    );
    prom.wait_for(
        "hangzhou up",
        "regdns_instance_up{instance=\"hangzhou\"} == 1",
        within,
        |v| !v.is_empty(),
        &logs,
    );
    prom.wait_for(
        "every failover counter scraped at 0 twice",
        &format!("count_over_time(regdns_failovers_total{{endpoint=\"{ENDPOINT}\"}}[1m]) >= 2"),
        within,
        |v| v.len() == 10,
        &logs,
    );
    // DNS traffic in both views, one NXDOMAIN.
    for _ in 0..5 {
        tokio::task::block_in_place(|| {
            assert!(answer(dns, "127.0.0.1").is_some(), "{}", logs());
            assert!(answer(dns, "127.0.0.2").is_some(), "{}", logs());
        });
    }
    tokio::task::block_in_place(|| {
        let m = support::dns::Query::new("nope.registry.io.", support::dns::RecordType::A)
            .udp(dns)
            .expect("NXDOMAIN answer");
        assert_eq!(support::dns::rcode(&m), "NXDOMAIN");
    });

    // The failure and the switch.
    hz.set(Mode::Refuse);
    wait_answer(dns, SECONDARY, Duration::from_secs(10)).await;
    tokio::task::block_in_place(|| {
        prom.wait_for(
            "zhangjiakou active",
            &active,
            within,
            |v| v.len() == 1 && v[0].0["instance"] == "zhangjiakou",
            &logs,
        );
        let (s, body) = r.call(
            "POST",
            "/overrides",
            Some(r#"{"type":"drain","instance":"hangzhou","reason":"dashboard test","actor":"tester"}"#),
        );
        assert_eq!(s, 201, "{body}");
        prom.wait_for(
            "the drain",
            "regdns_overrides{kind=\"drain\"} == 1",
            within,
            |v| !v.is_empty(),
            &logs,
        );
        prom.wait_for(
            "a publisher sync of cr.example.net",
            "regdns_publish_sync_total{provider=\"rfc2136\"}",
            within,
            |v| !v.is_empty(),
            &logs,
        );
        prom.wait_for(
            "the RegdnsFailover alert firing (shipped rules)",
            "ALERTS{alertname=\"RegdnsFailover\",alertstate=\"firing\"}",
            within,
            |v| !v.is_empty(),
            &logs,
        );
        // More DNS traffic now that its series exist: the rate panel sees it.
        for _ in 0..20 {
            assert!(answer(dns, "127.0.0.1").is_some(), "{}", logs());
            assert!(answer(dns, "127.0.0.2").is_some(), "{}", logs());
        }
        // Six more scrapes, so every series that appeared late (the failing checks, the
        // drain) has samples enough for a rate window.
        let scrapes = "count_over_time(up{job=\"regdns\"}[10m])";
        let seen = prom.query(scrapes)[0].1;
        prom.wait_for(
            "six more scrapes",
            scrapes,
            within,
            |v| v.len() == 1 && v[0].1 >= seen + 6.0,
            &logs,
        );
    });
    let end = now();

    // Every metric name of the dashboard is one Prometheus has.
    let known: BTreeSet<String> = prom
        .label_values("__name__", "{job=\"regdns\"}")
        .into_iter()
        .collect();
    let queries = queries(&d);
    assert!(queries.len() >= 20, "{} queries", queries.len());
    for q in &queries {
        for name in metric_names(&q.expr) {
            assert!(
                known.contains(&name),
                "{}: metric {name} is not exported by regdns (misspelled or removed?): {}",
                q.place,
                q.expr
            );
        }
    }

    // Every query returns data over the test's time range, as a panel would show it.
    let mut report = Vec::new();
    let mut results = Vec::new();
    for q in &queries {
        let expr = substitute(&q.expr);
        let series = prom.query_range(&expr, t0, end, 1.0);
        let finite = series
            .iter()
            .flat_map(|s| s.samples.iter())
            .filter(|(_, v)| v.is_finite())
            .count();
        if series.is_empty() || finite == 0 {
            let raw: Vec<String> = metric_names(&q.expr)
                .into_iter()
                .chain(["up".to_string(), "scrape_samples_scraped".to_string()])
                .map(|n| format!("{n}: {:?}", prom.query_range(&n, t0, end, 1.0)))
                .collect();
            panic!(
                "{} returned no data from Prometheus: {expr}\n{series:?}\nits metrics over the test:\n{}",
                q.place,
                raw.join("\n")
            );
        }
        report.push(format!("{}: {}", q.place, summary(&series)));
        results.push((q.place.clone(), series));
    }
    eprintln!(
        "== dashboard queries over {:.0} s:\n{}",
        end - t0,
        report.join("\n")
    );

    // The active-target panel shows the switch: hangzhou, then zhangjiakou, in both views.
    let panel = queries
        .iter()
        .find(|q| q.place.contains("Active target per endpoint and view"))
        .unwrap();
    let series = prom.query_range(&substitute(&panel.expr), t0, end, 1.0);
    for view in ["default", "vpc"] {
        let span = |instance: &str| -> (f64, f64) {
            let s: Vec<&Series> = series
                .iter()
                .filter(|s| {
                    s.label("endpoint") == ENDPOINT
                        && s.label("view") == view
                        && s.label("instance") == instance
                })
                .collect();
            assert_eq!(s.len(), 1, "{instance} in {view}: {series:?}");
            (s[0].samples[0].0, s[0].samples.last().unwrap().0)
        };
        let (hz_first, hz_last) = span("hangzhou");
        let (zjk_first, zjk_last) = span("zhangjiakou");
        eprintln!(
            "active target of {ENDPOINT} in {view}: hangzhou {:.0}..{:.0} s, zhangjiakou {:.0}..{:.0} s (from the start of Prometheus)",
            hz_first - t0,
            hz_last - t0,
            zjk_first - t0,
            zjk_last - t0
        );
        assert!(
            hz_first < zjk_first && hz_last < zjk_first,
            "view {view}: hangzhou {hz_first}..{hz_last}, zhangjiakou from {zjk_first}"
        );
    }
    // What the other panels showed, where the test caused something to show.
    let peak = |place: &str, labels: &[(&str, &str)]| -> (f64, f64) {
        let (_, series) = results
            .iter()
            .find(|(p, _)| p.contains(place))
            .unwrap_or_else(|| panic!("no query {place}"));
        let s: Vec<&Series> = series
            .iter()
            .filter(|s| labels.iter().all(|(k, v)| s.label(k) == *v))
            .collect();
        assert_eq!(s.len(), 1, "{place} {labels:?}: {series:?}");
        let values = s[0]
            .samples
            .iter()
            .map(|(_, v)| *v)
            .filter(|v| v.is_finite());
        let last = values.clone().next_back().unwrap_or(f64::NAN);
        (values.fold(f64::NAN, f64::max), last)
    };
    let ev = [("endpoint", ENDPOINT), ("view", "default")];
    assert!(
        peak(
            "\"Failovers by reason\"",
            &[ev[0], ev[1], ("reason", "health")]
        )
        .0 > 0.0
    );
    assert!(
        peak(
            "annotation \"Failovers\"",
            &[ev[0], ev[1], ("reason", "health")]
        )
        .0 > 0.0
    );
    assert_eq!(
        peak("annotation \"Overrides\"", &[("kind", "drain")]).1,
        1.0
    );
    assert_eq!(
        peak("\"Instance health\"", &[("instance", "hangzhou")]),
        (1.0, 0.0)
    );
    assert_eq!(
        peak("\"Instance health\"", &[("instance", "zhangjiakou")]).1,
        1.0
    );
    assert!(
        peak(
            "\"Probe results per instance\"",
            &[
                ("instance", "hangzhou"),
                ("check", "v2"),
                ("result", "fail")
            ]
        )
        .0 > 0.0
    );
    assert_eq!(
        peak("\"Canary digest lag\"", &[("instance", "zhangjiakou")]).1,
        0.0
    );
    assert!(
        peak(
            "\"DNS queries per second by view and rcode\"",
            &[("view", "vpc"), ("rcode", "NOERROR")]
        )
        .0 > 0.0
    );
    let (_, publisher) = results
        .iter()
        .find(|(p, _)| p.contains("Publisher sync results"))
        .unwrap();
    assert!(
        publisher.iter().any(|s| s.label("provider") == "rfc2136"
            && s.label("binding").ends_with("/cr.example.net.")),
        "{publisher:?}"
    );

    // Sensitivity: the same check on a misspelled metric finds nothing.
    let broken = substitute(&panel.expr).replace("regdns_active_target", "regdns_active_targets");
    assert!(prom.query_range(&broken, t0, end, 1.0).is_empty());

    // The variables' label_values queries.
    for v in d["templating"]["list"].as_array().unwrap() {
        let Some(def) = v["definition"].as_str() else {
            continue;
        };
        let inner = def
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {}: {def}", v["name"]));
        let (selector, label) = inner.rsplit_once(',').unwrap();
        let values = prom.label_values(label.trim(), &substitute(selector.trim()));
        eprintln!("variable {}: {values:?}", v["name"]);
        let want: &[&str] = match v["name"].as_str().unwrap() {
            "endpoint" => &[ENDPOINT, PUBLISHED],
            "view" => &["default", "vpc"],
            "instance" => &["hangzhou", "zhangjiakou"],
            "node" => &[],
            other => panic!("unexpected variable {other}"),
        };
        assert!(!values.is_empty(), "variable {} has no values", v["name"]);
        for w in want {
            assert!(
                values.iter().any(|x| x == w),
                "{} lacks {w}: {values:?}",
                v["name"]
            );
        }
    }
    drop(prom);
    drop(knot);
}

/// "N series: {labels} last=V max=M; ..." (the 4 with the highest peaks).
fn summary(series: &[Series]) -> String {
    let peak = |s: &Series| {
        s.samples
            .iter()
            .map(|(_, v)| *v)
            .filter(|v| v.is_finite())
            .fold(f64::MIN, f64::max)
    };
    let mut sorted: Vec<&Series> = series.iter().collect();
    sorted.sort_by(|a, b| peak(b).total_cmp(&peak(a)));
    let mut parts: Vec<String> = sorted
        .iter()
        .take(4)
        .map(|s| {
            let labels: Vec<String> = s
                .labels
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "job" | "node" | "__name__"))
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            let last = s
                .samples
                .iter()
                .rev()
                .find(|(_, v)| v.is_finite())
                .map(|(_, v)| format!("{v:.4}"))
                .unwrap_or_else(|| "NaN".into());
            let max = s
                .samples
                .iter()
                .map(|(_, v)| *v)
                .filter(|v| v.is_finite())
                .fold(f64::NAN, f64::max);
            format!("{{{}}} last={last} max={max:.4}", labels.join(","))
        })
        .collect();
    if series.len() > 4 {
        parts.push(format!("… {} more", series.len() - 4));
    }
    format!("{} series: {}", series.len(), parts.join("; "))
}
