//! `regdns events [--since 1h] [--json]`: the event journal, oldest first.

use std::process::ExitCode;

use super::client::Client;
use super::{ApiArgs, print_json, table};

/// Flags of `regdns events`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// Window start: a duration ago (1h, 30m), an RFC 3339 time or ms since the epoch.
    #[arg(long, default_value = "1h")]
    since: String,
    /// Print JSON (the admin API's `GET /events`).
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(client: Client, a: Args) -> anyhow::Result<ExitCode> {
    let ev = client.events(&a.since).await?;
    if a.json {
        print_json(&ev)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = ev
        .events
        .iter()
        .map(|e| {
            let subject = match (&e.endpoint, &e.view, &e.instance) {
                (Some(ep), Some(v), _) => format!("{ep} [{v}]"),
                (Some(ep), None, _) => ep.clone(),
                (None, _, Some(i)) => i.clone(),
                _ => "-".into(),
            };
            let change = match (&e.from, &e.to) {
                (Some(f), Some(t)) => format!("{f} -> {t}"),
                (None, Some(t)) => format!("-> {t}"),
                _ => e.override_id.clone().unwrap_or_else(|| "-".into()),
            };
            vec![
                e.time.clone(),
                e.node.clone().unwrap_or_else(|| "-".into()),
                e.kind.clone(),
                subject,
                change,
                e.actor.clone(),
                e.reason.clone(),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no events since {}", a.since);
    } else {
        print!(
            "{}",
            table(
                &[
                    "TIME", "NODE", "KIND", "SUBJECT", "CHANGE", "ACTOR", "REASON"
                ],
                &rows
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}
