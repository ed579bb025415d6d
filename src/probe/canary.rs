//! The canary pull (design §5): what a client does to pull an image, on one small canary
//! image per instance. Resolve the manifest with the Accept headers of OCI and Docker
//! manifests and indexes (Bearer token flow with scope `repository:<repo>:pull`, Basic
//! auth, or anonymous), pick one platform of an index, then GET the smallest blob
//! (config or layer), following redirects to storage (OSS/S3) as clients do, reading it to
//! the end and checking its digest. Each step's failure is a precise reason
//! (`manifest regdns/canary:canary: HTTP 500`, `blob sha256:… via redirect to oss-…:
//! timeout after 5s (response headers)`); a success reports the manifest digest, which
//! the controller records for replication awareness.
//!
//! The pure parts (media types, platform choice, digests, the bytes cap) are separate
//! functions with their own tests; the network part is [`Prober::canary`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::CheckResult;
use super::auth::{Challenge, challenges_of};
use super::http::{Auth, HttpResponse, Prober};
pub use crate::config::instance::{
    DEFAULT_CANARY_TIMEOUT, MIN_DEFAULT_CANARY_INTERVAL, PullCredentials, read_credentials_file,
};

/// Manifests and indexes are read up to this many bytes (the distribution spec's limit).
pub const MANIFEST_CAP: usize = 4 << 20;
/// Blobs are read up to this many bytes; a canary image's config or smallest layer is far
/// smaller.
pub const BLOB_CAP: usize = 1 << 20;
/// Redirects followed for one blob (registries redirect once, to storage).
pub const MAX_REDIRECTS: usize = 5;

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The `Accept` header of a manifest request: every type a client understands.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// The canary image of an instance and how to pull it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanarySpec {
    /// Repository, e.g. `ops/canary`.
    pub repository: String,
    /// Tag or digest (`sha256:…`).
    pub reference: String,
    /// Time between two canary pulls while settled.
    pub interval: Duration,
    /// Time allowed for the whole pull.
    pub timeout: Duration,
    /// Where pull credentials come from.
    pub auth: CanaryAuth,
}

/// Where a canary's pull credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanaryAuth {
    /// No credentials: anonymous pull (token requests without Basic auth).
    Anonymous,
    /// A JSON file `{"username": ..., "password": ...}`, read at every pull so that a
    /// rotated password is picked up without a reload.
    File(PathBuf),
    /// A temporary login from the Container Registry API (ACR Enterprise Edition).
    Acr {
        /// Instance id, `cri-…`.
        instance_id: String,
        /// Region of the instance.
        region: String,
        /// API endpoint override (tests).
        endpoint: Option<String>,
    },
}

/// Result of one canary pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryOutcome {
    /// The `canary` check, as shown in reports.
    pub check: CheckResult,
    /// Digest of the resolved (top-level) manifest, on success.
    pub digest: Option<String>,
}

/// A content descriptor (OCI image spec).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(default)]
    pub media_type: Option<String>,
    /// `sha256:…`.
    pub digest: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// Platform of an index entry.
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// Platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    /// `linux`, …
    #[serde(default)]
    pub os: String,
    /// `amd64`, `arm64`, …
    #[serde(default)]
    pub architecture: String,
    /// `v8`, …
    #[serde(default)]
    pub variant: Option<String>,
}

