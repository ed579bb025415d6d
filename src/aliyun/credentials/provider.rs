//! [`CredentialProvider`]: walks the chain in its order (environment → RRSA/OIDC →
//! credentials file → (CLI profile: not supported) → ECS RAM role via instance metadata),
//! keeps the first source that works for the life of the provider, caches its credentials
//! and refreshes them before they expire (on demand, with backoff, and from a refresher
//! task). A source that is *configured* (its variables are set, its file exists) but fails
//! stops the chain and is reported first, so a broken setup is never silently replaced by a
//! later source.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use super::{
    ChainConfig, Clock, CredentialError, CredentialStatus, Credentials, Outcome, Source, ecs,
    environment, file, rrsa, shorten_key_id,
};
use crate::aliyun::sign::format_acs_date;
use crate::config::env::Env;

/// STS credentials are refreshed when less than this remains before `Expiration`.
pub const STALE_BEFORE_EXPIRY: Duration = Duration::from_secs(15 * 60);
/// ECS role credentials are also re-fetched this long after each fetch.
pub const ECS_PREFETCH_INTERVAL: Duration = Duration::from_secs(3600);
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
const MIN_REFRESH_BACKOFF: Duration = Duration::from_secs(10);
const MAX_REFRESH_BACKOFF: Duration = Duration::from_secs(300);

struct State {
    current: Credentials,
    fetched_at: SystemTime,
    last_attempt: Option<SystemTime>,
    last_result: Result<(), String>,
    failures: u32,
    refreshing: bool,
}

struct Inner {
    source: Source,
    source_name: String,
    http: reqwest::Client,
    clock: Clock,
    state: Mutex<State>,
    refresh_lock: tokio::sync::Mutex<()>,
}

/// Caches the credentials of one source and refreshes them before they expire. Cheap to
/// clone (shared state).
#[derive(Clone)]
pub struct CredentialProvider {
    inner: Arc<Inner>,
}

impl fmt::Debug for CredentialProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialProvider")
            .field("status", &self.status())
            .finish()
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("regdns/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("reqwest client")
}

impl CredentialProvider {
    /// Fixed credentials (no refresh). `source` is shown in status.
    pub fn from_static(creds: Credentials, source: &str, clock: Clock) -> Self {
        Self::build(
            Source::Static,
            source.to_string(),
            creds,
            http_client(),
            clock,
        )
    }

