//! PrivateZone client, reconcile and credential chain against the strict fakes.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use regdns::aliyun::credentials::{
    ChainConfig, Clock, CredentialError, CredentialProvider, Credentials,
};
use regdns::aliyun::sign::{SignInput, parse_acs_date, sign_v3};
use regdns::config::env::Env;
use regdns::publish::privatezone::client::{ClientConfig, ErrorKind, PvtzClient};
use regdns::publish::privatezone::plan::{Desired, Op};
use regdns::publish::privatezone::{Binding, ReconcileOptions, reconcile};
use support::fake_pvtz::{FakeCloud, FaultKind, MetadataSetup, StsSetup};

const ZONE: &str = "zone-0123abcd";
const KEY: &str = "LTAI5tTestKey0000abcd";
const SECRET: &str = "test-secret-value";

fn static_creds(id: &str, secret: &str) -> CredentialProvider {
    CredentialProvider::from_static(
        Credentials {
            access_key_id: id.into(),
            access_key_secret: secret.into(),
            security_token: None,
            expiration: None,
        },
        "test",
        Arc::new(SystemTime::now),
    )
}

fn client_for(fake: &FakeCloud) -> PvtzClient {
    PvtzClient::new(&ClientConfig {
        endpoint: fake.pvtz_endpoint.clone(),
        timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .unwrap()
}

async fn setup() -> (FakeCloud, PvtzClient, CredentialProvider) {
    let fake = FakeCloud::start().await;
    fake.add_key(KEY, SECRET);
    fake.add_zone(
        ZONE,
        "cross-region.registry.io",
        &[("cn-hangzhou", "vpc-bbbbb")],
    );
    let client = client_for(&fake);
    (fake, client, static_creds(KEY, SECRET))
}

fn binding() -> Binding {
    Binding {
        zone_id: ZONE.into(),
        rr: "@".into(),
    }
}

fn desired(rtype: &str, values: &[&str], ttl: u32) -> Desired {
    Desired::new("@", rtype, values, ttl)
}

fn fast() -> ReconcileOptions {
    ReconcileOptions {
        dry_run: false,
        max_attempts: 8,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(200),
    }
}

fn a(t: &str, v: &str, ttl: u32) -> (String, String, u32) {
    (t.into(), v.into(), ttl)
}

fn writes(fake: &FakeCloud) -> Vec<String> {
    fake.log()
        .into_iter()
        .filter(|e| e.action != "DescribeZoneRecords")
        .map(|e| format!("{} {}", e.action, e.code))
        .collect()
}

// ------------------------------------------------------------------------------------------
// Signing against the fake.

type Tweak = Box<dyn FnOnce(&mut Vec<(String, String)>, &mut Vec<u8>, &mut String)>;

struct Raw<'a> {
    action: &'a str,
    params: Vec<(String, String)>,
    key: &'a str,
    secret: &'a str,
    token: Option<&'a str>,
    date: SystemTime,
    nonce: &'a str,
    host: String,
    extra: &'a [(&'a str, &'a str)],
}

async fn send_raw(
    fake: &FakeCloud,
    r: &Raw<'_>,
    tweak: impl FnOnce(&mut Vec<(String, String)>, &mut Vec<u8>, &mut String),
) -> (u16, serde_json::Value, String) {
    let signed = sign_v3(&SignInput {
        method: "POST",
        path: "/",
        host: &r.host,
        action: r.action,
        version: "2018-01-01",
        params: &r.params,
        body: b"",
        access_key_id: r.key,
        access_key_secret: r.secret,
        security_token: r.token,
        date: r.date,
        nonce: r.nonce,
        extra_headers: r.extra,
    });
    let mut headers = signed.headers.clone();
    let mut body = Vec::new();
    let mut query = signed.query_string.clone();
    tweak(&mut headers, &mut body, &mut query);
    let http = reqwest::Client::new();
    let mut req = http
        .post(format!("http://{}/?{}", fake.pvtz_addr, query))
        .body(body);
    for (k, v) in &headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (status, json, signed.authorization)
}

fn code(v: &serde_json::Value) -> &str {
    v["Code"].as_str().unwrap_or("")
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const VECTOR_NONCE: &str = "6a1c4b7e2f3d4a5b9c8d7e6f5a4b3c2d";
const SDK_EXTRA: &[(&str, &str)] = &[
    ("accept", "application/json"),
    ("user-agent", "regdns-vectors/1"),
    ("x-acs-credentials-provider", "static_ak"),
];

#[tokio::test]
async fn fake_accepts_the_doc_vectors() {
    let fake = FakeCloud::start().await;
    let date = parse_acs_date("2026-01-02T03:04:05Z").unwrap();
    fake.set_clock(date);
    fake.add_key("testid", "testsecret");
    fake.add_zone(ZONE, "cross-region.registry.io", &[]);
    fake.add_record_with_id(
        5809,
        ZONE,
        "cr",
        "CNAME",
        "reg-a.cn-hangzhou.cr.aliyuncs.com",
        60,
    );
    fake.add_record_with_id(5810, ZONE, "_txt", "TXT", "old", 30);
    let dzr = params(&[
        ("Lang", "en"),
        ("PageNumber", "1"),
        ("PageSize", "100"),
        ("ZoneId", ZONE),
    ]);
    let uzr = params(&[
        ("Lang", "en"),
        ("RecordId", "5809"),
        ("Rr", "cr"),
        ("Ttl", "60"),
        ("Type", "CNAME"),
        ("Value", "reg-b.cn-shanghai.cr.aliyuncs.com"),
    ]);
    let enc = params(&[
        ("RecordId", "5810"),
        ("Rr", "_txt"),
        ("Ttl", "30"),
        ("Type", "TXT"),
        ("Value", "v=1 a*b~c/d+é"),
    ]);
    let raw =
        |action: &'static str, p: &Vec<(String, String)>, extra: &'static [(&str, &str)]| Raw {
            action,
            params: p.clone(),
            key: "testid",
            secret: "testsecret",
            token: None,
            date,
            nonce: VECTOR_NONCE,
            host: "pvtz.aliyuncs.com".into(),
            extra,
        };

    // V3-2 exactly as the SDK sends it.
    let (st, body, auth) = send_raw(
        &fake,
        &raw("DescribeZoneRecords", &dzr, SDK_EXTRA),
        |_, _, _| {},
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(
        auth.ends_with(
            "Signature=f8b6bd2c14abc1f4f5bc1daedb4e79940fbf89e7871a81f11610e04d0bfa46ae"
        )
    );
    assert_eq!(body["TotalItems"], 2);

    // V3-1: same nonce as V3-2 → rejected as reused.
    let (st, body, auth) = send_raw(&fake, &raw("UpdateZoneRecord", &uzr, &[]), |_, _, _| {}).await;
    assert_eq!(st, 400);
    assert_eq!(code(&body), "SignatureNonceUsed");
    assert_eq!(
        auth,
        "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=f196c66f21196148384cd76eebc920bcc662330204f524024b0a6ff84e320570"
    );
    fake.forget_nonces();
    let (st, body, _) = send_raw(&fake, &raw("UpdateZoneRecord", &uzr, &[]), |_, _, _| {}).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        fake.answers(ZONE, "cr"),
        vec![a("CNAME", "reg-b.cn-shanghai.cr.aliyuncs.com", 60)]
    );

    // V3-3.
    fake.forget_nonces();
    let (st, body, auth) = send_raw(
        &fake,
        &raw("UpdateZoneRecord", &uzr, SDK_EXTRA),
        |_, _, _| {},
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(
        auth.ends_with(
            "Signature=a2b4d0b73b24b8faa2de94a13587086d273abb4e7a5cb16d35a7ef1878b5e0ac"
        )
    );

    // V3-4 (encoding edge cases), also with the query sent form-style (`+` for the space).
    fake.forget_nonces();
    let (st, body, auth) = send_raw(
        &fake,
        &raw("UpdateZoneRecord", &enc, SDK_EXTRA),
        |_, _, q| {
            *q = q.replace("%20", "+");
        },
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(
        auth.ends_with(
            "Signature=9f0831e6a19fb8fbe7b64972d87014734613b073d0ae44238c17b9d903ac2ee5"
        )
    );
    assert_eq!(
        fake.answers(ZONE, "_txt"),
        vec![a("TXT", "v=1 a*b~c/d+é", 30)]
    );

    // The same vector signed with the wrong secret.
    fake.forget_nonces();
    let mut bad = raw("DescribeZoneRecords", &dzr, SDK_EXTRA);
    bad.secret = "wrongsecret";
    let (st, body, _) = send_raw(&fake, &bad, |_, _, _| {}).await;
    assert_eq!((st, code(&body)), (400, "SignatureDoesNotMatch"));
    assert!(body["Message"]
        .as_str()
        .unwrap()
        .contains("server string to sign is:ACS3-HMAC-SHA256\n27a4a3f522c8aa38a9b24e82866a0ab514bf8f97b7345aafe70a9db4f8b61ec0"));

    // Thirty minutes later the vector date is stale.
    fake.forget_nonces();
    fake.set_clock(date + Duration::from_secs(30 * 60));
    let (st, body, _) = send_raw(
        &fake,
        &raw("DescribeZoneRecords", &dzr, SDK_EXTRA),
        |_, _, _| {},
    )
    .await;
    assert_eq!((st, code(&body)), (400, "InvalidTimeStamp.Expired"));
}

#[tokio::test]
async fn fake_rejects_malformed_requests() {
    let (fake, _client, _) = setup().await;
    let now = SystemTime::now();
    let mk = |nonce: &'static str| Raw {
        action: "DescribeZoneRecords",
        params: params(&[("ZoneId", ZONE), ("Lang", "en")]),
        key: KEY,
        secret: SECRET,
        token: None,
        date: now,
        nonce,
        host: fake.pvtz_addr.to_string(),
        extra: &[],
    };
    let (st, body, _) = send_raw(&fake, &mk("n1"), |_, _, _| {}).await;
    assert_eq!(st, 200, "{body}");
    // Nonce reuse.
    let (st, body, _) = send_raw(&fake, &mk("n1"), |_, _, _| {}).await;
    assert_eq!((st, code(&body)), (400, "SignatureNonceUsed"));
    // A rejected signature does not burn a nonce.
    let mut wrong = mk("n2");
    wrong.secret = "nope";
    let (_, body, _) = send_raw(&fake, &wrong, |_, _, _| {}).await;
    assert_eq!(code(&body), "SignatureDoesNotMatch");
    let (st, _, _) = send_raw(&fake, &mk("n2"), |_, _, _| {}).await;
    assert_eq!(st, 200);

    let cases: Vec<(&str, &str, Tweak)> = vec![
        (
            "no authorization",
            "IncompleteSignature",
            Box::new(|h, _, _| h.retain(|(k, _)| k != "authorization")),
        ),
        (
            "unsigned x-acs header",
            "IncompleteSignature",
            Box::new(|h, _, _| h.push(("x-acs-extra".into(), "1".into()))),
        ),
        (
            "required header missing",
            "IncompleteSignature",
            Box::new(|h, _, _| h.retain(|(k, _)| k != "x-acs-signature-nonce")),
        ),
        (
            "unsorted signed headers",
            "IncompleteSignature",
            Box::new(|h, _, _| {
                for (k, v) in h.iter_mut() {
                    if k == "authorization" {
                        *v = v.replace("host;x-acs-action", "x-acs-action;host");
                    }
                }
            }),
        ),
        (
            "upper-case signed headers",
            "IncompleteSignature",
            Box::new(|h, _, _| {
                for (k, v) in h.iter_mut() {
                    if k == "authorization" {
                        *v = v.replace("SignedHeaders=host", "SignedHeaders=Host");
                    }
                }
            }),
        ),
        (
            "required header unsigned",
            "IncompleteSignature",
            Box::new(|h, _, _| {
                for (k, v) in h.iter_mut() {
                    if k == "authorization" {
                        *v = v.replace(";x-acs-version", "");
                    }
                }
            }),
        ),
        (
            "malformed authorization",
            "IncompleteSignature",
            Box::new(|h, _, _| {
                for (k, v) in h.iter_mut() {
                    if k == "authorization" {
                        *v = "ACS3-HMAC-SHA256 Credential=x".into();
                    }
                }
            }),
        ),
        (
            "body hash mismatch",
            "SignatureDoesNotMatch",
            Box::new(|_, b, _| b.extend_from_slice(b"surprise")),
        ),
        (
            "query changed after signing",
            "SignatureDoesNotMatch",
            Box::new(|_, _, q| q.push_str("&PageSize=5")),
        ),
        (
            "malformed date",
            "InvalidTimeStamp.Format",
            Box::new(|h, _, _| {
                for (k, v) in h.iter_mut() {
                    if k == "x-acs-date" {
                        *v = "2026-01-02 03:04:05".into();
                    }
                }
            }),
        ),
    ];
    for (i, (name, want, tweak)) in cases.into_iter().enumerate() {
        let nonce: &'static str = Box::leak(format!("case-{i}").into_boxed_str());
        let (st, body, _) = send_raw(&fake, &mk(nonce), tweak).await;
        assert_eq!(code(&body), want, "{name}: {body}");
        assert!(st >= 400, "{name}");
    }

    // Unknown key.
    let mut unknown = mk("u1");
    unknown.key = "LTAIunknown";
    let (st, body, _) = send_raw(&fake, &unknown, |_, _, _| {}).await;
    assert_eq!((st, code(&body)), (404, "InvalidAccessKeyId.NotFound"));

    // STS keys need their token.
    fake.add_sts_key("STS.k1", "s1", "tok-1", None);
    let mut sts = mk("s1");
    sts.key = "STS.k1";
    sts.secret = "s1";
    let (_, body, _) = send_raw(&fake, &sts, |_, _, _| {}).await;
    assert_eq!(code(&body), "InvalidSecurityToken.Missing");
    let mut sts2 = mk("s2");
    sts2.key = "STS.k1";
    sts2.secret = "s1";
    sts2.token = Some("tok-2");
    let (_, body, _) = send_raw(&fake, &sts2, |_, _, _| {}).await;
    assert_eq!(code(&body), "InvalidSecurityToken.MismatchWithAccessKey");
    let mut sts3 = mk("s3");
    sts3.key = "STS.k1";
    sts3.secret = "s1";
    sts3.token = Some("tok-1");
    let (st, body, _) = send_raw(&fake, &sts3, |_, _, _| {}).await;
    assert_eq!(st, 200, "{body}");
    fake.expire_key("STS.k1");
    let mut sts4 = mk("s4");
    sts4.key = "STS.k1";
    sts4.secret = "s1";
    sts4.token = Some("tok-1");
    let (_, body, _) = send_raw(&fake, &sts4, |_, _, _| {}).await;
    assert_eq!(code(&body), "InvalidSecurityToken.Expired");

    // The log has the key id and result of every request.
    let log = fake.log();
    assert!(
        log.iter()
            .any(|e| e.code == "SignatureNonceUsed" && e.key_id.as_deref() == Some(KEY))
    );
    // HTTP dump and reset endpoints.
    let dump: serde_json::Value = reqwest::get(format!("{}/_fake/dump", fake.pvtz_endpoint))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(dump["log"].as_array().unwrap().len() >= 10);
}

#[tokio::test]
async fn client_reads_zone_and_pages() {
    let (fake, client, creds) = setup().await;
    let c = creds.get().await.unwrap();
    let z = client.describe_zone_info(&c, ZONE).await.unwrap();
    assert_eq!(z.zone_name, "cross-region.registry.io");
    assert_eq!(z.bind_vpcs[0].vpc_id, "vpc-bbbbb");
    assert!(z.request_id.starts_with("FAKE-"));
    for i in 0..230 {
        fake.add_record(ZONE, &format!("h{i}"), "A", "10.0.0.1", 60);
    }
    for i in 0..3 {
        fake.add_record(ZONE, "@", "A", &format!("10.1.0.{i}"), 30);
    }
    fake.add_record(ZONE, "WWW", "A", "10.2.0.1", 30);
    fake.add_record(ZONE, "www2", "A", "10.2.0.2", 30);
    let apex = client.describe_zone_records(&c, ZONE, "@").await.unwrap();
    assert_eq!(apex.len(), 3);
    assert_eq!(
        fake.calls("DescribeZoneRecords").len(),
        3,
        "233 records in pages of 100"
    );
    let www = client.describe_zone_records(&c, ZONE, "www").await.unwrap();
    assert_eq!(www.len(), 1);
    let last = fake.calls("DescribeZoneRecords").pop().unwrap();
    assert_eq!(last.params.get("Keyword").map(String::as_str), Some("www"));
    assert_eq!(
        last.params.get("SearchMode").map(String::as_str),
        Some("EXACT")
    );
    assert_eq!(last.params.get("Lang").map(String::as_str), Some("en"));
    assert_eq!(last.params.get("PageSize").map(String::as_str), Some("100"));

    let e = client
        .describe_zone_info(&c, "zone-nope")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.code, "Zone.Invalid.Id");
    assert!(e.request_id.is_some());
}

// ------------------------------------------------------------------------------------------
// Reconcile.

#[tokio::test]
async fn cname_to_a_is_one_update() {
    let (fake, client, creds) = setup().await;
    let id = fake.add_record(
        ZONE,
        "@",
        "CNAME",
        "a-registry.cn-hangzhou.cr.aliyuncs.com",
        30,
    );
    let r = reconcile(
        &client,
        &creds,
        &binding(),
        &desired("A", &["10.94.205.198"], 30),
        &fast(),
    )
    .await
    .unwrap();
    assert_eq!(r.applied.len(), 1);
    assert!(
        matches!(&r.applied[0].op, Op::Update { record_id, .. } if *record_id == id.to_string())
    );
    assert!(!r.applied[0].request_id.is_empty());
    assert_eq!(writes(&fake), vec!["UpdateZoneRecord OK"]);
    assert_eq!(fake.answers(ZONE, "@"), vec![a("A", "10.94.205.198", 30)]);
    assert_eq!(fake.records(ZONE)[0].record_id, id);
    assert_eq!(r.drift.len(), 2, "{:?}", r.drift);
    // And back: one update again.
    fake.clear_log();
    let r = reconcile(
        &client,
        &creds,
        &binding(),
        &desired("CNAME", &["a-registry.cn-hangzhou.cr.aliyuncs.com."], 30),
        &fast(),
    )
    .await
    .unwrap();
    assert_eq!(r.applied.len(), 1);
    assert_eq!(writes(&fake), vec!["UpdateZoneRecord OK"]);
    assert_eq!(
        fake.answers(ZONE, "@"),
        vec![a("CNAME", "a-registry.cn-hangzhou.cr.aliyuncs.com", 30)]
    );
}

#[tokio::test]
async fn a_to_cname_with_two_a_records() {
    let (fake, client, creds) = setup().await;
    fake.add_record(ZONE, "@", "A", "10.0.0.1", 30);
    fake.add_record(ZONE, "@", "A", "10.0.0.2", 30);
    let r = reconcile(
        &client,
        &creds,
        &binding(),
        &desired("CNAME", &["reg-b.cn-shanghai.cr.aliyuncs.com."], 5),
        &fast(),
    )
    .await
    .unwrap();
    assert_eq!(
        writes(&fake),
        vec!["DeleteZoneRecord OK", "UpdateZoneRecord OK"]
    );
    assert_eq!(r.applied.len(), 2);
    assert_eq!(
        fake.answers(ZONE, "@"),
        vec![a("CNAME", "reg-b.cn-shanghai.cr.aliyuncs.com", 5)]
    );
    // Each change had its own ClientToken.
    let tokens: Vec<_> = fake
        .log()
        .into_iter()
        .filter_map(|e| e.client_token)
        .collect();
    assert_eq!(tokens.len(), 2);
    assert_ne!(tokens[0], tokens[1]);
}

#[tokio::test]
async fn adds_when_missing_and_noop_when_equal() {
    let (fake, client, creds) = setup().await;
    fake.save_seed();
    let d = desired("A", &["10.0.0.1", "10.0.0.2"], 30);
    let r = reconcile(&client, &creds, &binding(), &d, &fast())
        .await
        .unwrap();
    assert_eq!(writes(&fake), vec!["AddZoneRecord OK", "AddZoneRecord OK"]);
    assert!(r.changed());
    assert_eq!(
        fake.answers(ZONE, "@"),
        vec![a("A", "10.0.0.1", 30), a("A", "10.0.0.2", 30)]
    );
    fake.clear_log();
    let r = reconcile(&client, &creds, &binding(), &d, &fast())
        .await
        .unwrap();
    assert!(!r.changed());
    assert!(r.drift.is_empty() && r.planned.is_empty());
    assert_eq!(fake.log().len(), 1, "only one read when in sync");
    // Reset back to the seed (empty zone), over HTTP too.
    fake.reset();
    assert!(fake.answers(ZONE, "@").is_empty() && fake.log().is_empty());
    reconcile(&client, &creds, &binding(), &d, &fast())
        .await
        .unwrap();
    let st = reqwest::Client::new()
        .post(format!("{}/_fake/reset", fake.pvtz_endpoint))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, 200);
    assert!(fake.answers(ZONE, "@").is_empty());
}

#[tokio::test]
async fn unmanaged_records_untouched() {
    let (fake, client, creds) = setup().await;
    let txt = fake.add_record(ZONE, "@", "TXT", "v=spf1 -all", 60);
    let mx = fake.add_record(ZONE, "@", "MX", "mx.example.com", 60);
    let www = fake.add_record(ZONE, "www", "CNAME", "elsewhere.example.com", 60);
    let before: Vec<_> = fake.records(ZONE);
    let r = reconcile(
        &client,
        &creds,
        &binding(),
        &desired("A", &["10.0.0.1"], 30),
        &fast(),
    )
    .await
    .unwrap();
    assert_eq!(writes(&fake), vec!["AddZoneRecord OK"]);
    assert_eq!(r.unmanaged.len(), 2);
    for id in [txt, mx, www] {
        let b = before.iter().find(|x| x.record_id == id).unwrap();
        let now = fake
            .records(ZONE)
            .into_iter()
            .find(|x| x.record_id == id)
            .unwrap();
        assert_eq!(*b, now);
    }
    // A CNAME cannot join them: reported, nothing deleted.
    fake.clear_log();
    let e = reconcile(
        &client,
        &creds,
        &binding(),
        &desired("CNAME", &["b.example.com"], 30),
        &fast(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.code, "Regdns.Conflict");
    assert!(e.message.contains("TXT") && e.message.contains(ZONE), "{e}");
    assert!(writes(&fake).is_empty());
    let dry = ReconcileOptions {
        dry_run: true,
        ..fast()
    };
    let r = reconcile(
        &client,
        &creds,
        &binding(),
        &desired("CNAME", &["b.example.com"], 30),
        &dry,
    )
    .await
    .unwrap();
    assert_eq!(r.conflicts.len(), 2);
    assert!(writes(&fake).is_empty());
}

#[tokio::test]
async fn dry_run_plans_only() {
    let (fake, client, creds) = setup().await;
    fake.add_record(ZONE, "@", "CNAME", "a.example.com", 30);
    let dry = ReconcileOptions {
        dry_run: true,
        ..fast()
    };
    let r = reconcile(
        &client,
        &creds,
        &binding(),
        &desired("A", &["10.0.0.1"], 30),
        &dry,
    )
    .await
    .unwrap();
    assert!(r.dry_run && !r.changed());
    assert_eq!(r.planned.len(), 1);
    assert!(
        r.planned[0].contains("CNAME a.example.com ttl 30 -> A 10.0.0.1 ttl 30"),
        "{:?}",
        r.planned
    );
    assert!(writes(&fake).is_empty());
}

#[tokio::test]
async fn throttling_storm_converges_with_one_token() {
    let (fake, client, creds) = setup().await;
    fake.add_record(ZONE, "@", "CNAME", "a.example.com", 30);
    fake.inject(
        FaultKind::Throttle {
            status: 400,
            retry_after_ms: None,
        },
        5,
        &[],
    );
    let r = reconcile(
        &client,
        &creds,
        &binding(),
        &desired("A", &["10.0.0.1"], 30),
        &fast(),
    )
    .await
    .unwrap();
    assert_eq!(fake.answers(ZONE, "@"), vec![a("A", "10.0.0.1", 30)]);
    let throttled = fake
        .log()
        .iter()
        .filter(|e| e.code == "Throttling.User")
        .count();
    assert_eq!(throttled, 5);
    let updates = fake.calls("UpdateZoneRecord");
    assert!(r.applied[0].attempts == updates.len() as u32);
    let tokens: std::collections::BTreeSet<_> =
        updates.iter().map(|e| e.client_token.clone()).collect();
    assert_eq!(tokens.len(), 1, "retries reuse the ClientToken");

    // x-acs-retry-after (ms) is honoured, whatever the status.
    fake.clear_log();
    fake.inject(
        FaultKind::Throttle {
            status: 503,
            retry_after_ms: Some(300),
        },
        1,
        &["AddZoneRecord"],
    );
    let started = Instant::now();
    reconcile(
        &client,
        &creds,
        &binding(),
        &desired("A", &["10.0.0.1", "10.0.0.2"], 30),
        &ReconcileOptions {
            max_backoff: Duration::from_secs(2),
            ..fast()
        },
    )
    .await
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        writes(&fake),
        vec!["AddZoneRecord Throttling.User", "AddZoneRecord OK"]
    );
}

#[tokio::test]
async fn server_errors_and_drops_converge() {
    let (fake, client, creds) = setup().await;
    fake.inject(FaultKind::ServiceUnavailable, 3, &[]);
    fake.inject(FaultKind::InternalError, 2, &[]);
    fake.inject(FaultKind::Drop, 1, &["AddZoneRecord"]);
    fake.inject(FaultKind::Latency(Duration::from_millis(30)), 1, &[]);
    reconcile(
        &client,
        &creds,
        &binding(),
        &desired("A", &["10.0.0.1"], 30),
        &fast(),
    )
    .await
    .unwrap();
    assert_eq!(fake.answers(ZONE, "@"), vec![a("A", "10.0.0.1", 30)]);
    let codes: Vec<String> = fake.log().into_iter().map(|e| e.code).collect();
    assert_eq!(
        codes.iter().filter(|c| *c == "ServiceUnavailable").count(),
        3
    );
    assert_eq!(codes.iter().filter(|c| *c == "InternalError").count(), 2);
    assert_eq!(codes.iter().filter(|c| *c == "DROPPED").count(), 1);

    // The change is made but the answer lost: the retry with the same ClientToken gets the
    // first result back, and no duplicate appears.
    fake.clear_log();
    fake.inject(FaultKind::DropAfterCommit, 1, &["AddZoneRecord"]);
    reconcile(
        &client,
        &creds,
        &binding(),
        &desired("A", &["10.0.0.1", "10.0.0.2"], 30),
        &fast(),
    )
    .await
    .unwrap();
    assert_eq!(
        writes(&fake),
        vec!["AddZoneRecord OK+DROPPED", "AddZoneRecord OK(replay)"]
    );
    assert_eq!(
        fake.answers(ZONE, "@"),
        vec![a("A", "10.0.0.1", 30), a("A", "10.0.0.2", 30)]
    );
}

#[tokio::test]
async fn gives_up_after_the_budget() {
    let (fake, client, creds) = setup().await;
    fake.inject(
        FaultKind::Throttle {
            status: 400,
            retry_after_ms: None,
        },
        100,
        &[],
    );
    let opts = ReconcileOptions {
        max_attempts: 3,
        ..fast()
    };
    let e = reconcile(
        &client,
        &creds,
        &binding(),
        &desired("A", &["10.0.0.1"], 30),
        &opts,
    )
    .await
    .unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Throttled { .. }));
    assert_eq!(e.attempts, 3);
    let msg = e.to_string();
    assert!(
        msg.contains("Throttling.User") && msg.contains("gave up after 3 attempts"),
        "{msg}"
    );
    assert!(msg.contains("RequestId FAKE-"), "{msg}");
    assert_eq!(fake.log().len(), 3);
}

