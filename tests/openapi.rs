//! The OpenAPI 3.1 description of the admin API (`docs/openapi.json`, served at
//! `GET /api/openapi.json`) stays true:
//! - every route the router registers is described, with the access it has (open, read,
//!   action), and every described route is registered;
//! - its request examples are accepted by the request types;
//! - a running regdns serves it without a token, links it from the status page, answers every
//!   described operation with one of the described statuses, and (where Python's
//!   `openapi-spec-validator` and `jsonschema` are installed) the document is a valid
//!   OpenAPI 3.1 document and every JSON answer fits its schema with no undescribed field.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use regdns::admin::{
    Access, AdminState, FailbackRequest, OverrideRequest, Token, openapi, registered_routes,
};
use regdns::control::ControlHandle;
use serde_json::Value;
use support::daemon::{http as admin_http, run_bounded};
use support::regdns::{http, registries, start};

fn document() -> Value {
    serde_json::from_str(openapi::DOCUMENT).expect("docs/openapi.json is JSON")
}

fn access_name(a: Access) -> &'static str {
    match a {
        Access::Open => "open",
        Access::Read => "read",
        Access::Action => "action",
    }
}

/// (METHOD, path, access) of every operation in the document.
fn described(doc: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            let access = op["x-regdns-access"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no x-regdns-access"));
            // The security requirement says the same as x-regdns-access.
            let security = op["security"]
                .as_array()
                .expect("security on every operation");
            if access == "open" {
                assert!(security.is_empty(), "{method} {path} is open: security []");
            } else {
                assert!(
                    security.iter().any(|s| s.get("bearer").is_some()),
                    "{method} {path} needs the bearer token"
                );
                assert!(
                    op["responses"].get("401").is_some(),
                    "{method} {path}: 401 described"
                );
            }
            out.insert((method.to_uppercase(), path.clone(), access.to_string()));
        }
    }
    out
}

fn admin_state() -> AdminState {
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    AdminState::new(
        ControlHandle::new(tx),
        Token::new("t", "/nonexistent/admin.token"),
        PathBuf::from("/nonexistent"),
        Arc::new(AtomicBool::new(false)),
    )
}

#[test]
fn described_routes_are_exactly_the_registered_routes() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let registered: BTreeSet<(String, String, String)> = registered_routes(&admin_state())
        .into_iter()
        .map(|r| {
            (
                r.method.to_string(),
                r.path.to_string(),
                access_name(r.access).to_string(),
            )
        })
        .collect();
    let described = described(&doc);
    let missing: Vec<_> = registered.difference(&described).collect();
    let extra: Vec<_> = described.difference(&registered).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "registered but not described (or with another access): {missing:?}\n\
         described but not registered (or with another access): {extra:?}"
    );
    assert!(registered.contains(&("GET".into(), openapi::PATH.into(), "open".into())));
    // Every $ref resolves and every operationId is unique.
    let text = openapi::DOCUMENT;
    for part in text.split("\"$ref\": \"#/").skip(1) {
        let pointer = format!("/{}", &part[..part.find('"').unwrap()]);
        assert!(doc.pointer(&pointer).is_some(), "dangling $ref {pointer}");
    }
    let ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|i| i.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
}

