//! Compatibility entry points of the PrivateZone publisher: the tasks themselves are the
//! engine's ([`crate::publish::engine::task`]); [`spawn`] runs the PrivateZone bindings only
//! (the daemon uses [`crate::publish::spawn`], which runs every provider).

use tokio::task::JoinHandle;

pub use super::provider::{CREDENTIALS_STATUS, bound_name, status_name};
use crate::model::Model;
pub use crate::publish::engine::task::PublisherInputs;

/// Actor of the journal entries the PrivateZone publisher writes.
pub const ACTOR: &str = "privatezone";

/// Starts the PrivateZone bindings when the model has a `[privatezone]` section and at
/// least one binding; None otherwise. Aborting the handle stops every task it started.
pub fn spawn(model: &Model, inputs: PublisherInputs) -> Option<JoinHandle<()>> {
    model.privatezone.as_ref()?;
    crate::publish::spawn_providers(
        model,
        inputs,
        &[crate::publish::starter::<super::PvtzProvider>()],
    )
}
