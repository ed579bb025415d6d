//! `regdns agent -c FILE`: a vantage point inside a client network (a VPC, a data centre).
//!
//! The same binary and config as a node, with `[agent] views`: it joins the cluster's etcd
//! as an observer (it never leads, answers no DNS and takes no admin command), probes the
//! targets of its views (the instances' own checks, and with `probe = "addresses"` the
//! view's addresses) and keeps its latest conclusions under its lease, where every node
//! combines them into those views' health. While etcd is unreachable it keeps probing and
//! keeps only its latest conclusions, put back as soon as etcd answers. With
//! `[agent] resolver` it also measures how long its network's resolver takes to answer
//! each switch of its views ([`super::propagation`]). With `[agent] metrics` it serves
//! `/metrics` and `/healthz`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::DaemonError;
use super::probers::Probers;
use super::propagation::Follower;
use crate::cluster::{ClusterWrite, NodeInfo, Role, ToController};
use crate::decide::Health;
use crate::model::Model;
use crate::probe::{self, ProbeReport, SchedCtx, Transition};

/// Why `regdns agent` cannot run with a config.
pub fn check(model: &Model) -> Result<(), String> {
    if model.cluster.is_none() {
        return Err("cluster: an agent reports to the cluster's etcd: add a [cluster] section (etcd, prefix) like the nodes'".into());
    }
    if model.agent.is_none() {
        return Err("agent: add an [agent] section with the views this agent observes, e.g. views = [\"vpc-bbbbb\"]".into());
    }
    Ok(())
}

/// What a running agent exposes to its embedder (tests).
#[derive(Debug)]
pub struct RunningAgent {
    /// The bound `/metrics` address, if any.
    pub metrics: Option<SocketAddr>,
    /// This agent's name in the cluster.
    pub name: String,
}

/// Starts the agent; the returned future runs it until SIGTERM/SIGINT (or `stop`).
pub async fn start(
    model: Model,
    config_path: PathBuf,
    mut stop: watch::Receiver<bool>,
) -> Result<
    (
        RunningAgent,
        impl std::future::Future<Output = Result<(), DaemonError>>,
    ),
    DaemonError,
> {
    check(&model).map_err(DaemonError::Cluster)?;
    let mut hup = super::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = super::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = super::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let (Some(cl), Some(ag)) = (model.cluster.clone(), model.agent.clone()) else {
        return Err(DaemonError::Cluster(
            "[cluster] and [agent] are required".into(),
        ));
    };
    let name = cl.node_name();
    let mut member = crate::cluster::agent::spawn_as(
        &cl,
        NodeInfo {
            node: name.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_ms: crate::clock::now_ms(),
            role: Role::Agent,
            views: ag.views.clone(),
        },
    )
    .map_err(|e| DaemonError::Cluster(e.to_string()))?;
    tracing::info!(agent = %name, views = ?ag.views, etcd = ?cl.etcd, prefix = %cl.prefix, "agent: observing these views for the cluster");

    let (trans_tx, mut trans_rx) = mpsc::channel::<Transition>(256);
    let (reports_tx, _reports_rx) = watch::channel(BTreeMap::<String, ProbeReport>::new());
    let (probe_stop_tx, probe_stop_rx) = watch::channel(false);
    let mut probers = Probers::new(
        SchedCtx::new(
            trans_tx,
            reports_tx,
            probe_stop_rx,
            probe::DEFAULT_MAX_CONCURRENT_PROBES,
        ),
        Some(ag.views.clone()),
    );
    probers.sync(&model);

    let metrics = match ag.metrics {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::AdminBind { addr, source })?;
            let bound = l.local_addr()?;
            tracing::info!(addr = %bound, "agent: serving /metrics and /healthz");
            let app = axum::Router::new()
                .route(
                    "/metrics",
                    axum::routing::get(|| async { crate::metrics::render(None) }),
                )
                .route("/healthz", axum::routing::get(|| async { "ok\n" }));
            tokio::spawn(async move {
                let _ = axum::serve(l, app).await;
            });
            Some(bound)
        }
        None => None,
    };

    let mut follower = ag.resolver.map(|resolver| {
        tracing::info!(%resolver, "agent: measuring how fast this network's resolver follows switches");
        tokio::spawn(
            Follower {
                client: member.client.clone(),
                keys: crate::cluster::agent::keys(&cl.prefix),
                model: Arc::new(model.clone()),
                views: ag.views.clone(),
                resolver,
                writes: member.writes.clone(),
            }
            .run(),
        )
    });

    let running = RunningAgent {
        metrics,
        name: name.clone(),
    };
    let fut = async move {
        let mut own: BTreeMap<String, Health> = BTreeMap::new();
        let mut connected = false;
        loop {
            tokio::select! {
                Some(t) = trans_rx.recv() => {
                    let mut batch = vec![t];
                    while let Ok(t) = trans_rx.try_recv() {
                        batch.push(t);
                    }
                    let mut changed = false;
                    for t in batch {
                        changed |= apply(&mut own, t);
                    }
                    // Kept by the cluster agent while etcd is away, put back on return.
                    if changed && member.writes.send(ClusterWrite::Health(own.clone())).await.is_err() {
                        break;
                    }
                }
                Some(m) = member.views.recv() => {
                    let v = match m {
                        ToController::View(v) | ToController::Committed(v, _) => v,
                    };
                    if v.connected != connected {
                        connected = v.connected;
                        if connected {
                            tracing::info!("agent: etcd reachable; observations shared");
                        } else {
                            tracing::warn!(error = v.error.as_deref().unwrap_or(""), "agent: etcd unreachable; probing on, the latest observations are put back when it returns");
                        }
                    }
                }
                _ = hup.recv() => match crate::model::load(&config_path) {
                    Ok(m) if check(&m).is_ok() => {
                        let kept = probers.sync(&m);
                        own.retain(|k, _| kept.contains(k));
                        let _ = member.writes.send(ClusterWrite::Health(own.clone())).await;
                        if m.agent != model.agent || m.cluster != model.cluster {
                            tracing::warn!("[agent] or [cluster] changed: restart the agent to apply it");
                        }
                        tracing::info!(path = %config_path.display(), "agent: configuration reloaded");
                    }
                    Ok(m) => tracing::error!(error = %check(&m).unwrap_err(), "reload rejected"),
                    Err(e) => tracing::error!(error = %e, "reload rejected; still running the previous configuration"),
                },
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        tracing::info!("agent stopping: leaving the cluster");
        if let Some(f) = follower.take() {
            f.abort();
        }
        let _ = probe_stop_tx.send(true);
        probers.stop();
        member.stop().await;
        Ok(())
    };
    Ok((running, fut))
}

/// Runs the agent until SIGTERM/SIGINT.
pub async fn run(model: Model, config_path: PathBuf) -> Result<(), DaemonError> {
    let (_stop_tx, stop_rx) = watch::channel(false);
    let (_running, fut) = start(model, config_path, stop_rx).await?;
    fut.await
}

/// Records a transition; true when the conclusion changed.
fn apply(own: &mut BTreeMap<String, Health>, t: Transition) -> bool {
    let new = t.health(crate::clock::now_ms());
    let same = own
        .get(&t.instance)
        .is_some_and(|old| crate::probe::same_state(old, &new));
    if same {
        return false;
    }
    let (instance, view) = crate::vantage::split_key(&t.instance);
    tracing::info!(instance, view = view.unwrap_or("-"), up = t.up, reason = %t.reason, "health transition (this agent's view)");
    own.insert(t.instance, new);
    true
}
