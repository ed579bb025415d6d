//! The status page (`GET /`): one HTML file, one script and one stylesheet compiled into the
//! binary (no build step, nothing fetched from elsewhere). Every row on it is rendered here,
//! once: [`fragments`] turns the status, the probe history and the latest events into HTML
//! fragments (escaped with [`esc`]). With `server.status_public` the HTML is served filled with
//! them, so it is useful with scripts off; otherwise it carries a note that the data needs the
//! token, and the script asks for it. The script (`page.js`) fetches the same fragments from
//! `GET /status/fragments` every 2 s, swaps them in, and sends actions to the API the CLI
//! uses. Neither shows a secret: the token is never rendered, and the status carries none.

use std::fmt::Write;

use axum::Json;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AdminState;
use super::error::ApiError;
use super::history::{BUCKET_MS, BUCKETS, HistoryBody, InstanceHistory};
use crate::clock::now_ms;
use crate::control::{ClusterStatus, EndpointStatus, InstanceStatus, Status};
use crate::decide::{Override, OverrideKind, UnixMillis};
use crate::state::journal::Entry;

const HTML: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/page.js");
const STYLE: &str = include_str!("page/page.css");

/// Events shown on the page.
pub const EVENTS_SHOWN: usize = 20;

/// How far back the page's events go.
const EVENTS_WINDOW_MS: UnixMillis = 3_600_000;

const NO_OVERRIDES: &str = "<tr><td colspan=\"5\" class=\"mute\">none</td></tr>";
const NO_VIEW_HEALTH: &str = "<tr><td colspan=\"6\" class=\"mute\">every view is judged by the instances' own checks, by every observer</td></tr>";
const NO_EVENTS: &str = "<li class=\"mute\">none in the last hour</li>";

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

fn headers(content_type: &'static str) -> [(HeaderName, &'static str); 4] {
    [
        (CONTENT_TYPE, content_type),
        (CACHE_CONTROL, "no-store"),
        (HeaderName::from_static("content-security-policy"), CSP),
        (HeaderName::from_static("x-content-type-options"), "nosniff"),
    ]
}

pub(super) async fn script() -> Response {
    (headers("text/javascript; charset=utf-8"), SCRIPT).into_response()
}

pub(super) async fn style() -> Response {
    (headers("text/css; charset=utf-8"), STYLE).into_response()
}

/// What the page shows, as HTML fragments (`GET /status/fragments`, and the filled-in page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fragments {
    /// Server time the fragments were rendered at (ms since epoch).
    pub now_ms: UnixMillis,
    /// `version … · generation …` (plain text, not HTML).
    pub meta: String,
    /// Rows of `#endpoints tbody`.
    pub endpoints: String,
    /// Rows of `#instances tbody`, with the charts.
    pub instances: String,
    /// Rows of `#view-health tbody`: targets judged per view (at a view's addresses, or by
    /// the observers declaring it).
    pub view_health: String,
    /// Rows of `#overrides tbody`.
    pub overrides: String,
    /// Items of `#event-list`; `None` when the journal could not be read.
    pub events: Option<String>,
    /// The `#cluster` section (`[cluster]` only).
    pub cluster: Option<ClusterFragments>,
    /// The choices of the action forms' selects (plain text).
    pub choices: Choices,
}

/// The `#cluster` section's parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterFragments {
    /// Content of `#cluster-state`.
    pub state: String,
    /// Content of `#cluster-nodes thead`.
    pub head: String,
    /// Content of `#cluster-nodes tbody`.
    pub nodes: String,
}

/// What the action forms offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choices {
    /// Endpoint names.
    pub endpoints: Vec<String>,
    /// View names.
    pub views: Vec<String>,
    /// Instance ids.
    pub instances: Vec<String>,
    /// Override ids.
    pub overrides: Vec<String>,
}

/// The page's data, read the way the API reads it (the events as `GET /events` does).
async fn load(s: &AdminState) -> Result<Fragments, ApiError> {
    let status = s.control.status().await?;
    let now = now_ms();
    let history = s.history.body(now);
    let events = super::routes::read_events(s, now.saturating_sub(EVENTS_WINDOW_MS), EVENTS_SHOWN)
        .await
        .ok();
    Ok(fragments(&status, &history, events.as_deref()))
}

