//! The Alibaba Cloud credential chain (`privatezone.md` §5) and a caching, refreshing
//! [`CredentialProvider`].
//!
//! Order: environment → RRSA/OIDC → credentials file → (CLI profile: not supported) → ECS RAM
//! role via instance metadata. The first source that works is kept for the life of the
//! provider. A source that is *configured* (its variables are set, its file exists) but fails
//! stops the chain and is reported first, so a broken setup is never silently replaced by a
//! later source. Secrets, tokens and OIDC token contents never appear in logs or errors.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::sign::{format_acs_date, parse_acs_date, percent_encode};

/// Production STS endpoint (overridable, see [`ChainConfig::sts_endpoint`]).
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.aliyuncs.com";
/// Production ECS metadata endpoint (overridable, see [`ChainConfig::metadata_endpoint`]).
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://100.100.100.200";
/// STS credentials are refreshed when less than this remains before `Expiration`.
pub const STALE_BEFORE_EXPIRY: Duration = Duration::from_secs(15 * 60);
/// ECS role credentials are also re-fetched this long after each fetch.
pub const ECS_PREFETCH_INTERVAL: Duration = Duration::from_secs(3600);
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
const MIN_REFRESH_BACKOFF: Duration = Duration::from_secs(10);
const MAX_REFRESH_BACKOFF: Duration = Duration::from_secs(300);
const OIDC_DURATION_SECONDS: u64 = 3600;

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
struct OidcParams {
    role_arn: String,
    provider_arn: String,
    token_file: PathBuf,
    session_name: String,
    policy: Option<String>,
    sts_endpoint: String,
}

#[derive(Clone, Debug)]
struct EcsParams {
    role_name: Option<String>,
    imdsv1_disabled: bool,
    endpoint: String,
}

#[derive(Clone, Debug)]
enum Source {
    Static,
    Oidc(OidcParams),
    Ecs(EcsParams),
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

/// Outcome of one source of the chain.
enum Outcome {
    /// Not configured; the reason goes into the listing and the chain goes on.
    Skip(String),
    /// Configured but failed: stops the chain, reported first.
    Failed(String),
    Found(Box<(Source, String, Credentials)>),
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
                "environment" => env_source(env),
                "rrsa" => rrsa_source(env, cfg, &http, now).await,
                "credentials file" => file_source(env, cfg, &http, now).await,
                "cli profile" => cli_source(env),
                _ => ecs_source(env, cfg, &http).await,
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
            Source::Oidc(p) => fetch_oidc(&self.inner.http, p, (self.inner.clock)()).await,
            Source::Ecs(p) => fetch_ecs(&self.inner.http, p).await,
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

// ---------------------------------------------------------------------------------------
// The sources.

fn env_source(env: &Env) -> Outcome {
    const ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
    const SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
    match (env.get(ID), env.get(SECRET)) {
        (None, None) => Outcome::Skip(format!("{ID} not set")),
        (Some(_), None) => Outcome::Failed(format!("{SECRET} not set (but {ID} is)")),
        (None, Some(_)) => Outcome::Failed(format!("{ID} not set (but {SECRET} is)")),
        (Some(id), Some(secret)) => {
            let token = env.get("ALIBABA_CLOUD_SECURITY_TOKEN").map(str::to_string);
            let name = if token.is_some() {
                "environment (sts token)"
            } else {
                "environment"
            };
            Outcome::Found(Box::new((
                Source::Static,
                name.into(),
                Credentials {
                    access_key_id: id.into(),
                    access_key_secret: secret.into(),
                    security_token: token,
                    expiration: None,
                },
            )))
        }
    }
}

fn sts_endpoint(env: &Env, cfg: &ChainConfig) -> String {
    if let Some(e) = &cfg.sts_endpoint {
        return e.trim_end_matches('/').to_string();
    }
    match env.get("ALIBABA_CLOUD_STS_REGION") {
        Some(r) if env.is_true("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED") => {
            format!("https://sts-vpc.{r}.aliyuncs.com")
        }
        Some(r) => format!("https://sts.{r}.aliyuncs.com"),
        None => DEFAULT_STS_ENDPOINT.into(),
    }
}

fn session_name(env: &Env, now: SystemTime) -> String {
    env.get("ALIBABA_CLOUD_ROLE_SESSION_NAME")
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "regdns-{}",
                now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
            )
        })
}

