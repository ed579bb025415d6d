//! The admin HTTP API of the real binary: authentication, every endpoint's happy path, and
//! bad inputs answered with a 4xx and a message a person can act on.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::daemon::{Daemon, ENDPOINT, HZ_CNAME, Registries, ZJK_CNAME, config, http};

fn start() -> (Registries, Daemon) {
    let regs = Registries::start();
    let d = Daemon::start(config(&regs, "manual"));
    d.wait_both_up();
    (regs, d)
}

fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or("")
}

#[track_caller]
fn assert_error(got: (u16, Value), status: u16, code: &str, needle: &str) {
    let (s, v) = got;
    assert_eq!(s, status, "{v:#}");
    assert_eq!(v["error"], code, "{v:#}");
    assert!(
        message(&v).contains(needle),
        "message {:?} should contain {needle:?}",
        message(&v)
    );
}

#[test]
fn auth_health_and_metrics() {
    let (_regs, d) = start();
    let a = d.admin;

    // No token, wrong token, wrong scheme: 401 with advice naming the token file.
    let (s, body) = http(a, "GET", "/status", None, None).unwrap();
    assert_eq!(s, 401, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "unauthorized");
    assert!(message(&v).contains("missing bearer token"), "{v}");
    assert!(message(&v).contains("admin.token"), "{v}");
    let (s, body) = http(a, "GET", "/status", Some("not-the-token"), None).unwrap();
    assert_eq!(s, 401);
    assert!(body.contains("wrong bearer token"), "{body}");
    for (m, p) in [
        ("POST", "/overrides"),
        ("DELETE", "/overrides"),
        ("DELETE", "/overrides/ovr-1"),
        ("POST", "/failback"),
        ("POST", "/reload"),
        ("GET", "/events"),
    ] {
        let (s, _) = http(a, m, p, Some("x"), Some("{}")).unwrap();
        assert_eq!(s, 401, "{m} {p} without the right token");
    }

    // Open endpoints.
    assert_eq!(http(a, "GET", "/healthz", None, None).unwrap().0, 200);
    assert_eq!(http(a, "GET", "/readyz", None, None).unwrap().0, 200);
    // Some traffic for the query counters.
    assert_eq!(d.answer(false), vec![HZ_CNAME.to_string()]);
    let (s, m) = http(a, "GET", "/metrics", None, None).unwrap();
    assert_eq!(s, 200);
    for needle in [
        "regdns_dns_queries_total{view=\"default\",rcode=\"NOERROR\",protocol=\"udp\"}",
        "regdns_instance_up{instance=\"hangzhou\"} 1",
        &format!(
            "regdns_active_target{{endpoint=\"{ENDPOINT}\",view=\"default\",instance=\"hangzhou\"}} 1"
        ),
        &format!("regdns_endpoint_degraded{{endpoint=\"{ENDPOINT}\",view=\"vpc\"}} 0"),
        "regdns_probe_results_total{instance=\"zhangjiakou\",check=\"v2\",result=\"ok\"}",
        "regdns_probe_duration_seconds_bucket{",
        "regdns_build_info{version=",
        "regdns_overrides{kind=\"force\"} 0",
        "regdns_zone_serial{zone=\"registry.test.\",view=\"vpc\"}",
        "# TYPE regdns_snapshot_generation gauge",
        "# TYPE regdns_state_write_errors_total counter",
    ] {
        assert!(m.contains(needle), "{needle} missing from /metrics:\n{m}");
    }

    // Unknown route: JSON 404.
    let (s, v) = d.call("GET", "/nope", None);
    assert_eq!(s, 404);
    assert!(message(&v).contains("no such endpoint: GET /nope"), "{v}");
}

