//! Publishers: the effects of decisions. Each is idempotent and isolated from the others;
//! none of them runs on the DNS serving path.
//!
//! - [`notify`]: NOTIFY to secondaries when a zone's serial moves (the serving snapshot
//!   itself is built by [`crate::snapshot::build`]).
//! - [`engine`]: the one reconcile engine every DNS provider runs on (plan, retries, drift,
//!   status, metrics, dry run, `plan|apply`).
//! - Providers: [`privatezone`] (Alibaba Cloud PrivateZone), [`alidns`] (Alibaba Cloud DNS,
//!   public zones), [`rfc2136`] (dynamic updates to any standard primary).

pub mod alidns;
pub mod engine;
pub mod notify;
pub mod privatezone;
pub mod rfc2136;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::task::JoinHandle;

use engine::Provider;
use engine::task::{Board, Owned, SupervisorInputs, has_bindings, supervise};

pub use engine::task::{PublisherInputs, set_sync_hook};

use crate::decide::Decision;
use crate::model::Model;

/// What publishers other than DNS see after every decision run (the controller's watch).
#[derive(Debug, Clone)]
pub struct Published {
    /// The model in force.
    pub model: Arc<Model>,
    /// Decisions per (endpoint, view).
    pub decisions: BTreeMap<(String, String), Decision>,
}

/// How to start one provider: whether the model has bindings of it, and its supervisor.
#[derive(Clone, Copy)]
pub struct Starter {
    has: fn(&Model) -> bool,
    run: fn(SupervisorInputs) -> JoinHandle<()>,
}

fn run<P: Provider>(inputs: SupervisorInputs) -> JoinHandle<()> {
    tokio::spawn(supervise::<P>(inputs))
}

/// The [`Starter`] of provider `P`.
pub const fn starter<P: Provider>() -> Starter {
    Starter {
        has: has_bindings::<P>,
        run: run::<P>,
    }
}

/// Every provider regdns has.
pub const PROVIDERS: &[Starter] = &[
    starter::<privatezone::PvtzProvider>(),
    starter::<alidns::AlidnsProvider>(),
    starter::<rfc2136::Rfc2136Provider>(),
];

/// Starts every publisher with bindings in the model (PrivateZone, Alidns, RFC 2136): one
/// supervisor per provider, one task per binding. None when there is no binding at all.
/// Aborting the handle stops EVERY task of every provider (each is owned by its parent).
/// Bindings added by a reload are picked up by a running provider; a provider that had no
/// binding at startup, or a changed provider section, needs a restart.
pub fn spawn(model: &Model, inputs: PublisherInputs) -> Option<JoinHandle<()>> {
    spawn_providers(model, inputs, PROVIDERS)
}

/// [`spawn`] restricted to some providers.
pub fn spawn_providers(
    model: &Model,
    inputs: PublisherInputs,
    providers: &[Starter],
) -> Option<JoinHandle<()>> {
    let active: Vec<Starter> = providers
        .iter()
        .filter(|s| (s.has)(model))
        .copied()
        .collect();
    if active.is_empty() {
        return None;
    }
    let sup = SupervisorInputs {
        published: inputs.published,
        board: Board(Arc::new(inputs.status)),
        journal: inputs.journal,
        env: inputs.env,
    };
    Some(tokio::spawn(async move {
        let children: Vec<Owned> = active
            .iter()
            .map(|s| {
                Owned((s.run)(SupervisorInputs {
                    published: sup.published.clone(),
                    board: sup.board.clone(),
                    journal: sup.journal.clone(),
                    env: sup.env.clone(),
                }))
            })
            .collect();
        // Alive until aborted (dropping `children` aborts every supervisor) or every
        // supervisor ended (the decision watch closed).
        for mut c in children {
            let _ = (&mut c.0).await;
        }
    }))
}
