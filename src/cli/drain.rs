//! `regdns drain INSTANCE --reason TEXT [--for 30m]`: avoid an instance everywhere unless
//! nothing else is up.

use std::process::ExitCode;

use super::client::Client;
use super::{ApiArgs, describe_override};
use crate::admin::{OverrideRequest, OverrideType};

/// Flags of `regdns drain`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// Instance id.
    instance: String,
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
            kind: OverrideType::Drain,
            endpoint: None,
            view: None,
            instance: a.instance,
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
