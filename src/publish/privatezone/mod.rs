//! PrivateZone provider (docs/design.md#8-publishers): makes the records at one `rr` of one zone equal the
//! active answer of a view, through the shared [`crate::publish::engine`].
//!
//! Signing, the RPC call and the credential chain are [`crate::aliyun`]'s.
//! - [`client`]: the PrivateZone API calls.
//! - [`provider`]: the engine's [`crate::publish::engine::Provider`] for PrivateZone.
//! - [`publisher`]: compatibility entry points (`spawn` of the PrivateZone bindings only).
//! - [`plan`]: the engine's pure plan (re-exported here).

pub mod client;
pub mod provider;
pub mod publisher;

pub use crate::publish::engine::plan;

pub use crate::publish::engine::{AppliedChange, ReconcileOptions};
pub use client::{ClientConfig, ErrorKind, PvtzClient, PvtzError, RecordSpec};
pub use plan::{Conflict, Desired, Op, Plan, RecordInfo};
pub use provider::PvtzProvider;

use crate::aliyun::credentials::CredentialProvider;

/// One `[[endpoint.privatezone]]` binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// PrivateZone zone id.
    pub zone_id: String,
    /// Host record relative to the zone (`@` for the apex).
    pub rr: String,
}

impl std::fmt::Display for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "zone {} rr {}", self.zone_id, self.rr)
    }
}

/// What [`reconcile`] found and did.
pub type ReconcileReport = crate::publish::engine::ReconcileReport<Binding>;

/// A client token: up to 64 ASCII characters, one per logical change.
pub fn new_client_token() -> String {
    crate::publish::engine::reconcile::new_token()
}

/// `DescribeZoneInfo` with the retry policy of [`reconcile`].
pub async fn describe_zone(
    client: &PvtzClient,
    creds: &CredentialProvider,
    zone_id: &str,
    opts: &ReconcileOptions,
) -> Result<client::ZoneInfo, PvtzError> {
    let p = PvtzProvider::new(client.clone(), creds.clone());
    p.describe_zone(zone_id, opts).await
}

/// Makes the managed records of `binding` equal `desired` (the engine's reconcile with the
/// PrivateZone provider): read, plan, apply, confirm; idempotent; every change gets its own
/// ClientToken, reused on retries of that change.
pub async fn reconcile(
    client: &PvtzClient,
    creds: &CredentialProvider,
    binding: &Binding,
    desired: &Desired,
    opts: &ReconcileOptions,
) -> Result<ReconcileReport, PvtzError> {
    let desired = Desired {
        rr: binding.rr.clone(),
        ..desired.clone()
    };
    let p = PvtzProvider::new(client.clone(), creds.clone());
    crate::publish::engine::reconcile(&p, binding, &desired, opts).await
}
