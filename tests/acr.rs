//! Container Registry login (`regdns::acr`) against the strict fake `GetAuthorizationToken`
//! (`tests/support/fake_cr.rs`): real HTTP on loopback, V3 signatures verified, time moved
//! with a clock shared by the fake and the client (no sleeping).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use regdns::aliyun::credentials::{ChainConfig, Clock, CredentialProvider, Credentials};
use regdns::aliyun::sign::{SignInput, parse_acs_date, sign_v3};
use regdns::config::env::Env;
use regdns::probe::acr::{AcrError, AcrLogin, AcrLoginConfig, RegistryLogin};
use support::fake_cr::{FakeCr, Fault, Reply};

const INSTANCE: &str = "cri-test0001";
const KEY: &str = "LTAI5tTestKey0000abcd";
const SECRET: &str = "test-secret-value";

/// A clock tests move by hand.
#[derive(Clone)]
struct TestClock(Arc<Mutex<SystemTime>>);

impl TestClock {
    fn new() -> Self {
        TestClock(Arc::new(Mutex::new(SystemTime::now())))
    }
    fn clock(&self) -> Clock {
        let t = self.0.clone();
        Arc::new(move || *t.lock().unwrap())
    }
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn config(fake: &FakeCr) -> AcrLoginConfig {
    AcrLoginConfig {
        instance_id: INSTANCE.into(),
        region: "cn-hangzhou".into(),
        endpoint: Some(fake.endpoint.clone()),
    }
}

async fn setup() -> (FakeCr, TestClock) {
    let clock = TestClock::new();
    let fake = FakeCr::start(clock.clock()).await;
    fake.add_instance(INSTANCE);
    fake.add_key(KEY, SECRET);
    (fake, clock)
}

fn env_keys(id: &str, secret: &str, token: Option<&str>) -> Env {
    let mut pairs = vec![
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", id.to_string()),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret.to_string()),
        // Never reach for real instance metadata from a test.
        ("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true".to_string()),
    ];
    if let Some(t) = token {
        pairs.push(("ALIBABA_CLOUD_SECURITY_TOKEN", t.to_string()));
    }
    Env::from_pairs(pairs)
}

/// From the credential chain (environment AccessKey), with the shared clock.
async fn login_from_env(fake: &FakeCr, clock: &TestClock, env: &Env) -> AcrLogin {
    let chain = ChainConfig {
        clock: clock.clock(),
        ..ChainConfig::default()
    };
    AcrLogin::from_chain_with(config(fake), env, &chain)
        .await
        .unwrap()
        .with_clock(clock.clock())
        .with_retries(4, Duration::ZERO)
}

fn static_login(fake: &FakeCr, clock: &TestClock, id: &str, secret: &str) -> AcrLogin {
    let creds = CredentialProvider::from_static(
        Credentials {
            access_key_id: id.into(),
            access_key_secret: secret.into(),
            security_token: None,
            expiration: None,
        },
        "test",
        clock.clock(),
    );
    AcrLogin::with_provider(config(fake), creds)
        .unwrap()
        .with_clock(clock.clock())
        .with_retries(4, Duration::ZERO)
}

fn ok_calls(fake: &FakeCr) -> usize {
    fake.calls().iter().filter(|c| c.code == "OK").count()
}

#[tokio::test]
async fn login_returns_the_documented_temporary_credentials() {
    let (fake, clock) = setup().await;
    let acr = login_from_env(&fake, &clock, &env_keys(KEY, SECRET, None)).await;
    let login = acr.login().await.unwrap();
    assert_eq!(
        login,
        RegistryLogin {
            username: "temp_user_cr".into(),
            password: fake.issued()[0].clone(),
            expires_ms: ms(clock.now() + Duration::from_secs(3600)),
        }
    );
    assert!(login.password.contains(':'));
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].action, "GetAuthorizationToken");
    assert_eq!(calls[0].code, "OK");
    assert_eq!(calls[0].key_id.as_deref(), Some(KEY));
    // Exactly InstanceId: no Lang, no RegionId.
    assert_eq!(
        calls[0].params.iter().collect::<Vec<_>>(),
        [(&"InstanceId".to_string(), &INSTANCE.to_string())]
    );
    assert!(!format!("{login:?}").contains(&login.password));
}

