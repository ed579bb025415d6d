//! Command line: one file per subcommand (`completions` and `man` generate the shell
//! completion scripts and the manual pages from this very definition). The only place besides `main.rs` that uses
//! `anyhow`; errors are printed once and mapped to exit codes here (`exit_code`).
//!
//! The operator commands (`status`, `failover`, `drain`, `release`, `failback`, `events`,
//! `reload`) are clients of the admin API ([`client`]): they find it through `-c FILE`
//! (`server.admin`, `server.admin_token_file`) or `--admin URL` and `--token-file PATH`.
//!
//! Exit codes:
//! - 0: success (`status`: and no endpoint is degraded);
//! - 1: runtime or API error (the daemon refused the request: invalid, could not persist…);
//! - 2: usage or configuration error (bad flags, unreadable config, missing or wrong token);
//! - 3: the daemon could not be reached;
//! - 4: something named does not exist (endpoint, view, instance, override);
//! - 5: `status` only: at least one endpoint is degraded (no target up, fail-static).

mod agent;
mod check;
pub mod client;
mod completions;
mod demo;
mod drain;
mod events;
mod failback;
mod failover;
mod man;
mod publish;
mod release;
mod reload;
mod serve;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use client::{Client, ClientError};

/// DNS failover controller for container-registry custom endpoints.
#[derive(Debug, Parser)]
#[command(name = "regdns", version, about, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `regdns --help` and the DESCRIPTION of regdns(1).
const LONG_ABOUT: &str = "DNS failover controller for container-registry custom endpoints.

regdns is an authoritative DNS server for a registry endpoint's zone that answers, per client \
network (view), with the instance that is healthy right now. It probes every instance's \
Docker Registry API (GET /v2/, optionally a canary pull), switches the answer on failure \
with hysteresis and a failback hold, journals every decision, keeps PrivateZone, Alidns or \
RFC 2136 records in step, and takes operator overrides through its admin API.

`serve` runs the daemon, `check` validates a configuration; the operator commands (status, \
failover, drain, release, failback, events, reload) talk to a running daemon through its \
admin API, found with -c (server.admin, server.admin_token_file) or --admin and --token-file.";

