//! The status page (`GET /`): one HTML file, one script and one stylesheet compiled into the
//! binary (no build step, nothing fetched from elsewhere). With `server.status_public` the
//! HTML is rendered with the current data, so it is useful with scripts off; otherwise it
//! carries a note that the data needs the token, and the script asks for it. The script
//! (`page.js`) re-renders the same markup from `GET /status`, `/status/history` and `/events`
//! every 2 s and sends actions to the API the CLI uses. Neither shows a secret: the token is
//! never rendered, and the status carries none.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use axum::response::{IntoResponse, Response};

use super::AdminState;
use super::history::{BUCKET_MS, BUCKETS, HistoryBody, InstanceHistory};
use crate::clock::now_ms;
use crate::control::{EndpointStatus, InstanceStatus, Status};
use crate::decide::{Override, OverrideKind, UnixMillis};
use crate::state::journal::{self, Entry};

const HTML: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/page.js");
const STYLE: &str = include_str!("page/page.css");

/// Events shown on the page.
pub const EVENTS_SHOWN: usize = 20;

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

pub(super) async fn index(State(s): State<AdminState>) -> Response {
    let html = if s.is_public() {
        let status = s.control.status().await;
        let history = s.history.body(now_ms());
        let dir = s.state_dir.clone();
        let since = now_ms().saturating_sub(3_600_000);
        let events = tokio::task::spawn_blocking(move || {
            journal::read_since(&dir, since, journal::DEFAULT_KEEP)
        })
        .await
        .unwrap_or_default();
        match status {
            Ok(st) => render(Some((&st, &history, &events)), ""),
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

/// The page: with `data`, the tables filled in (as the script would); `note` is shown on top.
pub fn render(data: Option<(&Status, &HistoryBody, &[Entry])>, note: &str) -> String {
    let (meta, public, eps, insts, ovs, evs): (String, &str, String, String, String, String) =
        match data {
            Some((st, h, ev)) => {
                let now = h.now_ms;
                (
                    format!(
                        "version {} · generation {} · rendered {}",
                        esc(&st.version),
                        st.generation,
                        iso(now)
                    ),
                    "true",
                    st.endpoints.iter().map(|e| endpoint_row(e, now)).collect(),
                    st.instances
                        .iter()
                        .map(|i| instance_row(i, h.instances.iter().find(|x| x.id == i.id), now))
                        .collect(),
                    if st.overrides.is_empty() {
                        "<tr><td colspan=\"5\" class=\"mute\">none</td></tr>".to_string()
                    } else {
                        st.overrides.iter().map(override_row).collect()
                    },
                    {
                        let s: String = ev
                            .iter()
                            .rev()
                            .take(EVENTS_SHOWN)
                            .map(|e| event_item(e, now))
                            .collect();
                        if s.is_empty() {
                            "<li class=\"mute\">none in the last hour</li>".to_string()
                        } else {
                            s
                        }
                    },
                )
            }
            None => (
                String::new(),
                "false",
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ),
        };
    HTML.replace("@PUBLIC@", public)
        .replace("@META@", &meta)
        .replace("@NOTE@", &esc(note))
        .replace("@ENDPOINTS@", &eps)
        .replace("@INSTANCES@", &insts)
        .replace("@OVERRIDES@", &ovs)
        .replace("@EVENTS@", &evs)
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

/// The last hour as bars, one per minute: height from the slowest probe (log scale), colour
/// from the failures; the same drawing as the script's.
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
    format!(
        "<li>{} <b>{}</b> {}{mv}{}{} <span class=\"mute\">by {}: {}</span></li>",
        when(e.time_ms, now),
        esc(&e.kind),
        where_.join(" "),
        opt(&e.instance),
        opt(&e.override_id),
        esc(&e.actor),
        esc(&e.reason)
    )
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
