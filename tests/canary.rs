//! Registry-aware health end to end (docs/design.md#5-health-of-an-instance), against the real CNCF distribution
//! registry (Debian `docker-registry`) on loopback with a tiny OCI image pushed through the
//! registry HTTP API by the test itself:
//! - storage broken behind a healthy `/v2/`: only the canary pull sees it, and the answer
//!   moves on the wire while `/v2/` still says `200 {}`;
//! - a web server answering `200 text/html` on `/v2/` is not a registry;
//! - replication awareness: a target whose canary digest is behind the primary's for longer
//!   than `replication_max_lag` is not eligible; once the image is copied, it is;
//! - the pull itself: the Bearer token flow (scope `repository:<repo>:pull`, Basic
//!   credentials to the token service), Basic auth (htpasswd), OCI indexes, and a blob GET
//!   redirected to a storage server that then fails.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use regdns::probe::{CanaryAuth, CanarySpec, InstanceSpec, Prober};
use regdns::state::journal;
use support::proc;
use support::regdns::{PRIMARY, Regdns, SECONDARY, launch_two_regions, start, wait_answer};
use support::registry::{Image, PASSWORD, Registry, USER};
use support::token_proxy::{Storage, TokenProxy};

const REPO: &str = "regdns/canary";
const TAG: &str = "canary";
/// The canary of the end-to-end configs: fast, so the suite stays short.
const CANARY: &str = r#"canary = { repository = "regdns/canary", reference = "canary", interval = "1s", timeout = "1s" }"#;

fn dns_addr() -> SocketAddr {
    SocketAddr::new([127, 0, 0, 1].into(), proc::free_port())
}

fn journal(state: &Path) -> Vec<journal::Entry> {
    journal::read_since(state, 0, 3)
}

