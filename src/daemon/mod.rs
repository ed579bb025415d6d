//! Wiring: opens the state directory, starts the controller (which publishes the first
//! snapshot from persisted decisions before any socket is bound), binds the DNS sockets,
//! runs the prober, the apex flattener and the controller loop, and handles SIGHUP
//! (reload) and SIGTERM/SIGINT (stop accepting, flush state, exit). The only module that
//! knows all the others. [`agent`] is the other process the binary runs: `regdns agent`,
//! a vantage point inside a client network; [`probers`] starts the probe tasks both use.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::env::Env;
use crate::control::{Command, ControlError, ControlHandle, PublisherStatus};
use crate::controller::{self, Controller, StartState};
use crate::dns::server::{self, ServerSettings};
use crate::model::{self, Model, TargetAnswer};
use crate::probe::{self, DigestSeen, ProbeReport, SchedCtx, Transition};
use crate::publish::Published;
use crate::snapshot::build::Flattened;
use crate::snapshot::{Snapshot, SnapshotHandle};
use crate::state::journal::{self, Entry, Journal};
use crate::state::{StateError, StateStore};

pub mod agent;
pub mod probers;
pub mod propagation;

use probers::Probers;
pub use probers::instance_spec;

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// A socket could not be bound.
    #[error(transparent)]
    Bind(#[from] server::BindError),
    /// The state directory is unusable.
    #[error(transparent)]
    State(#[from] StateError),
    /// Runtime I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The admin token could not be read or created.
    #[error(transparent)]
    Token(#[from] crate::admin::auth::TokenError),
    /// The cluster client could not be set up (TLS or password files).
    #[error("cluster: {0}")]
    Cluster(String),
    /// The admin API address could not be bound.
    #[error("cannot listen on {addr} (admin API, server.admin): {source}")]
    AdminBind {
        /// `server.admin`.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// Options of one daemon run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Override of `server.listen` (demo, tests).
    pub listen: Option<Vec<SocketAddr>>,
}

/// What a running daemon exposes to its embedder (the demo, tests).
pub struct Running {
    /// Bound DNS addresses.
    pub dns: Vec<SocketAddr>,
    /// Command channel of the controller.
    pub control: ControlHandle,
    /// The served snapshot.
    pub snapshot: SnapshotHandle,
    /// Bound admin API address.
    pub admin: SocketAddr,
}

/// UDP threads per listen address when `server.udp_workers` is not set: one per CPU, at
/// most four (each answers on its own `SO_REUSEPORT` socket).
pub fn default_udp_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4)
}

/// Names resolved through the upstream resolver: every CNAME target of every apex endpoint,
/// and the own name of every served endpoint with a passthrough target (the public answer,
/// with the endpoint's other answers for loop detection), so a switch to any of them is
/// served at once.
pub fn flatten_names(model: &Model) -> Vec<crate::flatten::Watched> {
    let mut names: Vec<Name> = model
        .endpoints
        .iter()
        .filter(|e| e.is_apex(model))
        .flat_map(|e| e.targets.iter().flatten())
        .filter_map(|t| match &t.answer {
            TargetAnswer::Cname(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    let mut v: Vec<crate::flatten::Watched> = names
        .into_iter()
        .map(|name| crate::flatten::Watched {
            name,
            passthrough: None,
        })
        .collect();
    // Served, and not a trigger of a response policy zone (its passthrough is the policy
    // `CNAME rpz-passthru.`, applied by the resolver: nothing to resolve).
    for e in model
        .endpoints
        .iter()
        .filter(|e| e.zone.is_some() && !e.in_rpz(model))
    {
        let targets = || e.targets.iter().flatten();
        if !targets().any(|t| t.answer == TargetAnswer::Passthrough) {
            continue;
        }
        let mut own = crate::flatten::OwnAnswers::default();
        for t in targets() {
            match &t.answer {
                TargetAnswer::Cname(n) => own.cnames.push(n.clone()),
                TargetAnswer::Addrs { a, aaaa } => own.addrs.extend(
                    a.iter()
                        .map(|x| std::net::IpAddr::V4(*x))
                        .chain(aaaa.iter().map(|x| std::net::IpAddr::V6(*x))),
                ),
                TargetAnswer::Passthrough => {}
            }
        }
        own.cnames.sort();
        own.cnames.dedup();
        own.addrs.sort();
        own.addrs.dedup();
        v.push(crate::flatten::Watched {
            name: e.name.clone(),
            passthrough: Some(own),
        });
    }
    v
}

/// Starts everything and returns once DNS is being served; the returned future runs the
/// daemon until SIGTERM/SIGINT (or until `stop` turns true).
pub async fn start(
    model: Model,
    config_path: PathBuf,
    opts: RunOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<
    (
        Running,
        impl std::future::Future<Output = Result<(), DaemonError>>,
    ),
    DaemonError,
> {
    // Signals are caught from here on, before DNS answers: a SIGTERM sent as soon as the
    // server answers must stop it cleanly, not kill it by the default action.
    let mut hup = signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let model = Arc::new(model);
    let store = StateStore::open(&model.server.state_dir)?;
    let token = crate::admin::Token::load_or_create(&model.server.admin_token_file)?;
    let journal = Journal::open(
        &model.server.state_dir,
        journal::DEFAULT_MAX_BYTES,
        journal::DEFAULT_KEEP,
    )
    .map_err(|source| StateError::Dir {
        dir: model.server.state_dir.clone(),
        source,
    })?;
    let (reports_tx, reports_rx) = watch::channel(BTreeMap::<String, ProbeReport>::new());
    let history = Arc::new(crate::admin::History::new());
    let history_feeder =
        crate::admin::history::spawn_feeder(history.clone(), reports_tx.subscribe());
    let status_public = Arc::new(AtomicBool::new(model.server.status_public));
    let (pub_status_tx, pub_status_rx) = watch::channel(BTreeMap::<String, PublisherStatus>::new());
    let (published_tx, published_rx) = watch::channel(Arc::new(Published {
        model: model.clone(),
        decisions: BTreeMap::new(),
    }));
    let snap: SnapshotHandle = Arc::new(ArcSwap::from_pointee(Snapshot::empty(
        model.server.max_udp_payload,
    )));
    let (mut ctl, start_state) = Controller::start(
        model.clone(),
        store,
        journal,
        snap.clone(),
        reports_rx,
        pub_status_rx,
        published_tx,
    );
    match &start_state {
        StartState::Fresh => {
            tracing::info!(state_dir = %model.server.state_dir.display(), "no saved state: serving the first target of each view until probes conclude")
        }
        StartState::Restored => {
            tracing::info!(state_dir = %model.server.state_dir.display(), "serving the saved decisions until probes conclude")
        }
        StartState::Corrupt(e) => {
            tracing::error!(error = %e, "state file unusable: starting from safe defaults (first target of each view)")
        }
    }

    let settings = ServerSettings {
        udp_workers: model.server.udp_workers.unwrap_or_else(default_udp_workers),
        tcp_idle_timeout: model.server.tcp_idle_timeout,
        tcp_max_connections: model.server.tcp_max_connections,
    };
    let listen = opts
        .listen
        .clone()
        .unwrap_or_else(|| model.server.listen.clone());
    let bound = server::bind(&listen, &settings)?;
    let addrs = bound.local_addrs();
    let (server_stop_tx, server_stop_rx) = watch::channel(false);
    let mut servers = server::spawn(bound, snap.clone(), settings, server_stop_rx)?;
    for a in &addrs {
        tracing::info!(addr = %a, "serving DNS (udp+tcp)");
    }
    let admin_addr = model.server.admin;
    let admin_listener =
        crate::admin::bind(admin_addr)
            .await
            .map_err(|source| DaemonError::AdminBind {
                addr: admin_addr,
                source,
            })?;
    let admin_addr = admin_listener.local_addr()?;

    let (trans_tx, mut trans_rx) = mpsc::channel::<Transition>(256);
    let (digest_tx, mut digest_rx) = mpsc::channel::<DigestSeen>(256);
    let (probe_stop_tx, probe_stop_rx) = watch::channel(false);
    let mut probers = Probers::new(
        SchedCtx::new(
            trans_tx,
            reports_tx,
            probe_stop_rx,
            probe::DEFAULT_MAX_CONCURRENT_PROBES,
        )
        .with_digests(digest_tx),
        None,
    );
    probers.sync(&model);

    // Publishers (PrivateZone, Alidns, RFC 2136): their own tasks; DNS never waits on them.
    // Aborting the one handle stops every task of every provider. Bindings added by a reload
    // are picked up; a provider section added or changed by a reload needs a restart.
    let (pz_journal_tx, mut pz_journal_rx) = mpsc::channel::<Entry>(64);
    crate::publish::set_sync_hook(crate::metrics::publish_sync);
    // NOTIFY to secondaries: reads the snapshot, writes its own status entries.
    let (notify_stop_tx, notify_stop_rx) = watch::channel(false);
    let notifier = crate::publish::notify::spawn(
        snap.clone(),
        ctl.served(),
        pub_status_tx.clone(),
        notify_stop_rx,
    );
    let publishers = PublisherWiring {
        published: published_rx,
        status: pub_status_tx.clone(),
        journal: pz_journal_tx,
    };
    // Cluster mode: the agent keeps this node's lease and mirrors the shared state; the
    // publishers run only while this node leads (started and aborted below).
    let mut agent = match &model.cluster {
        Some(cl) => {
            let node = cl.node_name();
            let a = crate::cluster::agent::spawn(cl, node.clone(), crate::clock::now_ms())
                .map_err(|e| DaemonError::Cluster(e.to_string()))?;
            tracing::info!(%node, etcd = ?cl.etcd, prefix = %cl.prefix, quorum = %cl.health_quorum, "cluster mode: sharing state in etcd");
            ctl.join_cluster(controller::ClusterLink {
                node,
                quorum: cl.health_quorum,
                views: cl.views.clone(),
                writes: a.writes.clone(),
                leading: a.leading.clone(),
            });
            Some(a)
        }
        None => None,
    };
    let mut leading = agent.as_ref().map(|a| a.leading.clone());
    let mut publishing = match &leading {
        // Without [cluster] this node always publishes.
        None => start_publishers(&model, &publishers),
        Some(_) => None,
    };
    let cluster_events = agent
        .as_ref()
        .zip(model.cluster.as_ref())
        .map(|(a, cl)| (a.client.clone(), crate::cluster::agent::keys(&cl.prefix)));

    let (flat_tx, mut flat_rx) = mpsc::channel::<HashMap<Name, Flattened>>(4);
    let mut flattener = spawn_flattener(&model, flat_tx.clone(), pub_status_tx.clone());
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(64);
    let control = ControlHandle::new(cmd_tx);
    // Ready: the first snapshot is published (Controller::start) and DNS is bound (above).
    let ready = Arc::new(AtomicBool::new(snap.load().generation > 0));
    let (admin_stop_tx, admin_stop_rx) = watch::channel(false);
    let admin = crate::admin::spawn(
        admin_listener,
        crate::admin::AdminState::new(
            control.clone(),
            token,
            model.server.state_dir.clone(),
            ready.clone(),
        )
        .with_history(history.clone())
        .with_status_public(status_public.clone())
        .with_cluster_events(cluster_events),
        admin_stop_rx,
    );
    tracing::info!(addr = %admin_addr, "serving the admin API (http)");
    let running = Running {
        dns: addrs,
        control,
        snapshot: snap,
        admin: admin_addr,
    };

    let fut = async move {
        loop {
            let wake = controller::until(ctl.next_wakeup());
            tokio::select! {
                Some(t) = trans_rx.recv() => {
                    // Every transition already waiting joins this round.
                    let mut batch = vec![t];
                    while let Ok(t) = trans_rx.try_recv() {
                        batch.push(t);
                    }
                    ctl.on_transitions(batch);
                }
                Some(d) = digest_rx.recv() => ctl.on_digest(d),
                Some(f) = flat_rx.recv() => ctl.on_flattened(f),
                Some(e) = pz_journal_rx.recv() => ctl.on_publisher_entry(e),
                Some(m) = async { match agent.as_mut() { Some(a) => a.views.recv().await, None => std::future::pending().await } } => ctl.on_cluster(m),
                Ok(()) = async { match leading.as_mut() { Some(l) => l.changed().await, None => std::future::pending().await } } => {
                    let lead = leading.as_ref().is_some_and(|l| *l.borrow());
                    match (lead, publishing.take()) {
                        (true, None) => publishing = start_publishers(ctl.model(), &publishers),
                        (true, Some(h)) => publishing = Some(h),
                        // Aborting the handle stops every task of the publishers.
                        (false, Some(h)) => {
                            h.abort();
                            mark_standby(&publishers.status);
                        }
                        (false, None) => {}
                    }
                }
                Some(cmd) = cmd_rx.recv() => match cmd {
                    Command::Reload(tx) => {
                        let r = reload(&config_path, &mut ctl, &mut probers, (&mut flattener, &flat_tx, &pub_status_tx), &status_public, &history);
                        let _ = tx.send(r);
                    }
                    other => ctl.on_command(other),
                },
                _ = tokio::time::sleep(wake) => ctl.on_timer(),
                _ = hup.recv() => {
                    let _ = reload(&config_path, &mut ctl, &mut probers, (&mut flattener, &flat_tx, &pub_status_tx), &status_public, &history);
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        tracing::info!("shutting down: closing DNS sockets, stopping probes, saving state");
        drop(cmd_rx); // admin requests from now on get "shutting down" (503)
        ready.store(false, Ordering::Release);
        let _ = admin_stop_tx.send(true);
        if let Some(h) = flattener {
            h.abort();
        }
        if let Some(h) = publishing {
            h.abort();
        }
        if let Some(a) = &agent {
            a.stop().await;
        }
        let _ = probe_stop_tx.send(true);
        let _ = notify_stop_tx.send(true);
        let _ = notifier.await;
        probers.stop();
        history_feeder.abort();
        let _ = server_stop_tx.send(true);
        while servers.join_next().await.is_some() {}
        ctl.flush();
        let _ = admin.await;
        tracing::info!("stopped");
        Ok(())
    };
    Ok((running, fut))
}

/// What the publishers are started with (kept to start them again on a new leadership).
struct PublisherWiring {
    published: watch::Receiver<Arc<Published>>,
    status: watch::Sender<BTreeMap<String, PublisherStatus>>,
    journal: mpsc::Sender<Entry>,
}

/// Starts the publishers (PrivateZone, Alidns, RFC 2136). The one place they start: always without
/// `[cluster]`, only while this node leads with it. Aborting the returned handle stops
/// every task of the publishers.
fn start_publishers(model: &Model, w: &PublisherWiring) -> Option<JoinHandle<()>> {
    let mut published = w.published.clone();
    // A new leader reconciles from the current decisions at once.
    published.mark_changed();
    crate::publish::spawn(
        model,
        crate::publish::PublisherInputs {
            published,
            status: w.status.clone(),
            journal: Some(w.journal.clone()),
            env: Env::from_process(),
        },
    )
}

/// After the publishers stopped (leadership lost): their status rows say so instead of
/// showing their last state. NOTIFY rows are not publishers' (every node sends NOTIFY).
fn mark_standby(status: &watch::Sender<BTreeMap<String, PublisherStatus>>) {
    status.send_modify(|m| {
        for (name, p) in m.iter_mut() {
            if !name.starts_with("notify:") && !name.starts_with("passthrough:") {
                p.state = "standby".into();
                p.detail = "not the cluster leader: this node does not publish".into();
            }
        }
    });
}

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(model: Model, config_path: PathBuf, opts: RunOptions) -> Result<(), DaemonError> {
    let (_stop_tx, stop_rx) = watch::channel(false);
    let (_running, fut) = start(model, config_path, opts, stop_rx).await?;
    fut.await
}

/// The upstream resolution task, where its results go, and where its status rows go.
type UpstreamResolution<'a> = (
    &'a mut Option<JoinHandle<()>>,
    &'a mpsc::Sender<HashMap<Name, Flattened>>,
    &'a watch::Sender<BTreeMap<String, PublisherStatus>>,
);

fn reload(
    config_path: &std::path::Path,
    ctl: &mut Controller,
    probers: &mut Probers,
    (flattener, flat_tx, pub_status): UpstreamResolution<'_>,
    status_public: &AtomicBool,
    history: &crate::admin::History,
) -> Result<String, ControlError> {
    match model::load(config_path) {
        Ok(m) => {
            let cluster_note = if m.cluster != ctl.model().cluster {
                tracing::warn!(
                    "[cluster] changed: it takes effect at the next restart of this node"
                );
                "; [cluster] changed: restart the node to apply it"
            } else {
                ""
            };
            let kept = probers.sync(&m);
            status_public.store(m.server.status_public, Ordering::Release);
            // Probe history is kept per subject (instances and view addresses).
            let subjects = crate::vantage::Plan::new(&m);
            history.retain(&subjects.subjects.keys().cloned().collect::<Vec<_>>());
            if let Some(h) = flattener.take() {
                h.abort();
            }
            *flattener = spawn_flattener(&m, flat_tx.clone(), pub_status.clone());
            let msg = format!(
                "reloaded {}: {} zone(s), {} view(s), {} instance(s) ({} unchanged), {} endpoint(s){cluster_note}",
                config_path.display(),
                m.zones.len(),
                m.views.len(),
                m.instances.len(),
                kept.len(),
                m.endpoints.len()
            );
            ctl.replace_model(Arc::new(m), &kept);
            tracing::info!("{msg}");
            Ok(msg)
        }
        Err(e) => {
            tracing::error!(error = %e, "reload rejected; still serving the previous configuration");
            Err(ControlError::Reload(e.to_string()))
        }
    }
}

fn signal(kind: tokio::signal::unix::SignalKind) -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind)
}

fn spawn_flattener(
    model: &Model,
    tx: mpsc::Sender<HashMap<Name, Flattened>>,
    status: watch::Sender<BTreeMap<String, PublisherStatus>>,
) -> Option<JoinHandle<()>> {
    let names = flatten_names(model);
    if names.is_empty() {
        return None;
    }
    let upstream = crate::flatten::default_upstream(model.server.upstream);
    tracing::info!(%upstream, names = ?names.iter().map(|n| n.name.to_string()).collect::<Vec<_>>(), "resolving upstream: apex CNAME targets and passthrough names");
    Some(tokio::spawn(crate::flatten::run(
        upstream,
        names,
        tx,
        Some(status),
    )))
}