/// A parsed manifest document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    /// An image index / manifest list: one manifest per platform.
    Index(Vec<Descriptor>),
    /// An image manifest: config and layers.
    Manifest {
        /// The config blob.
        config: Descriptor,
        /// The layers.
        layers: Vec<Descriptor>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDocument {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// The media type without parameters, lower-cased (`text/html; charset=utf-8` → `text/html`).
pub fn bare_media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Parses a manifest or index. The media type is the document's own `mediaType` when it
/// has one, else the `Content-Type` of the response; a document without either is
/// recognised by its shape (`manifests`, or `config` + `layers`).
pub fn parse_document(body: &[u8], content_type: Option<&str>) -> Result<Document, String> {
    let ct = content_type.map(bare_media_type).unwrap_or_default();
    let raw: RawDocument = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return Err(if ct.is_empty() || ct.contains("json") {
                format!("not a manifest: invalid JSON ({e})")
            } else {
                format!("not a manifest (Content-Type {ct})")
            });
        }
    };
    let mt = raw
        .media_type
        .as_deref()
        .map(bare_media_type)
        .unwrap_or_else(|| ct.clone());
    let is_index = match mt.as_str() {
        OCI_INDEX | DOCKER_LIST => true,
        OCI_MANIFEST | DOCKER_MANIFEST => false,
        "application/vnd.docker.distribution.manifest.v1+json"
        | "application/vnd.docker.distribution.manifest.v1+prettyjws" => {
            return Err(format!(
                "unsupported manifest media type {mt} (Docker schema 1; push the canary as OCI or Docker schema 2)"
            ));
        }
        _ if raw.schema_version == Some(1) => {
            return Err("unsupported manifest: Docker schema 1".to_string());
        }
        _ if raw.manifests.is_some() => true,
        _ if raw.config.is_some() => false,
        "" => return Err("not a manifest: no media type, no manifests, no config".to_string()),
        other => return Err(format!("unsupported manifest media type {other}")),
    };
    if is_index {
        let m = raw.manifests.unwrap_or_default();
        if m.is_empty() {
            return Err("image index lists no manifests".to_string());
        }
        Ok(Document::Index(m))
    } else {
        let config = raw
            .config
            .ok_or_else(|| "image manifest has no config".to_string())?;
        Ok(Document::Manifest {
            config,
            layers: raw.layers.unwrap_or_default(),
        })
    }
}

/// The platform manifest of an index a client on linux/amd64 would pull: linux/amd64
/// first, else the first entry that is a real platform (attestations are listed as
/// `unknown/unknown`), else the first entry.
pub fn pick_platform(manifests: &[Descriptor]) -> Option<&Descriptor> {
    let real = |d: &&Descriptor| {
        d.platform
            .as_ref()
            .is_none_or(|p| p.os != "unknown" && p.architecture != "unknown")
    };
    manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
        })
        .or_else(|| manifests.iter().find(real))
        .or_else(|| manifests.first())
}

/// The smallest blob of a manifest (the config or a layer): what the canary downloads.
/// Blobs of unknown size come last.
pub fn smallest_blob<'a>(config: &'a Descriptor, layers: &'a [Descriptor]) -> &'a Descriptor {
    std::iter::once(config)
        .chain(layers)
        .min_by_key(|d| d.size.unwrap_or(u64::MAX))
        .unwrap_or(config)
}

/// `sha256:` + hex of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Checks that `data` has the digest `expected` (`sha256:…`, lower-case hex).
pub fn verify_digest(expected: &str, data: &[u8]) -> Result<(), String> {
    let Some((alg, hexpart)) = expected.split_once(':') else {
        return Err(format!("invalid digest {expected:?}"));
    };
    if alg != "sha256" {
        return Err(format!(
            "unsupported digest algorithm {alg:?} (only sha256 is checked)"
        ));
    }
    if hexpart.len() != 64 || !hexpart.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("invalid digest {expected:?}"));
    }
    let got = sha256_digest(data);
    if got.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(format!(
            "digest mismatch: content is {}, expected {}",
            short_digest(&got),
            short_digest(expected)
        ))
    }
}

/// `sha256:0123456789ab…` (12 hex digits), as shown in reasons.
pub fn short_digest(d: &str) -> String {
    // Digests come from the network: cut by characters, never inside one.
    match d.split_once(':') {
        Some((alg, h)) if h.chars().count() > 12 => {
            format!("{alg}:{}…", h.chars().take(12).collect::<String>())
        }
        _ => d.to_string(),
    }
}