async fn rrsa_source(
    env: &Env,
    cfg: &ChainConfig,
    http: &reqwest::Client,
    now: SystemTime,
) -> Outcome {
    const VARS: [&str; 3] = [
        "ALIBABA_CLOUD_ROLE_ARN",
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    ];
    let vals: Vec<Option<&str>> = VARS.iter().map(|v| env.get(v)).collect();
    let set: Vec<&str> = VARS
        .iter()
        .zip(&vals)
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| *k)
        .collect();
    let missing: Vec<&str> = VARS
        .iter()
        .zip(&vals)
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| *k)
        .collect();
    if set.is_empty() {
        return Outcome::Skip(format!("{} not set", VARS[0]));
    }
    if !missing.is_empty() {
        return Outcome::Failed(format!(
            "{} not set (but {} set)",
            missing.join(", "),
            set.join(", ")
        ));
    }
    let [Some(role_arn), Some(provider_arn), Some(token_file)] = vals[..] else {
        return Outcome::Failed("RRSA variables incomplete".into()); // checked just above
    };
    let params = OidcParams {
        role_arn: role_arn.into(),
        provider_arn: provider_arn.into(),
        token_file: PathBuf::from(token_file),
        session_name: session_name(env, now),
        policy: None,
        sts_endpoint: sts_endpoint(env, cfg),
    };
    match fetch_oidc(http, &params, now).await {
        Ok(c) => Outcome::Found(Box::new((Source::Oidc(params), "rrsa".into(), c))),
        Err(e) => Outcome::Failed(e),
    }
}

fn cli_source(env: &Env) -> Outcome {
    if env.is_true("ALIBABA_CLOUD_CLI_PROFILE_DISABLED") {
        return Outcome::Skip("disabled by ALIBABA_CLOUD_CLI_PROFILE_DISABLED".into());
    }
    let exists = env
        .get("HOME")
        .map(|h| Path::new(h).join(".aliyun/config.json"))
        .filter(|p| p.is_file());
    match exists {
        Some(p) => Outcome::Skip(format!(
            "{} exists but the aliyun CLI profile is not supported by regdns",
            p.display()
        )),
        None => Outcome::Skip("not supported by regdns".into()),
    }
}

/// A parsed INI file: section → key → value.
pub fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_string();
            out.entry(name.clone()).or_default();
            section = Some(name);
            continue;
        }
        let (Some(sec), Some((k, v))) = (&section, line.split_once('=')) else {
            continue;
        };
        let v = v.split('#').next().unwrap_or("").trim();
        out.get_mut(sec)
            .expect("section inserted")
            .insert(k.trim().to_string(), v.to_string());
    }
    out
}

