//! The canary pull (docs/design.md#5-health-of-an-instance): what a client does to pull an image, on one small canary
//! image per instance. Resolve the manifest with the Accept headers of OCI and Docker
//! manifests and indexes (Bearer token flow with scope `repository:<repo>:pull`, Basic
//! auth, or anonymous), pick one platform of an index, then GET the smallest blob
//! (config or layer), following redirects to storage (OSS/S3) as clients do, reading it to
//! the end and checking its digest. Each step's failure is a precise reason
//! (`manifest regdns/canary:canary: HTTP 500`, `blob sha256:… via redirect to oss-…:
//! timeout after 5s (response headers)`); a success reports the manifest digest, which
//! the controller records for replication awareness.
//!
//! Pulls count against a registry's pull rate limit (Docker Hub counts `GET`s of
//! manifests, not `HEAD`s nor blobs), so a canary can check the manifest with `HEAD`
//! instead ([`ManifestCheck::Head`]: status, `Docker-Content-Digest`, content type) and read
//! a blob only every `blob_every`-th run, or never; the manifest is then read with `GET`
//! only on a blob run whose `HEAD` digest differs from the manifest read before
//! ([`Memo`]).
//!
//! One file per responsibility: this module holds the types and the entry point,
//! [`Prober::canary`]; `oci.rs` the pure document code (media types, platform choice,
//! digests, the bytes caps) with its own tests; `pull.rs` the network pull (token flow,
//! redirects); `acr_source.rs` the ACR credential source, [`AcrSource`].

mod acr_source;
mod oci;
mod pull;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::CheckResult;
use super::http::Prober;
pub use crate::config::instance::{
    DEFAULT_CANARY_TIMEOUT, MIN_DEFAULT_CANARY_INTERVAL, PullCredentials, read_credentials_file,
};

pub use acr_source::AcrSource;
pub use oci::{
    BLOB_CAP, DOCKER_LIST, DOCKER_MANIFEST, Descriptor, Document, MANIFEST_ACCEPT, MANIFEST_CAP,
    OCI_INDEX, OCI_MANIFEST, Platform, bare_media_type, check_manifest_head, fmt_bytes,
    parse_document, pick_platform, reference_display, registry_error, sha256_digest, short_digest,
    smallest_blob, verify_digest,
};
pub use pull::{MAX_REDIRECTS, token_request};

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
    /// How the manifest is checked at each run.
    pub manifest: ManifestCheck,
    /// A blob is read on the first run and then every `blob_every`-th run (1: every run,
    /// today's pull; 0: never).
    pub blob_every: u32,
}

impl CanarySpec {
    /// A canary of `repository:reference` as today's full pull (`GET` of the manifest, a
    /// blob every run), anonymous, every 10 s within 5 s.
    pub fn new(repository: impl Into<String>, reference: impl Into<String>) -> CanarySpec {
        CanarySpec {
            repository: repository.into(),
            reference: reference.into(),
            interval: MIN_DEFAULT_CANARY_INTERVAL,
            timeout: DEFAULT_CANARY_TIMEOUT,
            auth: CanaryAuth::Anonymous,
            manifest: ManifestCheck::Get,
            blob_every: 1,
        }
    }
}

/// How a canary checks the manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ManifestCheck {
    /// `GET` and parse it (for an index, one platform's manifest too) at every run. Docker
    /// Hub counts each such run as a pull.
    #[default]
    Get,
    /// `HEAD` it: 200, a sha256 `Docker-Content-Digest` and a manifest `Content-Type`. The
    /// document is read (`GET`) only when a blob is due and the digest changed.
    Head,
}

