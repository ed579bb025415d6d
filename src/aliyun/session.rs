//! What an Alibaba Cloud provider holds besides its API client: the [`CredentialProvider`]
//! found on the chain and the status entry that shows it. Connecting, getting credentials,
//! the one refresh after an auth error, the refresher task and the status entry are the
//! same for PrivateZone and Alidns, so they live here once.

use std::time::{Duration, SystemTime};

use super::credentials::{ChainConfig, CredentialError, CredentialProvider, Credentials};
use crate::clock::now_ms;
use crate::config::env::Env;
use crate::control::PublisherStatus;

/// How often the credential provider checks whether a refresh is due.
pub const CREDENTIAL_REFRESH_CHECK: Duration = Duration::from_secs(60);

/// The credentials of one provider and the name of their status entry
/// (`<provider>:credentials`). Cheap to clone (shared state).
#[derive(Clone, Debug)]
pub struct Session {
    creds: CredentialProvider,
    status_name: &'static str,
}

impl Session {
    /// A session over credentials already at hand.
    pub fn new(creds: CredentialProvider, status_name: &'static str) -> Self {
        Session { creds, status_name }
    }

    /// Walks the credential chain (with the test-only STS and metadata endpoint overrides of
    /// the provider's section) and keeps the first source that works.
    pub async fn connect(
        env: &Env,
        sts_endpoint: Option<String>,
        metadata_endpoint: Option<String>,
        status_name: &'static str,
    ) -> Result<Self, CredentialError> {
        let cfg = ChainConfig {
            sts_endpoint,
            metadata_endpoint,
            ..Default::default()
        };
        let creds = CredentialProvider::from_chain(env, &cfg).await?;
        Ok(Session::new(creds, status_name))
    }

    /// The credential provider.
    pub fn provider(&self) -> &CredentialProvider {
        &self.creds
    }

    /// Current credentials (refreshed when stale, see [`CredentialProvider::get`]).
    pub async fn credentials(&self) -> Result<Credentials, CredentialError> {
        self.creds.get().await
    }

    /// After `service` (`PrivateZone`, `Alidns`) rejected the credentials: logs it and
    /// fetches new ones once. `Ok(true)` when that worked.
    pub async fn refresh_once(&self, service: &str) -> Result<bool, String> {
        tracing::warn!(
            source = self.creds.source_name(),
            "{service} rejected the credentials; refreshing them once"
        );
        self.creds
            .force_refresh()
            .await
            .map(|_| true)
            .map_err(|e| e.to_string())
    }

    /// The task that refreshes the credentials before they expire; it ends when the
    /// session is dropped, and is aborted with the publisher.
    pub fn spawn_refresher(&self) -> tokio::task::JoinHandle<()> {
        self.creds.spawn_refresher(CREDENTIAL_REFRESH_CHECK)
    }

    /// The status entry of the credentials: `failing` once they expired.
    pub fn status(&self) -> PublisherStatus {
        let st = self.creds.status();
        let expired = st.expiration.is_some_and(|e| e <= SystemTime::now());
        PublisherStatus {
            name: self.status_name.into(),
            state: if expired { "failing" } else { "ok" }.into(),
            detail: if expired {
                format!("credentials expired: {st}")
            } else {
                st.to_string()
            },
            last_ok_ms: if expired { None } else { Some(now_ms()) },
            failures: u32::from(expired),
        }
    }
}