#[tokio::test]
async fn second_login_is_served_from_the_cache() {
    let (fake, clock) = setup().await;
    let acr = static_login(&fake, &clock, KEY, SECRET);
    let first = acr.login().await.unwrap();
    assert_eq!(acr.login().await.unwrap(), first);
    clock.advance(Duration::from_secs(30 * 60));
    assert_eq!(acr.login().await.unwrap(), first);
    assert_eq!(fake.calls().len(), 1, "{:?}", fake.calls());
}

#[tokio::test]
async fn refreshes_before_expiry() {
    let (fake, clock) = setup().await;
    // One hour: refreshed when 15 minutes remain.
    let acr = static_login(&fake, &clock, KEY, SECRET);
    let first = acr.login().await.unwrap();
    clock.advance(Duration::from_secs(45 * 60 - 1));
    assert_eq!(acr.login().await.unwrap(), first);
    assert_eq!(ok_calls(&fake), 1);
    clock.advance(Duration::from_secs(1));
    // Short answers from now on: ten minutes, refreshed when half remains.
    fake.set_lifetime(Duration::from_secs(600));
    let second = acr.login().await.unwrap();
    assert_eq!(ok_calls(&fake), 2);
    assert_ne!(second.password, first.password);
    assert_eq!(
        second.expires_ms,
        ms(clock.now() + Duration::from_secs(600))
    );
    clock.advance(Duration::from_secs(5 * 60 - 1));
    assert_eq!(acr.login().await.unwrap(), second);
    assert_eq!(ok_calls(&fake), 2);
    clock.advance(Duration::from_secs(1));
    let third = acr.login().await.unwrap();
    assert_eq!(ok_calls(&fake), 3);
    assert_eq!(third.password, fake.issued()[2]);
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch() {
    let (fake, clock) = setup().await;
    let acr = Arc::new(static_login(&fake, &clock, KEY, SECRET));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let acr = acr.clone();
            tokio::spawn(async move { acr.login().await })
        })
        .collect();
    let mut logins = Vec::new();
    for t in tasks {
        logins.push(t.await.unwrap().unwrap());
    }
    assert!(logins.iter().all(|l| *l == logins[0]));
    assert_eq!(fake.calls().len(), 1, "{:?}", fake.calls());
}

