//! `regdns failover ENDPOINT --to INSTANCE [--view VIEW] [--for 30m] --reason TEXT`: a force
//! override, acknowledged once the daemon has saved it.

use std::process::ExitCode;

use super::client::Client;
use super::{ApiArgs, describe_override};
use crate::admin::{OverrideRequest, OverrideType};

/// Flags of `regdns failover`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// Endpoint name, e.g. cross-region.registry.io (the trailing dot is optional).
    endpoint: String,
    /// Instance to serve.
    #[arg(long = "to", value_name = "INSTANCE")]
    to: String,
    /// Only in this view (default: every view).
    #[arg(long)]
    view: Option<String>,
    /// Lapse after this long (30m, 2h); default: until released.
    #[arg(long = "for", value_name = "DURATION")]
    duration: Option<String>,
    /// Why (journaled).
    #[arg(long)]
    reason: String,
}

pub(super) async fn run(client: Client, actor: String, a: Args) -> anyhow::Result<ExitCode> {
    let o = client
        .add_override(&OverrideRequest {
            kind: OverrideType::Force,
            endpoint: Some(a.endpoint),
            view: a.view,
            instance: a.to,
            duration: a.duration,
            expires: None,
            reason: a.reason,
            actor,
        })
        .await?;
    println!("{}", describe_override(&o));
    println!("release with: regdns release {}", o.id);
    Ok(ExitCode::SUCCESS)
}
