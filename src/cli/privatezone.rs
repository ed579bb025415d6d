//! `regdns privatezone plan|apply -c FILE`: inspect or force one sync of every PrivateZone
//! binding, outside the daemon. The desired answers come from the decisions persisted in
//! `state_dir/state.json` (read only), or the first target of each view without it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use crate::decide::Decision;
use crate::model::{self, Model};
use crate::publish::privatezone::publisher::{self, BindingTarget};
use crate::publish::privatezone::{Env, ReconcileReport, reconcile};

/// Plan only, or apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Read and print the changes.
    Plan,
    /// Make them.
    Apply,
}

pub(super) fn run(config: &Path, mode: Mode) -> ExitCode {
    let m = match model::load(config) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    let Some(cfg) = m.privatezone.clone() else {
        eprintln!(
            "error: {}: no [privatezone] section: nothing to plan",
            config.display()
        );
        return ExitCode::from(super::EXIT_CONFIG);
    };
    init_logging();
    if mode == Mode::Apply && m.cluster.is_some() {
        eprintln!(
            "note: with [cluster] only the leader's daemon publishes; run this on the leader (regdns status shows it), or the leader sets the records back to its decisions"
        );
    }
    let (decisions, source) = saved_decisions(&m);
    let targets = publisher::binding_targets(&m, &decisions);
    if targets.is_empty() {
        println!("no [[endpoint.privatezone]] bindings: nothing to do");
        return ExitCode::SUCCESS;
    }
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("decisions: {source}");
    if mode == Mode::Apply && cfg.dry_run {
        println!("note: [privatezone] dry_run = true applies to the daemon; `apply` writes anyway");
    }
    rt.block_on(async move {
        let (client, creds) = match publisher::connect(&cfg, &Env::from_process()).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("credentials: {}", creds.status());
        let opts = publisher::reconcile_options(mode == Mode::Plan);
        let mut failed = false;
        for t in &targets {
            match reconcile(&client, &creds, &t.binding, &t.desired, &opts).await {
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
        if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
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

fn header(t: &BindingTarget) -> String {
    format!(
        "\n{}  endpoint {} view {} (active {})\n",
        t.name, t.endpoint, t.view, t.instance
    )
}

fn render(t: &BindingTarget, r: &ReconcileReport, mode: Mode) -> String {
    let mut s = header(t);
    let _ = writeln!(s, "  desired: {}", t.desired.summary());
    // After `apply`, `records` is what the zone holds once the changes are made.
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
                for op in &r.planned {
                    let _ = writeln!(s, "    {op}");
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