/// Default config file.
pub const DEFAULT_CONFIG: &str = "/etc/regdns/regdns.toml";

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the authoritative DNS server and failover controller.
    Serve {
        /// Config file.
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Listen here instead of `server.listen` (repeatable; UDP and TCP).
        #[arg(long)]
        listen: Vec<std::net::SocketAddr>,
    },
    /// Observe from inside a client network: probe the targets of `[agent] views` and
    /// report to the cluster's etcd (no DNS, no admin commands).
    Agent {
        /// Config file (the cluster's, with an `[agent]` section).
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Validate the config and zone files and print the resolved plan.
    Check {
        /// Config file.
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Inspect (`plan`) or force (`apply`) one sync of every publisher binding
    /// (PrivateZone, Alidns, RFC 2136).
    Publish {
        #[command(subcommand)]
        action: PublishAction,
    },
    /// `publish plan|apply` restricted to the PrivateZone bindings.
    Privatezone {
        #[command(subcommand)]
        action: PublishAction,
    },
    /// Self-contained demonstration on loopback: two simulated registries, DNS on
    /// 127.0.0.1:5353, a guided failover and failback, then commands on stdin.
    Demo {
        /// DNS address.
        #[arg(long, default_value = "127.0.0.1:5353")]
        listen: std::net::SocketAddr,
        /// Admin API address.
        #[arg(long, default_value = "127.0.0.1:8053")]
        admin: std::net::SocketAddr,
        /// Keep the demo's files here instead of a temporary directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Skip the guided failover/failback at start.
        #[arg(long)]
        no_tour: bool,
        /// Exit after the guided tour (for scripts and tests).
        #[arg(long)]
        exit_after_tour: bool,
    },
    /// Show instances, decisions, overrides, serials and publishers.
    ///
    /// Exit status: 0 when every endpoint has an up target, 5 when any endpoint is degraded
    /// (fail-static), 3 when regdns cannot be reached, 1/2 on other errors.
    Status(status::Args),
    /// Force ENDPOINT to answer with INSTANCE (an override, until released or expired).
    Failover(failover::Args),
    /// Avoid INSTANCE everywhere unless nothing else is up.
    Drain(drain::Args),
    /// Release an override (or every override with --all).
    Release(release::Args),
    /// Confirm a pending manual failback of ENDPOINT.
    Failback(failback::Args),
    /// Show the event journal (decisions, overrides, health, reloads).
    Events(events::Args),
    /// Reload the config and zone files (like SIGHUP); a broken config is rejected.
    Reload(reload::Args),
    /// Print the shell completion script for SHELL (bash, zsh, fish, ...).
    Completions(completions::Args),
    /// Print the manual page regdns(1), or write every page into a directory with --dir.
    Man(man::Args),
}

#[derive(Debug, Subcommand)]
enum PublishAction {
    /// Print, per binding, the current records, the desired answer and the changes.
    Plan {
        /// Config file.
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Make the changes once; exit 0 when every binding converged, 1 otherwise.
    Apply {
        /// Config file.
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

/// Exit status: runtime or API error.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for an invalid configuration or usage.
pub const EXIT_CONFIG: u8 = 2;
/// Exit status: the daemon could not be reached.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit status: something named does not exist.
pub const EXIT_NOT_FOUND: u8 = 4;
/// Exit status of `status`: an endpoint is degraded.
pub const EXIT_DEGRADED: u8 = 5;

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, listen } => serve::run(&config, listen),
        Command::Agent { config } => agent::run(&config),
        Command::Check { config } => check::run(&config),
        Command::Publish { action } => match action {
            PublishAction::Plan { config } => {
                publish::run(&config, publish::Mode::Plan, publish::Only::All)
            }
            PublishAction::Apply { config } => {
                publish::run(&config, publish::Mode::Apply, publish::Only::All)
            }
        },
        Command::Privatezone { action } => match action {
            PublishAction::Plan { config } => {
                publish::run(&config, publish::Mode::Plan, publish::Only::PrivateZone)
            }
            PublishAction::Apply { config } => {
                publish::run(&config, publish::Mode::Apply, publish::Only::PrivateZone)
            }
        },
        Command::Demo {
            listen,
            admin,
            dir,
            no_tour,
            exit_after_tour,
        } => demo::run(demo::DemoOptions {
            listen,
            admin,
            dir,
            tour: !no_tour,
            exit_after_tour,
        }),
        Command::Status(a) => api(&a.api.clone(), |c, _| status::run(c, a)),
        Command::Failover(a) => api(&a.api.clone(), |c, actor| failover::run(c, actor, a)),
        Command::Drain(a) => api(&a.api.clone(), |c, actor| drain::run(c, actor, a)),
        Command::Release(a) => api(&a.api.clone(), |c, actor| release::run(c, actor, a)),
        Command::Failback(a) => api(&a.api.clone(), |c, actor| failback::run(c, actor, a)),
        Command::Events(a) => api(&a.api.clone(), |c, _| events::run(c, a)),
        Command::Reload(a) => api(&a.api.clone(), |c, _| reload::run(c, a)),
        Command::Completions(a) => local(completions::run(a)),
        Command::Man(a) => local(man::run(a)),
    }
}

/// The exit code of a command that needs neither the config nor the daemon.
fn local(res: anyhow::Result<ExitCode>) -> ExitCode {
    res.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(exit_code(&e))
    })
}

/// How to reach the admin API; shared by every operator command.
#[derive(Debug, Clone, Args)]
pub(crate) struct ApiArgs {
    /// Config file: `server.admin` and `server.admin_token_file` are read from it.
    #[arg(short, long, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Admin API URL (instead of `server.admin` from the config), e.g. http://127.0.0.1:8053.
    #[arg(long, env = "REGDNS_ADMIN_URL")]
    admin: Option<String>,
    /// Bearer token file (instead of `server.admin_token_file` from the config).
    #[arg(long, env = "REGDNS_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Who is acting, recorded in the journal (default: $USER@hostname).
    #[arg(long)]
    actor: Option<String>,
    /// Request timeout.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// A usage or configuration problem (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

impl ApiArgs {
    /// The API URL and token file, from the flags or the config.
    fn endpoint(&self) -> anyhow::Result<(String, PathBuf)> {
        if let (Some(a), Some(t)) = (&self.admin, &self.token_file) {
            return Ok((a.clone(), t.clone()));
        }
        let loaded = crate::config::load(&self.config).map_err(|e| {
            UsageError(format!(
                "{e}\n(give --admin URL and --token-file PATH, or -c with the daemon's config)"
            ))
        })?;
        let admin = match &self.admin {
            Some(a) => a.clone(),
            None => format!("http://{}", loaded.config.server.admin),
        };
        let token = match &self.token_file {
            Some(t) => t.clone(),
            None => loaded.resolve(&loaded.config.server.admin_token_file),
        };
        Ok((admin, token))
    }