/// `repo:tag` or `repo@sha256:…`.
pub fn reference_display(repository: &str, reference: &str) -> String {
    if reference.contains(':') {
        format!("{repository}@{reference}")
    } else {
        format!("{repository}:{reference}")
    }
}

/// `1.5 KiB`, `1 MiB`, `12 B`.
pub fn fmt_bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1 << 20 {
        format!("{} KiB", trim_float(n as f64 / 1024.0))
    } else {
        format!("{} MiB", trim_float(n as f64 / (1 << 20) as f64))
    }
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// The registry's error code and message from a JSON error body
/// (`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"…"}]}`), shortened.
pub fn registry_error(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let e: Errors = serde_json::from_slice(body).ok()?;
    let first = e.errors.first()?;
    let mut msg = first.message.clone();
    if msg.len() > 120 {
        let mut cut = 120;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
        msg.push('…');
    }
    Some(match (first.code.is_empty(), msg.is_empty()) {
        (false, false) => format!("{}: {msg}", first.code),
        (false, true) => first.code.clone(),
        (true, _) => msg,
    })
}

/// `HTTP 500` or `HTTP 500 (UNKNOWN: unknown error)`.
fn http_failure(resp: &HttpResponse) -> String {
    match registry_error(&resp.body) {
        Some(e) => format!("HTTP {} ({e})", resp.status.as_u16()),
        None => format!("HTTP {}", resp.status.as_u16()),
    }
}

/// The token a registry's token service returns (`token`, or OAuth2's `access_token`).
#[derive(Deserialize)]
struct TokenReply {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// The `/v2/` root of an instance URL (`https://r.example/v2/`).
fn api_root(url: &url::Url) -> url::Url {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let path = u.path().to_string();
    let root = match path.find("/v2") {
        Some(i) => format!("{}/v2/", &path[..i]),
        None => format!("{}/v2/", path.trim_end_matches('/')),
    };
    u.set_path(&root);
    u
}

/// The token request of a Bearer challenge for pulling `repository`.
pub fn token_request(
    base: &url::Url,
    ch: &Challenge,
    repository: &str,
) -> Result<url::Url, String> {
    super::auth::token_request(base, ch, &format!("repository:{repository}:pull"))
}

/// Host (and port when not the default) of a URL, as named in reasons.
fn host_of(u: &url::Url) -> String {
    match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => u.to_string(),
    }
}

/// Same scheme, host and port: credentials may be sent there.
fn same_origin(a: &url::Url, b: &url::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// One canary pull in progress: where, with what, until when.
struct Pull<'a> {
    prober: &'a Prober,
    root: url::Url,
    repository: &'a str,
    creds: Option<PullCredentials>,
    auth: Auth,
    deadline: tokio::time::Instant,
    budget: Duration,
}

