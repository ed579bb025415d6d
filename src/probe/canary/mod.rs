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
    OCI_INDEX, OCI_MANIFEST, Platform, bare_media_type, fmt_bytes, parse_document, pick_platform,
    reference_display, registry_error, sha256_digest, short_digest, smallest_blob, verify_digest,
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