#[tokio::test]
async fn wrong_secret_is_a_clear_error() {
    let (fake, clock) = setup().await;
    let acr = login_from_env(&fake, &clock, &env_keys(KEY, "not-the-secret", None)).await;
    let e = acr.login().await.unwrap_err();
    assert!(matches!(e, AcrError::Auth { .. }), "{e:?}");
    assert!(!e.is_retryable());
    let msg = e.to_string();
    assert!(
        msg.starts_with(
            "Container Registry rejected the credentials for cri-test0001: SignatureDoesNotMatch: "
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with(
            "; check the AccessKey id and secret (or STS token) provided by the credential source environment"
        ),
        "{msg}"
    );
    assert!(!msg.contains("not-the-secret"), "{msg}");
    // The credentials were refreshed once and tried again, then reported.
    let codes: Vec<String> = fake.calls().into_iter().map(|c| c.code).collect();
    assert_eq!(codes, ["SignatureDoesNotMatch", "SignatureDoesNotMatch"]);
}

#[tokio::test]
async fn unsuccessful_200_answers_are_errors() {
    let (fake, clock) = setup().await;
    let acr = static_login(&fake, &clock, KEY, SECRET);
    for (reply, reason) in [
        (
            Reply::NotSuccess,
            "IsSuccess is false (Code CR_INTERNAL_ERROR)",
        ),
        (Reply::EmptyToken, "AuthorizationToken is empty"),
        (Reply::Expired, "is not in the future"),
    ] {
        fake.set_reply(reply);
        let e = acr.login().await.unwrap_err();
        let AcrError::InvalidLogin {
            reason: got,
            request_id,
            ..
        } = &e
        else {
            panic!("{reply:?}: {e:?}");
        };
        assert!(got.contains(reason), "{reply:?}: {got}");
        assert!(request_id.starts_with("FAKE-CR-"), "{request_id}");
        assert!(
            e.to_string()
                .starts_with("Container Registry returned no usable login for cri-test0001: "),
            "{e}"
        );
    }
    // Nothing was cached: a good answer is fetched.
    fake.set_reply(Reply::Normal);
    acr.login().await.unwrap();
    assert_eq!(fake.calls().len(), 4);
}

#[tokio::test]
async fn sts_token_is_sent_and_checked() {
    let (fake, clock) = setup().await;
    fake.add_sts_key("STS.key0001", "sts-secret", "CAIS-token-1");
    let acr = login_from_env(
        &fake,
        &clock,
        &env_keys("STS.key0001", "sts-secret", Some("CAIS-token-1")),
    )
    .await;
    acr.login().await.unwrap();
    assert!(fake.calls()[0].with_security_token);

    let wrong = login_from_env(
        &fake,
        &clock,
        &env_keys("STS.key0001", "sts-secret", Some("CAIS-other")),
    )
    .await;
    let e = wrong.login().await.unwrap_err();
    assert!(matches!(e, AcrError::Auth { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("InvalidSecurityToken.MismatchWithAccessKey"),
        "{e}"
    );
    assert!(!e.to_string().contains("CAIS"), "{e}");
}

#[tokio::test]
async fn forbidden_ram_names_the_missing_permission() {
    let (fake, clock) = setup().await;
    fake.deny(KEY);
    let acr = static_login(&fake, &clock, KEY, SECRET);
    let e = acr.login().await.unwrap_err();
    assert!(matches!(e, AcrError::Denied { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("Forbidden.RAM") && msg.contains("HTTP 403"),
        "{msg}"
    );
    assert!(
        msg.contains("the RAM identity needs cr:GetAuthorizationToken"),
        "{msg}"
    );
    // Not retried: permissions do not change with new credentials.
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn unknown_instance_is_a_config_error() {
    let (fake, clock) = setup().await;
    let acr = AcrLogin::with_provider(
        AcrLoginConfig {
            instance_id: "cri-unknown".into(),
            ..config(&fake)
        },
        CredentialProvider::from_static(
            Credentials {
                access_key_id: KEY.into(),
                access_key_secret: SECRET.into(),
                security_token: None,
                expiration: None,
            },
            "test",
            clock.clock(),
        ),
    )
    .unwrap()
    .with_clock(clock.clock());
    let e = acr.login().await.unwrap_err();
    assert!(matches!(e, AcrError::Rejected { .. }), "{e:?}");
    assert!(
        e.to_string()
            .ends_with("; check acr_instance and region (an Enterprise Edition instance, called in its own region)"),
        "{e}"
    );
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn throttling_and_5xx_are_retried() {
    let (fake, clock) = setup().await;
    let acr = static_login(&fake, &clock, KEY, SECRET);
    fake.inject(&[
        Fault::Throttle,
        Fault::InternalError,
        Fault::ServiceUnavailable,
    ]);
    acr.login().await.unwrap();
    let codes: Vec<String> = fake.calls().into_iter().map(|c| c.code).collect();
    assert_eq!(
        codes,
        [
            "Throttling.User",
            "InternalError",
            "ServiceUnavailable",
            "OK"
        ]
    );

    // Exhausted: a retryable error.
    let acr = static_login(&fake, &clock, KEY, SECRET);
    fake.inject(&[Fault::Throttle; 4]);
    let e = acr.login().await.unwrap_err();
    assert!(
        matches!(e, AcrError::Throttled { .. }) && e.is_retryable(),
        "{e:?}"
    );
    assert!(e.to_string().contains("4 attempts"), "{e}");
}

#[tokio::test]
async fn clock_skew_is_reported() {
    let (fake, clock) = setup().await;
    let ahead = TestClock(Arc::new(Mutex::new(
        clock.now() + Duration::from_secs(3600),
    )));
    let acr = static_login(&fake, &ahead, KEY, SECRET);
    let e = acr.login().await.unwrap_err();
    assert!(matches!(e, AcrError::Clock { .. }), "{e:?}");
    assert!(
        e.to_string().contains("InvalidTimeStamp.Expired")
            && e.to_string().contains("NTP-synchronised"),
        "{e}"
    );
    assert_eq!(fake.calls().len(), 2);
}

/// The fake accepts the CR-1 vector of `docs/providers/alibaba-cloud-api.md#5-test-vectors` replayed at its date, and refuses the
/// same request again (nonce reuse) and a tampered one.
#[tokio::test]
async fn fake_verifies_the_cr_1_vector_and_nonce_reuse() {
    let date = parse_acs_date("2026-01-02T03:04:05Z").unwrap();
    let fake = FakeCr::start(Arc::new(move || date)).await;
    fake.add_instance("cri-test0001");
    fake.add_key("testid", "testsecret");
    let params = vec![("InstanceId".to_string(), "cri-test0001".to_string())];
    let signed = sign_v3(&SignInput {
        method: "POST",
        path: "/",
        host: "cr.cn-hangzhou.aliyuncs.com",
        action: "GetAuthorizationToken",
        version: "2018-12-01",
        params: &params,
        body: b"",
        access_key_id: "testid",
        access_key_secret: "testsecret",
        security_token: None,
        date,
        nonce: "6a1c4b7e2f3d4a5b9c8d7e6f5a4b3c2d",
        extra_headers: &[],
    });
    assert!(
        signed.authorization.ends_with(
            "Signature=52113d59282110325f4dfb9af8204b13debbccb7a7797924cc7cfd7cbd56e88e"
        )
    );
    let http = reqwest::Client::new();
    let send = |query: String| {
        let mut req = http.post(format!("{}/?{query}", fake.endpoint));
        for (n, v) in &signed.headers {
            req = req.header(n.as_str(), v.as_str());
        }
        req.send()
    };
    let first = send(signed.query_string.clone()).await.unwrap();
    assert_eq!(first.status(), 200);
    let body: serde_json::Value = first.json().await.unwrap();
    assert_eq!(body["IsSuccess"], true);
    assert_eq!(body["ExpireTime"], 1_767_326_645_000u64);

    let again = send(signed.query_string.clone()).await.unwrap();
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["Code"], "SignatureNonceUsed");

    let tampered = send("InstanceId=cri-test0002".into()).await.unwrap();
    let body: serde_json::Value = tampered.json().await.unwrap();
    assert_eq!(body["Code"], "SignatureDoesNotMatch");
}

#[tokio::test]
async fn failed_refresh_keeps_the_valid_login_until_it_expires() {
    let (fake, clock) = setup().await;
    let acr = static_login(&fake, &clock, KEY, SECRET);
    let first = acr.login().await.unwrap();
    // In the refresh window, the service is down: the current login is still handed out.
    clock.advance(Duration::from_secs(50 * 60));
    fake.inject(&[Fault::ServiceUnavailable; 4]);
    assert_eq!(acr.login().await.unwrap(), first);
    // Less than a minute left: the failure is reported instead.
    clock.advance(Duration::from_secs(9 * 60 + 30));
    fake.inject(&[Fault::ServiceUnavailable; 4]);
    let e = acr.login().await.unwrap_err();
    assert!(
        matches!(e, AcrError::Unavailable { .. }) && e.is_retryable(),
        "{e:?}"
    );
    // Back up: a new login.
    let next = acr.login().await.unwrap();
    assert_ne!(next.password, first.password);
}