pub(super) async fn index(State(s): State<AdminState>) -> Response {
    let html = if s.is_public() {
        match load(&s).await {
            Ok(f) => render(Some(&f), ""),
            Err(e) => render(None, &format!("regdns cannot report its status: {e}")),
        }
    } else {
        render(
            None,
            "The data on this page needs the admin token (server.status_public is off): with JavaScript on, enter it above; without JavaScript, use `regdns status` or set server.status_public = true.",
        )
    };
    (headers("text/html; charset=utf-8"), html).into_response()
}

/// `GET /status/fragments`: what the script swaps into the page.
pub(super) async fn fragments_json(
    State(s): State<AdminState>,
) -> Result<Json<Fragments>, ApiError> {
    Ok(Json(load(&s).await?))
}

/// The page's fragments for `st`, the probe history `h` and the journal entries `events`
/// (oldest first; the newest [`EVENTS_SHOWN`] are shown, newest first).
pub fn fragments(st: &Status, h: &HistoryBody, events: Option<&[Entry]>) -> Fragments {
    let now = h.now_ms;
    let overrides = if st.overrides.is_empty() {
        NO_OVERRIDES.to_string()
    } else {
        st.overrides.iter().map(override_row).collect()
    };
    let events = events.map(|ev| {
        let s: String = ev
            .iter()
            .rev()
            .take(EVENTS_SHOWN)
            .map(|e| event_item(e, now))
            .collect();
        if s.is_empty() {
            NO_EVENTS.to_string()
        } else {
            s
        }
    });
    let ids: Vec<String> = st.instances.iter().map(|i| i.id.clone()).collect();
    Fragments {
        now_ms: now,
        meta: format!("version {} · generation {}", st.version, st.generation),
        endpoints: st.endpoints.iter().map(|e| endpoint_row(e, now)).collect(),
        instances: st
            .instances
            .iter()
            .map(|i| instance_row(i, h.instances.iter().find(|x| x.id == i.id), now))
            .collect(),
        view_health: {
            let rows: String = st
                .view_health
                .iter()
                .filter(|t| t.declared || t.checked != "instance")
                .map(view_health_row)
                .collect();
            if rows.is_empty() {
                NO_VIEW_HEALTH.to_string()
            } else {
                rows
            }
        },
        overrides,
        events,
        cluster: st.cluster.as_ref().map(|c| cluster(c, &ids)),
        choices: Choices {
            endpoints: unique(st.endpoints.iter().map(|e| &e.endpoint)),
            views: unique(st.endpoints.iter().map(|e| &e.view)),
            instances: ids,
            overrides: st.overrides.iter().map(|o| o.id.clone()).collect(),
        },
    }
}

/// The values in their first-seen order, without repeats.
fn unique<'a>(values: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

/// The page: with `data`, the tables filled in (the same fragments the script swaps in);
/// `note` is shown on top. The cluster section is left to the script.
pub fn render(data: Option<&Fragments>, note: &str) -> String {
    let (meta, public) = match data {
        Some(f) => (
            format!("{} · rendered {}", esc(&f.meta), iso(f.now_ms)),
            "true",
        ),
        None => (String::new(), "false"),
    };
    let part = |pick: fn(&Fragments) -> &str| data.map(pick).unwrap_or_default();
    let note = esc(note);
    fill(
        HTML,
        &[
            ("PUBLIC", public),
            ("META", &meta),
            ("NOTE", &note),
            ("ENDPOINTS", part(|f| &f.endpoints)),
            ("INSTANCES", part(|f| &f.instances)),
            ("VIEWHEALTH", part(|f| &f.view_health)),
            ("OVERRIDES", part(|f| &f.overrides)),
            ("EVENTS", part(|f| f.events.as_deref().unwrap_or(NO_EVENTS))),
        ],
    )
}

