//! Alibaba Cloud DNS (Alidns, API 2015-01-09) provider: keeps the managed records at one `RR`
//! of a public domain equal to a view's answer (`docs/providers/alidns.md`). Same V3 signing, RPC client
//! and credential session as PrivateZone ([`crate::aliyun::rpc`],
//! [`crate::aliyun::session`]); the engine plans and retries.
//!
//! - [`client`]: the four record actions plus `DescribeDomainInfo`, and the error mapping
//!   (`docs/providers/alibaba-cloud-api.md#8-alidns-errors`).

pub mod client;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub use client::AlidnsClient;

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
pub const CREDENTIALS_STATUS: &str = "alidns:credentials";

/// One Alidns binding: a host record of a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlidnsBinding {
    /// Domain as registered (`registry.io`).
    pub domain: String,
    /// Host record relative to it (`@` for the apex).
    pub rr: String,
}

impl fmt::Display for AlidnsBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "domain {} rr {}", self.domain, self.rr)
    }
}

/// Status name: `alidns:<domain>/<rr>`.
pub fn status_name(b: &AlidnsBinding) -> String {
    format!("alidns:{}/{}", b.domain, b.rr)
}

/// The Alidns client and its credentials.
#[derive(Clone)]
pub struct AlidnsProvider {
    client: AlidnsClient,
    session: Session,
}

impl AlidnsProvider {
    /// A provider from a client and credentials.
    pub fn new(client: AlidnsClient, creds: CredentialProvider) -> Self {
        AlidnsProvider {
            client,
            session: Session::new(creds, CREDENTIALS_STATUS),
        }
    }

    async fn creds(&self) -> Result<Credentials, PublishError> {
        self.session
            .credentials()
            .await
            .map_err(|e| PublishError::credentials(Self::service(), e))
    }
}

impl Provider for AlidnsProvider {
    type Binding = AlidnsBinding;
    const NAME: &'static str = "alidns";
    const SERVICE: &'static str = client::SERVICE;

    fn service() -> &'static Service {
        &client::SERVICE_INFO
    }

    fn targets(
        model: &Model,
        decisions: &BTreeMap<(String, String), Decision>,
    ) -> Vec<BindingTarget<AlidnsBinding>> {
        let mut out = Vec::new();
        for ep in &model.endpoints {
            for p in &ep.publish {
                let PublishTarget::Alidns { view, domain, rr } = p else {
                    continue;
                };
                let binding = AlidnsBinding {
                    domain: domain.clone(),
                    rr: rr.clone(),
                };
                let name = status_name(&binding);
                out.extend(BindingTarget::resolve(
                    model, decisions, ep, view, rr, binding, name,
                ));
            }
        }
        out
    }

    async fn connect(model: &Model, env: &Env) -> Result<Self, String> {
        let cfg = model.alidns.clone().unwrap_or_default();
        let client = AlidnsClient::new(
            cfg.endpoint
                .as_deref()
                .unwrap_or(crate::config::DEFAULT_ALIDNS_ENDPOINT),
        )
        .map_err(|e| format!("Alidns client: {e}"))?;
        let session = Session::connect(
            env,
            cfg.sts_endpoint,
            cfg.metadata_endpoint,
            CREDENTIALS_STATUS,
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(AlidnsProvider { client, session })
    }

    async fn read(&self, b: &AlidnsBinding) -> Result<Vec<RecordInfo>, PublishError> {
        let c = self.creds().await?;
        let all = self
            .client
            .describe_sub_domain_records(&c, &b.domain, &b.rr)
            .await?;
        // Records on other lines (ISP/region lines) are not managed: regdns writes `default`.
        Ok(all
            .into_iter()
            .filter(|r| {
                r.line
                    .as_deref()
                    .is_none_or(|l| l.eq_ignore_ascii_case("default"))
            })
            .collect())
    }

    async fn execute(
        &self,
        b: &AlidnsBinding,
        ops: &[Op],
        _found: &[RecordInfo],
        _token: &str,
    ) -> Result<Vec<Change>, PublishError> {
        // Alidns has no idempotence token: a repeated Add or Update answers
        // DomainRecordDuplicate and a repeated Delete DomainRecordNotBelongToUser; both make
        // the engine re-read (docs/providers/alibaba-cloud-api.md#8-alidns-errors).
        let mut out = Vec::new();
        for op in ops {
            let c = self.creds().await?;
            out.push(match op {
                Op::Add { rtype, value, ttl } => {
                    self.client
                        .add_domain_record(&c, &b.domain, &b.rr, rtype, value, *ttl)
                        .await?
                }
                Op::Update {
                    record_id,
                    rtype,
                    value,
                    ttl,
                } => {
                    self.client
                        .update_domain_record(&c, record_id, &b.rr, rtype, value, *ttl)
                        .await?
                }
                Op::Delete { record_id } => self.client.delete_domain_record(&c, record_id).await?,
            });
        }
        Ok(out)
    }

    async fn refresh_credentials(&self) -> Result<bool, String> {
        self.session.refresh_once(Self::SERVICE).await
    }

    async fn check(&self, target: &BindingTarget<AlidnsBinding>) {
        let opts = ReconcileOptions {
            max_attempts: 2,
            ..crate::publish::engine::task::reconcile_options(false)
        };
        let r = with_retry(self, &opts, || async {
            let c = self.creds().await?;
            self.client
                .describe_domain_info(&c, &target.binding.domain)
                .await
        })
        .await;
        match r {
            Ok((info, _)) => {
                tracing::info!(binding = %target.name, domain = %info.domain_name, edition = info.version_name.as_deref().unwrap_or("-"), min_ttl = ?info.min_ttl, "Alidns domain found");
                if let Some(min) = info.min_ttl
                    && target.desired.ttl < min
                {
                    tracing::error!(binding = %target.name, ttl = target.desired.ttl, min_ttl = min, "the endpoint's ttl is below the domain edition's minimum TTL: Alidns will refuse the records (raise endpoint.ttl or upgrade the edition)");
                }
                if info.min_ttl.is_some_and(|m| m >= 600) {
                    tracing::warn!(binding = %target.name, "this Alidns edition's minimum TTL is 600 s: resolvers may keep the old answer up to 10 minutes after a failover");
                }
            }
            Err(e) => {
                tracing::warn!(binding = %target.name, error = %e, "Alidns DescribeDomainInfo failed; syncing anyway");
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
        model.alidns.as_ref().is_some_and(|c| c.dry_run)
    }

    fn drift_interval(model: &Model) -> Duration {
        model
            .alidns
            .as_ref()
            .map_or(DEFAULT_DRIFT_INTERVAL, |c| c.drift())
    }
}