#[test]
fn overrides_failback_events_and_reload() {
    let (_regs, d) = start();

    // --- status
    let (s, st) = d.call("GET", "/status", None);
    assert_eq!(s, 200);
    assert_eq!(st["endpoints"].as_array().unwrap().len(), 2, "{st:#}");
    assert_eq!(st["instances"].as_array().unwrap().len(), 2);

    // --- POST /overrides: bad inputs
    let force = |extra: Value| {
        let mut b = json!({"type": "force", "endpoint": "cross-region.registry.test",
                           "instance": "zhangjiakou", "reason": "test", "actor": "alice"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                b.as_object_mut().unwrap().remove(k);
            } else {
                b[k] = v.clone();
            }
        }
        d.call("POST", "/overrides", Some(&b.to_string()))
    };
    assert_error(
        force(json!({"endpoint": "nope.registry.test"})),
        404,
        "not_found",
        "unknown endpoint \"nope.registry.test.\" (known: cross-region.registry.test.)",
    );
    assert_error(
        force(json!({"view": "mars"})),
        404,
        "not_found",
        "unknown view \"mars\" (known: default, vpc)",
    );
    assert_error(
        force(json!({"instance": "shanghai"})),
        404,
        "not_found",
        "unknown instance \"shanghai\" (known: hangzhou, zhangjiakou)",
    );
    assert_error(
        force(json!({"expires": "2001-01-01T00:00:00Z"})),
        422,
        "invalid",
        "the expiry is in the past",
    );
    assert_error(
        force(json!({"for": "soon"})),
        422,
        "invalid",
        "is not a duration",
    );
    assert_error(
        force(json!({"for": "1m", "expires": "2999-01-01T00:00:00Z"})),
        422,
        "invalid",
        "not both",
    );
    assert_error(
        force(json!({"reason": null})),
        422,
        "invalid",
        "a reason is required",
    );
    assert_error(
        force(json!({"actor": ""})),
        422,
        "invalid",
        "an actor is required",
    );
    assert_error(
        force(json!({"endpoint": null})),
        422,
        "invalid",
        "\"endpoint\" is required for a force override",
    );
    assert_error(
        d.call("POST", "/overrides", Some("{\"type\": \"force\", ")),
        400,
        "bad_request",
        "invalid JSON body: EOF while parsing",
    );
    assert_error(
        d.call(
            "POST",
            "/overrides",
            Some("{\"type\": \"teleport\", \"instance\": \"x\"}"),
        ),
        400,
        "bad_request",
        "unknown variant `teleport`, expected `force` or `drain`",
    );
    assert_error(
        d.call(
            "POST",
            "/overrides",
            Some("{\"type\": \"drain\", \"instance\": \"hangzhou\", \"colour\": 1}"),
        ),
        400,
        "bad_request",
        "unknown field `colour`",
    );
    assert_error(
        d.call("POST", "/overrides", None),
        400,
        "bad_request",
        "a JSON body is required",
    );
    let huge = format!("{{\"reason\": \"{}\"}}", "x".repeat(70 * 1024));
    let (s, _) = d.call("POST", "/overrides", Some(&huge));
    assert_eq!(s, 413, "body over the limit");

    // --- POST /overrides: happy path, visible in status and on the wire
    let (s, o) = force(json!({"view": "default", "for": "10m"}));
    assert_eq!(s, 201, "{o:#}");
    let id = o["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("ovr-"), "{o}");
    assert!(o["expires"].as_u64().is_some(), "{o}");
    d.wait_answer(false, ZJK_CNAME, Duration::from_secs(3));
    let (_, st) = d.call("GET", "/status", None);
    assert_eq!(st["overrides"][0]["id"], id.as_str());
    let ep = st["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["view"] == "default")
        .unwrap();
    assert_eq!(ep["active"], "zhangjiakou");
    assert_eq!(ep["forced_by"], id.as_str());

    // Drain.
    let (s, dr) = d.call(
        "POST",
        "/overrides",
        Some(r#"{"type":"drain","instance":"zhangjiakou","reason":"patching","actor":"bob"}"#),
    );
    assert_eq!(s, 201, "{dr:#}");
    assert_error(
        d.call(
            "POST",
            "/overrides",
            Some(r#"{"type":"drain","instance":"nope","reason":"x","actor":"bob"}"#),
        ),
        404,
        "not_found",
        "unknown instance \"nope\"",
    );
    // The vpc view prefers zhangjiakou, which is drained now: hangzhou serves it.
    d.wait_answer(true, "10.94.205.198", Duration::from_secs(3));

    // --- DELETE /overrides/{id}
    assert_error(
        d.call("DELETE", &format!("/overrides/{id}"), None),
        422,
        "invalid",
        "?actor= is required",
    );
    assert_error(
        d.call("DELETE", "/overrides/ovr-nope?actor=alice", None),
        404,
        "not_found",
        "no override \"ovr-nope\" (active: ",
    );
    let (s, r) = d.call(
        "DELETE",
        &format!("/overrides/{id}?actor=alice&reason=done"),
        None,
    );
    assert_eq!(s, 200, "{r:#}");
    assert_eq!(r["released"][0]["id"], id.as_str());
    d.wait_answer(false, HZ_CNAME, Duration::from_secs(3));

    // --- DELETE /overrides (all)
    let (s, r) = d.call("DELETE", "/overrides?actor=alice&reason=all%20done", None);
    assert_eq!(s, 200, "{r:#}");
    assert_eq!(r["released"].as_array().unwrap().len(), 1);

    // --- POST /failback. failback = "manual": with the drain gone, the vpc view waits for
    // an operator before it returns to zhangjiakou.
    d.wait_status("failback pending", Duration::from_secs(5), |s| {
        s["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["view"] == "vpc" && e["failback_pending"] == "zhangjiakou")
    });
    assert_eq!(
        d.answer(true),
        vec!["10.94.205.198".to_string()],
        "manual: stays"
    );
    assert_error(
        d.call(
            "POST",
            "/failback",
            Some(r#"{"endpoint":"cross-region.registry.test","view":"default","reason":"r","actor":"a"}"#),
        ),
        422,
        "invalid",
        "no failback is pending for cross-region.registry.test.",
    );
    assert_error(
        d.call(
            "POST",
            "/failback",
            Some(r#"{"endpoint":"nope.test","reason":"r","actor":"a"}"#),
        ),
        404,
        "not_found",
        "unknown endpoint \"nope.test.\"",
    );
    assert_error(
        d.call(
            "POST",
            "/failback",
            Some(r#"{"endpoint":"cross-region.registry.test","view":"mars","reason":"r","actor":"a"}"#),
        ),
        404,
        "not_found",
        "unknown view \"mars\"",
    );
    assert_error(
        d.call("POST", "/failback", Some(r#"{"view":"vpc"}"#)),
        400,
        "bad_request",
        "missing field `endpoint`",
    );
    let (s, f) = d.call(
        "POST",
        "/failback",
        Some(r#"{"endpoint":"cross-region.registry.test","view":"vpc","reason":"verified","actor":"carol"}"#),
    );
    assert_eq!(s, 200, "{f:#}");
    assert_eq!(f["events"][0]["to"], "zhangjiakou", "{f:#}");
    d.wait_answer(true, "10.1.3.4", Duration::from_secs(3));

    // --- GET /events
    let (s, ev) = d.call("GET", "/events?since=1h", None);
    assert_eq!(s, 200);
    let events = ev["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for k in [
        "override-added",
        "override-released",
        "switch",
        "health",
        "failback",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let times: Vec<u64> = events
        .iter()
        .map(|e| e["time_ms"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "newest last");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "failback" && e["actor"] == "carol"),
        "failback journaled with its actor"
    );
    let (s, ev) = d.call("GET", "/events?since=0", None);
    assert_eq!(s, 200);
    assert!(!ev["events"].as_array().unwrap().is_empty());
    let (s, ev2) = d.call("GET", "/events?since=2999-01-01T00:00:00Z", None);
    assert_eq!(s, 200);
    assert!(ev2["events"].as_array().unwrap().is_empty());
    assert_error(
        d.call("GET", "/events?since=yesterday", None),
        400,
        "bad_request",
        "give a duration ago",
    );

    // --- POST /reload
    let (s, r) = d.call("POST", "/reload", None);
    assert_eq!(s, 200, "{r:#}");
    assert!(r["message"].as_str().unwrap().contains("reloaded"), "{r}");
}

#[test]
fn expired_override_is_released_journaled_and_visible() {
    let (_regs, d) = start();
    let (s, o) = d.call(
        "POST",
        "/overrides",
        Some(r#"{"type":"force","endpoint":"cross-region.registry.test","instance":"zhangjiakou","for":"1s","reason":"short","actor":"alice"}"#),
    );
    assert_eq!(s, 201, "{o:#}");
    d.wait_answer(false, ZJK_CNAME, Duration::from_secs(3));
    d.wait_answer(false, HZ_CNAME, Duration::from_secs(5));
    let s = d.wait_status("no override", Duration::from_secs(3), |s| {
        s["overrides"].as_array().is_some_and(|v| v.is_empty())
    });
    assert!(
        s["endpoints"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{s:#}"
    );
    let (_, ev) = d.call("GET", "/events?since=1h", None);
    assert!(
        ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "override-expired" && e["override_id"] == o["id"]),
        "{ev:#}"
    );
}
