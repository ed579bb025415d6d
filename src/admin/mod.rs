//! The admin HTTP API (axum): status, events, overrides, failback, reload, Prometheus metrics
//! and health probes. A thin layer over [`crate::control`]: it never touches the controller's
//! state, and every error goes through the one status map in [`error`]. Every route is
//! registered through one table ([`registered_routes`] lists it), which the OpenAPI 3.1
//! description served at `GET /api/openapi.json` ([`openapi`]) is tested against.
//!
//! Everything except `/healthz`, `/readyz`, `/metrics` and the status page's static files
//! needs `Authorization: Bearer <token>` with the token of `server.admin_token_file`
//! ([`auth`]); with `server.status_public = true` the read-only data (`GET /status`,
//! `/status/history`, `/status/fragments`, `/events` and the page's server-side rendering) is
//! public, actions never are. Bodies are limited to [`BODY_LIMIT`] bytes.

pub mod auth;
pub mod error;
pub mod history;
pub mod openapi;
pub mod page;
pub mod routes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodFilter, on};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use auth::Token;
pub use error::{ApiError, ErrorBody, status_of};
pub use history::History;
pub use openapi::PATH as OPENAPI_PATH;
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

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token: health probes, metrics, the status page's files, the API description.
    Open,
    /// The token, unless `server.status_public = true`: the read-only data.
    Read,
    /// Always the token: every action.
    Action,
}

/// One route the admin API registers: what [`openapi`]'s document must describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `GET`, `POST` or `DELETE`.
    pub method: Method,
    /// The path as axum matches it (`/overrides/{id}`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// The router under construction and the list of what was registered in it: every route is
/// added through [`Table::add`], so the list is exactly what the server serves.
struct Table {
    state: AdminState,
    router: Router<AdminState>,
    routes: Vec<Route>,
}

impl Table {
    fn add<H, T>(mut self, method: Method, path: &'static str, access: Access, handler: H) -> Table
    where
        H: Handler<T, AdminState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("admin route {method} {path}: not a method axum routes"));
        let route = on(filter, handler);
        let route = match access {
            Access::Open => route,
            Access::Read => route.route_layer(middleware::from_fn_with_state(
                self.state.clone(),
                auth::require_token_unless_public,
            )),
            Access::Action => route.route_layer(middleware::from_fn_with_state(
                self.state.clone(),
                auth::require_token,
            )),
        };
        self.router = self.router.route(path, route);
        self.routes.push(Route {
            method,
            path,
            access,
        });
        self
    }
}

/// Every route of the API, with its access.
fn table(state: &AdminState) -> Table {
    use Access::{Action, Open, Read};
    let t = Table {
        state: state.clone(),
        router: Router::new(),
        routes: Vec::new(),
    };
    t.add(Method::GET, "/healthz", Open, routes::healthz)
        .add(Method::GET, "/readyz", Open, routes::readyz)
        .add(Method::GET, "/metrics", Open, routes::metrics)
        .add(Method::GET, "/", Open, page::index)
        .add(Method::GET, "/page.js", Open, page::script)
        .add(Method::GET, "/page.css", Open, page::style)
        .add(Method::GET, openapi::PATH, Open, openapi::document)
        .add(Method::GET, "/status", Read, routes::status)
        .add(Method::GET, "/status/history", Read, routes::history)
        .add(Method::GET, "/status/fragments", Read, page::fragments_json)
        .add(Method::GET, "/events", Read, routes::events)
        .add(Method::POST, "/overrides", Action, routes::add_override)
        .add(Method::DELETE, "/overrides", Action, routes::release_all)
        .add(
            Method::DELETE,
            "/overrides/{id}",
            Action,
            routes::release_one,
        )
        .add(Method::POST, "/failback", Action, routes::failback)
        .add(Method::POST, "/reload", Action, routes::reload)
}

/// The API's routes.
pub fn router(state: AdminState) -> Router {
    table(&state)
        .router
        .fallback(routes::no_route)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(trace))
        .with_state(state)
}

/// Every route [`router`] registers for `state`, in registration order (what the tests hold
/// the OpenAPI document against).
pub fn registered_routes(state: &AdminState) -> Vec<Route> {
    table(state).routes
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