async fn file_source(
    env: &Env,
    cfg: &ChainConfig,
    http: &reqwest::Client,
    now: SystemTime,
) -> Outcome {
    let path = match env.get("ALIBABA_CLOUD_CREDENTIALS_FILE") {
        Some(p) => {
            let p = PathBuf::from(p);
            if !p.is_file() {
                return Outcome::Failed(format!(
                    "{} (ALIBABA_CLOUD_CREDENTIALS_FILE) not found",
                    p.display()
                ));
            }
            p
        }
        None => {
            let Some(home) = env.get("HOME") else {
                return Outcome::Skip("HOME not set, no default credentials file".into());
            };
            let dir = Path::new(home).join(".alibabacloud");
            let ini = dir.join("credentials.ini");
            let plain = dir.join("credentials");
            if ini.is_file() {
                ini
            } else if plain.is_file() {
                plain
            } else {
                return Outcome::Skip(format!("{} not found", ini.display()));
            }
        }
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => return Outcome::Failed(format!("cannot read {}: {e}", path.display())),
    };
    let ini = parse_ini(&text);
    let profile = env.get("ALIBABA_CLOUD_PROFILE").unwrap_or("default");
    let Some(sec) = ini.get(profile) else {
        return Outcome::Failed(format!(
            "profile [{profile}] not found in {}",
            path.display()
        ));
    };
    let at = format!("{} [{profile}]", path.display());
    let field = |k: &str| -> Result<String, String> {
        sec.get(k)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| format!("{at}: {k} missing"))
    };
    let name = format!("credentials file (profile {profile})");
    let kind = sec.get("type").map(String::as_str).unwrap_or("");
    match kind {
        "access_key" => match (field("access_key_id"), field("access_key_secret")) {
            (Ok(id), Ok(secret)) => Outcome::Found(Box::new((
                Source::Static,
                name,
                Credentials {
                    access_key_id: id,
                    access_key_secret: secret,
                    security_token: None,
                    expiration: None,
                },
            ))),
            (Err(e), _) | (_, Err(e)) => Outcome::Failed(e),
        },
        "ecs_ram_role" => {
            let params = EcsParams {
                role_name: sec.get("role_name").filter(|v| !v.is_empty()).cloned(),
                imdsv1_disabled: env.is_true("ALIBABA_CLOUD_IMDSV1_DISABLED"),
                endpoint: metadata_endpoint(cfg),
            };
            match fetch_ecs(http, &params).await {
                Ok(c) => Outcome::Found(Box::new((
                    Source::Ecs(params),
                    format!("{name} ecs_ram_role"),
                    c,
                ))),
                Err(e) => Outcome::Failed(format!("{at} ecs_ram_role: {e}")),
            }
        }
        "oidc_role_arn" => {
            let (role_arn, provider_arn, token_file) = match (
                field("role_arn"),
                field("oidc_provider_arn"),
                field("oidc_token_file_path"),
            ) {
                (Ok(a), Ok(b), Ok(c)) => (a, b, c),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Outcome::Failed(e),
            };
            let params = OidcParams {
                role_arn,
                provider_arn,
                token_file: PathBuf::from(token_file),
                session_name: sec
                    .get("role_session_name")
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .unwrap_or_else(|| session_name(env, now)),
                policy: sec.get("policy").filter(|v| !v.is_empty()).cloned(),
                sts_endpoint: sts_endpoint(env, cfg),
            };
            match fetch_oidc(http, &params, now).await {
                Ok(c) => Outcome::Found(Box::new((
                    Source::Oidc(params),
                    format!("{name} oidc_role_arn"),
                    c,
                ))),
                Err(e) => Outcome::Failed(format!("{at} oidc_role_arn: {e}")),
            }
        }
        "ram_role_arn" | "rsa_key_pair" => Outcome::Failed(format!(
            "{at}: type {kind} is not supported by regdns (use access_key, ecs_ram_role or oidc_role_arn)"
        )),
        "" => Outcome::Failed(format!("{at}: type missing")),
        other => Outcome::Failed(format!(
            "{at}: unknown type {other:?} (expected access_key, ecs_ram_role or oidc_role_arn)"
        )),
    }
}

fn metadata_endpoint(cfg: &ChainConfig) -> String {
    cfg.metadata_endpoint
        .as_deref()
        .unwrap_or(DEFAULT_METADATA_ENDPOINT)
        .trim_end_matches('/')
        .to_string()
}

async fn ecs_source(env: &Env, cfg: &ChainConfig, http: &reqwest::Client) -> Outcome {
    if env.is_true("ALIBABA_CLOUD_ECS_METADATA_DISABLED") {
        return Outcome::Skip("disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED".into());
    }
    let params = EcsParams {
        role_name: env.get("ALIBABA_CLOUD_ECS_METADATA").map(str::to_string),
        imdsv1_disabled: env.is_true("ALIBABA_CLOUD_IMDSV1_DISABLED"),
        endpoint: metadata_endpoint(cfg),
    };
    match fetch_ecs(http, &params).await {
        Ok(c) => Outcome::Found(Box::new((Source::Ecs(params), "ecs metadata".into(), c))),
        // Reaching metadata is the chain's last resort, so its failure is a plain entry;
        // with ALIBABA_CLOUD_ECS_METADATA set it was explicitly configured.
        Err(e) if env.get("ALIBABA_CLOUD_ECS_METADATA").is_some() => Outcome::Failed(e),
        Err(e) => Outcome::Skip(e),
    }
}

