//! The status page in a real browser: headless Debian chromium driven over WebDriver
//! (`tests/support/webdriver.rs`) against the real daemon and simulated registries. Screenshots
//! land in `target/screenshots/`.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::daemon::{Daemon, ENDPOINT, HZ_CNAME, Registries, ZJK_CNAME, config_with_probe};
use support::webdriver::{Browser, screenshot_path};

/// Generous bound for the page to show a change: probes every 300 ms with fall = 1, the page
/// polls every 2 s; the deadline only limits how long a broken build waits.
const PAGE_BOUND: Duration = Duration::from_secs(20);

const ROWS: &str = "return [...document.querySelectorAll('#endpoints tbody tr')].map(r => \
    [r.dataset.endpoint, r.dataset.view, r.querySelector('.active').textContent, \
     r.querySelector('.answer').textContent, r.querySelector('.marks').textContent]);";
const INSTANCES: &str = "return Object.fromEntries([...document.querySelectorAll('#instances tbody tr')]\
    .map(r => [r.dataset.instance, r.querySelector('.st').textContent]));";
const NOTE: &str = "return document.querySelector('#note').textContent;";

/// The admin tests' daemon, with probes that tolerate a loaded machine (chromium runs beside
/// it): a 1 s timeout and two failures to go down, so only the registry the test breaks fails
/// over (it answers 503 at once, so the failover stays quick).
fn start(public: bool) -> (Registries, Daemon) {
    let regs = Registries::start();
    let mut cfg = config_with_probe(
        &regs,
        "manual",
        "interval = \"1s\"\ntimeout = \"1s\"\nrise = 1\nfall = 2\n",
    );
    if public {
        cfg = cfg.server("status_public", "true");
    }
    let d = Daemon::start(cfg);
    d.wait_both_up();
    (regs, d)
}

/// Prints the daemon's log when the test fails, whatever failed.
struct LogsOnPanic<'a>(&'a Daemon);

impl Drop for LogsOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("regdns log:\n{}", self.0.proc.logs());
        }
    }
}

fn row<'a>(rows: &'a Value, view: &str) -> Option<&'a Vec<Value>> {
    rows.as_array()?
        .iter()
        .filter_map(Value::as_array)
        .find(|r| r[0] == ENDPOINT && r[1] == view)
}

fn active_is(rows: &Value, view: &str, instance: &str) -> bool {
    row(rows, view).is_some_and(|r| r[2] == instance)
}

/// Opens the page and enters the token and a name in its form.
fn sign_in(b: &Browser, d: &Daemon) {
    b.goto(&format!("http://{}/", d.admin));
    b.type_into("#token", &d.token());
    b.type_into("#actor", "browser-test");
    b.click("#auth button[type=submit]");
}

/// Picks `value` in the select matching `css`.
fn choose(b: &Browser, css: &str, value: &str) {
    b.click(&format!("{css} option[value=\"{value}\"]"));
}

/// Fills and submits the force form, then confirms in the dialog.
fn force_from_page(b: &Browser, view: &str, instance: &str, reason: &str) {
    // The selects are filled by the first status poll.
    b.wait_for(
        "the force form's choices",
        PAGE_BOUND,
        "return document.querySelectorAll('#f-force select[name=instance] option').length;",
        |v| v.as_u64() == Some(2),
    );
    choose(b, "#f-force select[name=endpoint]", ENDPOINT);
    choose(b, "#f-force select[name=view]", view);
    choose(b, "#f-force select[name=instance]", instance);
    b.type_into("#f-force input[name=for]", "30m");
    b.type_into("#f-force input[name=reason]", reason);
    b.click("#f-force button[type=submit]");
    let text = b.wait_for(
        "the confirmation dialog",
        PAGE_BOUND,
        "const d = document.querySelector('#confirm'); return d.open ? d.textContent : null;",
        |v| v.is_string(),
    );
    let text = text.as_str().unwrap();
    assert!(
        text.contains(instance) && text.contains(reason) && text.contains(view),
        "{text}"
    );
    b.click("#confirm-ok");
}

