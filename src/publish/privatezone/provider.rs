//! PrivateZone as an engine [`Provider`]: reads with `DescribeZoneRecords`, executes each op
//! with `AddZoneRecord` / `UpdateZoneRecord` / `DeleteZoneRecord` (with the change's
//! ClientToken), signs with the shared V3 signer and credential chain.

use std::collections::BTreeMap;
use std::time::Duration;

use super::client::{self, ClientConfig, PvtzClient, PvtzError, RecordSpec};
use super::{Binding, ErrorKind};
use crate::aliyun::credentials::{CredentialProvider, Credentials};
use crate::aliyun::session::Session;
use crate::config::env::Env;
use crate::config::privatezone::DEFAULT_DRIFT_INTERVAL;
use crate::control::PublisherStatus;
use crate::decide::Decision;
use crate::model::{Model, PublishTarget};
use crate::publish::engine::reconcile::with_retry;
use crate::publish::engine::{
    BindingTarget, Change, Op, Provider, PublishError, ReconcileOptions, RecordInfo, Service,
};

/// Name of the status entry that shows the credentials in use.
pub const CREDENTIALS_STATUS: &str = "privatezone:credentials";

/// The PrivateZone client and its credentials.
#[derive(Clone)]
pub struct PvtzProvider {
    client: PvtzClient,
    session: Session,
    /// Zone id → `ProxyPattern`, read once before the first passthrough delete.
    proxy_patterns: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
}

/// Status name of a binding.
pub fn status_name(b: &Binding) -> String {
    format!("privatezone:{}/{}", b.zone_id, b.rr)
}

/// The fully qualified name a binding's record has, given the zone's name.
pub fn bound_name(zone_name: &str, rr: &str) -> String {
    let zone = zone_name.trim_end_matches('.').to_ascii_lowercase();
    if rr == "@" {
        format!("{zone}.")
    } else {
        format!("{}.{zone}.", rr.to_ascii_lowercase())
    }
}

fn record_id(id: &str) -> Result<u64, PvtzError> {
    id.parse().map_err(|_| {
        PublishError::local(
            ErrorKind::Config,
            "Regdns.RecordId",
            format!("PrivateZone record id {id:?} is not a number"),
        )
        .of(&client::SERVICE_INFO)
    })
}

impl PvtzProvider {
    /// A provider from a client and a credential provider.
    pub fn new(client: PvtzClient, creds: CredentialProvider) -> Self {
        PvtzProvider {
            client,
            session: Session::new(creds, CREDENTIALS_STATUS),
            proxy_patterns: Default::default(),
        }
    }

    /// The credential provider.
    pub fn credentials(&self) -> &CredentialProvider {
        self.session.provider()
    }

    async fn creds(&self) -> Result<Credentials, PublishError> {
        self.session
            .credentials()
            .await
            .map_err(|e| PublishError::credentials(Self::service(), e))
    }

    /// Refuses a passthrough delete unless the zone's `ProxyPattern` is `RECORD`
    /// ("recursive resolution proxy for subdomains"): in a `ZONE` zone a name without a
    /// record is NXDOMAIN in the VPC, so deleting it would break the name, not pass it
    /// through. Read from `DescribeZoneInfo` before the first delete of each zone.
    pub async fn require_record_proxy(&self, b: &Binding) -> Result<(), PublishError> {
        let cached = self
            .proxy_patterns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&b.zone_id)
            .cloned();
        let pattern = match cached {
            Some(p) => p,
            None => {
                let opts = crate::publish::engine::task::reconcile_options(false);
                let z = self.describe_zone(&b.zone_id, &opts).await?;
                let p = z.proxy_pattern.clone().unwrap_or_else(|| "ZONE".into());
                self.proxy_patterns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(b.zone_id.clone(), p.clone());
                p
            }
        };
        if pattern.eq_ignore_ascii_case("RECORD") {
            return Ok(());
        }
        Err(PublishError::local(
            crate::retry::ErrorKind::Config,
            "Regdns.ProxyPattern",
            format!(
                "zone {} has ProxyPattern {pattern}: deleting the managed record {} for a passthrough target would make the name NXDOMAIN in the VPC instead of resolving it publicly; nothing was deleted. Turn on \"recursive resolution proxy for subdomains\" for the zone (SetProxyPattern ProxyPattern=RECORD), or do not bind a view with a passthrough target to this zone",
                b.zone_id, b.rr
            ),
        ))
    }

    /// `DescribeZoneInfo` with the engine's retry policy.
    pub async fn describe_zone(
        &self,
        zone_id: &str,
        opts: &ReconcileOptions,
    ) -> Result<client::ZoneInfo, PvtzError> {
        with_retry(self, opts, || async {
            let c = self.creds().await?;
            self.client.describe_zone_info(&c, zone_id).await
        })
        .await
        .map(|(z, _)| z)
    }

    /// Client and credentials for a `[privatezone]` section.
    pub async fn from_config(
        cfg: &crate::config::PrivateZoneConfig,
        env: &Env,
    ) -> Result<Self, String> {
        let client = PvtzClient::new(&ClientConfig {
            endpoint: cfg
                .endpoint
                .clone()
                .unwrap_or_else(|| crate::config::DEFAULT_PVTZ_ENDPOINT.to_string()),
            ..Default::default()
        })
        .map_err(|e| format!("PrivateZone client: {e}"))?;
        let session = Session::connect(
            env,
            cfg.sts_endpoint.clone(),
            cfg.metadata_endpoint.clone(),
            CREDENTIALS_STATUS,
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(PvtzProvider {
            client,
            session,
            proxy_patterns: Default::default(),
        })
    }
}