/// What the canary of one instance remembers between runs (kept by its [`Prober`]).
#[derive(Debug, Default)]
pub struct Memo {
    /// Runs started so far: a blob is due on runs 0, N, 2N, … (`blob_every = N`).
    runs: u64,
    /// The manifest last read with `GET`: its top-level digest, `manifest` or `index`, and
    /// the blob chosen from it.
    read: Option<(String, &'static str, Descriptor)>,
}

/// What one canary run did (the `canary` check's detail is built from it).
#[derive(Debug)]
struct PullDone {
    /// Top-level manifest digest.
    digest: String,
    /// `manifest` or `index` when the document is known (read now or before).
    kind: Option<&'static str>,
    /// Media type of the `HEAD` answer (`manifest = "head"`).
    head_type: Option<String>,
    /// Bytes of the blob read and verified, if one was due.
    blob: Option<u64>,
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
        let blob_due = {
            let mut memo = self.canary_memo.lock().unwrap_or_else(|e| e.into_inner());
            let run = memo.runs;
            memo.runs += 1;
            spec.blob_every > 0 && run.is_multiple_of(u64::from(spec.blob_every))
        };
        let result = match creds {
            Err(e) => Err(format!("credentials: {e}")),
            Ok(creds) => self.pull(v2_url, spec, creds, blob_due).await,
        };
        let (ok, detail, digest) = match result {
            Ok(done) => (true, describe(spec, &done), Some(done.digest)),
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
}

/// The detail of a successful run: `pulled ops/canary:canary sha256:… (manifest, blob
/// 1.2 KiB verified)`, `checked ops/canary:canary sha256:… with HEAD
/// (application/vnd.oci.image.manifest.v1+json; no blob this run, one every 10 runs)`.
fn describe(spec: &CanarySpec, done: &PullDone) -> String {
    let blob = match (done.blob, spec.blob_every) {
        (Some(bytes), _) => format!("blob {} verified", fmt_bytes(bytes)),
        (None, 0) => "no blob read (blob_every = 0)".to_string(),
        (None, n) => format!("no blob this run, one every {n} runs"),
    };
    let what = reference_display(&spec.repository, &spec.reference);
    let digest = short_digest(&done.digest);
    match (&done.head_type, done.kind) {
        (Some(ct), _) => format!("checked {what} {digest} with HEAD ({ct}; {blob})"),
        (None, Some(kind)) if done.blob.is_some() => {
            format!("pulled {what} {digest} ({kind}, {blob})")
        }
        (None, kind) => format!(
            "pulled {what} {digest} ({}; {blob})",
            kind.unwrap_or("manifest")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_say_what_a_run_did() {
        let mut spec = CanarySpec::new("library/busybox", "latest");
        let d = format!("sha256:{}", "ab".repeat(32));
        let done = |kind, head: Option<&str>, blob| PullDone {
            digest: d.clone(),
            kind,
            head_type: head.map(str::to_string),
            blob,
        };
        assert_eq!(
            describe(&spec, &done(Some("index"), None, Some(1536))),
            "pulled library/busybox:latest sha256:abababababab… (index, blob 1.5 KiB verified)"
        );
        spec.blob_every = 3;
        assert_eq!(
            describe(&spec, &done(Some("manifest"), None, None)),
            "pulled library/busybox:latest sha256:abababababab… (manifest; no blob this run, one every 3 runs)"
        );
        spec.manifest = ManifestCheck::Head;
        assert_eq!(
            describe(&spec, &done(None, Some(OCI_INDEX), None)),
            "checked library/busybox:latest sha256:abababababab… with HEAD (application/vnd.oci.image.index.v1+json; no blob this run, one every 3 runs)"
        );
        assert_eq!(
            describe(&spec, &done(Some("index"), Some(OCI_INDEX), Some(12))),
            "checked library/busybox:latest sha256:abababababab… with HEAD (application/vnd.oci.image.index.v1+json; blob 12 B verified)"
        );
        spec.blob_every = 0;
        assert_eq!(
            describe(&spec, &done(None, Some(DOCKER_MANIFEST), None)),
            "checked library/busybox:latest sha256:abababababab… with HEAD (application/vnd.docker.distribution.manifest.v2+json; no blob read (blob_every = 0))"
        );
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
}