#[test]
fn request_examples_are_accepted_by_the_request_types() {
    let doc = document();
    let examples = |path: &str| -> Vec<Value> {
        doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["examples"]
            .as_object()
            .unwrap_or_else(|| panic!("POST {path}: no examples"))
            .values()
            .map(|e| e["value"].clone())
            .collect()
    };
    let overrides = examples("/overrides");
    assert_eq!(overrides.len(), 2);
    for v in overrides {
        let r: OverrideRequest =
            serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
        r.to_new_override(1_700_000_000_000)
            .unwrap_or_else(|e| panic!("{v}: {e}"));
    }
    for v in examples("/failback") {
        serde_json::from_value::<FailbackRequest>(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
    }
    // The described request properties are exactly the fields the types accept.
    let props = |schema: &str| -> BTreeSet<String> {
        doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let full = serde_json::json!({"type": "force", "endpoint": "e", "view": "v", "instance": "i",
        "for": "1m", "expires": "2030-01-01T00:00:00Z", "reason": "r", "actor": "a"});
    let accepted: OverrideRequest = serde_json::from_value(full.clone()).unwrap();
    let back: BTreeSet<String> = serde_json::to_value(&accepted)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(props("OverrideRequest"), back);
    let failback: FailbackRequest = serde_json::from_value(
        serde_json::json!({"endpoint": "e", "view": "v", "reason": "r", "actor": "a"}),
    )
    .unwrap();
    let back: BTreeSet<String> = serde_json::to_value(&failback)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(props("FailbackRequest"), back);
}

/// One answer of the live server, for the schema check.
struct Answer {
    what: String,
    schema: Option<String>,
    body: String,
}

/// The described response statuses of an operation.
fn statuses(doc: &Value, method: &str, path: &str) -> Vec<u16> {
    doc["paths"][path][method.to_lowercase()]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path} not described"))
        .keys()
        .map(|k| k.parse().unwrap())
        .collect()
}

/// The schema name of the JSON answer `status` of an operation, if it is a `$ref`.
fn schema_of(doc: &Value, method: &str, path: &str, status: u16) -> Option<String> {
    let r = &doc["paths"][path][method.to_lowercase()]["responses"][status.to_string()];
    let r = match r["$ref"].as_str() {
        Some(p) => doc.pointer(&p[1..]).unwrap(),
        None => r,
    };
    r["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .map(|s| s.trim_start_matches("#/components/schemas/").to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_running_server_answers_as_described() {
    let doc = document();
    let (hz, zjk, dns) = registries(false).await;
    let r = start(dns, &http(&hz), &http(&zjk), "");
    let token = r.token();
    let call = |method: &str, path: &str, auth: bool, body: Option<&str>| {
        admin_http(r.admin, method, path, auth.then_some(token.as_str()), body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", r.proc.logs()))
    };
    // Served without a token, byte for byte the file, and linked from the status page.
    let (s, body) = call("GET", openapi::PATH, false, None);
    assert_eq!(s, 200);
    assert_eq!(body, openapi::DOCUMENT);
    let (s, page) = call("GET", "/", false, None);
    assert_eq!(s, 200);
    assert!(page.contains("href=\"/api/openapi.json\""), "{page}");

    let mut answers = Vec::new();
    let mut answer =
        |method: &str, path: &str, described_path: &str, body: Option<&str>, auth: bool| {
            let (s, text) = call(method, path, auth, body);
            let allowed = statuses(&doc, method, described_path);
            assert!(
                allowed.contains(&s),
                "{method} {path} answered {s}, described: {allowed:?}\n{text}"
            );
            answers.push(Answer {
                what: format!("{method} {path} (token: {auth}) -> {s}"),
                schema: schema_of(&doc, method, described_path, s),
                body: text.clone(),
            });
            (s, text)
        };
    let mut check = |method: &str, path: &str, described_path: &str, body: Option<&str>| {
        answer(method, path, described_path, body, true)
    };
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
        "/page.js",
        "/page.css",
        openapi::PATH,
        "/status",
        "/status/history",
        "/status/fragments",
        "/events?since=1h&limit=10",
    ] {
        let described = path.split('?').next().unwrap();
        let (s, _) = check("GET", path, described, None);
        assert_eq!(s, 200, "GET {path}");
    }
    let force = r#"{"type":"force","endpoint":"cross-region.registry.io","instance":"zhangjiakou","for":"30m","reason":"openapi test","actor":"tester"}"#;
    let (s, created) = check("POST", "/overrides", "/overrides", Some(force));
    assert_eq!(s, 201, "{created}");
    let id = serde_json::from_str::<Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = check(
        "DELETE",
        &format!("/overrides/{id}?actor=tester&reason=done"),
        "/overrides/{id}",
        None,
    );
    assert_eq!(s, 200);
    let drain =
        r#"{"type":"drain","instance":"hangzhou","reason":"openapi test","actor":"tester"}"#;
    let (s, _) = check("POST", "/overrides", "/overrides", Some(drain));
    assert_eq!(s, 201);
    let (s, _) = check("DELETE", "/overrides?actor=tester", "/overrides", None);
    assert_eq!(s, 200);
    // Nothing is pending: 422 invalid, as described.
    let fb = r#"{"endpoint":"cross-region.registry.io","reason":"r","actor":"tester"}"#;
    let (s, _) = check("POST", "/failback", "/failback", Some(fb));
    assert_eq!(s, 422);
    let (s, _) = check("POST", "/reload", "/reload", None);
    assert_eq!(s, 200);
    // Error answers as described: 404 for an unknown override, 401 without the token.
    let (s, _) = check(
        "DELETE",
        "/overrides/ovr-00000000?actor=tester",
        "/overrides/{id}",
        None,
    );
    assert_eq!(s, 404);
    let (s, _) = answer("GET", "/status", "/status", None, false);
    assert_eq!(s, 401);
    validate_with_python(&doc, &answers);
}

/// The document against the OpenAPI 3.1 meta-schema and every JSON answer against its
/// schema, with every described object closed (`additionalProperties: false` where the
/// document does not say otherwise), so an undescribed field fails. Skipped with a message
/// when Python's `openapi_spec_validator` or `jsonschema` is missing.
fn validate_with_python(doc: &Value, answers: &[Answer]) {
    let probe = Command::new("python3")
        .args(["-c", "import openapi_spec_validator, jsonschema"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIPPED: schema validation needs python3 with openapi-spec-validator and jsonschema \
             (pip install openapi-spec-validator); the route and status checks ran"
        );
        return;
    }
    let dir = support::proc::temp_dir("openapi");
    std::fs::write(dir.path().join("openapi.json"), doc.to_string()).unwrap();
    let cases: Vec<Value> = answers
        .iter()
        .filter_map(|a| {
            let schema = a.schema.as_ref()?;
            let body: Value = serde_json::from_str(&a.body)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", a.what, a.body));
            Some(serde_json::json!({"what": a.what, "schema": schema, "body": body}))
        })
        .collect();
    assert!(cases.len() >= 12, "{} JSON answers", cases.len());
    std::fs::write(
        dir.path().join("cases.json"),
        serde_json::to_string(&cases).unwrap(),
    )
    .unwrap();
    let script = r##"
import json, sys
from openapi_spec_validator import validate
import jsonschema
doc = json.load(open(sys.argv[1]))
validate(doc)
def close(s):
    if isinstance(s, dict):
        if "properties" in s and "additionalProperties" not in s:
            s["additionalProperties"] = False
        for v in s.values():
            close(v)
    elif isinstance(s, list):
        for v in s:
            close(v)
components = json.loads(json.dumps(doc["components"]))
close(components)
bad = 0
for case in json.load(open(sys.argv[2])):
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": components, "$ref": "#/components/schemas/" + case["schema"]}
    errors = list(jsonschema.Draft202012Validator(root).iter_errors(case["body"]))
    for e in errors:
        bad += 1
        print(f"{case['what']}: {case['schema']}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
    if not errors:
        print(f"ok {case['what']} fits {case['schema']}")
sys.exit(1 if bad else 0)
"##;
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(script)
        .arg(dir.path().join("openapi.json"))
        .arg(dir.path().join("cases.json"));
    let out = run_bounded(cmd, Duration::from_secs(60));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "schema validation failed:\n{text}");
}