/// Fills the `@NAME@` placeholders of `template` in one pass: inserted text is never scanned
/// again, so a value that contains a placeholder (registry text in a reason) stays text.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(i) = rest.find('@') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match values
            .iter()
            .find(|(k, _)| after.starts_with(k) && after[k.len()..].starts_with('@'))
        {
            Some((k, v)) => {
                out.push_str(v);
                rest = &after[k.len() + 1..];
            }
            None => {
                out.push('@');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&#38;"),
            '<' => o.push_str("&#60;"),
            '>' => o.push_str("&#62;"),
            '"' => o.push_str("&#34;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn iso(ms: UnixMillis) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

fn ago(ms: UnixMillis, now: UnixMillis) -> String {
    let s = (now.saturating_sub(ms) + 500) / 1000;
    if s < 120 {
        format!("{s} s ago")
    } else if s < 7200 {
        format!("{} min ago", (s + 30) / 60)
    } else {
        format!("{} h ago", (s + 1800) / 3600)
    }
}

fn when(ms: UnixMillis, now: UnixMillis) -> String {
    let t = iso(ms);
    format!(
        "<time datetime=\"{t}\" title=\"{t}\">{}</time>",
        ago(ms, now)
    )
}

fn td(label: &str, html: &str, class: &str) -> String {
    if class.is_empty() {
        format!("<td data-label=\"{label}\">{html}</td>")
    } else {
        format!("<td data-label=\"{label}\" class=\"{class}\">{html}</td>")
    }
}

fn mark(class: &str, text: &str) -> String {
    format!("<span class=\"mark {class}\">{}</span>", esc(text))
}

fn fmt_ms(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.1} ms")
    } else {
        format!("{} ms", x.round())
    }
}

fn endpoint_row(e: &EndpointStatus, now: UnixMillis) -> String {
    let mut m = String::new();
    if e.degraded {
        m += &mark("bad", "degraded: no target up");
    }
    if let Some(p) = &e.failback_pending {
        m += &mark("warn", &format!("failback pending → {p}"));
    }
    if let Some(o) = &e.forced_by {
        m += &mark("info", &format!("forced by {o}"));
    }
    format!(
        "<tr data-endpoint=\"{}\" data-view=\"{}\">{}{}{}{}{}{}{}</tr>",
        esc(&e.endpoint),
        esc(&e.view),
        td("Endpoint", &esc(&e.endpoint), ""),
        td("View", &esc(&e.view), ""),
        td("Active", &esc(&e.active), "active"),
        td(
            "Answer",
            &format!("<code>{}</code>", esc(&e.answer)),
            "answer"
        ),
        td("Reason", &esc(&e.reason), "reason"),
        td("Since", &when(e.since_ms, now), ""),
        td("Marks", &m, "marks"),
    )
}

/// One target's health in one view, with who decided it.
fn view_health_row(t: &crate::control::ViewTargetStatus) -> String {
    let class = match t.state.as_str() {
        "up" => "ok",
        "down" => "bad",
        _ => "mute",
    };
    let observers: Vec<String> = t
        .observers
        .iter()
        .map(|(o, h)| format!("{}: {}", esc(o), esc(h)))
        .collect();
    format!(
        "<tr>{}{}{}{}{}{}</tr>",
        td("View", &esc(&t.view), ""),
        td("Target", &esc(&t.target), ""),
        td("State", &mark(class, &t.state), ""),
        td("Checked", &esc(&t.checked), ""),
        td(
            "Observers",
            &format!(
                "{} of {}: {}",
                esc(&t.quorum),
                if t.declared {
                    "those declaring the view"
                } else {
                    "all"
                },
                observers.join(", ")
            ),
            ""
        ),
        td("Reason", &esc(t.reason.as_deref().unwrap_or("")), "reason"),
    )
}

/// The last hour as bars, one per minute: height from the slowest probe (log scale), colour
/// from the failures.
pub fn chart(h: Option<&InstanceHistory>, now: UnixMillis) -> String {
    let end = now - now % BUCKET_MS;
    let mut r = String::new();
    for b in h.map(|h| h.buckets.as_slice()).unwrap_or_default() {
        let back = (end.saturating_sub(b.start_ms) + BUCKET_MS / 2) / BUCKET_MS;
        if back >= BUCKETS as u64 || b.start_ms > end {
            continue;
        }
        let i = BUCKETS as u64 - 1 - back;
        let class = if b.failed == b.probes {
            "fail"
        } else if b.failed > 0 {
            "some"
        } else {
            "ok"
        };
        let ht = if class == "fail" {
            28
        } else {
            4 + (24.0 * ((1.0 + b.max_latency_ms).log10() / 3.3).min(1.0)).round() as u32
        };
        let _ = write!(
            r,
            "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"3\" height=\"{ht}\"><title>{}Z: {} probes, {} failed, slowest {}</title></rect>",
            i * 4,
            28 - ht,
            &iso(b.start_ms)[11..16],
            b.probes,
            b.failed,
            fmt_ms(b.max_latency_ms)
        );
    }
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 240 28\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"probes over the last hour\">{r}</svg>"
    )
}