    fn actor(&self) -> String {
        self.actor.clone().unwrap_or_else(default_actor)
    }
}

/// `$USER@hostname`, or `cli`.
fn default_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    match (user, host) {
        (Some(u), Some(h)) => format!("{u}@{h}"),
        (Some(u), None) => u,
        _ => "cli".to_string(),
    }
}

/// Runs one operator command against the admin API and maps its outcome to an exit code.
fn api<F, Fut>(args: &ApiArgs, f: F) -> ExitCode
where
    F: FnOnce(Client, String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let res = (|| -> anyhow::Result<ExitCode> {
        let (url, token_file) = args.endpoint()?;
        let token = std::fs::read_to_string(&token_file)
            .map_err(|e| {
                UsageError(format!(
                    "cannot read the admin token {}: {e} (run as a user who can read it, or give --token-file)",
                    token_file.display()
                ))
            })?
            .trim()
            .to_string();
        let client = Client::new(&url, Some(token), args.timeout).map_err(UsageError)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime")?;
        rt.block_on(f(client, args.actor()))
    })();
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The one map from errors to exit codes (see the module doc).
pub(crate) fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<UsageError>().is_some() {
        return EXIT_CONFIG;
    }
    match e.downcast_ref::<ClientError>() {
        Some(ClientError::Unreachable { .. }) => EXIT_UNREACHABLE,
        Some(ClientError::Api { status, .. }) => match status.as_u16() {
            404 => EXIT_NOT_FOUND,
            401 => EXIT_CONFIG,
            _ => EXIT_FAILURE,
        },
        _ => EXIT_FAILURE,
    }
}

/// Installs the tracing subscriber (`RUST_LOG` overrides the default `info`).
pub(crate) fn init_logging(format: crate::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
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

/// Renders rows as aligned columns under `headers` (two spaces between columns).
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            s.push_str(c);
            if i + 1 < n {
                let pad = widths[i] + 2 - c.chars().count();
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(headers.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// "2025-01-02T03:04:05Z (3m0s ago)" style time for tables.
pub(crate) fn ago(ms: u64) -> String {
    let now = crate::clock::now_ms();
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    let when = humantime::format_rfc3339_seconds(t).to_string();
    if ms <= now {
        format!("{when} ({} ago)", crate::decide::format_duration(now - ms))
    } else {
        format!("{when} (in {})", crate::decide::format_duration(ms - now))
    }
}

/// Prints JSON to stdout.
pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    let mut s = serde_json::to_string_pretty(v).context("cannot encode JSON")?;
    s.push('\n');
    use std::io::Write;
    std::io::stdout()
        .write_all(s.as_bytes())
        .context("cannot write to stdout")
}

/// One-line description of an override.
pub(crate) fn describe_override(o: &crate::decide::Override) -> String {
    use crate::decide::OverrideKind;
    let what = match &o.kind {
        OverrideKind::Force {
            endpoint,
            view,
            instance,
        } => format!(
            "force {endpoint} -> {instance} ({})",
            view.as_deref()
                .map(|v| format!("view {v}"))
                .unwrap_or_else(|| "all views".into())
        ),
        OverrideKind::Drain { instance } => format!("drain {instance}"),
    };
    let until = o
        .expires
        .map(|t| format!("until {}", ago(t)))
        .unwrap_or_else(|| "until released".into());
    format!("{}: {what}, {until}, by {}: {}", o.id, o.actor, o.reason)
}