use crate::config::env::Env;
use crate::error_chain::error_chain;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    access_key_id: String,
    access_key_secret: String,
    security_token: String,
    expiration: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsResponse {
    credentials: Option<StsCredentials>,
    #[serde(default, alias = "code")]
    code: Option<String>,
    #[serde(default, alias = "message")]
    message: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
}

async fn fetch_oidc(
    http: &reqwest::Client,
    p: &OidcParams,
    now: SystemTime,
) -> Result<Credentials, String> {
    // Re-read on every call: the kubelet rotates the token.
    let token = std::fs::read_to_string(&p.token_file).map_err(|e| {
        format!(
            "cannot read OIDC token file {}: {e}",
            p.token_file.display()
        )
    })?;
    let token = token.trim();
    if token.is_empty() {
        return Err(format!(
            "OIDC token file {} is empty",
            p.token_file.display()
        ));
    }
    let query = [
        ("Action", "AssumeRoleWithOIDC".to_string()),
        ("Format", "JSON".to_string()),
        ("Timestamp", format_acs_date(now)),
        ("Version", "2015-04-01".to_string()),
    ];
    let mut form = vec![
        ("DurationSeconds", OIDC_DURATION_SECONDS.to_string()),
        ("OIDCProviderArn", p.provider_arn.clone()),
        ("OIDCToken", token.to_string()),
        ("RoleArn", p.role_arn.clone()),
        ("RoleSessionName", p.session_name.clone()),
    ];
    if let Some(policy) = &p.policy {
        form.push(("Policy", policy.clone()));
    }
    let enc = |pairs: &[(&str, String)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let url = format!("{}/?{}", p.sts_endpoint, enc(&query));
    let what = format!("STS AssumeRoleWithOIDC at {}", p.sts_endpoint);
    let resp = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(enc(&form))
        .send()
        .await
        .map_err(|e| format!("{what}: {}", error_chain(&e)))?;
    let status = resp.status();
    let body = resp
        .text()
        .await
        .map_err(|e| format!("{what}: reading response: {}", error_chain(&e)))?;
    let parsed: Option<StsResponse> = serde_json::from_str(&body).ok();
    match parsed {
        Some(StsResponse {
            credentials: Some(c),
            ..
        }) if status.is_success() => {
            let expiration = parse_acs_date(&c.expiration)
                .ok_or_else(|| format!("{what}: bad Expiration {:?}", c.expiration))?;
            Ok(Credentials {
                access_key_id: c.access_key_id,
                access_key_secret: c.access_key_secret,
                security_token: Some(c.security_token),
                expiration: Some(expiration),
            })
        }
        Some(r) => Err(format!(
            "{what}: HTTP {} {}: {} (RequestId {})",
            status.as_u16(),
            r.code.as_deref().unwrap_or("no Credentials in response"),
            r.message.as_deref().unwrap_or(""),
            r.request_id.as_deref().unwrap_or("-")
        )),
        None => Err(format!(
            "{what}: HTTP {} with a body that is not STS JSON",
            status.as_u16()
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EcsCredentials {
    code: Option<String>,
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    security_token: Option<String>,
    expiration: Option<String>,
}

const ECS_TIMEOUT: Duration = Duration::from_secs(2);

async fn fetch_ecs(http: &reqwest::Client, p: &EcsParams) -> Result<Credentials, String> {
    let base = &p.endpoint;
    let unreachable = |e: &reqwest::Error| {
        if e.is_connect() || e.is_timeout() {
            format!("{base} unreachable ({})", error_chain(e))
        } else {
            format!("{base}: {}", error_chain(e))
        }
    };
    // 1. IMDSv2 token.
    let token = match http
        .put(format!("{base}/latest/api/token"))
        .header("X-aliyun-ecs-metadata-token-ttl-seconds", "21600")
        .timeout(ECS_TIMEOUT)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => match r.text().await {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            Ok(_) => None,
            Err(e) => return Err(unreachable(&e)),
        },
        Ok(r) => {
            let why = format!("metadata token PUT answered HTTP {}", r.status().as_u16());
            if p.imdsv1_disabled {
                return Err(format!(
                    "{base}: {why} and ALIBABA_CLOUD_IMDSV1_DISABLED=true"
                ));
            }
            tracing::warn!(endpoint = %base, "{why}; falling back to metadata requests without a token (set ALIBABA_CLOUD_IMDSV1_DISABLED=true to forbid)");
            None
        }
        Err(e) => {
            if e.is_connect() || e.is_timeout() || p.imdsv1_disabled {
                return Err(unreachable(&e));
            }
            tracing::warn!(endpoint = %base, error = %error_chain(&e), "metadata token PUT failed; falling back to metadata requests without a token");
            None
        }
    };
    let get = |path: String| {
        let mut req = http.get(format!("{base}{path}")).timeout(ECS_TIMEOUT);
        if let Some(t) = &token {
            req = req.header("X-aliyun-ecs-metadata-token", t);
        }
        req
    };
    const PREFIX: &str = "/latest/meta-data/ram/security-credentials/";
    // 2. Role name.
    let role = match &p.role_name {
        Some(r) => r.clone(),
        None => {
            let r = get(PREFIX.to_string())
                .send()
                .await
                .map_err(|e| unreachable(&e))?;
            let status = r.status();
            let body = r.text().await.map_err(|e| unreachable(&e))?;
            if !status.is_success() {
                return Err(format!(
                    "{base}: role name lookup answered HTTP {} (no RAM role attached to the instance?)",
                    status.as_u16()
                ));
            }
            let role = body.lines().next().unwrap_or("").trim().to_string();
            if role.is_empty() {
                return Err(format!("{base}: no RAM role attached to the instance"));
            }
            role
        }
    };
    // 3. Credentials.
    let r = get(format!("{PREFIX}{}", percent_encode(&role)))
        .send()
        .await
        .map_err(|e| unreachable(&e))?;
    let status = r.status();
    let body = r.text().await.map_err(|e| unreachable(&e))?;
    if !status.is_success() {
        return Err(format!(
            "{base}: credentials of role {role} answered HTTP {}",
            status.as_u16()
        ));
    }
    let c: EcsCredentials = serde_json::from_str(&body)
        .map_err(|e| format!("{base}: credentials of role {role}: not JSON ({e})"))?;
    if c.code.as_deref() != Some("Success") {
        return Err(format!(
            "{base}: credentials of role {role}: Code {:?}",
            c.code.unwrap_or_default()
        ));
    }
    let (Some(id), Some(secret), Some(token), Some(exp)) = (
        c.access_key_id,
        c.access_key_secret,
        c.security_token,
        c.expiration,
    ) else {
        return Err(format!(
            "{base}: credentials of role {role}: fields missing"
        ));
    };
    let expiration =
        parse_acs_date(&exp).ok_or_else(|| format!("{base}: bad Expiration {exp:?}"))?;
    Ok(Credentials {
        access_key_id: id,
        access_key_secret: secret,
        security_token: Some(token),
        expiration: Some(expiration),
    })
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
    fn ini() {
        let i = parse_ini(
            "# c\n[default]\ntype = access_key # comment\naccess_key_id=AK\n\n[other]\n; x\nrole_name = r\n",
        );
        assert_eq!(i["default"]["type"], "access_key");
        assert_eq!(i["default"]["access_key_id"], "AK");
        assert_eq!(i["other"]["role_name"], "r");
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

    #[test]
    fn env_partial_is_a_configured_failure() {
        let env = Env::from_pairs([("ALIBABA_CLOUD_ACCESS_KEY_ID", "x")]);
        assert!(matches!(env_source(&env), Outcome::Failed(_)));
    }

    #[test]
    fn sts_endpoint_rules() {
        let cfg = ChainConfig::default();
        assert_eq!(sts_endpoint(&Env::default(), &cfg), DEFAULT_STS_ENDPOINT);
        let env = Env::from_pairs([("ALIBABA_CLOUD_STS_REGION", "cn-hangzhou")]);
        assert_eq!(
            sts_endpoint(&env, &cfg),
            "https://sts.cn-hangzhou.aliyuncs.com"
        );
        let env = Env::from_pairs([
            ("ALIBABA_CLOUD_STS_REGION", "cn-hangzhou"),
            ("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true"),
        ]);
        assert_eq!(
            sts_endpoint(&env, &cfg),
            "https://sts-vpc.cn-hangzhou.aliyuncs.com"
        );
    }
}