fn instance_row(i: &InstanceStatus, h: Option<&InstanceHistory>, now: UnixMillis) -> String {
    let mut st = format!("<span class=\"st {0}\">{0}</span>", esc(&i.state));
    if let Some(since) = i.since_ms {
        st += &format!(" {}", when(since, now));
    }
    if i.drained {
        st += &format!(" {}", mark("warn", "drained"));
    }
    if let Some(r) = &i.reason {
        st += &format!("<br><span class=\"reason\">{}</span>", esc(r));
    }
    if let Some(d) = &i.canary_digest {
        let lag = match (&i.replication_reference, i.replication_lag_ms) {
            (Some(r), _) if *r == i.id => "replication reference".to_string(),
            (Some(r), Some(0)) => format!("in sync with {r}"),
            (Some(r), Some(l)) => format!("behind {r} for {} s", l / 1000),
            _ => String::new(),
        };
        st += &format!(
            "<br><span class=\"mute\" title=\"{}\">canary {} {}</span>",
            esc(d),
            esc(&crate::probe::canary::short_digest(d)),
            esc(&lag)
        );
        if i.replication_behind {
            st += &format!(" {}", mark("bad", "behind: not eligible"));
        }
    }
    let checks: String = i
        .checks
        .iter()
        .map(|c| {
            format!(
                "<li class=\"{}\">{} {} {} <span class=\"mute\">{}</span></li>",
                if c.ok { "ok" } else { "fail" },
                esc(&c.check),
                if c.ok { "ok" } else { "FAIL" },
                fmt_ms(c.latency_ms),
                esc(&c.detail)
            )
        })
        .collect();
    let recent: String = h
        .map(|h| h.recent.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|s| {
            format!(
                "<b class=\"{}\" title=\"{} {} {}\">{}</b>",
                if s.ok { "ok" } else { "fail" },
                iso(s.at_ms),
                fmt_ms(s.latency_ms),
                esc(s.error.as_deref().unwrap_or("ok")),
                if s.ok { "●" } else { "✕" }
            )
        })
        .collect();
    let recent = if recent.is_empty() {
        recent
    } else {
        format!("<span class=\"recent\">{recent}</span>")
    };
    format!(
        "<tr data-instance=\"{}\">{}{}{}{}</tr>",
        esc(&i.id),
        td("Instance", &esc(&i.id), ""),
        td("State", &st, "state"),
        td(
            "Last checks",
            &format!("<ul class=\"checks\">{checks}</ul>{recent}"),
            ""
        ),
        td("Last hour", &chart(h, now), ""),
    )
}

fn override_row(o: &Override) -> String {
    let what = match &o.kind {
        OverrideKind::Force {
            endpoint,
            view,
            instance,
        } => format!(
            "force {} {} → {}",
            esc(endpoint),
            view.as_deref()
                .map(|v| format!("view {}", esc(v)))
                .unwrap_or_else(|| "every view".into()),
            esc(instance)
        ),
        OverrideKind::Drain { instance } => format!("drain {}", esc(instance)),
    };
    let exp = match o.expires {
        Some(t) => format!("<time datetime=\"{0}\">{0}</time>", iso(t)),
        None => "until released".into(),
    };
    format!(
        "<tr data-override=\"{}\">{}{}{}{}{}</tr>",
        esc(&o.id),
        td("Id", &format!("<code>{}</code>", esc(&o.id)), ""),
        td("What", &what, ""),
        td("Who", &esc(&o.actor), ""),
        td("Why", &esc(&o.reason), ""),
        td("Expires", &exp, ""),
    )
}