    fn build(
        source: Source,
        source_name: String,
        creds: Credentials,
        http: reqwest::Client,
        clock: Clock,
    ) -> Self {
        let now = clock();
        CredentialProvider {
            inner: Arc::new(Inner {
                source,
                source_name,
                http,
                clock,
                state: Mutex::new(State {
                    current: creds,
                    fetched_at: now,
                    last_attempt: Some(now),
                    last_result: Ok(()),
                    failures: 0,
                    refreshing: false,
                }),
                refresh_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Walks the default chain and keeps the first source that yields credentials.
    pub async fn from_chain(env: &Env, cfg: &ChainConfig) -> Result<Self, CredentialError> {
        let http = http_client();
        let now = (cfg.clock)();
        let mut skipped: Vec<String> = Vec::new();
        type Step = &'static str;
        const STEPS: [Step; 5] = [
            "environment",
            "rrsa",
            "credentials file",
            "cli profile",
            "ecs metadata",
        ];
        for (i, step) in STEPS.iter().enumerate() {
            let outcome = match *step {
                "environment" => environment::env_source(env),
                "rrsa" => rrsa::rrsa_source(env, cfg, &http, now).await,
                "credentials file" => file::file_source(env, cfg, &http, now).await,
                "cli profile" => file::cli_source(env),
                _ => ecs::ecs_source(env, cfg, &http).await,
            };
            match outcome {
                Outcome::Skip(reason) => skipped.push(format!("{step}: {reason}")),
                Outcome::Found(found) => {
                    let (source, name, creds) = *found;
                    tracing::info!(
                        source = %name,
                        key_id = %shorten_key_id(&creds.access_key_id),
                        expiration = ?creds.expiration.map(format_acs_date),
                        "PrivateZone credentials loaded"
                    );
                    return Ok(Self::build(source, name, creds, http, cfg.clock.clone()));
                }
                Outcome::Failed(reason) => {
                    let mut all = vec![format!("{step}: {reason}")];
                    all.extend(skipped);
                    let rest = &STEPS[i + 1..];
                    if !rest.is_empty() {
                        all.push(format!(
                            "{}: not tried because {step} is configured but failed",
                            rest.join(", ")
                        ));
                    }
                    return Err(CredentialError::NoCredentials(all));
                }
            }
        }
        if env.get("ALIBABA_CLOUD_CREDENTIALS_URI").is_some() {
            skipped.push(
                "credentials uri: ALIBABA_CLOUD_CREDENTIALS_URI is set but not supported by regdns"
                    .into(),
            );
        }
        Err(CredentialError::NoCredentials(skipped))
    }

    /// Current credentials. Starts a background refresh when they are stale (less than 15
    /// minutes left, or an hour after an ECS fetch) and keeps using them while valid; once
    /// expired, refreshes inline and fails with `credentials expired` if that fails.
    pub async fn get(&self) -> Result<Credentials, CredentialError> {
        let now = (self.inner.clock)();
        let (expired, start_bg) = {
            let mut st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            let expired = st.current.expiration.is_some_and(|e| e <= now);
            let stale = self.is_stale(&st, now);
            let start_bg = stale && !expired && !st.refreshing && backoff_elapsed(&st, now);
            if start_bg {
                st.refreshing = true;
            }
            (expired, start_bg)
        };
        if expired {
            return match self.refresh(false).await {
                Ok(c) => Ok(c),
                Err(e) => {
                    let st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
                    Err(CredentialError::Expired {
                        source_name: self.inner.source_name.clone(),
                        expired_at: st
                            .current
                            .expiration
                            .map(format_acs_date)
                            .unwrap_or_default(),
                        last_error: match e {
                            CredentialError::Refresh { reason, .. } => reason,
                            other => other.to_string(),
                        },
                    })
                }
            };
        }
        if start_bg {
            let weak: Weak<Inner> = Arc::downgrade(&self.inner);
            tokio::spawn(async move {
                if let Some(inner) = weak.upgrade() {
                    let p = CredentialProvider { inner };
                    let _ = p.refresh(false).await;
                    p.inner
                        .state
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .refreshing = false;
                }
            });
        }
        Ok(self
            .inner
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .current
            .clone())
    }

    /// Fetches new credentials now (for an STS/ECS source); a fixed source returns what it
    /// has. Used after an auth error from the service.
    pub async fn force_refresh(&self) -> Result<Credentials, CredentialError> {
        self.refresh(true).await
    }

    /// Source, shortened key id, expiry and the last refresh result.
    pub fn status(&self) -> CredentialStatus {
        let st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        CredentialStatus {
            source: self.inner.source_name.clone(),
            key_id: shorten_key_id(&st.current.access_key_id),
            expiration: st.current.expiration,
            last_refresh: st.last_attempt,
            last_refresh_result: st.last_result.clone(),
        }
    }

    /// Name of the source in use.
    pub fn source_name(&self) -> &str {
        &self.inner.source_name
    }

    /// Spawns a task that checks every `period` whether a refresh is due (it also happens
    /// on demand in [`get`](Self::get)). The task ends when the provider is dropped.
    pub fn spawn_refresher(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(inner) = weak.upgrade() else { return };
                let p = CredentialProvider { inner };
                let now = (p.inner.clock)();
                let due = {
                    let st = p.inner.state.lock().unwrap_or_else(|e| e.into_inner());
                    p.is_stale(&st, now) && backoff_elapsed(&st, now)
                };
                if due {
                    let _ = p.refresh(false).await;
                }
            }
        })
    }

    fn is_stale(&self, st: &State, now: SystemTime) -> bool {
        match &self.inner.source {
            Source::Static => false,
            Source::Oidc(_) | Source::Ecs(_) => {
                let near_expiry = st
                    .current
                    .expiration
                    .is_some_and(|e| e <= now + STALE_BEFORE_EXPIRY);
                let ecs_due = matches!(self.inner.source, Source::Ecs(_))
                    && now
                        .duration_since(st.fetched_at)
                        .is_ok_and(|d| d >= ECS_PREFETCH_INTERVAL);
                near_expiry || ecs_due
            }
        }
    }

    async fn refresh(&self, force: bool) -> Result<Credentials, CredentialError> {
        let started = (self.inner.clock)();
        let _guard = self.inner.refresh_lock.lock().await;
        {
            // Someone else refreshed while we waited: use that.
            let st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            let fresh = st.fetched_at > started || !self.is_stale(&st, (self.inner.clock)());
            let valid = st
                .current
                .expiration
                .is_none_or(|e| e > (self.inner.clock)());
            if matches!(self.inner.source, Source::Static) || (!force && fresh && valid) {
                return Ok(st.current.clone());
            }
        }
        let result = match &self.inner.source {
            Source::Static => unreachable!("handled above"),
            Source::Oidc(p) => rrsa::fetch_oidc(&self.inner.http, p, (self.inner.clock)()).await,
            Source::Ecs(p) => ecs::fetch_ecs(&self.inner.http, p).await,
        };
        let now = (self.inner.clock)();
        let mut st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        st.last_attempt = Some(now);
        match result {
            Ok(creds) => {
                tracing::info!(
                    source = %self.inner.source_name,
                    key_id = %shorten_key_id(&creds.access_key_id),
                    expiration = ?creds.expiration.map(format_acs_date),
                    "PrivateZone credentials refreshed"
                );
                st.current = creds.clone();
                st.fetched_at = now;
                st.last_result = Ok(());
                st.failures = 0;
                Ok(creds)
            }
            Err(reason) => {
                tracing::warn!(source = %self.inner.source_name, error = %reason, "PrivateZone credential refresh failed");
                st.last_result = Err(reason.clone());
                st.failures += 1;
                Err(CredentialError::Refresh {
                    source_name: self.inner.source_name.clone(),
                    reason,
                })
            }
        }
    }
}

/// Whether a background refresh may start: at most one a minute after a success (a source
/// that issues credentials shorter-lived than the stale window must not be hammered), with
/// exponential backoff after failures.
fn backoff_elapsed(st: &State, now: SystemTime) -> bool {
    if st.failures == 0 {
        return st.last_attempt.is_none_or(|t| {
            now.duration_since(t)
                .is_ok_and(|d| d >= MIN_REFRESH_INTERVAL)
        });
    }
    let backoff = MIN_REFRESH_BACKOFF
        .saturating_mul(1u32 << (st.failures - 1).min(10))
        .min(MAX_REFRESH_BACKOFF);
    st.last_attempt
        .is_none_or(|t| now.duration_since(t).is_ok_and(|d| d >= backoff))
}
