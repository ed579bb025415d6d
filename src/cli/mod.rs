//! Command line: one file per subcommand. The only place besides `main.rs` that uses
//! `anyhow`; errors are printed once and mapped to exit codes here.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.

mod check;
mod demo;
mod privatezone;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// DNS failover controller for container-registry custom endpoints.
#[derive(Debug, Parser)]
#[command(name = "regdns", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the authoritative DNS server and failover controller.
    Serve {
        /// Config file.
        #[arg(short, long, default_value = "/etc/regdns/regdns.toml")]
        config: PathBuf,
        /// Listen here instead of `server.listen` (repeatable; UDP and TCP).
        #[arg(long)]
        listen: Vec<std::net::SocketAddr>,
    },
    /// Validate the config and zone files and print the resolved plan.
    Check {
        /// Config file.
        #[arg(short, long, default_value = "/etc/regdns/regdns.toml")]
        config: PathBuf,
    },
    /// Inspect (`plan`) or force (`apply`) one sync of the PrivateZone bindings.
    Privatezone {
        #[command(subcommand)]
        action: PrivatezoneAction,
    },
    /// Self-contained demonstration on loopback (DNS on 127.0.0.1:5353).
    Demo {
        /// DNS address.
        #[arg(long, default_value = "127.0.0.1:5353")]
        listen: std::net::SocketAddr,
        /// Keep the demo's files here instead of a temporary directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum PrivatezoneAction {
    /// Print, per binding, the current records, the desired answer and the changes.
    Plan {
        /// Config file.
        #[arg(short, long, default_value = "/etc/regdns/regdns.toml")]
        config: PathBuf,
    },
    /// Make the changes once; exit 0 when every binding converged, 1 otherwise.
    Apply {
        /// Config file.
        #[arg(short, long, default_value = "/etc/regdns/regdns.toml")]
        config: PathBuf,
    },
}

/// Exit status for an invalid configuration.
pub const EXIT_CONFIG: u8 = 2;

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, listen } => serve::run(&config, listen),
        Command::Check { config } => check::run(&config),
        Command::Privatezone { action } => match action {
            PrivatezoneAction::Plan { config } => {
                privatezone::run(&config, privatezone::Mode::Plan)
            }
            PrivatezoneAction::Apply { config } => {
                privatezone::run(&config, privatezone::Mode::Apply)
            }
        },
        Command::Demo { listen, dir } => demo::run(listen, dir),
    }
}

/// Installs the tracing subscriber (`RUST_LOG` overrides the default `info`).
pub(crate) fn init_logging(format: crate::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        crate::config::LogFormat::Json => builder.json().flatten_event(true).try_init(),
        crate::config::LogFormat::Text => builder.try_init(),
    };
}

/// A multi-threaded runtime for the daemon.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
