//! `regdns release OVERRIDE_ID | --all [--reason TEXT]`: remove overrides; the endpoints
//! return to what the rules give, as if the override had never been.

use std::process::ExitCode;

use super::client::Client;
use super::{ApiArgs, describe_override};

/// Flags of `regdns release`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all"])))]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// Override id (see `regdns status`).
    id: Option<String>,
    /// Release every override.
    #[arg(long)]
    all: bool,
    /// Why (journaled).
    #[arg(long, default_value = "")]
    reason: String,
}

pub(super) async fn run(client: Client, actor: String, a: Args) -> anyhow::Result<ExitCode> {
    let r = client
        .release(a.id.as_deref().filter(|_| !a.all), &actor, &a.reason)
        .await?;
    if r.released.is_empty() {
        println!("no override was in force");
    }
    for o in &r.released {
        println!("released {}", describe_override(o));
    }
    Ok(ExitCode::SUCCESS)
}