impl Provider for PvtzProvider {
    type Binding = Binding;
    const NAME: &'static str = "privatezone";
    const SERVICE: &'static str = client::SERVICE;

    fn service() -> &'static Service {
        &client::SERVICE_INFO
    }

    fn targets(
        model: &Model,
        decisions: &BTreeMap<(String, String), Decision>,
    ) -> Vec<BindingTarget<Binding>> {
        let mut out = Vec::new();
        for ep in &model.endpoints {
            for p in &ep.publish {
                let PublishTarget::PrivateZone { view, zone_id, rr } = p else {
                    continue;
                };
                let binding = Binding {
                    zone_id: zone_id.clone(),
                    rr: rr.clone(),
                };
                let name = status_name(&binding);
                // The model checked every binding's view.
                out.extend(BindingTarget::resolve(
                    model, decisions, ep, view, rr, binding, name,
                ));
            }
        }
        out
    }

    async fn connect(model: &Model, env: &Env) -> Result<Self, String> {
        let cfg = model
            .privatezone
            .as_ref()
            .ok_or("no [privatezone] section")?;
        Self::from_config(cfg, env).await
    }

    async fn read(&self, b: &Binding) -> Result<Vec<RecordInfo>, PublishError> {
        let c = self.creds().await?;
        self.client
            .describe_zone_records(&c, &b.zone_id, &b.rr)
            .await
    }

    async fn execute(
        &self,
        b: &Binding,
        ops: &[Op],
        found: &[RecordInfo],
        token: &str,
    ) -> Result<Vec<Change>, PublishError> {
        // Deleting every managed record is a passthrough (no other answer is empty): only
        // in a zone that resolves names without a record recursively.
        let deletes = ops
            .iter()
            .filter(|o| matches!(o, Op::Delete { .. }))
            .count();
        if deletes > 0 && deletes == ops.len() && deletes >= found.len() {
            self.require_record_proxy(b).await?;
        }
        let mut out = Vec::new();
        for op in ops {
            let c = self.creds().await?;
            let spec = |rtype: &str, value: &str, ttl: u32| RecordSpec {
                rr: b.rr.clone(),
                rtype: rtype.to_string(),
                value: value.to_string(),
                ttl,
            };
            let ch = match op {
                Op::Add { rtype, value, ttl } => {
                    self.client
                        .add_zone_record(&c, &b.zone_id, &spec(rtype, value, *ttl), token)
                        .await?
                }
                Op::Update {
                    record_id: id,
                    rtype,
                    value,
                    ttl,
                } => {
                    self.client
                        .update_zone_record(&c, record_id(id)?, &spec(rtype, value, *ttl), token)
                        .await?
                }
                Op::Delete { record_id: id } => {
                    self.client
                        .delete_zone_record(&c, record_id(id)?, token)
                        .await?
                }
            };
            out.push(Change {
                record_id: ch.record_id.to_string(),
                request_id: ch.request_id,
            });
        }
        Ok(out)
    }

    async fn refresh_credentials(&self) -> Result<bool, String> {
        self.session.refresh_once(Self::SERVICE).await
    }

    async fn check(&self, target: &BindingTarget<Binding>) {
        let opts = ReconcileOptions {
            max_attempts: 2,
            ..crate::publish::engine::task::reconcile_options(false)
        };
        match self.describe_zone(&target.binding.zone_id, &opts).await {
            Ok(z) => {
                let vpcs: Vec<String> = z
                    .bind_vpcs
                    .iter()
                    .map(|v| format!("{}/{}", v.region_id, v.vpc_id))
                    .collect();
                tracing::info!(binding = %target.name, zone_name = %z.zone_name, vpcs = ?vpcs, endpoint = %target.endpoint, view = %target.view, "PrivateZone zone found");
                let name = bound_name(&z.zone_name, &target.binding.rr);
                if name != target.endpoint.to_ascii_lowercase() {
                    tracing::warn!(binding = %target.name, zone_name = %z.zone_name, rr = %target.binding.rr, record = %name, endpoint = %target.endpoint, "PrivateZone record name differs from the endpoint's name: check zone_id and rr");
                }
                if vpcs.is_empty() {
                    tracing::warn!(binding = %target.name, zone_name = %z.zone_name, "PrivateZone zone is bound to no VPC: its records are not resolved anywhere");
                }
            }
            Err(e) => {
                tracing::warn!(binding = %target.name, error = %e, "PrivateZone DescribeZoneInfo failed; syncing anyway");
            }
        }
    }

    fn spawn_background(&self) -> Option<tokio::task::JoinHandle<()>> {
        Some(self.session.spawn_refresher())
    }

    fn health(&self) -> Option<PublisherStatus> {
        Some(self.session.status())
    }

    fn dry_run(model: &Model) -> bool {
        model.privatezone.as_ref().is_some_and(|c| c.dry_run)
    }

    fn drift_interval(model: &Model) -> Duration {
        model
            .privatezone
            .as_ref()
            .map_or(DEFAULT_DRIFT_INTERVAL, |c| c.drift_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(bound_name("Registry.io", "@"), "registry.io.");
        assert_eq!(bound_name("registry.io.", "cr"), "cr.registry.io.");
        assert!(record_id("12").is_ok() && record_id("x").is_err());
    }
}
