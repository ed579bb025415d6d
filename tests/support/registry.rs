//! The real CNCF distribution registry (Debian `docker-registry`) in tests: one instance per
//! call with its own storage directory, optional htpasswd auth, started on a free loopback
//! port and stopped by PID; and a tiny OCI image pushed through the registry HTTP API
//! (monolithic blob uploads, then the manifest), as `docker push` would, with no client.
//!
//! Storage faults without another user (tests run as root, where `chmod` does not bite):
//! [`Registry::break_storage`] moves the storage directory away and puts a plain file in
//! its place; the registry then answers `GET /v2/` with `200 {}` and every manifest and
//! blob request with 500 (see `CONTRIBUTING.md#test-recipes`).

use std::path::PathBuf;
use std::time::Duration;

use super::proc::{self, Proc};

/// A running registry.
pub struct Registry {
    /// The process (killed on drop).
    pub proc: Option<Proc>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its port.
    pub port: u16,
    storage: PathBuf,
    _keep: tempfile::TempDir,
}

/// Basic credentials of a registry started with htpasswd auth.
pub const USER: &str = "canary";
/// Password of [`USER`].
pub const PASSWORD: &str = "pull-only-secret";

impl Registry {
    /// Starts a registry without auth.
    pub fn start() -> Registry {
        Registry::start_with(false)
    }

    /// Starts a registry; with `htpasswd`, Basic auth with [`USER`]/[`PASSWORD`]
    /// (`htpasswd` from apache2-utils makes the bcrypt entry).
    pub fn start_with(htpasswd: bool) -> Registry {
        let bin = proc::require("docker-registry", "docker-registry");
        let keep = proc::temp_dir("registry-data");
        let storage = keep.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let port = proc::free_port();
        let mut auth = String::new();
        if htpasswd {
            let htp = proc::require("htpasswd", "apache2-utils");
            let out = std::process::Command::new(htp)
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .expect("htpasswd runs");
            assert!(out.status.success(), "htpasswd: {out:?}");
            let file = keep.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: regdns-test\n    path: {}\n",
                file.display()
            );
        }
        let dir = proc::temp_dir("docker-registry");
        std::fs::write(
            dir.path().join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: regdns-test\n{auth}",
                storage.display()
            ),
        )
        .unwrap();
        let mut cmd = std::process::Command::new(bin);
        cmd.arg("serve").arg(dir.path().join("config.yml"));
        let proc = Proc::start("docker-registry", cmd, dir, Duration::from_secs(15), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .expect("docker-registry starts");
        Registry {
            proc: Some(proc),
            base: format!("http://127.0.0.1:{port}"),
            port,
            storage,
            _keep: keep,
        }
    }

    /// `url = "http://127.0.0.1:PORT/v2/"`.
    pub fn url_line(&self) -> String {
        format!("url = \"{}/v2/\"", self.base)
    }

    /// Moves the storage directory away and puts a plain file in its place.
    pub fn break_storage(&self) {
        std::fs::rename(&self.storage, self.storage.with_extension("away")).unwrap();
        std::fs::write(&self.storage, b"not a directory").unwrap();
    }

    /// Undoes [`Registry::break_storage`].
    pub fn heal_storage(&self) {
        std::fs::remove_file(&self.storage).unwrap();
        std::fs::rename(self.storage.with_extension("away"), &self.storage).unwrap();
    }

    /// Kills the process.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }
}

/// A tiny OCI image: one config blob, one layer, the manifest.
#[derive(Clone, Debug)]
pub struct Image {
    /// Config blob.
    pub config: Vec<u8>,
    /// Layer blob.
    pub layer: Vec<u8>,
    /// Manifest bytes.
    pub manifest: Vec<u8>,
}

/// `sha256:<hex>` of `data` (computed with the library's own helper).
pub fn digest(data: &[u8]) -> String {
    regdns::probe::canary::sha256_digest(data)
}

impl Image {
    /// An image whose config mentions `version`, so each version has its own digest.
    pub fn new(version: &str) -> Image {
        let layer = format!("regdns canary layer {version}\n").into_bytes();
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"version":"{version}"}}}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            digest(&layer)
        )
        .into_bytes();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
            digest(&config),
            config.len(),
            digest(&layer),
            layer.len()
        )
        .into_bytes();
        Image {
            config,
            layer,
            manifest,
        }
    }

    /// Digest of the manifest (what a tag resolves to).
    pub fn digest(&self) -> String {
        digest(&self.manifest)
    }

    /// Pushes the image to `base` as `repo:tag` (Basic auth when `auth` is given).
    pub async fn push(&self, base: &str, repo: &str, tag: &str, auth: Option<(&str, &str)>) {
        let http = reqwest::Client::new();
        let with_auth = |r: reqwest::RequestBuilder| match auth {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        };
        for blob in [&self.config, &self.layer] {
            let r = with_auth(http.post(format!("{base}/v2/{repo}/blobs/uploads/")))
                .send()
                .await
                .expect("start upload");
            assert_eq!(r.status().as_u16(), 202, "start upload: {r:?}");
            let loc = r.headers()["location"].to_str().unwrap().to_string();
            let mut url = reqwest::Url::parse(base).unwrap().join(&loc).unwrap();
            url.query_pairs_mut().append_pair("digest", &digest(blob));
            let r = with_auth(http.put(url))
                .header("content-type", "application/octet-stream")
                .body(blob.clone())
                .send()
                .await
                .expect("upload blob");
            assert_eq!(r.status().as_u16(), 201, "upload blob: {r:?}");
        }
        let r = with_auth(http.put(format!("{base}/v2/{repo}/manifests/{tag}")))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(self.manifest.clone())
            .send()
            .await
            .expect("put manifest");
        assert_eq!(r.status().as_u16(), 201, "put manifest: {r:?}");
        let got = r.headers()["docker-content-digest"].to_str().unwrap();
        assert_eq!(got, self.digest());
    }
}
