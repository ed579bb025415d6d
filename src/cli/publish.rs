//! `regdns publish plan|apply -c FILE`: inspect or force one sync of every publisher
//! binding (PrivateZone, Alidns, RFC 2136), outside the daemon, through the same engine
//! (`regdns privatezone plan|apply` is the same, restricted to PrivateZone). The desired
//! answers come from the decisions persisted in `state_dir/state.json` (read only), or the
//! first target of each view without it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use crate::config::env::Env;
use crate::decide::Decision;
use crate::model::{self, Model};
use crate::publish::alidns::AlidnsProvider;
use crate::publish::engine::task::reconcile_options;
use crate::publish::engine::{BindingTarget, Provider, ReconcileReport, reconcile};
use crate::publish::privatezone::PvtzProvider;
use crate::publish::rfc2136::Rfc2136Provider;

/// Plan only, or apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Read and print the changes.
    Plan,
    /// Make them.
    Apply,
}

/// Which providers to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Only {
    /// Every provider.
    All,
    /// PrivateZone only (`regdns privatezone ...`).
    PrivateZone,
}

pub(super) fn run(config: &Path, mode: Mode, only: Only) -> ExitCode {
    let m = match model::load(config) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    if only == Only::PrivateZone && m.privatezone.is_none() {
        eprintln!(
            "error: {}: no [privatezone] section: nothing to plan",
            config.display()
        );
        return ExitCode::from(super::EXIT_CONFIG);
    }
    init_logging();
    if mode == Mode::Apply && m.cluster.is_some() {
        eprintln!(
            "note: with [cluster] only the leader's daemon publishes; run this on the leader (regdns status shows it), or the leader sets the records back to its decisions"
        );
    }
    let (decisions, source) = saved_decisions(&m);
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let env = Env::from_process();
    let mut any = false;
    let mut failed = false;
    println!("decisions: {source}");
    rt.block_on(async {
        let mut go = |(ran, f): (bool, bool)| {
            any |= ran;
            failed |= f;
        };
        go(run_provider::<PvtzProvider>(&m, &decisions, &env, mode).await);
        if only == Only::All {
            go(run_provider::<AlidnsProvider>(&m, &decisions, &env, mode).await);
            go(run_provider::<Rfc2136Provider>(&m, &decisions, &env, mode).await);
        }
    });
    if !any {
        println!(
            "no publisher bindings ([[endpoint.publish]] / [[endpoint.privatezone]]): nothing to do"
        );
        return ExitCode::SUCCESS;
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Plans or applies every binding of `P`; returns (had bindings, failed).
async fn run_provider<P: Provider>(
    m: &Model,
    decisions: &BTreeMap<(String, String), Decision>,
    env: &Env,
    mode: Mode,
) -> (bool, bool) {
    let targets = P::targets(m, decisions);
    if targets.is_empty() {
        return (false, false);
    }
    if mode == Mode::Apply && P::dry_run(m) {
        println!(
            "note: [{}] dry_run = true applies to the daemon; `apply` writes anyway",
            P::NAME
        );
    }
    let provider = match P::connect(m, env).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e}", P::SERVICE);
            return (true, true);
        }
    };
    if let Some(h) = provider.health() {
        println!("{}: {}", h.name, h.detail);
    }
    let opts = reconcile_options(mode == Mode::Plan);
    let mut failed = false;
    for t in &targets {
        match reconcile(&provider, &t.binding, &t.desired, &opts).await {
            Ok(r) => {
                print!("{}", render(t, &r, mode));
                if mode == Mode::Apply && !r.conflicts.is_empty() {
                    failed = true;
                }
            }
            Err(e) => {
                print!("{}", header(t));
                println!("  error: {e}");
                failed = true;
            }
        }
    }
    (true, failed)
}

/// Quiet by default (retries and errors only); `RUST_LOG` overrides.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The persisted decisions, read without touching the file; empty (first targets) when
/// there is none or it cannot be read.
fn saved_decisions(m: &Model) -> (BTreeMap<(String, String), Decision>, String) {
    let path = m.server.state_dir.join(crate::state::STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => match crate::state::parse(&bytes) {
            Ok(s) => (s.decisions, format!("saved in {}", path.display())),
            Err(e) => (
                BTreeMap::new(),
                format!(
                    "first target of each view ({} is unusable: {e})",
                    path.display()
                ),
            ),
        },
        Err(_) => (
            BTreeMap::new(),
            format!("first target of each view (no {})", path.display()),
        ),
    }
}

fn header<B>(t: &BindingTarget<B>) -> String {
    format!(
        "\n{}  endpoint {} view {} (active {})\n",
        t.name, t.endpoint, t.view, t.instance
    )
}

fn render<B>(t: &BindingTarget<B>, r: &ReconcileReport<B>, mode: Mode) -> String {
    let mut s = header(t);
    let _ = writeln!(s, "  desired: {}", t.desired.summary());
    // After `apply`, `records` is what the provider holds once the changes are made.
    let label = match mode {
        Mode::Plan => "current",
        Mode::Apply => "now",
    };
    let _ = writeln!(s, "  {label}:");
    if r.records.is_empty() {
        let _ = writeln!(s, "    (no managed records)");
    }
    for rec in &r.records {
        let _ = writeln!(s, "    {rec}");
    }
    for rec in &r.unmanaged {
        let _ = writeln!(s, "    {rec}  (not managed by regdns, left untouched)");
    }
    for c in &r.conflicts {
        let _ = writeln!(s, "  conflict: {}", c.reason);
    }
    match mode {
        Mode::Plan => {
            if r.planned.is_empty() && r.conflicts.is_empty() {
                let _ = writeln!(s, "  ops: none (in sync)");
            } else if !r.planned.is_empty() {
                let _ = writeln!(s, "  ops:");
                let note = if t.desired.records.is_empty() {
                    " (pass through to recursion)"
                } else {
                    ""
                };
                for op in &r.planned {
                    let _ = writeln!(s, "    {op}{note}");
                }
            }
        }
        Mode::Apply => {
            if r.applied.is_empty() && r.conflicts.is_empty() {
                let _ = writeln!(s, "  changed: nothing (in sync)");
            } else if !r.applied.is_empty() {
                let _ = writeln!(s, "  changed:");
                for c in &r.applied {
                    let _ = writeln!(s, "    {} (RequestId {})", c.description, c.request_id);
                }
            }
        }
    }
    s
}
