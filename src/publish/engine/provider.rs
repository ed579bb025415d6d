//! What a provider implements: read the records at one managed name, execute changes, and
//! classify its errors ([`super::PublishError`]). Providers hold no policy: what to change,
//! when to retry, drift, status and metrics are the engine's.

use std::fmt;
use std::future::Future;

use super::plan::{Op, RecordInfo};
use super::{BindingTarget, PublishError};
use crate::config::env::Env;
use crate::control::PublisherStatus;
use crate::decide::Decision;
use crate::model::Model;
use std::collections::BTreeMap;

/// The effect of one executed op (or one atomic batch member).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Id of the record changed (the new id for an add; empty when the provider has none).
    pub record_id: String,
    /// Request id of the call that made the change (API `RequestId`, DNS message id).
    pub request_id: String,
}

/// One DNS provider (PrivateZone, Alidns, RFC 2136).
pub trait Provider: Send + Sync + Sized + 'static {
    /// What identifies one binding at this provider (zone id and rr, domain and rr, ...).
    type Binding: Clone + fmt::Display + PartialEq + Send + Sync + 'static;

    /// Lower-case provider name: status prefix, journal kind, actor, metric label.
    const NAME: &'static str;
    /// Service name for messages (`PrivateZone`, `Alidns`, `RFC 2136`).
    const SERVICE: &'static str;
    /// The service, for errors.
    fn service() -> &'static super::Service;

    /// True when a whole plan is executed in one call that either applies completely or
    /// not at all (an RFC 2136 UPDATE); false when each op is its own call.
    const ATOMIC: bool = false;

    /// Every binding of this provider in the model, with the answer it should hold under
    /// `decisions` (see [`super::view_answer`]).
    fn targets(
        model: &Model,
        decisions: &BTreeMap<(String, String), Decision>,
    ) -> Vec<BindingTarget<Self::Binding>>;

    /// Builds the provider (client, credentials, keys) for this model. Retried by the
    /// engine until it works.
    fn connect(model: &Model, env: &Env) -> impl Future<Output = Result<Self, String>> + Send;

    /// Every record at the binding's name (managed or not), as the provider has it.
    fn read(
        &self,
        binding: &Self::Binding,
    ) -> impl Future<Output = Result<Vec<RecordInfo>, PublishError>> + Send;

    /// Executes `ops` (one op unless [`Provider::ATOMIC`]) planned against `found`, the
    /// records as last read (an atomic provider makes them its prerequisites). `token` is
    /// the same on every retry of these ops (an API's idempotence token). Returns one
    /// [`Change`] per op.
    fn execute(
        &self,
        binding: &Self::Binding,
        ops: &[Op],
        found: &[RecordInfo],
        token: &str,
    ) -> impl Future<Output = Result<Vec<Change>, PublishError>> + Send;

    /// After an auth error: refresh credentials once (false: nothing to refresh).
    fn refresh_credentials(&self) -> impl Future<Output = Result<bool, String>> + Send {
        async { Ok(false) }
    }

    /// A startup check of one binding that only logs (zone exists, TTL allowed, ...).
    fn check(&self, _target: &BindingTarget<Self::Binding>) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Background work of the provider (credential refresh); aborted with the publisher.
    fn spawn_background(&self) -> Option<tokio::task::JoinHandle<()>> {
        None
    }

    /// An extra status entry (credentials in use), refreshed every few seconds.
    fn health(&self) -> Option<PublisherStatus> {
        None
    }

    /// Dry run from the provider's configuration section.
    fn dry_run(model: &Model) -> bool;

    /// Drift-check interval from the provider's configuration section.
    fn drift_interval(model: &Model) -> std::time::Duration;
}