impl Pull<'_> {
    /// GET with the current authorization, on the registry's own origin.
    async fn get(
        &self,
        url: &url::Url,
        auth: &Auth,
        accept: Option<&str>,
        cap: usize,
    ) -> Result<HttpResponse, String> {
        self.prober
            .fetch(url, auth, accept, self.deadline, self.budget, cap)
            .await
    }

    /// Authorizes after a 401: Bearer token flow, or Basic with the credentials.
    async fn authorize(&mut self, resp: &HttpResponse, what: &str) -> Result<(), String> {
        let challenges = challenges_of(&resp.headers);
        if let Some(b) = challenges.iter().find(|c| c.is_bearer()) {
            let url = token_request(&self.root, b, self.repository)
                .map_err(|e| format!("{what}: {e}"))?;
            let basic = match &self.creds {
                Some(c) => Auth::Basic(c.username.clone(), c.password.clone()),
                None => Auth::None,
            };
            let host = host_of(&url);
            let r = self
                .get(&url, &basic, None, super::BODY_CAP)
                .await
                .map_err(|e| format!("token from {host}: {e}"))?;
            if r.status != StatusCode::OK {
                let hint = match (r.status.as_u16(), &self.creds) {
                    (401 | 403, Some(_)) => " (pull credentials rejected)",
                    (401 | 403, None) => {
                        " (anonymous pull refused: set canary_credentials_file or canary_credentials)"
                    }
                    _ => "",
                };
                return Err(format!("token from {host}: {}{hint}", http_failure(&r)));
            }
            let t: TokenReply = serde_json::from_slice(&r.body)
                .map_err(|e| format!("token from {host}: invalid JSON ({e})"))?;
            let token = t
                .token
                .or(t.access_token)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| format!("token from {host}: reply has no token"))?;
            self.auth = Auth::Bearer(token);
            return Ok(());
        }
        if challenges
            .iter()
            .any(|c| c.scheme.eq_ignore_ascii_case("basic"))
        {
            return match &self.creds {
                Some(c) => {
                    self.auth = Auth::Basic(c.username.clone(), c.password.clone());
                    Ok(())
                }
                None => Err(format!(
                    "{what}: HTTP 401 Basic challenge: the registry needs credentials (set canary_credentials_file)"
                )),
            };
        }
        Err(format!(
            "{what}: HTTP 401 without a usable WWW-Authenticate challenge"
        ))
    }

    /// GET on the registry, authorizing once on a 401.
    async fn get_authorized(
        &mut self,
        url: &url::Url,
        accept: Option<&str>,
        cap: usize,
        what: &str,
    ) -> Result<HttpResponse, String> {
        let r = self
            .get(url, &self.auth.clone(), accept, cap)
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        if r.status != StatusCode::UNAUTHORIZED || !matches!(self.auth, Auth::None) {
            if r.status == StatusCode::UNAUTHORIZED {
                return Err(format!(
                    "{what}: HTTP 401 after authenticating (no pull permission on {}?)",
                    self.repository
                ));
            }
            return Ok(r);
        }
        self.authorize(&r, what).await?;
        let r = self
            .get(url, &self.auth.clone(), accept, cap)
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        if r.status == StatusCode::UNAUTHORIZED {
            return Err(format!(
                "{what}: HTTP 401 after authenticating (no pull permission on {}?)",
                self.repository
            ));
        }
        Ok(r)
    }

    /// Fetches and checks one manifest document; returns it and its digest.
    async fn manifest(
        &mut self,
        reference: &str,
        expected: Option<&str>,
    ) -> Result<(Document, String), String> {
        let what = format!("manifest {}", reference_display(self.repository, reference));
        let url = self
            .root
            .join(&format!("{}/manifests/{reference}", self.repository))
            .map_err(|e| format!("{what}: {e}"))?;
        let r = self
            .get_authorized(&url, Some(MANIFEST_ACCEPT), MANIFEST_CAP, &what)
            .await?;
        if r.status != StatusCode::OK {
            return Err(format!("{what}: {}", http_failure(&r)));
        }
        if r.truncated {
            return Err(format!(
                "{what}: larger than the {} cap",
                fmt_bytes(MANIFEST_CAP as u64)
            ));
        }
        let digest = sha256_digest(&r.body);
        let header = r
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        if let Some(want) = expected.or(header.filter(|h| h.starts_with("sha256:"))) {
            verify_digest(want, &r.body).map_err(|e| format!("{what}: {e}"))?;
        }
        let ct = r
            .headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let doc = parse_document(&r.body, ct).map_err(|e| format!("{what}: {e}"))?;
        Ok((doc, digest))
    }

    /// Downloads one blob to the end (following redirects) and checks its digest.
    async fn blob(&mut self, d: &Descriptor) -> Result<u64, String> {
        let short = short_digest(&d.digest);
        let what = format!("blob {short}");
        if let Some(size) = d.size
            && size > BLOB_CAP as u64
        {
            return Err(format!(
                "{what}: {size} bytes is over the {} cap of a canary blob (push a smaller canary image)",
                fmt_bytes(BLOB_CAP as u64)
            ));
        }
        let mut url = self
            .root
            .join(&format!("{}/blobs/{}", self.repository, d.digest))
            .map_err(|e| format!("{what}: {e}"))?;
        let origin = url.clone();
        let mut r = self.get_authorized(&url, None, BLOB_CAP, &what).await?;
        let mut via: Option<String> = None;
        let mut hops = 0;
        while r.status.is_redirection() {
            let here = match &via {
                Some(v) => format!("{what} via redirect to {v}"),
                None => what.clone(),
            };
            let Some(loc) = r
                .headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Err(format!(
                    "{here}: HTTP {} without Location",
                    r.status.as_u16()
                ));
            };
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(format!("{here}: more than {MAX_REDIRECTS} redirects"));
            }
            url = url
                .join(loc)
                .map_err(|e| format!("{here}: invalid Location {loc:?}: {e}"))?;
            let host = host_of(&url);
            via = Some(host);
            // Credentials stay on the registry: a pre-signed storage URL carries its own
            // (and rejects an extra Authorization), as clients do.
            let auth = if same_origin(&url, &origin) {
                self.auth.clone()
            } else {
                Auth::None
            };
            let here = format!("{what} via redirect to {}", via.as_deref().unwrap_or(""));
            r = self
                .get(&url, &auth, None, BLOB_CAP)
                .await
                .map_err(|e| format!("{here}: {e}"))?;
        }
        let here = match &via {
            Some(v) => format!("{what} via redirect to {v}"),
            None => what.clone(),
        };
        if r.status != StatusCode::OK {
            return Err(format!("{here}: {}", http_failure(&r)));
        }
        if r.truncated {
            return Err(format!(
                "{here}: read {} and stopped at the cap (push a smaller canary image)",
                fmt_bytes(BLOB_CAP as u64)
            ));
        }
        verify_digest(&d.digest, &r.body).map_err(|e| format!("{here}: {e}"))?;
        if let Some(size) = d.size
            && size != r.body.len() as u64
        {
            return Err(format!(
                "{here}: {} read, the manifest says {size} B",
                fmt_bytes(r.body.len() as u64)
            ));
        }
        Ok(r.body.len() as u64)
    }
}

