//! The network part of the canary pull: a [`Pull`] GETs the manifest, authorizing once on
//! a 401 (Bearer token flow with scope `repository:<repo>:pull`, or Basic), follows an
//! index to one platform's manifest, then downloads the smallest blob to the end, following
//! redirects to storage without sending the registry's credentials to another origin. With
//! `manifest = "head"` it HEADs the manifest instead and GETs it only when a blob is due and
//! the digest is not the one read before.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::oci::{
    BLOB_CAP, Descriptor, Document, MANIFEST_ACCEPT, MANIFEST_CAP, check_manifest_head, fmt_bytes,
    parse_document, pick_platform, reference_display, registry_error, sha256_digest, short_digest,
    smallest_blob, verify_digest,
};
use super::{CanarySpec, ManifestCheck, PullCredentials, PullDone};
use crate::probe::challenge::{Challenge, challenges_of};
use crate::probe::http::{Auth, HttpResponse, Prober};

/// Redirects followed for one blob (registries redirect once, to storage).
pub const MAX_REDIRECTS: usize = 5;

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
    crate::probe::challenge::token_request(base, ch, &format!("repository:{repository}:pull"))
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
    /// GET with `auth`.
    async fn get(
        &self,
        url: &url::Url,
        auth: &Auth,
        accept: Option<&str>,
        cap: usize,
    ) -> Result<HttpResponse, String> {
        self.send(Method::GET, url, auth, accept, cap).await
    }

    /// A request with `auth`, within the pull's deadline.
    async fn send(
        &self,
        method: Method,
        url: &url::Url,
        auth: &Auth,
        accept: Option<&str>,
        cap: usize,
    ) -> Result<HttpResponse, String> {
        self.prober
            .request(method, url, auth, accept, self.deadline, self.budget, cap)
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
                .get(&url, &basic, None, crate::probe::BODY_CAP)
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
        self.send_authorized(Method::GET, url, accept, cap, what)
            .await
    }

    /// A request on the registry, authorizing once on a 401 (a HEAD's 401 carries the
    /// challenge in its headers too).
    async fn send_authorized(
        &mut self,
        method: Method,
        url: &url::Url,
        accept: Option<&str>,
        cap: usize,
        what: &str,
    ) -> Result<HttpResponse, String> {
        let r = self
            .send(method.clone(), url, &self.auth.clone(), accept, cap)
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
            .send(method, url, &self.auth.clone(), accept, cap)
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

    /// HEADs the manifest `reference`: its digest and media type (checked by
    /// [`check_manifest_head`]).
    async fn head_manifest(
        &mut self,
        reference: &str,
        expected: Option<&str>,
    ) -> Result<(String, String), String> {
        let what = format!("manifest {}", reference_display(self.repository, reference));
        let url = self
            .root
            .join(&format!("{}/manifests/{reference}", self.repository))
            .map_err(|e| format!("{what}: {e}"))?;
        let r = self
            .send_authorized(Method::HEAD, &url, Some(MANIFEST_ACCEPT), 0, &what)
            .await?;
        if r.status != StatusCode::OK {
            return Err(format!("{what}: HTTP {} (HEAD)", r.status.as_u16()));
        }
        let header = |name: &str| r.headers.get(name).and_then(|v| v.to_str().ok());
        check_manifest_head(
            header("content-type"),
            header("docker-content-digest"),
            header("content-length").and_then(|v| v.trim().parse().ok()),
            expected,
        )
        .map_err(|e| format!("{what}: {e}"))
    }

    /// GETs the manifest (and for an index one platform's): the top-level digest,
    /// `manifest` or `index`, and the smallest blob.
    async fn read_manifest(
        &mut self,
        reference: &str,
        expected: Option<&str>,
    ) -> Result<(String, &'static str, Descriptor), String> {
        let (doc, top_digest) = self.manifest(reference, expected).await?;
        let (config, layers, kind) = match doc {
            Document::Manifest { config, layers } => (config, layers, "manifest"),
            Document::Index(list) => {
                let Some(m) = pick_platform(&list) else {
                    return Err(format!(
                        "manifest {}: image index lists no manifests",
                        reference_display(self.repository, reference)
                    ));
                };
                let m = m.clone();
                match self.manifest(&m.digest, Some(&m.digest)).await? {
                    (Document::Manifest { config, layers }, _) => (config, layers, "index"),
                    (Document::Index(_), _) => {
                        return Err(format!(
                            "manifest {}: an index inside an index",
                            reference_display(self.repository, &m.digest)
                        ));
                    }
                }
            }
        };
        Ok((top_digest, kind, smallest_blob(&config, &layers).clone()))
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

impl Prober {
    /// One canary run. `manifest = "get"`: the manifest (and, for an index, one platform's)
    /// with GET, then, when `blob_due`, the smallest blob. `manifest = "head"`: the
    /// manifest with HEAD; when `blob_due`, the blob of the manifest read before if the
    /// digest is the same, else the manifest is read with GET first.
    pub(super) async fn pull(
        &self,
        v2_url: &url::Url,
        spec: &CanarySpec,
        creds: Option<PullCredentials>,
        blob_due: bool,
    ) -> Result<PullDone, String> {
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
        let remembered = |digest: &str| {
            let memo = self.canary_memo.lock().unwrap_or_else(|e| e.into_inner());
            memo.read
                .as_ref()
                .filter(|(d, _, _)| d == digest)
                .map(|(_, kind, blob)| (*kind, blob.clone()))
        };
        let remember = |read: &(String, &'static str, Descriptor)| {
            self.canary_memo
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .read = Some(read.clone());
        };
        match spec.manifest {
            ManifestCheck::Get => {
                let read = pull.read_manifest(&spec.reference, expected).await?;
                remember(&read);
                let (digest, kind, blob) = read;
                let bytes = match blob_due {
                    true => Some(pull.blob(&blob).await?),
                    false => None,
                };
                Ok(PullDone {
                    digest,
                    kind: Some(kind),
                    head_type: None,
                    blob: bytes,
                })
            }
            ManifestCheck::Head => {
                let (digest, media_type) = pull.head_manifest(&spec.reference, expected).await?;
                let mut kind = remembered(&digest).map(|(k, _)| k);
                let mut bytes = None;
                if blob_due {
                    let blob = match remembered(&digest) {
                        Some((_, blob)) => blob,
                        None => {
                            let read = pull.read_manifest(&digest, Some(&digest)).await?;
                            remember(&read);
                            kind = Some(read.1);
                            read.2
                        }
                    };
                    bytes = Some(pull.blob(&blob).await?);
                }
                Ok(PullDone {
                    digest,
                    kind,
                    head_type: Some(media_type),
                    blob: bytes,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_token_requests() {
        let u: url::Url = "https://r.example/v2/".parse().unwrap();
        assert_eq!(api_root(&u).as_str(), "https://r.example/v2/");
        let u: url::Url = "https://r.example:5000/v2".parse().unwrap();
        assert_eq!(api_root(&u).as_str(), "https://r.example:5000/v2/");
        let u: url::Url = "http://r.example/".parse().unwrap();
        assert_eq!(api_root(&u).as_str(), "http://r.example/v2/");
        let ch = crate::probe::challenge::parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="reg, one""#,
        )
        .unwrap();
        let base: url::Url = "https://r.example/v2/".parse().unwrap();
        assert_eq!(
            token_request(&base, &ch, "ops/canary").unwrap().as_str(),
            "https://auth.example/token?service=reg%2C+one&scope=repository%3Aops%2Fcanary%3Apull"
        );
        let none = crate::probe::challenge::parse_challenge(r#"Bearer service="x""#).unwrap();
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
}
