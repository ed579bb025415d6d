//! The admin HTTP API (axum): status, events, overrides, failback, reload, Prometheus metrics
//! and health probes. A thin layer over [`crate::control`]: it never touches the controller's
//! state, and every error goes through the one status map in [`error`].
//!
//! Everything except `/healthz`, `/readyz`, `/metrics` and the status page's static files
//! needs `Authorization: Bearer <token>` with the token of `server.admin_token_file`
//! ([`auth`]); with `server.status_public = true` the read-only data (`GET /status`,
//! `/status/history`, `/status/fragments`, `/events` and the page's server-side rendering) is
//! public, actions never are. Bodies are limited to [`BODY_LIMIT`] bytes.

pub mod auth;
pub mod error;
pub mod history;
pub mod page;
pub mod routes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use auth::Token;
pub use error::{ApiError, ErrorBody, status_of};
pub use history::History;
pub use routes::{
    Events, EventsQuery, FailbackDone, FailbackRequest, OverrideRequest, OverrideType,
    ReleaseQuery, Released, Reloaded,
};

use crate::control::ControlHandle;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AdminState {
    control: ControlHandle,
    token: Arc<Token>,
    state_dir: PathBuf,
    ready: Arc<AtomicBool>,
    history: Arc<History>,
    status_public: Arc<AtomicBool>,
    /// `[cluster]`: the shared journal in etcd (every node's events).
    cluster_events: Option<(
        crate::cluster::etcd::EtcdClient,
        Arc<crate::cluster::agent::Keys>,
    )>,
}

impl AdminState {
    /// State for the API: the controller's handle, the token, the state directory (for the
    /// journal) and the readiness flag the daemon sets.
    pub fn new(
        control: ControlHandle,
        token: Token,
        state_dir: PathBuf,
        ready: Arc<AtomicBool>,
    ) -> AdminState {
        AdminState {
            control,
            token: Arc::new(token),
            state_dir,
            ready,
            history: Arc::new(History::new()),
            status_public: Arc::new(AtomicBool::new(false)),
            cluster_events: None,
        }
    }

    /// Reads `GET /events` from the shared journal in etcd (falling back to the local one
    /// when etcd does not answer).
    pub fn with_cluster_events(
        mut self,
        c: Option<(
            crate::cluster::etcd::EtcdClient,
            Arc<crate::cluster::agent::Keys>,
        )>,
    ) -> AdminState {
        self.cluster_events = c;
        self
    }

    /// The probe history the status page charts (default: an empty one nobody feeds).
    pub fn with_history(mut self, history: Arc<History>) -> AdminState {
        self.history = history;
        self
    }

    /// `server.status_public`: read-only data without the token (the daemon flips the flag
    /// when a reload changes the key).
    pub fn with_status_public(mut self, public: Arc<AtomicBool>) -> AdminState {
        self.status_public = public;
        self
    }

    fn is_public(&self) -> bool {
        self.status_public.load(Ordering::Acquire)
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// The API's routes.
pub fn router(state: AdminState) -> Router {
    let read = Router::new()
        .route("/status", get(routes::status))
        .route("/status/history", get(routes::history))
        .route("/status/fragments", get(page::fragments_json))
        .route("/events", get(routes::events))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token_unless_public,
        ));
    let protected = Router::new()
        .route(
            "/overrides",
            post(routes::add_override).delete(routes::release_all),
        )
        .route("/overrides/{id}", delete(routes::release_one))
        .route("/failback", post(routes::failback))
        .route("/reload", post(routes::reload))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/", get(page::index))
        .route("/page.js", get(page::script))
        .route("/page.css", get(page::style))
        .merge(read)
        .merge(protected)
        .fallback(routes::no_route)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(trace))
        .with_state(state)
}

/// A span per request; mutations are logged at info, reads at debug.
async fn trace(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("admin", %method, %path);
    let started = std::time::Instant::now();
    let resp = next.run(req).instrument(span.clone()).await;
    let _e = span.enter();
    let status = resp.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if method == axum::http::Method::GET {
        tracing::debug!(status, ms, "admin request");
    } else {
        tracing::info!(status, ms, "admin request");
    }
    resp
}

/// Binds the admin address, warning loudly when it is not loopback.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let l = TcpListener::bind(addr).await?;
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "THE ADMIN API LISTENS ON A NON-LOOPBACK ADDRESS: anyone who can reach it and holds the token can force failovers; restrict it with a firewall or set server.admin to 127.0.0.1:8053"
        );
    }
    Ok(l)
}

/// Serves the API until `stop` turns true; open connections get a short grace period.
pub fn spawn(
    listener: TcpListener,
    state: AdminState,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let app = router(state);
    tokio::spawn(async move {
        let mut stop2 = stop.clone();
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop2.wait_for(|s| *s).await;
        });
        tokio::select! {
            r = serve => if let Err(e) = r {
                tracing::error!(error = %e, "admin API stopped");
            },
            // Keep-alive connections must not hold up shutdown.
            _ = async {
                let _ = stop.wait_for(|s| *s).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            } => {}
        }
    })
}