/// Temporary pull credentials of an ACR Enterprise Edition instance, from the Container
/// Registry API (`GetAuthorizationToken`, [`crate::acr`]): the login is built from the
/// Alibaba Cloud credential chain on first use (and again after a failure), cached and
/// refreshed before it expires. No registry password is stored on the host.
pub struct AcrSource {
    cfg: crate::probe::acr::AcrLoginConfig,
    login: tokio::sync::Mutex<Option<crate::probe::acr::AcrLogin>>,
}

impl std::fmt::Debug for AcrSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcrSource")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl AcrSource {
    /// A source for the instance named by `auth` (`None` for other kinds of auth).
    pub fn for_auth(auth: &CanaryAuth) -> Option<AcrSource> {
        match auth {
            CanaryAuth::Acr {
                instance_id,
                region,
                endpoint,
            } => Some(AcrSource {
                cfg: crate::probe::acr::AcrLoginConfig {
                    instance_id: instance_id.clone(),
                    region: region.clone(),
                    endpoint: endpoint.clone(),
                },
                login: tokio::sync::Mutex::new(None),
            }),
            _ => None,
        }
    }

    /// A source around an existing login (tests, or a login shared by several instances).
    pub fn from_login(login: crate::probe::acr::AcrLogin) -> AcrSource {
        AcrSource {
            cfg: login.config().clone(),
            login: tokio::sync::Mutex::new(Some(login)),
        }
    }

    /// The current registry login as pull credentials.
    pub async fn credentials(&self) -> Result<Option<PullCredentials>, String> {
        let mut guard = self.login.lock().await;
        if guard.is_none() {
            let env = crate::config::env::Env::from_process();
            let login = crate::probe::acr::AcrLogin::from_chain(self.cfg.clone(), &env)
                .await
                .map_err(|e| format!("ACR login: {e}"))?;
            *guard = Some(login);
        }
        let Some(login) = guard.as_ref() else {
            return Err("ACR login: not available".into());
        };
        let l = login.login().await.map_err(|e| format!("ACR login: {e}"))?;
        Ok(Some(PullCredentials {
            username: l.username,
            password: l.password,
        }))
    }
}

