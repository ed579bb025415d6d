//! The canary against a pull rate limit (issue 22): with `manifest = "head"` the manifest is
//! checked with `HEAD` (Docker Hub does not count those) and read with `GET` only on a blob
//! run whose digest changed; with `blob_every = N` a blob is read on the first run and every
//! Nth after. A Docker-Hub-shaped registry (`tests/support/hub.rs`: token realm and blob
//! storage on other names, a real `docker-registry` behind) counts every request, so each
//! run's manifest GETs, HEADs and blob GETs are counted exactly.

mod support;

use std::time::Duration;

use regdns::probe::canary::short_digest;
use regdns::probe::{CanarySpec, InstanceSpec, ManifestCheck, Prober};
use support::hub::Hub;
use support::registry::{Image, Registry};
use support::tls::Pki;

const REPO: &str = "library/busybox";
const TAG: &str = "latest";

/// What the hub saw: (manifest GETs, manifest HEADs, blob GETs on the registry, blob GETs on
/// the storage host).
fn counts(hub: &Hub) -> (usize, usize, usize, usize) {
    (
        hub.count("GET", &hub.registry_host, "/manifests/"),
        hub.count("HEAD", &hub.registry_host, "/manifests/"),
        hub.count("GET", &hub.registry_host, "/blobs/"),
        hub.count("GET", &hub.blobs_host, "/"),
    )
}

fn spec(
    pki: &Pki,
    hub: &Hub,
    manifest: ManifestCheck,
    blob_every: u32,
) -> (InstanceSpec, CanarySpec) {
    let mut s = InstanceSpec::new(
        "hub",
        format!("https://{}/v2/", hub.registry_host)
            .parse()
            .unwrap(),
    );
    s.connect = Some(hub.addr.to_string());
    s.connect_hosts = vec!["*".into()];
    s.ca_file = Some(pki.ca_file());
    s.timeout = Duration::from_secs(2);
    let mut c = CanarySpec::new(REPO, TAG);
    c.timeout = Duration::from_secs(3);
    c.manifest = manifest;
    c.blob_every = blob_every;
    s.canary = Some(c.clone());
    (s, c)
}

#[tokio::test(flavor = "multi_thread")]
async fn head_mode_reads_a_manifest_only_when_a_blob_is_due_and_the_digest_changed() {
    let reg = Registry::start();
    let v1 = Image::new("head-1");
    v1.push(&reg.base, REPO, TAG, None).await;
    let pki = Pki::new();
    let hub = Hub::start(&pki, "hub.test", &reg.base, false).await;
    let (s, c) = spec(&pki, &hub, ManifestCheck::Head, 3);
    let p = Prober::new(&s).unwrap();

    // Seven runs: a blob on runs 0, 3 and 6; the manifest read once (run 0).
    let mut details = Vec::new();
    for run in 0..7 {
        let out = p.canary(&s.url, &c, Ok(None)).await;
        assert!(out.check.ok, "run {run}: {}", out.check.detail);
        assert_eq!(
            out.digest.as_deref(),
            Some(v1.digest().as_str()),
            "run {run}"
        );
        details.push(out.check.detail);
    }
    assert_eq!(counts(&hub), (1, 7 * 2, 3, 3), "{:#?}", hub.hits());
    let d1 = short_digest(&v1.digest());
    let ct = "application/vnd.oci.image.manifest.v1+json";
    assert_eq!(
        details[0],
        format!(
            "checked {REPO}:{TAG} {d1} with HEAD ({ct}; blob {} B verified)",
            v1.config.len().min(v1.layer.len())
        )
    );
    assert_eq!(
        details[1],
        format!("checked {REPO}:{TAG} {d1} with HEAD ({ct}; no blob this run, one every 3 runs)")
    );
    // Each HEAD is asked twice: anonymously (401 with the challenge), then with the token.
    assert_eq!(hub.count("GET", &hub.auth_host, "/token"), 7);

    // The tag moves: the next HEAD sees the new digest at once (replication awareness keeps
    // working), the manifest is read again only on the next blob run, by digest.
    let v2 = Image::new("head-2");
    v2.push(&reg.base, REPO, TAG, None).await;
    hub.clear();
    for run in 7..10 {
        let out = p.canary(&s.url, &c, Ok(None)).await;
        assert!(out.check.ok, "run {run}: {}", out.check.detail);
        assert_eq!(
            out.digest.as_deref(),
            Some(v2.digest().as_str()),
            "run {run}"
        );
    }
    assert_eq!(counts(&hub), (1, 3 * 2, 1, 1), "{:#?}", hub.hits());
    let by_digest = format!("/v2/{REPO}/manifests/{}", v2.digest());
    assert!(
        hub.hits()
            .iter()
            .any(|h| h.method == "GET" && h.path == by_digest),
        "{:#?}",
        hub.hits()
    );

    // A missing manifest fails the canary, without a GET.
    hub.clear();
    let mut missing = c.clone();
    missing.reference = "missing".into();
    let out = p.canary(&s.url, &missing, Ok(None)).await;
    assert!(!out.check.ok);
    assert_eq!(
        out.check.detail,
        format!("manifest {REPO}:missing: HTTP 404 (HEAD)")
    );
    assert_eq!(counts(&hub).0, 0);

    // Storage broken behind the registry: the HEAD still passes on runs without a blob, a
    // blob run fails.
    reg.break_storage();
    let p = Prober::new(&s).unwrap();
    let out = p.canary(&s.url, &c, Ok(None)).await;
    assert!(!out.check.ok, "{}", out.check.detail);
    reg.heal_storage();
}

#[tokio::test(flavor = "multi_thread")]
async fn blob_every_in_get_mode_and_no_blob_at_all() {
    let reg = Registry::start();
    Image::new("get-every")
        .push(&reg.base, REPO, TAG, None)
        .await;
    let pki = Pki::new();
    let hub = Hub::start(&pki, "hub.test", &reg.base, false).await;

    // GET mode (today's pull) with a blob every third run: every run reads the manifest.
    let (s, c) = spec(&pki, &hub, ManifestCheck::Get, 3);
    let p = Prober::new(&s).unwrap();
    for run in 0..4 {
        let out = p.canary(&s.url, &c, Ok(None)).await;
        assert!(out.check.ok, "run {run}: {}", out.check.detail);
    }
    // Each manifest GET is asked twice: anonymously (401), then with the token.
    assert_eq!(counts(&hub), (4 * 2, 0, 2, 2), "{:#?}", hub.hits());

    // The default: a blob every run.
    hub.clear();
    let (s, c) = spec(&pki, &hub, ManifestCheck::Get, 1);
    let p = Prober::new(&s).unwrap();
    for _ in 0..2 {
        assert!(p.canary(&s.url, &c, Ok(None)).await.check.ok);
    }
    assert_eq!(counts(&hub), (2 * 2, 0, 2, 2));

    // HEAD without blobs: no manifest GET, no blob, ever.
    hub.clear();
    let (s, c) = spec(&pki, &hub, ManifestCheck::Head, 0);
    let p = Prober::new(&s).unwrap();
    let mut last = String::new();
    for _ in 0..5 {
        let out = p.canary(&s.url, &c, Ok(None)).await;
        assert!(out.check.ok, "{}", out.check.detail);
        last = out.check.detail;
    }
    assert_eq!(counts(&hub), (0, 5 * 2, 0, 0));
    assert!(last.ends_with("; no blob read (blob_every = 0))"), "{last}");
}