#[test]
fn page_shows_endpoints_and_views_and_follows_a_broken_registry() {
    let (regs, d) = start(false);
    let _logs = LogsOnPanic(&d);
    let b = Browser::start();
    b.goto(&format!("http://{}/", d.admin));
    // Without the token the page asks for it and shows no data.
    b.wait_for("the token request", PAGE_BOUND, NOTE, |v| {
        v.as_str()
            .is_some_and(|s| s.contains("needs the admin token"))
    });
    assert_eq!(b.exec(ROWS, json!([])), json!([]));

    sign_in(&b, &d);
    let rows = b.wait_for("both views", PAGE_BOUND, ROWS, |v| {
        active_is(v, "default", "hangzhou") && active_is(v, "vpc", "zhangjiakou")
    });
    assert_eq!(
        row(&rows, "default").unwrap()[3],
        format!("CNAME {HZ_CNAME}"),
        "{rows}"
    );
    assert_eq!(row(&rows, "vpc").unwrap()[3], "A 10.1.3.4", "{rows}");
    b.wait_for("both instances up", PAGE_BOUND, INSTANCES, |v| {
        *v == json!({"hangzhou": "up", "zhangjiakou": "up"})
    });
    b.wait_for(
        "a chart bar per instance",
        PAGE_BOUND,
        "return document.querySelectorAll('#instances svg.chart rect.ok').length;",
        |v| v.as_u64() >= Some(2),
    );
    let html = b.exec("return document.documentElement.outerHTML;", json!([]));
    assert!(
        !html.as_str().unwrap().contains(&d.token()),
        "the page shows the token"
    );
    b.screenshot(&screenshot_path("page-healthy"));

    // Break hangzhou: the default view moves to zhangjiakou on the page, without a reload.
    b.exec("window.__same_document = true; return 1;", json!([]));
    regs.hz.set_up(false);
    let rows = b.wait_for("the failover", PAGE_BOUND, ROWS, |v| {
        active_is(v, "default", "zhangjiakou")
    });
    assert_eq!(
        row(&rows, "default").unwrap()[3],
        format!("CNAME {ZJK_CNAME}"),
        "{rows}"
    );
    b.wait_for("hangzhou down", PAGE_BOUND, INSTANCES, |v| {
        v["hangzhou"] == "down"
    });
    b.wait_for(
        "failed probes in hangzhou's chart",
        PAGE_BOUND,
        "return document.querySelectorAll('#instances tr[data-instance=hangzhou] rect.some, #instances tr[data-instance=hangzhou] rect.fail').length;",
        |v| v.as_u64() >= Some(1),
    );
    b.wait_for(
        "the switch in the events",
        PAGE_BOUND,
        "return document.querySelector('#event-list').textContent;",
        |v| {
            v.as_str()
                .is_some_and(|s| s.contains("switch") && s.contains("hangzhou → zhangjiakou"))
        },
    );
    assert_eq!(
        b.exec("return window.__same_document === true;", json!([])),
        json!(true),
        "the page reloaded instead of updating in place"
    );
    b.screenshot(&screenshot_path("page-failover"));

    // Healed, with manual failback: the page marks the pending failback.
    regs.hz.set_up(true);
    let rows = b.wait_for("the pending failback", PAGE_BOUND, ROWS, |v| {
        row(v, "default").is_some_and(|r| {
            r[4].as_str()
                .is_some_and(|m| m.contains("failback pending → hangzhou"))
        })
    });
    assert!(active_is(&rows, "default", "zhangjiakou"), "{rows}");
}

#[test]
fn failover_forced_from_the_page_reaches_the_wire_and_the_journal() {
    let (_regs, d) = start(false);
    let _logs = LogsOnPanic(&d);
    assert_eq!(d.answer(false), vec![HZ_CNAME.to_string()]);
    let b = Browser::start();
    sign_in(&b, &d);
    b.wait_for("both views", PAGE_BOUND, ROWS, |v| {
        active_is(v, "default", "hangzhou")
    });

    force_from_page(&b, "default", "zhangjiakou", "page test: hz maintenance");
    b.wait_for("the action's result", PAGE_BOUND, NOTE, |v| {
        v.as_str().is_some_and(|s| s.starts_with("Done:"))
    });
    // On the wire (the test's DNS client) and in the journal.
    d.wait_answer(false, ZJK_CNAME, PAGE_BOUND);
    let (_, ev) = d.call("GET", "/events", None);
    let added = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "override-added")
        .unwrap_or_else(|| panic!("no override-added in {ev:#}"))
        .clone();
    assert_eq!(added["reason"], "page test: hz maintenance", "{added:#}");
    assert_eq!(added["actor"], "browser-test", "{added:#}");
    assert!(
        ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "switch" && e["to"] == "zhangjiakou" && e["view"] == "default"),
        "{ev:#}"
    );
    // The page shows the override and the forced mark.
    let id = added["override_id"].as_str().unwrap().to_string();
    b.wait_for("the override", PAGE_BOUND, ROWS, |v| {
        row(v, "default").is_some_and(|r| {
            r[2] == "zhangjiakou" && r[4].as_str().is_some_and(|m| m.contains(&id))
        })
    });
    let who = b.wait_for(
        "the override row",
        PAGE_BOUND,
        "const r = document.querySelector('#overrides tr[data-override]'); return r ? r.textContent : null;",
        |v| v.is_string(),
    );
    assert!(
        who.as_str().unwrap().contains("browser-test")
            && who.as_str().unwrap().contains("hz maintenance"),
        "{who}"
    );
    b.screenshot(&screenshot_path("page-forced"));

    // Release it from the page: the answer goes back.
    b.wait_for(
        "the override in the release form",
        PAGE_BOUND,
        "return document.querySelectorAll('#f-release option').length;",
        |v| v.as_u64() == Some(1),
    );
    choose(&b, "#f-release select[name=id]", &id);
    b.type_into("#f-release input[name=reason]", "maintenance over");
    b.click("#f-release button[type=submit]");
    b.wait_for(
        "the confirmation dialog",
        PAGE_BOUND,
        "return document.querySelector('#confirm').open;",
        |v| *v == json!(true),
    );
    b.click("#confirm-ok");
    d.wait_answer(false, HZ_CNAME, PAGE_BOUND);
    let (_, st) = d.call("GET", "/status", None);
    assert_eq!(st["overrides"], json!([]), "{st:#}");
}