fn event_item(e: &Entry, now: UnixMillis) -> String {
    let where_: Vec<String> = [&e.endpoint, &e.view]
        .into_iter()
        .flatten()
        .map(|s| esc(s))
        .collect();
    let mv = if e.from.is_some() || e.to.is_some() {
        format!(
            " {} → {}",
            esc(e.from.as_deref().unwrap_or("")),
            esc(e.to.as_deref().unwrap_or(""))
        )
    } else {
        String::new()
    };
    let opt = |o: &Option<String>| {
        o.as_deref()
            .map(|s| format!(" {}", esc(s)))
            .unwrap_or_default()
    };
    let node = e
        .node
        .as_deref()
        .map(|n| format!(" <span class=\"mute\">[{}]</span>", esc(n)))
        .unwrap_or_default();
    format!(
        "<li>{}{node} <b>{}</b> {}{mv}{}{} <span class=\"mute\">by {}: {}</span></li>",
        when(e.time_ms, now),
        esc(&e.kind),
        where_.join(" "),
        opt(&e.instance),
        opt(&e.override_id),
        esc(&e.actor),
        esc(&e.reason)
    )
}

/// `[cluster]`: the state (ok/degraded), the leader and every node's view of every instance.
fn cluster(c: &ClusterStatus, ids: &[String]) -> ClusterFragments {
    let error = c
        .error
        .as_deref()
        .map(|e| format!(" · <span class=\"bad\">{}</span>", esc(e)))
        .unwrap_or_default();
    let state = format!(
        "<b class=\"{}\">cluster: {}</b> · this node {} · leader {} · health_quorum {}{error}",
        if c.state == "ok" { "" } else { "bad" },
        esc(&c.state),
        esc(&c.node),
        esc(c.leader.as_deref().unwrap_or("none")),
        esc(&c.health_quorum),
    );
    let head: String = ids.iter().map(|i| format!("<th>{}</th>", esc(i))).collect();
    let nodes = c
        .nodes
        .iter()
        .map(|n| {
            let leader = if c.leader.as_ref() == Some(&n.node) {
                " (leader)"
            } else {
                ""
            };
            let cells: String = ids
                .iter()
                .map(|i| {
                    let seen = n
                        .instances
                        .get(i)
                        .map(String::as_str)
                        .filter(|s| !s.is_empty())
                        .unwrap_or("-");
                    td(&esc(i), &esc(seen), "")
                })
                .collect();
            format!(
                "<tr data-node=\"{0}\">{1}{cells}</tr>",
                esc(&n.node),
                td("Node", &format!("{}{leader}", esc(&n.node)), "")
            )
        })
        .collect();
    ClusterFragments {
        state,
        head: format!("<tr><th>Node</th>{head}</tr>"),
        nodes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::history::{Bucket, Sample};

    #[test]
    fn escapes_everything_that_could_open_markup() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&#60;a href=&#39;x&#39;&#62;&#38;&#34;&#60;/a&#62;"
        );
    }

    #[test]
    fn without_data_the_page_has_the_note_and_empty_tables() {
        let p = render(None, "needs the <token>");
        assert!(p.contains("needs the &#60;token&#62;"));
        assert!(p.contains("data-public=\"false\""));
        assert!(!p.contains('@'), "every placeholder replaced");
        assert!(p.len() < 8 * 1024);
    }

    /// A placeholder inside a filled value (registry text reaches reasons) stays text: the
    /// page is filled in one pass, not by chained replaces.
    #[test]
    fn placeholders_inside_values_are_not_filled_again() {
        let out = fill(
            "<p>@ENDPOINTS@</p><ul>@EVENTS@</ul>@ mail@example",
            &[("ENDPOINTS", "reason: @EVENTS@"), ("EVENTS", "<li>x</li>")],
        );
        assert_eq!(
            out,
            "<p>reason: @EVENTS@</p><ul><li>x</li></ul>@ mail@example"
        );
        // And in the real page: an endpoint row whose text has a placeholder.
        let (st, h, ev) = sample();
        let mut f = fragments(&st, &h, Some(&ev));
        f.endpoints = "<tr><td>@EVENTS@ @NOTE@</td></tr>".into();
        let page = render(Some(&f), "n");
        assert!(page.contains("<td>@EVENTS@ @NOTE@</td>"), "{page}");
    }

    #[test]
    fn health_per_view_shows_only_views_judged_their_own_way_escaped() {
        let row = |view: &str, checked: &str, declared: bool| {
            serde_json::json!({"view": view, "target": "hz<1>", "state": "down",
                "reason": "v2@10.1.0.5: <refused>", "checked": checked, "quorum": "majority",
                "declared": declared, "observers": {"agent-<b>": "down"}})
        };
        let mut st: Status = serde_json::from_value(serde_json::json!({
            "version": "1", "started_ms": 0, "generation": 1, "zones": [], "publishers": [],
            "instances": [], "endpoints": [], "overrides": [],
            "view_health": [row("default", "instance", false)]
        }))
        .unwrap();
        let h = HistoryBody {
            now_ms: 1,
            bucket_ms: BUCKET_MS,
            instances: vec![],
        };
        assert_eq!(fragments(&st, &h, None).view_health, NO_VIEW_HEALTH);
        st.view_health = serde_json::from_value(serde_json::json!([
            row("default", "instance", false),
            row("vpc-b", "addresses 10.1.0.5", false),
            row("vpc-c", "instance", true)
        ]))
        .unwrap();
        let f = fragments(&st, &h, None).view_health;
        assert_eq!(f.matches("<tr>").count(), 2, "{f}");
        assert!(!f.contains(">default<"), "{f}");
        assert!(f.contains("addresses 10.1.0.5") && f.contains("those declaring the view"));
        assert!(
            f.contains("hz&#60;1&#62;") && f.contains("agent-&#60;b&#62;: down"),
            "{f}"
        );
        assert!(!f.contains("<refused>") && !f.contains("<b>"), "{f}");
    }

    /// A status with a hostile name in every field the page shows.
    fn sample() -> (Status, HistoryBody, Vec<Entry>) {
        let now = 1_700_000_030_000;
        let st: Status = serde_json::from_value(serde_json::json!({
            "version": "1.0<x>", "started_ms": 0, "generation": 7, "zones": [], "publishers": [],
            "instances": [
                {"id": "hz", "state": "up", "since_ms": now - 5_000, "drained": false,
                 "checks": [{"check": "v2", "ok": true, "latency_ms": 2.5, "detail": "<b>200</b>"}]},
                {"id": "zjk", "state": "down", "reason": "503 & <more>", "drained": true, "checks": []}
            ],
            "endpoints": [
                {"endpoint": "a.example.", "view": "default", "active": "hz", "answer": "CNAME <hz>.",
                 "reason": "preferred", "since_ms": now - 60_000, "degraded": false,
                 "forced_by": "ovr-1", "failback_pending": null},
                {"endpoint": "a.example.", "view": "vpc\"x", "active": "zjk", "answer": "A 10.1.3.4",
                 "reason": "r", "since_ms": now, "degraded": true, "forced_by": null,
                 "failback_pending": "hz"}
            ],
            "overrides": [{"id": "ovr-1", "kind": {"Force": {"endpoint": "a.example.", "view": null,
                "instance": "hz"}}, "reason": "<why>", "actor": "me", "created": now, "expires": null}],
            "cluster": {"node": "n1", "state": "degraded", "error": "<etcd>", "leader": "n1",
                "leading": true, "health_quorum": "any", "nodes": [{"node": "n1", "started_ms": 0,
                "version": "1", "instances": {"hz": "up"}}]}
        }))
        .unwrap();
        let h = HistoryBody {
            now_ms: now,
            bucket_ms: BUCKET_MS,
            instances: vec![InstanceHistory {
                id: "hz".into(),
                buckets: vec![Bucket {
                    start_ms: now - now % BUCKET_MS,
                    probes: 2,
                    failed: 1,
                    max_latency_ms: 12.0,
                }],
                recent: vec![Sample {
                    at_ms: now - 1_000,
                    ok: false,
                    latency_ms: 1.0,
                    error: Some("<boom>".into()),
                }],
            }],
        };
        let ev: Vec<Entry> = serde_json::from_value(serde_json::json!([
            {"time": "t", "time_ms": now - 2_000, "kind": "switch", "endpoint": "a.example.",
             "view": "default", "from": "zjk", "to": "hz", "reason": "<r>", "actor": "regdns"},
            {"time": "t", "time_ms": now - 1_000, "kind": "health", "instance": "zjk",
             "reason": "down", "actor": "regdns", "node": "n<2>"}
        ]))
        .unwrap();
        (st, h, ev)
    }

    #[test]
    fn the_page_without_scripts_shows_exactly_the_fragments_the_script_swaps_in() {
        let (st, h, ev) = sample();
        let f = fragments(&st, &h, Some(&ev));
        let p = render(Some(&f), "");
        for (table, rows) in [
            ("endpoints", &f.endpoints),
            ("instances", &f.instances),
            ("overrides", &f.overrides),
        ] {
            let at = p.find(&format!("<table id=\"{table}\">")).unwrap();
            let body = &p[at..];
            let body = &body[body.find("<tbody>").unwrap() + 7..body.find("</tbody>").unwrap()];
            assert_eq!(body, rows.as_str(), "{table}");
        }
        let events = f.events.as_deref().unwrap();
        assert!(
            p.contains(&format!("<ol id=\"event-list\">{events}</ol>")),
            "{p}"
        );
        assert!(
            p.contains("version 1.0&#60;x&#62; · generation 7 · rendered 2023-11-14T22:13:50.000Z")
        );
        assert!(!p.contains('@'), "every placeholder replaced");

        // Everything from the data is escaped in the HTML (meta and choices are plain text).
        let c = f.cluster.as_ref().unwrap();
        let all = [
            f.endpoints.as_str(),
            &f.instances,
            &f.overrides,
            events,
            &c.state,
            &c.nodes,
        ]
        .concat();
        for raw in [
            "<hz>", "<b>200", "<more>", "<why>", "<boom>", "<r>", "<2>", "<etcd>", "vpc\"x",
        ] {
            assert!(!all.contains(raw), "{raw} unescaped in {all}");
        }
        assert!(
            f.endpoints.contains("data-view=\"vpc&#34;x\""),
            "{}",
            f.endpoints
        );
        assert!(
            f.endpoints.contains("forced by ovr-1")
                && f.endpoints.contains("failback pending → hz")
        );
        assert!(
            f.instances.contains("<span class=\"st down\">down</span>"),
            "{}",
            f.instances
        );
        assert!(
            f.instances.contains("<rect class=\"some\""),
            "{}",
            f.instances
        );
        // Newest event first, with its node.
        assert!(events.starts_with("<li><time"), "{events}");
        let health = events.find("<b>health</b>").unwrap();
        assert!(health < events.find("<b>switch</b>").unwrap(), "{events}");
        assert!(
            events.contains("<span class=\"mute\">[n&#60;2&#62;]</span> <b>health</b>"),
            "{events}"
        );

        assert!(
            c.state
                .starts_with("<b class=\"bad\">cluster: degraded</b>"),
            "{}",
            c.state
        );
        assert_eq!(c.head, "<tr><th>Node</th><th>hz</th><th>zjk</th></tr>");
        assert!(
            c.nodes.contains("n1 (leader)") && c.nodes.contains(">-</td>"),
            "{}",
            c.nodes
        );
        assert_eq!(f.choices.endpoints, ["a.example."]);
        assert_eq!(f.choices.views, ["default", "vpc\"x"]);
        assert_eq!(f.choices.instances, ["hz", "zjk"]);
        assert_eq!(f.choices.overrides, ["ovr-1"]);
    }

    #[test]
    fn empty_lists_say_none() {
        let (mut st, h, _) = sample();
        st.overrides.clear();
        let f = fragments(&st, &h, Some(&[]));
        assert_eq!(f.overrides, NO_OVERRIDES);
        assert_eq!(f.events.as_deref(), Some(NO_EVENTS));
        // An unreadable journal: the script keeps what it shows, the page says none.
        let f = fragments(&st, &h, None);
        assert_eq!(f.events, None);
        assert!(render(Some(&f), "").contains(NO_EVENTS));
    }

    #[test]
    fn chart_places_minutes_from_the_right() {
        let now = 1_700_000_030_000;
        let end = now - now % BUCKET_MS;
        let h = InstanceHistory {
            id: "a".into(),
            buckets: vec![
                Bucket {
                    start_ms: end - 2 * BUCKET_MS,
                    probes: 4,
                    failed: 4,
                    max_latency_ms: 250.0,
                },
                Bucket {
                    start_ms: end,
                    probes: 3,
                    failed: 0,
                    max_latency_ms: 2.0,
                },
            ],
            recent: vec![Sample {
                at_ms: now,
                ok: true,
                latency_ms: 2.0,
                error: None,
            }],
        };
        let svg = chart(Some(&h), now);
        assert!(svg.contains("class=\"fail\" x=\"228\" y=\"0\""), "{svg}");
        assert!(svg.contains("class=\"ok\" x=\"236\""), "{svg}");
        assert!(svg.contains("4 probes, 4 failed"), "{svg}");
    }
}