/// Waits until a journal entry matches `pred`; returns it.
async fn wait_entry(
    state: &Path,
    what: &str,
    limit: Duration,
    pred: impl Fn(&journal::Entry) -> bool,
) -> journal::Entry {
    let t0 = Instant::now();
    loop {
        if let Some(e) = journal(state).into_iter().find(|e| pred(e)) {
            return e;
        }
        assert!(
            t0.elapsed() < limit,
            "no journal entry {what} after {limit:?}: {:#?}",
            journal(state)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_up(e: &journal::Entry, instance: &str) -> bool {
    is_health(e, instance, "up")
}

fn is_down(e: &journal::Entry, instance: &str) -> bool {
    is_health(e, instance, "down")
}

/// A health transition of `instance` to `to` (`up` or `down`).
fn is_health(e: &journal::Entry, instance: &str, to: &str) -> bool {
    e.kind == "health" && e.instance.as_deref() == Some(instance) && e.to.as_deref() == Some(to)
}

/// `GET /status` of `r`.
async fn status(r: &Regdns) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("http://{}/status", r.admin))
        .bearer_auth(r.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn instance<'a>(status: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_storage_behind_a_healthy_v2_moves_the_answer() {
    let hz = Registry::start();
    let zjk = Registry::start();
    let img = Image::new("1");
    img.push(&hz.base, REPO, TAG, None).await;
    img.push(&zjk.base, REPO, TAG, None).await;
    let dns = dns_addr();
    let r = start(
        dns,
        &format!("{}\n{CANARY}", hz.url_line()),
        &format!("{}\n{CANARY}", zjk.url_line()),
        "failback_hold = \"1s\"",
    );
    let state = r.state_dir();
    wait_entry(&state, "hangzhou up", Duration::from_secs(15), |e| {
        is_up(e, "hangzhou")
    })
    .await;
    wait_answer(dns, PRIMARY, Duration::from_secs(5)).await;

    hz.break_storage();
    let v2 = reqwest::get(format!("{}/v2/", hz.base)).await.unwrap();
    assert_eq!(v2.status().as_u16(), 200, "/v2/ still answers 200");
    let took = wait_answer(dns, SECONDARY, Duration::from_secs(15)).await;
    eprintln!("broken storage: failover after {took:?}");
    let v2 = reqwest::get(format!("{}/v2/", hz.base)).await.unwrap();
    assert_eq!(
        v2.status().as_u16(),
        200,
        "/v2/ still answers 200 after the failover"
    );
    let sw = journal(&state)
        .into_iter()
        .rfind(|e| e.kind == "switch")
        .unwrap();
    assert_eq!(sw.to.as_deref(), Some("zhangjiakou"));
    assert!(
        sw.reason
            .contains("canary: manifest regdns/canary:canary: HTTP 500"),
        "{sw:?}"
    );
    let st = status(&r).await;
    let hzs = instance(&st, "hangzhou");
    assert_eq!(hzs["state"], "down");
    let v2check = hzs["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "v2")
        .unwrap();
    assert_eq!(v2check["ok"], true, "{hzs}");

    hz.heal_storage();
    wait_answer(dns, PRIMARY, Duration::from_secs(20)).await;
}

/// A web server that answers every request with `200 text/html` ("It works!").
async fn web_server() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let body = "<html><body><h1>It works!</h1></body></html>\n";
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_web_page_on_v2_is_not_a_registry() {
    let web = web_server().await;
    let zjk = regdns::sim::SimRegistry::start(([127, 0, 0, 1], 0).into(), false)
        .await
        .unwrap();
    let dns = dns_addr();
    let r = start(
        dns,
        &format!("url = \"http://{web}/v2/\""),
        &support::regdns::http(&zjk),
        "failback_hold = \"1s\"",
    );
    wait_answer(dns, SECONDARY, Duration::from_secs(10)).await;
    let state = r.state_dir();
    let down = wait_entry(&state, "hangzhou down", Duration::from_secs(5), |e| {
        is_down(e, "hangzhou")
    })
    .await;
    assert_eq!(
        down.reason,
        "v2: not a registry API: no Docker-Distribution-API-Version header (Content-Type text/html)"
    );
    // It never comes up, however long it answers: three more probes of each instance.
    tokio::task::block_in_place(|| r.wait_probes(3, Duration::from_secs(10)));
    let st = status(&r).await;
    assert_eq!(instance(&st, "hangzhou")["state"], "down");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lagging_replica_is_not_eligible_until_the_image_is_copied() {
    let mut hz = Registry::start();
    let zjk = Registry::start();
    let v1 = Image::new("1");
    let v2 = Image::new("2");
    v1.push(&hz.base, REPO, TAG, None).await;
    v1.push(&zjk.base, REPO, TAG, None).await;
    let dns = dns_addr();
    let r = start(
        dns,
        &format!("{}\n{CANARY}", hz.url_line()),
        &format!("{}\n{CANARY}", zjk.url_line()),
        "failback_hold = \"1s\"\nreplication_max_lag = \"2s\"",
    );
    let state = r.state_dir();
    for id in ["hangzhou", "zhangjiakou"] {
        wait_entry(&state, "up", Duration::from_secs(15), |e| is_up(e, id)).await;
    }
    // A new canary on the primary only: zhangjiakou falls behind.
    v2.push(&hz.base, REPO, TAG, None).await;
    wait_entry(&state, "zhangjiakou behind", Duration::from_secs(15), |e| {
        e.kind == "replication-behind" && e.instance.as_deref() == Some("zhangjiakou")
    })
    .await;
    let st = status(&r).await;
    let z = instance(&st, "zhangjiakou");
    assert_eq!(z["canary_digest"], v1.digest(), "{z}");
    assert!(z["replication_lag_ms"].as_u64().unwrap() >= 2000, "{z}");
    assert_eq!(instance(&st, "hangzhou")["canary_digest"], v2.digest());
    let metrics = reqwest::get(format!("http://{}/metrics", r.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lag: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "regdns_replication_lag_seconds{instance=\"zhangjiakou\",reference=\"hangzhou\"} ",
            )
        })
        .unwrap_or_else(|| panic!("no lag gauge in {metrics}"))
        .parse()
        .unwrap();
    assert!(lag >= 2.0, "{lag}");
    assert!(
        metrics.contains(
            "regdns_replication_lag_seconds{instance=\"hangzhou\",reference=\"hangzhou\"} 0"
        ),
        "{metrics}"
    );

    // The primary fails: the lagging replica is skipped, the answer stays (fail-static).
    hz.kill();
    wait_entry(&state, "hangzhou down", Duration::from_secs(10), |e| {
        is_down(e, "hangzhou")
    })
    .await;
    // Two more probes of each instance (each a chance to decide): still the primary.
    tokio::task::block_in_place(|| r.wait_probes(2, Duration::from_secs(10)));
    wait_answer(dns, PRIMARY, Duration::from_secs(1)).await;
    let st = status(&r).await;
    let ep = st["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["view"] == "default")
        .unwrap();
    let reason = ep["reason"].as_str().unwrap();
    assert!(
        reason.contains("zhangjiakou skipped: canary digest behind hangzhou's for"),
        "{reason}"
    );
    assert!(reason.contains("(max 2s)"), "{reason}");
    assert_eq!(ep["degraded"], true);

    // Replication catches up: the answer moves.
    v2.push(&zjk.base, REPO, TAG, None).await;
    wait_answer(dns, SECONDARY, Duration::from_secs(10)).await;
    wait_entry(&state, "caught up", Duration::from_secs(5), |e| {
        e.kind == "replication-caught-up" && e.instance.as_deref() == Some("zhangjiakou")
    })
    .await;
}

fn canary_spec(url: &str, auth: CanaryAuth) -> (InstanceSpec, CanarySpec) {
    let mut s = InstanceSpec::new("t", url.parse().unwrap());
    s.timeout = Duration::from_secs(2);
    let c = CanarySpec {
        repository: REPO.into(),
        reference: TAG.into(),
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        auth,
        manifest: regdns::probe::ManifestCheck::Get,
        blob_every: 1,
    };
    s.canary = Some(c.clone());
    (s, c)
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_flow_and_a_failing_storage_redirect() {
    let reg = Registry::start();
    let img = Image::new("bearer");
    img.push(&reg.base, REPO, TAG, None).await;
    let proxy = TokenProxy::start(&reg.base, Some(("robot", "s3cret")), true).await;
    let (spec, c) = canary_spec(&format!("{}/v2/", proxy.base), CanaryAuth::Anonymous);
    let prober = Prober::new(&spec).unwrap();
    let url = spec.url.clone();
    let creds = || {
        Ok(Some(
            serde_json::from_str(r#"{"username":"robot","password":"s3cret"}"#).unwrap(),
        ))
    };

    let out = prober.canary(&url, &c, creds()).await;
    assert!(out.check.ok, "{:?}", out.check);
    assert_eq!(out.digest.as_deref(), Some(img.digest().as_str()));
    assert!(
        proxy
            .scopes()
            .iter()
            .all(|s| s == "repository:regdns/canary:pull"),
        "{:?}",
        proxy.scopes()
    );
    let hits = proxy.storage_hits();
    assert!(!hits.is_empty(), "the blob was fetched from storage");
    assert!(
        hits.iter().all(|h| h.get("authorization").is_none()),
        "no registry credentials are sent to storage"
    );

    // Wrong credentials: the token service refuses.
    let bad = prober
        .canary(
            &url,
            &c,
            Ok(Some(
                serde_json::from_str(r#"{"username":"robot","password":"nope"}"#).unwrap(),
            )),
        )
        .await;
    assert!(!bad.check.ok);
    assert!(
        bad.check.detail.starts_with(&format!(
            "token from {}: HTTP 401",
            proxy.base.trim_start_matches("http://")
        )),
        "{}",
        bad.check.detail
    );
    assert!(bad.check.detail.contains("pull credentials rejected"));

    // Storage fails behind the redirect.
    let storage = proxy.storage_host.clone().unwrap();
    let blob = regdns::probe::canary::short_digest(&support::registry::digest(&img.layer));
    proxy.set_storage(Storage::Error);
    let out = prober.canary(&url, &c, creds()).await;
    assert!(!out.check.ok);
    assert_eq!(
        out.check.detail,
        format!("blob {blob} via redirect to {storage}: HTTP 500")
    );
    proxy.set_storage(Storage::Hang);
    let out = prober.canary(&url, &c, creds()).await;
    assert_eq!(
        out.check.detail,
        format!("blob {blob} via redirect to {storage}: timeout after 2s (response headers)")
    );
    proxy.set_storage(Storage::Healthy);
    assert!(prober.canary(&url, &c, creds()).await.check.ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_registry_with_htpasswd() {
    let reg = Registry::start_with(true);
    let img = Image::new("basic");
    img.push(&reg.base, REPO, TAG, Some((USER, PASSWORD))).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pull.json");
    std::fs::write(
        &file,
        format!(r#"{{"username":"{USER}","password":"{PASSWORD}"}}"#),
    )
    .unwrap();
    let (spec, c) = canary_spec(&format!("{}/v2/", reg.base), CanaryAuth::File(file.clone()));
    let prober = Prober::new(&spec).unwrap();
    let creds = regdns::probe::canary::read_credentials_file(&file).map(Some);
    let out = prober.canary(&spec.url, &c, creds).await;
    assert!(out.check.ok, "{:?}", out.check);
    assert_eq!(out.digest.as_deref(), Some(img.digest().as_str()));

    let anon = prober.canary(&spec.url, &c, Ok(None)).await;
    assert_eq!(
        anon.check.detail,
        "manifest regdns/canary:canary: HTTP 401 Basic challenge: the registry needs credentials (set canary_credentials_file)"
    );
    // `/v2/` itself is healthy (401 with a Basic challenge and the API-version header).
    let (v2, _) = prober.check_v2(&spec.url, true).await;
    assert!(v2.ok, "{v2:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_index_resolves_to_the_linux_amd64_manifest() {
    let reg = Registry::start();
    let amd = Image::new("amd64");
    let arm = Image::new("arm64");
    amd.push(&reg.base, REPO, "amd64", None).await;
    arm.push(&reg.base, REPO, "arm64", None).await;
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"platform":{{"os":"linux","architecture":"arm64"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
        arm.digest(),
        arm.manifest.len(),
        amd.digest(),
        amd.manifest.len()
    );
    let r = reqwest::Client::new()
        .put(format!("{}/v2/{REPO}/manifests/{TAG}", reg.base))
        .header("content-type", "application/vnd.oci.image.index.v1+json")
        .body(index.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{r:?}");
    let (spec, c) = canary_spec(&format!("{}/v2/", reg.base), CanaryAuth::Anonymous);
    let prober = Prober::new(&spec).unwrap();
    let out = prober.canary(&spec.url, &c, Ok(None)).await;
    assert!(out.check.ok, "{:?}", out.check);
    assert!(
        out.check.detail.contains("(index, blob"),
        "{}",
        out.check.detail
    );
    assert_eq!(
        out.digest.as_deref(),
        Some(support::registry::digest(index.as_bytes()).as_str())
    );
    // The amd64 blobs were read: delete arm64's layer and it still passes.
    let del = reqwest::Client::new()
        .delete(format!(
            "{}/v2/{REPO}/blobs/{}",
            reg.base,
            support::registry::digest(&arm.layer)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 202, "{del:?}");
    assert!(prober.canary(&spec.url, &c, Ok(None)).await.check.ok);
}

/// ACR Enterprise Edition: no password on the host. regdns gets a temporary login from the
/// Container Registry API (a strict local fake that verifies the V3 signature) with the
/// AccessKey of its environment, and the registry's token service accepts only logins
/// that API issued.
#[tokio::test(flavor = "multi_thread")]
async fn acr_temporary_login_pulls_the_canary_without_a_stored_password() {
    use support::fake_cr::FakeCr;
    use support::token_proxy::{AuthCheck, base64_encode};
    const KEY: &str = "LTAI5tCanaryKey000001";
    const SECRET: &str = "canary-test-secret";
    let fake = FakeCr::start(std::sync::Arc::new(std::time::SystemTime::now)).await;
    fake.add_instance("cri-canary0001");
    fake.add_key(KEY, SECRET);
    let reg = Registry::start();
    Image::new("acr").push(&reg.base, REPO, TAG, None).await;
    let issued = {
        let fake = fake.clone();
        std::sync::Arc::new(move |h: Option<&str>| {
            fake.issued().iter().any(|pw| {
                h == Some(
                    format!(
                        "Basic {}",
                        base64_encode(format!("temp_user_cr:{pw}").as_bytes())
                    )
                    .as_str(),
                )
            })
        }) as AuthCheck
    };
    let front = TokenProxy::start_checked(&reg.base, Some(issued), false).await;
    let zjk = regdns::sim::SimRegistry::start(([127, 0, 0, 1], 0).into(), false)
        .await
        .unwrap();
    let dns = dns_addr();
    let acr = format!(
        "url = \"{}/v2/\"\n{CANARY}\ncanary_credentials = {{ acr_instance = \"cri-canary0001\", region = \"cn-hangzhou\", endpoint = \"{}\" }}",
        front.base, fake.endpoint
    );
    let r = launch_two_regions(
        dns,
        &acr,
        &support::regdns::http(&zjk),
        "failback_hold = \"1s\"",
    )
    .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY)
    .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
    .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    .start();
    let state = r.state_dir();
    let up = wait_entry(&state, "hangzhou up", Duration::from_secs(15), |e| {
        is_up(e, "hangzhou")
    })
    .await;
    assert!(
        up.reason.contains("canary: pulled regdns/canary:canary"),
        "{up:?}"
    );
    assert_eq!(fake.issued().len(), 1, "one login, cached across pulls");
    let calls = fake.calls();
    assert!(calls.iter().all(|c| c.code == "OK"), "{calls:?}");

    // A wrong AccessKey: the canary fails with the API's reason, the answer moves.
    drop(r);
    let r = launch_two_regions(
        dns,
        &acr,
        &support::regdns::http(&zjk),
        "failback_hold = \"1s\"",
    )
    .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY)
    .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong-secret")
    .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    .start();
    wait_answer(dns, SECONDARY, Duration::from_secs(15)).await;
    let down = wait_entry(
        &r.state_dir(),
        "hangzhou down",
        Duration::from_secs(5),
        |e| is_down(e, "hangzhou"),
    )
    .await;
    assert!(
        down.reason.starts_with("canary: credentials: ACR login: "),
        "{down:?}"
    );
    assert!(
        !down.reason.contains("wrong-secret"),
        "no secret in reasons"
    );
    eprintln!("wrong key: {}", down.reason);
}

/// A registry that lies: blobs bigger than the manifest says, wrong bytes, or a manifest
/// whose `Docker-Content-Digest` does not match its body.
async fn lying_registry(
    layer_declared: u64,
    layer_served: Vec<u8>,
    header_digest: Option<String>,
) -> String {
    use axum::routing::get;
    let layer_digest = support::registry::digest(b"the real layer");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":999999999}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{layer_declared}}}]}}"#,
        "0".repeat(64)
    );
    let mdigest = header_digest.unwrap_or_else(|| support::registry::digest(manifest.as_bytes()));
    let app = axum::Router::new().route(
        "/v2/{*rest}",
        get(move |uri: axum::http::Uri| {
            let (manifest, mdigest, layer) =
                (manifest.clone(), mdigest.clone(), layer_served.clone());
            async move {
                use axum::response::IntoResponse;
                let api = ("docker-distribution-api-version", "registry/2.0");
                if uri.path().contains("/manifests/") {
                    (
                        [
                            api,
                            ("content-type", "application/vnd.oci.image.manifest.v1+json"),
                            ("docker-content-digest", mdigest.as_str()),
                        ],
                        manifest,
                    )
                        .into_response()
                } else {
                    ([api], layer).into_response()
                }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}/v2/")
}

#[tokio::test]
async fn the_bytes_cap_and_the_digests_are_enforced() {
    use regdns::probe::canary::BLOB_CAP;
    let real = b"the real layer".to_vec();
    let digest = regdns::probe::canary::short_digest(&support::registry::digest(&real));
    let check = |url: String| async move {
        let (spec, c) = canary_spec(&url, CanaryAuth::Anonymous);
        let prober = Prober::new(&spec).unwrap();
        prober.canary(&spec.url, &c, Ok(None)).await
    };
    // Honest: passes.
    let out = check(lying_registry(real.len() as u64, real.clone(), None).await).await;
    assert!(out.check.ok, "{:?}", out.check);
    // The manifest says the smallest blob is over the cap: not even fetched.
    let out = check(lying_registry(BLOB_CAP as u64 + 1, real.clone(), None).await).await;
    assert_eq!(
        out.check.detail,
        format!(
            "blob {digest}: 1048577 bytes is over the 1 MiB cap of a canary blob (push a smaller canary image)"
        )
    );
    // The manifest says 14 bytes, the registry sends 2 MiB: reading stops at the cap.
    let out = check(lying_registry(real.len() as u64, vec![b'x'; 2 << 20], None).await).await;
    assert_eq!(
        out.check.detail,
        format!("blob {digest}: read 1 MiB and stopped at the cap (push a smaller canary image)")
    );
    // Wrong bytes of the right size.
    let out =
        check(lying_registry(real.len() as u64, b"the fake layer".to_vec(), None).await).await;
    assert!(
        out.check.detail.starts_with(&format!(
            "blob {digest}: digest mismatch: content is sha256:"
        )),
        "{}",
        out.check.detail
    );
    // A manifest whose digest header does not match its body.
    let out = check(
        lying_registry(
            real.len() as u64,
            real.clone(),
            Some(format!("sha256:{}", "a".repeat(64))),
        )
        .await,
    )
    .await;
    assert!(
        out.check
            .detail
            .starts_with("manifest regdns/canary:canary: digest mismatch"),
        "{}",
        out.check.detail
    );
}
