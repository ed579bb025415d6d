//! The pure OCI/Docker document code of the canary pull: media types, descriptors and
//! platforms, parsing a manifest or an index, the platform a client would pull, the
//! smallest blob, sha256 digests, the read caps, and the strings shown in reasons. No I/O:
//! the network pull (`pull.rs`) hands it bytes and headers.

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// Manifests and indexes are read up to this many bytes (the distribution spec's limit).
pub const MANIFEST_CAP: usize = 4 << 20;
/// Blobs are read up to this many bytes; a canary image's config or smallest layer is far
/// smaller.
pub const BLOB_CAP: usize = 1 << 20;

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
    // Both come from the registry: bounded before they become a reason (journal, state,
    // status, the page, etcd), however long the registry's error body is.
    let code = bounded(&first.code, 64);
    let msg = bounded(&first.message, 120);
    Some(match (code.is_empty(), msg.is_empty()) {
        (false, false) => format!("{code}: {msg}"),
        (false, true) => code,
        (true, _) => msg,
    })
}

/// `s` cut to at most `max` bytes at a character boundary, with `…` when cut.
fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// Checks the headers of a `HEAD` on a manifest (the canary's `manifest = "head"`): a
/// `Docker-Content-Digest` that is a sha256 digest (equal to `expected` when the reference
/// is a digest), a `Content-Type` of an OCI or Docker (schema 2) manifest or index, and a
/// `Content-Length`, when given, within 1 byte..the manifest cap. Returns the digest and the
/// bare media type.
pub fn check_manifest_head(
    content_type: Option<&str>,
    digest: Option<&str>,
    content_length: Option<u64>,
    expected: Option<&str>,
) -> Result<(String, String), String> {
    let Some(digest) = digest.map(str::trim).filter(|d| !d.is_empty()) else {
        return Err("HEAD answer has no Docker-Content-Digest header".into());
    };
    let valid = digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !valid {
        return Err(format!(
            "HEAD answer's Docker-Content-Digest {digest:?} is not a sha256 digest"
        ));
    }
    if let Some(want) = expected
        && !want.eq_ignore_ascii_case(digest)
    {
        return Err(format!(
            "digest mismatch: the registry says {}, expected {}",
            short_digest(digest),
            short_digest(want)
        ));
    }
    let Some(ct) = content_type.map(bare_media_type).filter(|c| !c.is_empty()) else {
        return Err("HEAD answer has no Content-Type".into());
    };
    match ct.as_str() {
        OCI_INDEX | OCI_MANIFEST | DOCKER_LIST | DOCKER_MANIFEST => {}
        "application/vnd.docker.distribution.manifest.v1+json"
        | "application/vnd.docker.distribution.manifest.v1+prettyjws" => {
            return Err(format!(
                "unsupported manifest media type {ct} (Docker schema 1; push the canary as OCI or Docker schema 2)"
            ));
        }
        other => {
            return Err(format!(
                "HEAD answer is not a manifest (Content-Type {other})"
            ));
        }
    }
    match content_length {
        Some(0) => Err("HEAD answer says the manifest is empty (Content-Length 0)".into()),
        Some(n) if n > MANIFEST_CAP as u64 => Err(format!(
            "larger than the {} cap ({n} bytes)",
            fmt_bytes(MANIFEST_CAP as u64)
        )),
        _ => Ok((digest.to_ascii_lowercase(), ct)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_heads() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            check_manifest_head(Some(OCI_MANIFEST), Some(&d), Some(528), None),
            Ok((d.clone(), OCI_MANIFEST.to_string()))
        );
        assert_eq!(
            check_manifest_head(
                Some("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8"),
                Some(&d.to_ascii_uppercase().replace("SHA256", "sha256")),
                None,
                Some(&d)
            )
            .map(|(_, ct)| ct),
            Ok(DOCKER_LIST.to_string())
        );
        assert_eq!(
            check_manifest_head(Some(OCI_MANIFEST), None, Some(1), None),
            Err("HEAD answer has no Docker-Content-Digest header".into())
        );
        assert_eq!(
            check_manifest_head(Some(OCI_MANIFEST), Some("md5:x"), Some(1), None),
            Err("HEAD answer's Docker-Content-Digest \"md5:x\" is not a sha256 digest".into())
        );
        let other = format!("sha256:{}", "cd".repeat(32));
        assert_eq!(
            check_manifest_head(Some(OCI_MANIFEST), Some(&d), None, Some(&other)),
            Err("digest mismatch: the registry says sha256:abababababab…, expected sha256:cdcdcdcdcdcd…".into())
        );
        assert_eq!(
            check_manifest_head(Some("text/html"), Some(&d), Some(10), None),
            Err("HEAD answer is not a manifest (Content-Type text/html)".into())
        );
        assert_eq!(
            check_manifest_head(None, Some(&d), Some(10), None),
            Err("HEAD answer has no Content-Type".into())
        );
        assert!(
            check_manifest_head(
                Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
                Some(&d),
                Some(10),
                None
            )
            .unwrap_err()
            .contains("schema 1")
        );
        assert_eq!(
            check_manifest_head(Some(OCI_INDEX), Some(&d), Some(0), None),
            Err("HEAD answer says the manifest is empty (Content-Length 0)".into())
        );
        assert_eq!(
            check_manifest_head(Some(OCI_INDEX), Some(&d), Some(5 << 20), None),
            Err("larger than the 4 MiB cap (5242880 bytes)".into())
        );
    }

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
    fn a_registry_error_code_of_megabytes_is_bounded() {
        let body = format!(
            r#"{{"errors":[{{"code":"{}","message":"m"}}]}}"#,
            "X".repeat(4 << 20)
        );
        let e = registry_error(body.as_bytes()).unwrap();
        assert!(e.len() <= 64 + "…: m".len(), "{} bytes", e.len());
        assert!(e.ends_with("…: m"), "{e}");
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
