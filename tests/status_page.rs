//! The status page over plain HTTP (no browser): `server.status_public` opens the read-only data
//! and the server-side rendering, never the actions; without it every data route needs the
//! token and the page says so; the page's files are small, self-contained and secret-free.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::daemon::{Daemon, ENDPOINT, HZ_CNAME, Registries, config, http};

fn start(public: bool) -> (Registries, Daemon) {
    let regs = Registries::start();
    let mut cfg = config(&regs, "manual");
    if public {
        cfg = cfg.server("status_public", "true");
    }
    let d = Daemon::start(cfg);
    d.wait_both_up();
    (regs, d)
}

/// Sets `server.status_public` in the daemon's config file.
fn set_public(d: &mut Daemon, public: bool) {
    let cfg = d
        .config
        .clone()
        .server("status_public", &public.to_string());
    d.write_config(cfg);
}

/// The text between `open` and `close` after the first `start` in `page`.
fn inner<'a>(page: &'a str, start: &str, open: &str, close: &str) -> &'a str {
    let rest = &page[page
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {page}"))..];
    let from = rest.find(open).unwrap() + open.len();
    &rest[from..from + rest[from..].find(close).unwrap()]
}

fn force_body() -> String {
    json!({"type": "force", "endpoint": ENDPOINT, "instance": "zhangjiakou", "reason": "r", "actor": "anon"})
        .to_string()
}

/// Every action route, each with a body it would accept with the token.
fn actions() -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("POST", "/overrides", force_body()),
        ("DELETE", "/overrides?actor=anon", String::new()),
        ("DELETE", "/overrides/ovr-1?actor=anon", String::new()),
        (
            "POST",
            "/failback",
            json!({"endpoint": ENDPOINT, "reason": "r", "actor": "anon"}).to_string(),
        ),
        ("POST", "/reload", String::new()),
    ]
}

/// The read-only data routes: open with `server.status_public`, else behind the token.
const DATA: [&str; 4] = ["/status", "/status/history", "/status/fragments", "/events"];

