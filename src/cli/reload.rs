//! `regdns reload`: reload the config and zones (like SIGHUP). A broken file is rejected with
//! its `file:line`, and the daemon keeps serving the previous configuration.

use std::process::ExitCode;

use super::ApiArgs;
use super::client::Client;

/// Flags of `regdns reload`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
}

pub(super) async fn run(client: Client, _a: Args) -> anyhow::Result<ExitCode> {
    let r = client.reload().await?;
    println!("{}", r.message);
    Ok(ExitCode::SUCCESS)
}