#[tokio::test]
async fn wrong_credentials_are_an_auth_error() {
    let (fake, client, _) = setup().await;
    let e = reconcile(
        &client,
        &static_creds(KEY, "wrong"),
        &binding(),
        &desired("A", &["10.0.0.1"], 30),
        &fast(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(e.code, "SignatureDoesNotMatch");
    let msg = e.to_string();
    assert!(msg.contains("check the PrivateZone credentials"), "{msg}");
    assert!(!msg.contains("wrong"), "no secret in errors: {msg}");
    // One refresh attempt (a no-op for fixed keys), then reported: two calls.
    assert_eq!(fake.log().len(), 2);

    let e = reconcile(
        &client,
        &static_creds("LTAInotknown0000wxyz", "x"),
        &binding(),
        &desired("A", &["10.0.0.1"], 30),
        &fast(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.kind.clone(), e.code.as_str()),
        (ErrorKind::Auth, "InvalidAccessKeyId.NotFound")
    );
    assert_eq!(e.http_status, Some(404));
}

#[tokio::test]
async fn clock_skew_is_reported() {
    let (fake, client, creds) = setup().await;
    fake.set_clock_offset(3600);
    let e = reconcile(
        &client,
        &creds,
        &binding(),
        &desired("A", &["10.0.0.1"], 30),
        &fast(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Clock);
    assert_eq!(e.code, "InvalidTimeStamp.Expired");
    assert!(e.to_string().contains("clock"), "{e}");
    assert_eq!(fake.log().len(), 2, "retried once with a new date");
    // A client whose clock matches the service works.
    let skewed = client
        .clone()
        .with_clock(Arc::new(|| SystemTime::now() + Duration::from_secs(3600)));
    reconcile(
        &skewed,
        &creds,
        &binding(),
        &desired("A", &["10.0.0.1"], 30),
        &fast(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn conflict_after_concurrent_change_is_confirmed() {
    let (fake, client, creds) = setup().await;
    // Someone adds the wanted record between our read and our add: the add conflicts, a
    // re-read confirms the record is there, and nothing else is done.
    fake.inject(
        FaultKind::Latency(Duration::from_millis(400)),
        1,
        &["AddZoneRecord"],
    );
    let task = tokio::spawn({
        let (client, creds) = (client.clone(), creds.clone());
        async move {
            reconcile(
                &client,
                &creds,
                &binding(),
                &desired("A", &["10.0.0.1"], 30),
                &fast(),
            )
            .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.calls("DescribeZoneRecords").is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fake.add_record(ZONE, "@", "A", "10.0.0.1", 30);
    let r = task.await.unwrap().unwrap();
    assert!(!r.changed());
    assert_eq!(writes(&fake), vec!["AddZoneRecord Record.Invalid.Conflict"]);
    assert_eq!(
        fake.calls("DescribeZoneRecords").len(),
        2,
        "re-read after the conflict"
    );
    assert_eq!(fake.answers(ZONE, "@"), vec![a("A", "10.0.0.1", 30)]);
}

// ------------------------------------------------------------------------------------------
// Credential chain.

fn home_env(home: &Path, extra: &[(&str, &str)]) -> Env {
    let mut m = BTreeMap::new();
    m.insert("HOME".to_string(), home.display().to_string());
    for (k, v) in extra {
        m.insert(k.to_string(), v.to_string());
    }
    Env(m)
}

fn chain(fake: &FakeCloud) -> ChainConfig {
    ChainConfig {
        sts_endpoint: Some(fake.sts_endpoint.clone()),
        metadata_endpoint: Some(fake.metadata_endpoint.clone()),
        ..Default::default()
    }
}

async fn works(fake: &FakeCloud, client: &PvtzClient, p: &CredentialProvider) {
    fake.clear_log();
    reconcile(
        client,
        p,
        &binding(),
        &desired("A", &["10.0.0.7"], 30),
        &fast(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        fake.log().iter().all(|e| e.code.starts_with("OK")),
        "{:?}",
        fake.log()
    );
}

#[tokio::test]
async fn chain_environment() {
    let (fake, client, _) = setup().await;
    let home = tempfile::tempdir().unwrap();
    let env = home_env(
        home.path(),
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET),
        ],
    );
    let p = CredentialProvider::from_chain(&env, &chain(&fake))
        .await
        .unwrap();
    assert_eq!(p.source_name(), "environment");
    let st = p.status();
    assert_eq!(st.key_id, "LTAI…abcd");
    assert_eq!(st.expiration, None);
    works(&fake, &client, &p).await;

    // With an STS token.
    fake.add_sts_key("STS.envkey0000000001", "sts-secret", "sts-token", None);
    let env = home_env(
        home.path(),
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.envkey0000000001"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "sts-secret"),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", "sts-token"),
        ],
    );
    let p = CredentialProvider::from_chain(&env, &chain(&fake))
        .await
        .unwrap();
    assert_eq!(p.source_name(), "environment (sts token)");
    works(&fake, &client, &p).await;
    assert!(
        fake.log()
            .iter()
            .all(|e| e.key_id.as_deref() == Some("STS.envkey0000000001"))
    );

    // Only half configured: reported first, later sources not used.
    let env = home_env(home.path(), &[("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY)]);
    let e = CredentialProvider::from_chain(&env, &chain(&fake))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with(
            "no PrivateZone credentials: environment: ALIBABA_CLOUD_ACCESS_KEY_SECRET not set"
        ),
        "{msg}"
    );
    assert!(msg.contains("not tried"), "{msg}");
}

#[tokio::test]
async fn chain_credentials_file() {
    let (fake, client, _) = setup().await;
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".alibabacloud");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("credentials.ini"),
        format!(
            "[default]\ntype = access_key   # static key\naccess_key_id = {KEY}\naccess_key_secret = {SECRET}\n\n\
             [ecs]\ntype = ecs_ram_role\nrole_name = regdns-pvtz\n\n\
             [legacy]\ntype = ram_role_arn\naccess_key_id = x\n"
        ),
    )
    .unwrap();
    let p = CredentialProvider::from_chain(&home_env(home.path(), &[]), &chain(&fake))
        .await
        .unwrap();
    assert_eq!(p.source_name(), "credentials file (profile default)");
    works(&fake, &client, &p).await;

    // ecs_ram_role profile via the metadata fake.
    fake.configure_metadata(MetadataSetup {
        role_name: "regdns-pvtz".into(),
        require_token: true,
        token_endpoint: true,
        lifetime: Duration::from_secs(6 * 3600),
        broken: false,
    });
    let p = CredentialProvider::from_chain(
        &home_env(home.path(), &[("ALIBABA_CLOUD_PROFILE", "ecs")]),
        &chain(&fake),
    )
    .await
    .unwrap();
    assert!(p.source_name().contains("ecs_ram_role"));
    assert!(p.status().expiration.is_some());
    works(&fake, &client, &p).await;
    // The role name was configured: no discovery GET.
    assert!(
        fake.metadata_calls()
            .iter()
            .all(|c| !c.path.ends_with("security-credentials/"))
    );

    // Unsupported type: a clear, first-listed error.
    let e = CredentialProvider::from_chain(
        &home_env(home.path(), &[("ALIBABA_CLOUD_PROFILE", "legacy")]),
        &chain(&fake),
    )
    .await
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("no PrivateZone credentials: credentials file: "),
        "{msg}"
    );
    assert!(
        msg.contains("type ram_role_arn is not supported by regdns"),
        "{msg}"
    );

    // ALIBABA_CLOUD_CREDENTIALS_FILE pointing nowhere.
    let e = CredentialProvider::from_chain(
        &home_env(
            home.path(),
            &[("ALIBABA_CLOUD_CREDENTIALS_FILE", "/nonexistent/creds.ini")],
        ),
        &chain(&fake),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("/nonexistent/creds.ini (ALIBABA_CLOUD_CREDENTIALS_FILE) not found"),
        "{e}"
    );

    // The file without extension is found too.
    let home2 = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home2.path().join(".alibabacloud")).unwrap();
    std::fs::write(
        home2.path().join(".alibabacloud/credentials"),
        format!("[default]\ntype=access_key\naccess_key_id={KEY}\naccess_key_secret={SECRET}\n"),
    )
    .unwrap();
    let p = CredentialProvider::from_chain(&home_env(home2.path(), &[]), &chain(&fake))
        .await
        .unwrap();
    works(&fake, &client, &p).await;
}

#[tokio::test]
async fn chain_ecs_metadata_with_and_without_token() {
    let (fake, client, _) = setup().await;
    let home = tempfile::tempdir().unwrap();
    fake.configure_metadata(MetadataSetup {
        role_name: "regdns-role".into(),
        require_token: true,
        token_endpoint: true,
        lifetime: Duration::from_secs(6 * 3600),
        broken: false,
    });
    let p = CredentialProvider::from_chain(&home_env(home.path(), &[]), &chain(&fake))
        .await
        .unwrap();
    assert_eq!(p.source_name(), "ecs metadata");
    works(&fake, &client, &p).await;
    let calls = fake.metadata_calls();
    assert_eq!(calls[0].method, "PUT");
    assert!(
        calls
            .iter()
            .filter(|c| c.method == "GET")
            .all(|c| c.with_token && c.status == 200),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.path.ends_with("security-credentials/")),
        "role discovered"
    );

    // No IMDSv2: falls back to plain GETs.
    fake.update_metadata(|m| {
        m.token_endpoint = false;
        m.require_token = false;
    });
    let p = CredentialProvider::from_chain(&home_env(home.path(), &[]), &chain(&fake))
        .await
        .unwrap();
    works(&fake, &client, &p).await;
    assert!(
        fake.metadata_calls()
            .iter()
            .rev()
            .take(2)
            .all(|c| !c.with_token)
    );

    // ...unless IMDSv1 is disabled.
    let e = CredentialProvider::from_chain(
        &home_env(home.path(), &[("ALIBABA_CLOUD_IMDSV1_DISABLED", "true")]),
        &chain(&fake),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("ALIBABA_CLOUD_IMDSV1_DISABLED=true"),
        "{e}"
    );
}

#[tokio::test]
async fn chain_rrsa_via_sts() {
    let (fake, client, _) = setup().await;
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join("token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.first.sig\n").unwrap();
    fake.configure_sts(StsSetup {
        role_arn: "acs:ram::123:role/regdns".into(),
        provider_arn: "acs:ram::123:oidc-provider/ack-rrsa-c1".into(),
        token_file: token_file.clone(),
        lifetime: Duration::from_secs(3600),
    });
    let env = home_env(
        home.path(),
        &[
            ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::123:role/regdns"),
            (
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
                "acs:ram::123:oidc-provider/ack-rrsa-c1",
            ),
            (
                "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
                token_file.to_str().unwrap(),
            ),
            ("ALIBABA_CLOUD_ROLE_SESSION_NAME", "regdns-test"),
        ],
    );
    let p = CredentialProvider::from_chain(&env, &chain(&fake))
        .await
        .unwrap();
    assert_eq!(p.source_name(), "rrsa");
    assert!(p.status().key_id.starts_with("STS."));
    works(&fake, &client, &p).await;
    assert_eq!(fake.sts_calls()[0].session_name, "regdns-test");
    assert!(fake.sts_calls()[0].ok);

    // The kubelet rotates the token: the next refresh reads the new one.
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.second.sig").unwrap();
    let old = p.status().key_id;
    p.force_refresh().await.unwrap();
    assert_ne!(p.status().key_id, old);
    assert_eq!(fake.sts_calls().len(), 2);
    works(&fake, &client, &p).await;

    // Configured but rejected: reported first, nothing later used.
    let mut bad = env.clone();
    bad.0.insert(
        "ALIBABA_CLOUD_ROLE_ARN".into(),
        "acs:ram::123:role/other".into(),
    );
    let e = CredentialProvider::from_chain(&bad, &chain(&fake))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("no PrivateZone credentials: rrsa: STS AssumeRoleWithOIDC"),
        "{msg}"
    );
    assert!(msg.contains("EntityNotExist.Role"), "{msg}");
    assert!(
        !msg.contains("second"),
        "token contents never in errors: {msg}"
    );
}

fn offset_clock() -> (Clock, Arc<AtomicI64>) {
    let off = Arc::new(AtomicI64::new(0));
    let o = off.clone();
    (
        Arc::new(move || SystemTime::now() + Duration::from_secs(o.load(Ordering::SeqCst) as u64)),
        off,
    )
}

#[tokio::test]
async fn refreshes_before_expiry_and_reports_expired() {
    let (fake, client, _) = setup().await;
    let home = tempfile::tempdir().unwrap();
    fake.configure_metadata(MetadataSetup {
        role_name: "regdns-role".into(),
        require_token: false,
        token_endpoint: true,
        lifetime: Duration::from_secs(20 * 60),
        broken: false,
    });
    let (clock, off) = offset_clock();
    let cfg = ChainConfig {
        clock,
        ..chain(&fake)
    };
    let p = CredentialProvider::from_chain(&home_env(home.path(), &[]), &cfg)
        .await
        .unwrap();
    let first = p.get().await.unwrap();
    assert_eq!(p.get().await.unwrap(), first, "20 minutes left: no refresh");
    let fetches = || {
        fake.metadata_calls()
            .iter()
            .filter(|c| c.path.ends_with("/regdns-role"))
            .count()
    };
    assert_eq!(fetches(), 1);

    // Six minutes later 14 minutes remain: still valid, refreshed in the background.
    off.store(6 * 60, Ordering::SeqCst);
    fake.set_clock_offset(6 * 60);
    let during = p.get().await.unwrap();
    assert_eq!(
        during, first,
        "the current credentials are used while the refresh runs"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.get().await.unwrap() == first {
        assert!(Instant::now() < deadline, "no background refresh");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fetches(), 2);
    assert_eq!(p.status().last_refresh_result, Ok(()));
    reconcile(
        &client,
        &p,
        &binding(),
        &desired("A", &["10.0.0.1"], 30),
        &fast(),
    )
    .await
    .unwrap();

    // The metadata service breaks and time passes beyond the expiry.
    fake.update_metadata(|m| m.broken = true);
    off.store(60 * 60, Ordering::SeqCst);
    fake.set_clock_offset(60 * 60);
    let e = p.get().await.unwrap_err();
    assert!(matches!(e, CredentialError::Expired { .. }));
    let msg = e.to_string();
    assert!(msg.starts_with("credentials expired at "), "{msg}");
    assert!(msg.contains("HTTP 500"), "{msg}");
    assert!(p.status().last_refresh_result.is_err());
    let re = reconcile(
        &client,
        &p,
        &binding(),
        &desired("A", &["10.0.0.1"], 30),
        &fast(),
    )
    .await
    .unwrap_err();
    assert_eq!(re.kind, ErrorKind::Auth);
    assert!(re.message.contains("credentials expired"), "{re}");
}

#[tokio::test]
async fn auth_error_forces_one_refresh() {
    let (fake, client, _) = setup().await;
    let home = tempfile::tempdir().unwrap();
    fake.configure_metadata(MetadataSetup {
        role_name: "regdns-role".into(),
        require_token: false,
        token_endpoint: true,
        lifetime: Duration::from_secs(6 * 3600),
        broken: false,
    });
    let p = CredentialProvider::from_chain(&home_env(home.path(), &[]), &chain(&fake))
        .await
        .unwrap();
    let c = p.get().await.unwrap();
    // The service revokes the token early.
    fake.expire_key(&c.access_key_id);
    fake.clear_log();
    reconcile(
        &client,
        &p,
        &binding(),
        &desired("A", &["10.0.0.1"], 30),
        &fast(),
    )
    .await
    .unwrap();
    let codes: Vec<String> = fake.log().into_iter().map(|e| e.code).collect();
    assert_eq!(codes[0], "InvalidSecurityToken.Expired");
    assert!(codes[1..].iter().all(|c| c == "OK"), "{codes:?}");
    assert_ne!(p.get().await.unwrap().access_key_id, c.access_key_id);
}

#[tokio::test]
async fn all_sources_fail_listing() {
    let home = tempfile::tempdir().unwrap();
    // A loopback port with nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let md = format!("http://127.0.0.1:{port}");
    let cfg = ChainConfig {
        sts_endpoint: Some(md.clone()),
        metadata_endpoint: Some(md.clone()),
        ..Default::default()
    };
    let e = CredentialProvider::from_chain(&home_env(home.path(), &[]), &cfg)
        .await
        .unwrap_err();
    let msg = e.to_string();
    let ini = home.path().join(".alibabacloud/credentials.ini");
    let expected_prefix = format!(
        "no PrivateZone credentials: environment: ALIBABA_CLOUD_ACCESS_KEY_ID not set; rrsa: ALIBABA_CLOUD_ROLE_ARN not set; credentials file: {} not found; cli profile: not supported by regdns; ecs metadata: {md} unreachable (",
        ini.display()
    );
    assert!(
        msg.starts_with(&expected_prefix),
        "{msg}\n{expected_prefix}"
    );

    let e = CredentialProvider::from_chain(
        &home_env(
            home.path(),
            &[("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")],
        ),
        &cfg,
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .ends_with("ecs metadata: disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED"),
        "{e}"
    );
}
