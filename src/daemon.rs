//! Wiring: builds the first snapshot, binds the sockets, runs the DNS servers, the apex
//! flattener and the controller that rebuilds the snapshot when an input changes, and
//! handles SIGHUP (reload) and SIGTERM/SIGINT (drain and exit). The only module that knows
//! all the others.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use tokio::sync::{mpsc, watch};

use crate::dns::server::{self, ServerSettings};
use crate::model::{self, Model, TargetAnswer};
use crate::publish::dns::{ActiveTargets, Flattened, build_snapshot};
use crate::snapshot::{SerialBook, SnapshotHandle};

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// A socket could not be bound.
    #[error(transparent)]
    Bind(#[from] server::BindError),
    /// Runtime I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Options of one daemon run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Override of `server.listen` (demo, tests).
    pub listen: Option<Vec<SocketAddr>>,
    /// Called with the bound DNS addresses once serving.
    pub announce: Option<fn(&[SocketAddr])>,
}

/// Active targets before any probe concluded: the first target of each view.
pub fn initial_active(model: &Model) -> ActiveTargets {
    let mut m = ActiveTargets::new();
    for ep in &model.endpoints {
        for (vi, v) in model.views.iter().enumerate() {
            m.insert(
                (ep.name.to_string(), v.name.clone()),
                ep.targets[vi][0].instance.clone(),
            );
        }
    }
    m
}

/// CNAME targets that must be flattened (every CNAME target of every apex endpoint, so a
/// switch to any of them is served at once).
pub fn flatten_names(model: &Model) -> Vec<Name> {
    let mut v: Vec<Name> = model
        .endpoints
        .iter()
        .filter(|e| e.is_apex(model))
        .flat_map(|e| e.targets.iter().flatten())
        .filter_map(|t| match &t.answer {
            TargetAnswer::Cname(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// State the controller owns.
struct Controller {
    model: Model,
    active: ActiveTargets,
    flattened: HashMap<Name, Flattened>,
    serials: SerialBook,
    generation: u64,
    snap: SnapshotHandle,
}

impl Controller {
    fn publish(&mut self) {
        self.generation += 1;
        let s = build_snapshot(
            &self.model,
            &self.active,
            &self.flattened,
            &mut self.serials,
            self.generation,
        );
        self.snap.store(Arc::new(s));
    }
}

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(model: Model, config_path: PathBuf, opts: RunOptions) -> Result<(), DaemonError> {
    let active = initial_active(&model);
    let mut serials = SerialBook::default();
    let first = build_snapshot(&model, &active, &HashMap::new(), &mut serials, 1);
    let snap: SnapshotHandle = Arc::new(ArcSwap::from_pointee(first));

    let settings = ServerSettings {
        udp_workers: model.server.udp_workers.unwrap_or(1),
        tcp_idle_timeout: model.server.tcp_idle_timeout,
        tcp_max_connections: model.server.tcp_max_connections,
    };
    let listen = opts
        .listen
        .clone()
        .unwrap_or_else(|| model.server.listen.clone());
    let bound = server::bind(&listen, &settings)?;
    let addrs = bound.local_addrs();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = server::spawn(bound, snap.clone(), settings, stop_rx.clone())?;
    for a in &addrs {
        tracing::info!(addr = %a, "serving DNS (udp+tcp)");
    }
    if let Some(f) = opts.announce {
        f(&addrs);
    }

    let (flat_tx, mut flat_rx) = mpsc::channel::<HashMap<Name, Flattened>>(4);
    let mut flattener = spawn_flattener(&model, flat_tx.clone());
    let mut ctl = Controller {
        model,
        active,
        flattened: HashMap::new(),
        serials,
        generation: 1,
        snap,
    };

    let mut hup = signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        tokio::select! {
            Some(f) = flat_rx.recv() => {
                ctl.flattened = f;
                ctl.publish();
            }
            _ = hup.recv() => {
                match model::load(&config_path) {
                    Ok(m) => {
                        tracing::info!(config = %config_path.display(), "reloaded configuration");
                        let fresh = initial_active(&m);
                        // Keep decisions for endpoints and views that still exist.
                        ctl.active = fresh.into_iter().map(|(k, v)| {
                            let keep = ctl.active.get(&k).filter(|id| {
                                m.endpoints.iter().any(|e| e.name.to_string() == k.0 && e.targets.iter().flatten().any(|t| &t.instance == *id))
                            }).cloned();
                            (k, keep.unwrap_or(v))
                        }).collect();
                        if let Some(h) = flattener.take() { h.abort(); }
                        flattener = spawn_flattener(&m, flat_tx.clone());
                        ctl.model = m;
                        ctl.publish();
                    }
                    Err(e) => tracing::error!(error = %e, "reload rejected; still serving the previous configuration"),
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("shutting down");
    if let Some(h) = flattener {
        h.abort();
    }
    let _ = stop_tx.send(true);
    while servers.join_next().await.is_some() {}
    Ok(())
}

fn signal(kind: tokio::signal::unix::SignalKind) -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind)
}

fn spawn_flattener(
    model: &Model,
    tx: mpsc::Sender<HashMap<Name, Flattened>>,
) -> Option<tokio::task::JoinHandle<()>> {
    let names = flatten_names(model);
    if names.is_empty() {
        return None;
    }
    let upstream = crate::flatten::default_upstream(model.server.upstream);
    tracing::info!(%upstream, names = ?names.iter().map(|n| n.to_string()).collect::<Vec<_>>(), "flattening apex CNAME targets");
    Some(tokio::spawn(crate::flatten::run(upstream, names, tx)))
}
