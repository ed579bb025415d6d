//! `regdns failback ENDPOINT [--view VIEW] --reason TEXT`: confirm a pending manual failback.

use std::process::ExitCode;

use super::ApiArgs;
use super::client::Client;
use crate::admin::FailbackRequest;

/// Flags of `regdns failback`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// Endpoint name (the trailing dot is optional).
    endpoint: String,
    /// Only this view (default: every view with a pending failback).
    #[arg(long)]
    view: Option<String>,
    /// Why (journaled).
    #[arg(long)]
    reason: String,
}

pub(super) async fn run(client: Client, actor: String, a: Args) -> anyhow::Result<ExitCode> {
    let done = client
        .failback(&FailbackRequest {
            endpoint: a.endpoint,
            view: a.view,
            reason: a.reason,
            actor,
        })
        .await?;
    for e in &done.events {
        println!(
            "{} [{}]: {} -> {} ({})",
            e.endpoint,
            e.view,
            e.from.as_deref().unwrap_or("-"),
            e.to,
            e.reason
        );
    }
    if done.events.is_empty() {
        println!("confirmed; no answer changed");
    }
    Ok(ExitCode::SUCCESS)
}
