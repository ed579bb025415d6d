//! Alidns provider through the shared engine, against the strict local fake
//! (`support::fake_alidns`, V3 signatures checked by the same verifier as the PrivateZone
//! fake): CNAME ⇄ A in place, convergence through throttling, 5xx, dropped connections
//! (before and after the write committed) and latency, the error codes that must fail with
//! advice (QuotaExceeded.TTL, DomainRecordConflict, a wrong secret), drift repair.

mod support;

use std::time::Duration;

use regdns::aliyun::credentials::{CredentialProvider, Credentials};
use regdns::publish::alidns::{AlidnsBinding, AlidnsClient, AlidnsProvider};
use regdns::publish::engine::{
    Desired, ErrorKind, PublishError, ReconcileOptions, ReconcileReport, reconcile,
};
use support::fake_alidns::{FakeAlidns, FaultKind};

const KEY: &str = "LTAI5tAlidnsKey00000abcd";
const SECRET: &str = "alidns-test-secret";
const DOMAIN: &str = "example.net";

async fn setup(min_ttl: u32) -> FakeAlidns {
    let fake = FakeAlidns::start().await;
    fake.add_key(KEY, SECRET);
    fake.add_domain(DOMAIN, min_ttl);
    fake
}

fn provider(fake: &FakeAlidns, secret: &str) -> AlidnsProvider {
    AlidnsProvider::new(
        AlidnsClient::new(&fake.endpoint).unwrap(),
        CredentialProvider::from_static(
            Credentials {
                access_key_id: KEY.into(),
                access_key_secret: secret.into(),
                security_token: None,
                expiration: None,
            },
            "test",
            std::sync::Arc::new(std::time::SystemTime::now),
        ),
    )
}

fn binding(rr: &str) -> AlidnsBinding {
    AlidnsBinding {
        domain: DOMAIN.into(),
        rr: rr.into(),
    }
}

fn fast() -> ReconcileOptions {
    ReconcileOptions {
        dry_run: false,
        max_attempts: 8,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(100),
    }
}

/// One sync of the binding at `rr` to `want`, with fast retries.
async fn sync(
    p: &AlidnsProvider,
    rr: &str,
    want: Desired,
) -> Result<ReconcileReport<AlidnsBinding>, PublishError> {
    reconcile(p, &binding(rr), &want, &fast()).await
}

fn rec(t: &str, v: &str, ttl: u32) -> (String, String, u32) {
    (t.into(), v.into(), ttl)
}

#[tokio::test]
async fn cname_to_a_is_one_update_and_back() {
    let fake = setup(1).await;
    fake.add_record(
        DOMAIN,
        "cr",
        "CNAME",
        "a-registry.example.com",
        30,
        "default",
    );
    fake.add_record(DOMAIN, "www", "A", "192.0.2.80", 600, "default");
    let p = provider(&fake, SECRET);
    let r = sync(&p, "cr", Desired::new("cr", "A", &["10.1.3.4"], 30))
        .await
        .unwrap();
    assert_eq!(r.applied.len(), 1);
    assert_eq!(
        fake.writes(),
        vec!["UpdateDomainRecord OK"],
        "one in-place update, no gap"
    );
    assert_eq!(fake.answers(DOMAIN, "cr"), vec![rec("A", "10.1.3.4", 30)]);

    // Two addresses, then back to a CNAME: delete all but one, update that one.
    fake.clear_log();
    sync(
        &p,
        "cr",
        Desired::new("cr", "A", &["10.1.3.4", "10.1.3.5"], 30),
    )
    .await
    .unwrap();
    assert_eq!(fake.writes(), vec!["AddDomainRecord OK"]);
    fake.clear_log();
    sync(
        &p,
        "cr",
        Desired::new("cr", "CNAME", &["b-registry.example.com."], 30),
    )
    .await
    .unwrap();
    assert_eq!(
        fake.writes(),
        vec!["DeleteDomainRecord OK", "UpdateDomainRecord OK"]
    );
    assert_eq!(
        fake.answers(DOMAIN, "cr"),
        vec![rec("CNAME", "b-registry.example.com", 30)]
    );
    assert_eq!(
        fake.answers(DOMAIN, "www"),
        vec![rec("A", "192.0.2.80", 600)],
        "other RR untouched"
    );

    // In sync: only reads.
    fake.clear_log();
    let r = sync(
        &p,
        "cr",
        Desired::new("cr", "CNAME", &["b-registry.example.com."], 30),
    )
    .await
    .unwrap();
    assert!(!r.changed() && r.drift.is_empty());
    assert!(fake.writes().is_empty());

    // A manual edit is drift, repaired by the next reconcile.
    let id = fake
        .records(DOMAIN)
        .into_iter()
        .find(|r| r.rr == "cr")
        .unwrap()
        .id;
    fake.edit_record(&id, "CNAME", "manual-edit.example.com");
    let r = sync(
        &p,
        "cr",
        Desired::new("cr", "CNAME", &["b-registry.example.com."], 30),
    )
    .await
    .unwrap();
    assert!(r.changed() && !r.drift.is_empty(), "{r:?}");
    assert_eq!(
        fake.answers(DOMAIN, "cr"),
        vec![rec("CNAME", "b-registry.example.com", 30)]
    );
}