fn get(d: &Daemon, path: &str, token: Option<&str>) -> (u16, String) {
    http(d.admin, "GET", path, token, None).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

#[test]
fn status_public_opens_the_read_only_data_and_never_the_actions() {
    let (_regs, d) = start(true);
    let token = d.token();
    for path in DATA {
        let (s, body) = get(&d, path, None);
        assert_eq!(s, 200, "GET {path} without a token: {body}");
        assert!(!body.contains(&token), "GET {path} shows the token");
    }
    // The page is rendered with the data (useful with scripts off).
    let (s, page) = get(&d, "/", None);
    assert_eq!(s, 200);
    assert!(page.contains("data-public=\"true\""), "{page}");
    for needle in [
        format!("data-endpoint=\"{ENDPOINT}\" data-view=\"default\""),
        format!("data-endpoint=\"{ENDPOINT}\" data-view=\"vpc\""),
        format!("<code>CNAME {HZ_CNAME}</code>"),
        "<code>A 10.1.3.4</code>".to_string(),
        "data-instance=\"hangzhou\"".to_string(),
        "data-instance=\"zhangjiakou\"".to_string(),
        "<span class=\"st up\">up</span>".to_string(),
        "<svg class=\"chart\"".to_string(),
    ] {
        assert!(page.contains(&needle), "page lacks {needle}:\n{page}");
    }
    assert!(!page.contains(&token), "the page shows the token");
    assert!(!page.contains("@ENDPOINTS@"), "placeholder left");

    // The fragments the script swaps in are the page's rows, for the same data (probes land
    // every 300 ms: a pair of requests may straddle one, so a few tries).
    let parts = |page: &str, f: &Value| {
        let page_parts: Vec<String> = ["endpoints", "instances", "overrides"]
            .map(|t| inner(page, &format!("<table id=\"{t}\">"), "<tbody>", "</tbody>"))
            .into_iter()
            .chain([inner(page, "<ol id=\"event-list\">", ">", "</ol>")])
            .map(str::to_string)
            .collect();
        let f_parts: Vec<String> = ["endpoints", "instances", "overrides", "events"]
            .map(|k| {
                f[k].as_str()
                    .unwrap_or_else(|| panic!("{k} in {f:#}"))
                    .to_string()
            })
            .into();
        (page_parts, f_parts)
    };
    let mut last = None;
    for _ in 0..50 {
        let page = get(&d, "/", None).1;
        let (s, f) = get(&d, "/status/fragments", None);
        assert_eq!(s, 200, "{f}");
        let f: Value = serde_json::from_str(&f).unwrap();
        let (p, fr) = parts(&page, &f);
        if p == fr {
            assert_eq!(
                f["choices"]["instances"],
                json!(["hangzhou", "zhangjiakou"]),
                "{f:#}"
            );
            let mut views: Vec<&str> = f["choices"]["views"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            views.sort();
            assert_eq!(views, ["default", "vpc"], "{f:#}");
            assert!(
                p[0].contains(&format!("<code>CNAME {HZ_CNAME}</code>")),
                "{p:?}"
            );
            last = None;
            break;
        }
        last = Some((p, fr));
    }
    if let Some((p, fr)) = last {
        assert_eq!(p, fr, "the page's rows and the fragments differ");
    }

    // Actions: 401 without the token, and with a wrong one; nothing changed.
    for (m, p, body) in actions() {
        for t in [None, Some("wrong")] {
            let (s, b) = http(d.admin, m, p, t, Some(&body)).unwrap();
            assert_eq!(s, 401, "{m} {p} with token {t:?}: {b}");
        }
    }
    let (_, st) = d.call("GET", "/status", None);
    assert_eq!(st["overrides"], json!([]), "{st:#}");
    let (_, ev) = d.call("GET", "/events", None);
    assert!(
        !ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "override-added" || e["kind"] == "reload"),
        "{ev:#}"
    );
    assert_eq!(d.answer(false), vec![HZ_CNAME.to_string()]);
}

#[test]
fn without_status_public_the_data_needs_the_token_and_the_page_says_so() {
    let (_regs, mut d) = start(false);
    let token = d.token();
    for path in DATA {
        let (s, body) = get(&d, path, None);
        assert_eq!(s, 401, "GET {path}: {body}");
        assert!(body.contains("missing bearer token"), "{body}");
        assert_eq!(get(&d, path, Some("wrong")).0, 401);
        assert_eq!(get(&d, path, Some(&token)).0, 200);
    }
    let (s, page) = get(&d, "/", None);
    assert_eq!(s, 200);
    assert!(page.contains("needs the admin token"), "{page}");
    assert!(page.contains("data-public=\"false\""));
    assert!(
        !page.contains("data-endpoint="),
        "no data without the token"
    );
    assert!(!page.contains("hangzhou"), "no data without the token");

    // The probe history: every instance, recent probes, minute buckets.
    let (_, h) = d.call("GET", "/status/history", None);
    let ids: Vec<&str> = h["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["hangzhou", "zhangjiakou"], "{h:#}");
    for i in h["instances"].as_array().unwrap() {
        assert!(!i["recent"].as_array().unwrap().is_empty(), "{h:#}");
        assert!(i["buckets"][0]["probes"].as_u64().unwrap() >= 1, "{h:#}");
        assert_eq!(i["recent"][0]["ok"], true);
    }
    assert_eq!(h["bucket_ms"], 60_000);

    // A reload that turns status_public on opens the data at once; actions stay closed.
    set_public(&mut d, true);
    let (s, v) = d.call("POST", "/reload", None);
    assert_eq!(s, 200, "{v:#}");
    for path in DATA {
        assert_eq!(get(&d, path, None).0, 200, "GET {path}");
    }
    let (s, _) = http(d.admin, "POST", "/overrides", None, Some(&force_body())).unwrap();
    assert_eq!(s, 401);
    set_public(&mut d, false);
    assert_eq!(d.call("POST", "/reload", None).0, 200);
    for path in DATA {
        assert_eq!(get(&d, path, None).0, 401, "GET {path}");
    }
}

#[test]
fn the_page_files_are_small_self_contained_and_served_with_a_strict_policy() {
    let (_regs, d) = start(false);
    for (path, ctype, limit) in [
        ("/", "text/html", 6 * 1024),
        ("/page.js", "text/javascript", 12 * 1024),
        ("/page.css", "text/css", 4 * 1024),
    ] {
        let mut s = std::net::TcpStream::connect(d.admin).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        use std::io::{Read, Write};
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.0 200"), "{path}: {head}");
        assert!(head.contains(&format!("content-type: {ctype}")), "{head}");
        assert!(
            head.contains("content-security-policy: default-src 'none'"),
            "{head}"
        );
        assert!(body.len() < limit, "{path} is {} bytes", body.len());
        // Nothing from elsewhere: no absolute URLs to other hosts.
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path}"
        );
    }
    let (s, v): (u16, Value) = d.call("GET", "/nope", None);
    assert_eq!(s, 404);
    assert!(
        v["message"].as_str().unwrap().contains("GET /, /status"),
        "{v}"
    );
}