impl Prober {
    /// One canary pull of `spec` on the instance whose `/v2/` URL is `v2_url`, with
    /// `creds` (none: anonymous). Never fails: the outcome's check says what happened.
    pub async fn canary(
        &self,
        v2_url: &url::Url,
        spec: &CanarySpec,
        creds: Result<Option<PullCredentials>, String>,
    ) -> CanaryOutcome {
        let start = Instant::now();
        let result = match creds {
            Err(e) => Err(format!("credentials: {e}")),
            Ok(creds) => self.pull(v2_url, spec, creds).await,
        };
        let (ok, detail, digest) = match result {
            Ok((digest, kind, bytes)) => (
                true,
                format!(
                    "pulled {} {} ({kind}, blob {} verified)",
                    reference_display(&spec.repository, &spec.reference),
                    short_digest(&digest),
                    fmt_bytes(bytes)
                ),
                Some(digest),
            ),
            Err(e) => (false, e, None),
        };
        CanaryOutcome {
            check: CheckResult {
                check: "canary".into(),
                ok,
                latency: start.elapsed(),
                detail,
            },
            digest,
        }
    }

    async fn pull(
        &self,
        v2_url: &url::Url,
        spec: &CanarySpec,
        creds: Option<PullCredentials>,
    ) -> Result<(String, &'static str, u64), String> {
        let mut pull = Pull {
            prober: self,
            root: api_root(v2_url),
            repository: &spec.repository,
            creds,
            auth: Auth::None,
            deadline: tokio::time::Instant::now() + spec.timeout,
            budget: spec.timeout,
        };
        let expected = spec
            .reference
            .contains(':')
            .then_some(spec.reference.as_str());
        let (doc, top_digest) = pull.manifest(&spec.reference, expected).await?;
        let (config, layers, kind) = match doc {
            Document::Manifest { config, layers } => (config, layers, "manifest"),
            Document::Index(list) => {
                let Some(m) = pick_platform(&list) else {
                    return Err(format!(
                        "manifest {}: image index lists no manifests",
                        reference_display(&spec.repository, &spec.reference)
                    ));
                };
                let m = m.clone();
                match pull.manifest(&m.digest, Some(&m.digest)).await? {
                    (Document::Manifest { config, layers }, _) => (config, layers, "index"),
                    (Document::Index(_), _) => {
                        return Err(format!(
                            "manifest {}: an index inside an index",
                            reference_display(&spec.repository, &m.digest)
                        ));
                    }
                }
            }
        };
        let blob = smallest_blob(&config, &layers).clone();
        let bytes = pull.blob(&blob).await?;
        Ok((top_digest, kind, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(digest: &str, size: Option<u64>, platform: Option<(&str, &str)>) -> Descriptor {
        Descriptor {
            media_type: None,
            digest: digest.into(),
            size,
            platform: platform.map(|(os, arch)| Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: None,
            }),
        }
    }

    #[test]
    fn media_types_pick_index_or_manifest() {
        let idx = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:aa","size":1}]}"#;
        assert!(matches!(parse_document(idx, None), Ok(Document::Index(m)) if m.len() == 1));
        // Docker list known from the Content-Type only.
        let list = br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:aa"}]}"#;
        assert!(matches!(
            parse_document(
                list,
                Some("application/vnd.docker.distribution.manifest.list.v2+json")
            ),
            Ok(Document::Index(_))
        ));
        let man = br#"{"schemaVersion":2,"config":{"digest":"sha256:c","size":2},"layers":[{"digest":"sha256:l","size":3}]}"#;
        match parse_document(man, Some("application/vnd.oci.image.manifest.v1+json")).unwrap() {
            Document::Manifest { config, layers } => {
                assert_eq!(config.digest, "sha256:c");
                assert_eq!(layers.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        // The document's own mediaType wins over a generic Content-Type.
        let m2 = br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"sha256:c"}}"#;
        assert!(matches!(
            parse_document(m2, Some("application/json")),
            Ok(Document::Manifest { .. })
        ));
    }

    #[test]
    fn media_type_errors_say_what_came() {
        let e = parse_document(b"<html>It works!</html>", Some("text/html; charset=utf-8"))
            .unwrap_err();
        assert_eq!(e, "not a manifest (Content-Type text/html)");
        let e = parse_document(
            br#"{"schemaVersion":1,"name":"x"}"#,
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
        )
        .unwrap_err();
        assert!(e.contains("Docker schema 1"), "{e}");
        let e = parse_document(
            br#"{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(e, "image index lists no manifests");
        let e = parse_document(br#"{"foo":1}"#, Some("application/json")).unwrap_err();
        assert!(
            e.contains("unsupported manifest media type application/json"),
            "{e}"
        );
        let e = parse_document(b"{not json", None).unwrap_err();
        assert!(e.starts_with("not a manifest: invalid JSON"), "{e}");
    }

    #[test]
    fn platform_choice() {
        let list = vec![
            desc("sha256:arm", None, Some(("linux", "arm64"))),
            desc("sha256:amd", None, Some(("linux", "amd64"))),
        ];
        assert_eq!(pick_platform(&list).unwrap().digest, "sha256:amd");
        let list = vec![
            desc("sha256:att", None, Some(("unknown", "unknown"))),
            desc("sha256:arm", None, Some(("linux", "arm64"))),
        ];
        assert_eq!(pick_platform(&list).unwrap().digest, "sha256:arm");
        let list = vec![desc("sha256:att", None, Some(("unknown", "unknown")))];
        assert_eq!(pick_platform(&list).unwrap().digest, "sha256:att");
        assert!(pick_platform(&[]).is_none());
    }

    #[test]
    fn smallest_blob_prefers_known_small_sizes() {
        let c = desc("sha256:c", Some(1500), None);
        let l = vec![
            desc("sha256:l1", Some(200), None),
            desc("sha256:l2", None, None),
        ];
        assert_eq!(smallest_blob(&c, &l).digest, "sha256:l1");
        let c = desc("sha256:c", None, None);
        assert_eq!(smallest_blob(&c, &[]).digest, "sha256:c");
    }

    #[test]
    fn digest_check() {
        let d = sha256_digest(b"hello");
        assert_eq!(
            d,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(verify_digest(&d, b"hello").is_ok());
        assert!(
            verify_digest(
                &d.to_ascii_uppercase().replace("SHA256", "sha256"),
                b"hello"
            )
            .is_ok()
        );
        let e = verify_digest(&d, b"hellO").unwrap_err();
        assert!(e.starts_with("digest mismatch: content is sha256:"), "{e}");
        assert!(e.contains("expected sha256:2cf24dba5fb0…"), "{e}");
        assert!(
            verify_digest("sha512:abcd", b"x")
                .unwrap_err()
                .contains("unsupported digest algorithm")
        );
        assert!(
            verify_digest("sha256:zz", b"x")
                .unwrap_err()
                .contains("invalid digest")
        );
        assert!(
            verify_digest("nodigest", b"x")
                .unwrap_err()
                .contains("invalid digest")
        );
    }

    #[test]
    fn display_helpers() {
        assert_eq!(
            reference_display("ops/canary", "latest"),
            "ops/canary:latest"
        );
        assert_eq!(
            reference_display("ops/canary", "sha256:abc"),
            "ops/canary@sha256:abc"
        );
        assert_eq!(
            short_digest("sha256:0123456789abcdef"),
            "sha256:0123456789ab…"
        );
        assert_eq!(short_digest("sha256:01"), "sha256:01");
        assert_eq!(short_digest("sha256:ééééééééééééé"), "sha256:éééééééééééé…");
        assert_eq!(fmt_bytes(12), "12 B");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
        assert_eq!(fmt_bytes(1 << 20), "1 MiB");
        assert_eq!(bare_media_type("Text/HTML; charset=utf-8"), "text/html");
    }

    #[test]
    fn registry_errors_are_shortened() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            registry_error(body).as_deref(),
            Some("MANIFEST_UNKNOWN: manifest unknown")
        );
        assert_eq!(registry_error(b"storage down").as_deref(), None);
        let long = format!(
            r#"{{"errors":[{{"code":"UNKNOWN","message":"{}"}}]}}"#,
            "é".repeat(100)
        );
        let e = registry_error(long.as_bytes()).unwrap();
        assert!(e.ends_with('…') && e.len() < 140, "{e}");
    }

    #[test]
    fn roots_and_token_requests() {
        let u: url::Url = "https://r.example/v2/".parse().unwrap();
        assert_eq!(api_root(&u).as_str(), "https://r.example/v2/");
        let u: url::Url = "https://r.example:5000/v2".parse().unwrap();
        assert_eq!(api_root(&u).as_str(), "https://r.example:5000/v2/");
        let u: url::Url = "http://r.example/".parse().unwrap();
        assert_eq!(api_root(&u).as_str(), "http://r.example/v2/");
        let ch = super::super::auth::parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="reg, one""#,
        )
        .unwrap();
        let base: url::Url = "https://r.example/v2/".parse().unwrap();
        assert_eq!(
            token_request(&base, &ch, "ops/canary").unwrap().as_str(),
            "https://auth.example/token?service=reg%2C+one&scope=repository%3Aops%2Fcanary%3Apull"
        );
        let none = super::super::auth::parse_challenge(r#"Bearer service="x""#).unwrap();
        assert_eq!(
            token_request(&base, &none, "a").unwrap_err(),
            "Bearer challenge without realm"
        );
    }

    #[test]
    fn origins() {
        let a: url::Url = "https://r.example/v2/x".parse().unwrap();
        let b: url::Url = "https://R.example:443/other".parse().unwrap();
        let c: url::Url = "https://oss.example/x".parse().unwrap();
        let d: url::Url = "http://r.example/x".parse().unwrap();
        assert!(same_origin(&a, &b));
        assert!(!same_origin(&a, &c));
        assert!(!same_origin(&a, &d));
    }

    #[test]
    fn credentials_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pull.json");
        std::fs::write(&p, r#"{"username":"robot","password":"s3cret"}"#).unwrap();
        let c = read_credentials_file(&p).unwrap();
        assert_eq!(c.username, "robot");
        assert!(!format!("{c:?}").contains("s3cret"));
        std::fs::write(&p, r#"{"user":"robot"}"#).unwrap();
        let e = read_credentials_file(&p).unwrap_err();
        assert!(e.contains("expected JSON"), "{e}");
        let e = read_credentials_file(&dir.path().join("missing.json")).unwrap_err();
        assert!(e.contains("missing.json"), "{e}");
    }

    proptest::proptest! {
        /// Whatever a registry sends, the parsers answer with a value or a reason, never a
        /// panic.
        #[test]
        fn hostile_input_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
                                      ct in ".{0,40}", digest in ".{0,80}") {
            let _ = parse_document(&body, Some(&ct));
            let _ = verify_digest(&digest, &body);
            let _ = short_digest(&digest);
            let _ = registry_error(&body);
            let _ = bare_media_type(&ct);
        }
    }
}