#[tokio::test]
async fn converges_through_throttling_5xx_drops_and_latency() {
    let fake = setup(600).await;
    fake.add_record(
        DOMAIN,
        "@",
        "CNAME",
        "a-registry.example.com",
        600,
        "default",
    );
    fake.add_record(DOMAIN, "@", "TXT", "v=spf1 -all", 600, "default");
    fake.inject(
        FaultKind::Throttle {
            status: 400,
            retry_after_ms: None,
        },
        2,
        &["DescribeSubDomainRecords"],
    );
    fake.inject(FaultKind::InternalError, 1, &["UpdateDomainRecord"]);
    fake.inject(FaultKind::ServiceUnavailable, 1, &["UpdateDomainRecord"]);
    fake.inject(FaultKind::Drop, 1, &["UpdateDomainRecord"]);
    // The add is made, but the answer is lost: the retry gets DomainRecordDuplicate, the
    // engine re-reads and finds the record there.
    fake.inject(FaultKind::DropAfterCommit, 1, &["AddDomainRecord"]);
    fake.inject(
        FaultKind::Latency(Duration::from_millis(300)),
        1,
        &["AddDomainRecord"],
    );
    let p = provider(&fake, SECRET);
    // Wanting A records while a TXT sits at the apex: allowed (only a CNAME excludes others).
    let d = Desired::new("@", "A", &["10.1.3.4", "10.1.3.5"], 600);
    let r = reconcile(&p, &binding("@"), &d, &fast()).await.unwrap();
    assert!(r.changed());
    assert_eq!(
        fake.answers(DOMAIN, "@"),
        vec![
            rec("A", "10.1.3.4", 600),
            rec("A", "10.1.3.5", 600),
            rec("TXT", "v=spf1 -all", 600)
        ]
    );
    let writes = fake.writes();
    assert!(
        writes.contains(&"AddDomainRecord DomainRecordDuplicate".to_string()),
        "{writes:?}"
    );
    assert!(
        writes.contains(&"UpdateDomainRecord InternalError".to_string()),
        "{writes:?}"
    );
    assert!(
        writes.contains(&"UpdateDomainRecord DROPPED".to_string()),
        "{writes:?}"
    );
    let throttled = fake
        .log()
        .iter()
        .filter(|e| e.code == "Throttling.User")
        .count();
    assert_eq!(throttled, 2);
    // Every call carried Lang=en and DomainName/Line where the API wants them.
    for e in fake.log() {
        assert_eq!(
            e.params.get("Lang").map(String::as_str),
            Some("en"),
            "{e:?}"
        );
        if e.action.ends_with("DomainRecord") && e.action != "DeleteDomainRecord" {
            assert_eq!(
                e.params.get("Line").map(String::as_str),
                Some("default"),
                "{e:?}"
            );
        }
    }
    // Converged: a second run only reads.
    fake.clear_log();
    let r = reconcile(&p, &binding("@"), &d, &fast()).await.unwrap();
    assert!(!r.changed());
}

#[tokio::test]
async fn error_codes_fail_with_advice() {
    // The edition's minimum TTL is 600: a 30 s endpoint is refused, not retried.
    let fake = setup(600).await;
    let p = provider(&fake, SECRET);
    let e = sync(&p, "cr", Desired::new("cr", "A", &["10.1.3.4"], 30))
        .await
        .unwrap_err();
    assert_eq!(e.code, "QuotaExceeded.TTL");
    assert!(e.to_string().contains("raise endpoint.ttl"), "{e}");
    assert_eq!(
        fake.writes(),
        vec!["AddDomainRecord QuotaExceeded.TTL"],
        "no retry"
    );

    // A CNAME on another line is not regdns's (it writes line default) but blocks the
    // answer: DomainRecordConflict fails with a clear message, no retry.
    fake.clear_log();
    fake.add_record(
        DOMAIN,
        "cr",
        "CNAME",
        "isp-registry.example.com",
        600,
        "telecom",
    );
    let e = sync(&p, "cr", Desired::new("cr", "A", &["10.1.3.4"], 600))
        .await
        .unwrap_err();
    assert_eq!(e.code, "DomainRecordConflict");
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.to_string().contains("remove it in the Alidns console"),
        "{e}"
    );
    assert_eq!(fake.writes(), vec!["AddDomainRecord DomainRecordConflict"]);

    // An unmanaged record at the RR blocks a CNAME: planned as a conflict, never deleted.
    fake.add_record(DOMAIN, "txt", "TXT", "keep-me", 600, "default");
    let e = sync(
        &p,
        "txt",
        Desired::new("txt", "CNAME", &["b-registry.example.com."], 600),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "Regdns.Conflict");
    assert_eq!(
        fake.answers(DOMAIN, "txt"),
        vec![rec("TXT", "keep-me", 600)]
    );

    // A domain not in the account.
    let e = reconcile(
        &p,
        &AlidnsBinding {
            domain: "absent.example".into(),
            rr: "cr".into(),
        },
        &Desired::new("cr", "A", &["10.1.3.4"], 600),
        &fast(),
    )
    .await
    .unwrap_err();
    assert!(e.code.starts_with("InvalidDomainName"), "{e}");
    assert!(
        e.to_string().contains("not in this Alibaba Cloud account"),
        "{e}"
    );

    // A wrong secret: the fake's verifier refuses the signature.
    let bad = provider(&fake, "not-the-secret");
    let e = sync(&bad, "cr", Desired::new("cr", "A", &["10.1.3.4"], 600))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(e.code, "SignatureDoesNotMatch");
    let msg = e.to_string();
    assert!(
        msg.contains("RAM policy allows alidns:DescribeSubDomainRecords"),
        "{msg}"
    );
    assert!(
        !msg.contains("not-the-secret"),
        "no secret in errors: {msg}"
    );
}
