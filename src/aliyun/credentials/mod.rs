//! The Alibaba Cloud credential chain (`docs/providers/alibaba-cloud-api.md#6-credential-chain`): the credentials, the chain's
//! configuration, its errors and status. The caching, refreshing provider that walks the
//! chain is `provider.rs`; each source of the chain has its own file (`environment.rs`,
//! `rrsa.rs`, `file.rs`, `ecs.rs`). Secrets, tokens and OIDC token contents never appear in
//! logs or errors.

mod ecs;
mod environment;
mod file;
mod provider;
mod rrsa;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

pub use ecs::DEFAULT_METADATA_ENDPOINT;
pub use file::parse_ini;
pub use provider::{CredentialProvider, ECS_PREFETCH_INTERVAL, STALE_BEFORE_EXPIRY};
pub use rrsa::DEFAULT_STS_ENDPOINT;

use super::sign::format_acs_date;
use ecs::EcsParams;
use rrsa::OidcParams;

/// An injectable clock.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The real clock.
pub fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

/// One set of credentials. `Debug` never shows the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// AccessKey id (may be logged shortened, see [`shorten_key_id`]).
    pub access_key_id: String,
    /// AccessKey secret; never logged.
    pub access_key_secret: String,
    /// STS token; sent (and signed) as `x-acs-security-token`.
    pub security_token: Option<String>,
    /// `None` for long-lived AccessKeys and for STS tokens of unknown lifetime.
    pub expiration: Option<SystemTime>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &shorten_key_id(&self.access_key_id))
            .field("access_key_secret", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expiration", &self.expiration.map(format_acs_date))
            .finish()
    }
}

/// `LTAI…abcd`: enough to tell keys apart in logs, not enough to use.
pub fn shorten_key_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() >= 12 {
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    } else {
        let head: String = chars.iter().take(2).collect();
        format!("{head}…")
    }
}

/// Where the chain reaches STS and instance metadata, and which clock it uses.
#[derive(Clone)]
pub struct ChainConfig {
    /// Test-only override of the STS endpoint (`[privatezone] sts_endpoint`).
    pub sts_endpoint: Option<String>,
    /// Test-only override of the metadata endpoint (`[privatezone] metadata_endpoint`).
    pub metadata_endpoint: Option<String>,
    /// Clock used for expiry decisions (injectable for tests).
    pub clock: Clock,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            sts_endpoint: None,
            metadata_endpoint: None,
            clock: system_clock(),
        }
    }
}

impl fmt::Debug for ChainConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainConfig")
            .field("sts_endpoint", &self.sts_endpoint)
            .field("metadata_endpoint", &self.metadata_endpoint)
            .finish_non_exhaustive()
    }
}

/// Credential failures. Messages name sources and reasons, never secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Every source of the chain failed; one `source: reason` entry per source.
    #[error("no PrivateZone credentials: {}", .0.join("; "))]
    NoCredentials(Vec<String>),
    /// The current credentials expired and could not be refreshed.
    #[error(
        "credentials expired at {expired_at} ({source_name}); last refresh error: {last_error}"
    )]
    Expired {
        /// Source that issued them.
        source_name: String,
        /// Expiry time (UTC).
        expired_at: String,
        /// Why the last refresh failed.
        last_error: String,
    },
    /// A refresh failed (the current credentials may still be valid).
    #[error("credential refresh from {source_name} failed: {reason}")]
    Refresh {
        /// Source that failed.
        source_name: String,
        /// Why.
        reason: String,
    },
}

#[derive(Clone, Debug)]
/// Where a provider's credentials come from (and come again on refresh).
enum Source {
    Static,
    Oidc(OidcParams),
    Ecs(EcsParams),
}

/// Outcome of one source of the chain.
enum Outcome {
    /// Not configured; the reason goes into the listing and the chain goes on.
    Skip(String),
    /// Configured but failed: stops the chain, reported first.
    Failed(String),
    Found(Box<(Source, String, Credentials)>),
}

/// What `status()` shows about the credentials in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialStatus {
    /// e.g. `environment`, `rrsa`, `credentials file (profile default)`, `ecs metadata`.
    pub source: String,
    /// Shortened, see [`shorten_key_id`].
    pub key_id: String,
    /// When the current credentials expire (None: long-lived).
    pub expiration: Option<SystemTime>,
    /// When the credentials were last fetched.
    pub last_refresh: Option<SystemTime>,
    /// `Ok(())` after a successful fetch, `Err(reason)` after a failed refresh.
    pub last_refresh_result: Result<(), String>,
}

impl fmt::Display for CredentialStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "source {} key {}", self.source, self.key_id)?;
        match self.expiration {
            Some(e) => write!(f, " expires {}", format_acs_date(e))?,
            None => write!(f, " (no expiry)")?,
        }
        if let Some(t) = self.last_refresh {
            write!(f, ", last refresh {}", format_acs_date(t))?;
        }
        match &self.last_refresh_result {
            Ok(()) => Ok(()),
            Err(e) => write!(f, ", last refresh failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten() {
        assert_eq!(shorten_key_id("LTAI5tAbCdEfGh12abcd"), "LTAI…abcd");
        assert_eq!(shorten_key_id("testid"), "te…");
    }

    #[test]
    fn debug_redacts() {
        let c = Credentials {
            access_key_id: "LTAI5tAbCdEfGh12abcd".into(),
            access_key_secret: "supersecret".into(),
            security_token: Some("tokentoken".into()),
            expiration: None,
        };
        let d = format!("{c:?}");
        assert!(!d.contains("supersecret") && !d.contains("tokentoken") && !d.contains("Gh12"));
    }
}