#[test]
fn without_the_token_the_action_is_refused_and_nothing_changes() {
    // status_public: the page shows the data without the token, but actions need it.
    let (_regs, d) = start(true);
    let _logs = LogsOnPanic(&d);
    let b = Browser::start();
    b.goto(&format!("http://{}/", d.admin));
    b.wait_for("both views", PAGE_BOUND, ROWS, |v| {
        active_is(v, "default", "hangzhou") && active_is(v, "vpc", "zhangjiakou")
    });

    force_from_page(&b, "default", "zhangjiakou", "no token here");
    let note = b.wait_for("the refusal", PAGE_BOUND, NOTE, |v| {
        v.as_str().is_some_and(|s| s.starts_with("Refused"))
    });
    assert!(
        note.as_str().unwrap().contains("401") && note.as_str().unwrap().contains("bearer token"),
        "{note}"
    );
    b.screenshot(&screenshot_path("page-refused"));

    // Nothing changed: no override, no journal entry, the same answers.
    let (_, st) = d.call("GET", "/status", None);
    assert_eq!(st["overrides"], json!([]), "{st:#}");
    let (_, ev) = d.call("GET", "/events", None);
    assert!(
        !ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "override-added"),
        "{ev:#}"
    );
    assert_eq!(d.answer(false), vec![HZ_CNAME.to_string()]);
    assert_eq!(d.answer(true), vec!["10.1.3.4".to_string()]);

    // Cancelling the confirmation sends nothing either.
    b.type_into("#f-force input[name=reason]", "cancelled");
    b.click("#f-force button[type=submit]");
    b.wait_for(
        "the confirmation dialog",
        PAGE_BOUND,
        "return document.querySelector('#confirm').open;",
        |v| *v == json!(true),
    );
    b.click("#confirm-cancel");
    b.wait_for(
        "the dialog closed",
        PAGE_BOUND,
        "return document.querySelector('#confirm').open;",
        |v| *v == json!(false),
    );
    assert_eq!(d.answer(false), vec![HZ_CNAME.to_string()]);
}

#[test]
fn the_page_is_readable_on_a_phone() {
    let (_regs, d) = start(true);
    let _logs = LogsOnPanic(&d);
    let b = Browser::start_with(&["--window-size=390,844"]);
    b.goto(&format!("http://{}/", d.admin));
    b.wait_for("both views", PAGE_BOUND, ROWS, |v| {
        active_is(v, "default", "hangzhou")
    });
    // No horizontal scrolling: the tables become one card per row.
    let w = b.exec(
        "return [document.documentElement.scrollWidth, window.innerWidth];",
        json!([]),
    );
    assert!(
        w[0].as_u64() <= w[1].as_u64(),
        "page wider than the phone: {w}"
    );
    b.screenshot(&screenshot_path("page-phone"));
}

#[test]
fn with_scripts_off_the_public_page_is_rendered_by_the_server() {
    let (_regs, d) = start(true);
    let _logs = LogsOnPanic(&d);
    let b = Browser::start_with(&["--blink-settings=scriptEnabled=false"]);
    b.goto(&format!("http://{}/", d.admin));
    let endpoints = b.text("#endpoints tbody");
    assert!(
        endpoints.contains(ENDPOINT)
            && endpoints.contains(&format!("CNAME {HZ_CNAME}"))
            && endpoints.contains("A 10.1.3.4"),
        "{endpoints}"
    );
    let instances = b.text("#instances tbody");
    assert!(
        instances.contains("hangzhou") && instances.contains("up"),
        "{instances}"
    );
    // No live updates and no actions without scripts: the actions stay hidden, the
    // noscript note says what to use instead.
    assert_eq!(b.text("#actions"), "");
    assert_eq!(
        b.text("#auth"),
        "",
        "the token form is useless without scripts"
    );
    assert!(
        b.text("main")
            .contains("regdns failover|drain|release|failback")
    );
    b.screenshot(&screenshot_path("page-noscript"));
}
