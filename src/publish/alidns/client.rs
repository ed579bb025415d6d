//! Signed Alidns API calls (`docs/providers/alibaba-cloud-api.md#7-alidns-api`): `DescribeSubDomainRecords` (all pages, exact
//! RR filtered client-side), `AddDomainRecord`, `UpdateDomainRecord`, `DeleteDomainRecord`
//! (Line `default`, `Lang=en`), `DescribeDomainInfo`; errors mapped for the engine.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::aliyun::credentials::Credentials;
use crate::aliyun::rpc::{RpcClient, RpcFailure, field};
use crate::publish::engine::{Change, ErrorKind, PublishError, RecordInfo, Service};

/// `x-acs-version` of Alidns.
pub const API_VERSION: &str = "2015-01-09";
/// Service name in messages.
pub const SERVICE: &str = "Alidns";
/// Alidns, for errors (RAM code `alidns`).
pub static SERVICE_INFO: Service = Service {
    name: SERVICE,
    ram: Some("alidns"),
};
/// Largest `PageSize` of DescribeSubDomainRecords.
pub const PAGE_SIZE: u32 = 100;
const MAX_PAGES: u32 = 100;

/// Maps an Alidns error for the engine (`docs/providers/alibaba-cloud-api.md#8-alidns-errors`): throttling and 5xx are retried
/// (by the shared classification), `DomainRecordDuplicate` and
/// `DomainRecordNotBelongToUser` re-read, `DomainRecordConflict`, `QuotaExceeded.TTL`, an
/// unknown domain and a locked record fail with advice.
pub fn map_error(f: RpcFailure, action: &str) -> PublishError {
    let mut e = PublishError {
        kind: f.kind,
        code: f.code,
        message: f.message,
        request_id: f.request_id.map(Into::into),
        http_status: f.http_status,
        action: action.into(),
        attempts: 0,
        service: &SERVICE_INFO,
        reread: false,
    };
    let advice = match e.code.as_str() {
        "DomainRecordDuplicate" | "DomainRecordNotBelongToUser" => {
            e.reread = true;
            None
        }
        "DomainRecordConflict" => Some(
            "a CNAME cannot share its RR with other records on the same line: another record at this RR (not managed by regdns, or on another line) blocks the answer; remove it in the Alidns console",
        ),
        c if c.starts_with("QuotaExceeded.TTL") => Some(
            "the endpoint's ttl is outside what this domain's Alidns edition allows (free and personal editions: 600-86400 s); raise endpoint.ttl or upgrade the edition",
        ),
        "InvalidDomainName.NoExist" | "IncorrectDomainUser" => Some(
            "the domain is not in this Alibaba Cloud account: check endpoint.publish.domain and the credentials' account",
        ),
        "DomainRecordLocked" => Some("the record is locked in Alidns; unlock it in the console"),
        _ => None,
    };
    if let Some(a) = advice {
        e.message = format!("{} ({a})", e.message);
    }
    e
}

/// Parameters of `UpdateDomainRecord` (`Lang` is added by every call).
fn update_params(
    record_id: &str,
    rr: &str,
    rtype: &str,
    value: &str,
    ttl: u32,
) -> Vec<(&'static str, String)> {
    vec![
        ("RecordId", record_id.into()),
        ("RR", rr.into()),
        ("Type", rtype.into()),
        ("Value", value.into()),
        ("TTL", ttl.to_string()),
        ("Line", "default".into()),
    ]
}

/// `DescribeDomainInfo` (with `NeedDetailAttributes=true`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DomainInfo {
    /// Domain name.
    #[serde(default)]
    pub domain_name: String,
    /// Edition name.
    #[serde(default)]
    pub version_name: Option<String>,
    /// Minimum TTL of the edition.
    #[serde(default, rename = "MinTtl")]
    pub min_ttl: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawRecord {
    record_id: Value,
    #[serde(rename = "RR")]
    rr: String,
    #[serde(rename = "Type")]
    rtype: String,
    value: String,
    #[serde(default, rename = "TTL")]
    ttl: Option<u32>,
    #[serde(default)]
    line: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    weight: Option<u32>,
    #[serde(default)]
    priority: Option<u32>,
}

#[derive(Deserialize, Default)]
struct RecordList {
    #[serde(default, rename = "Record")]
    record: Vec<RawRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordsPage {
    #[serde(default)]
    total_count: Option<u64>,
    #[serde(default)]
    domain_records: Option<RecordList>,
}

fn id_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The Alidns API client (credentials are passed per call).
#[derive(Clone, Debug)]
pub struct AlidnsClient {
    rpc: RpcClient,
}

impl AlidnsClient {
    /// A client for `endpoint` (`https://alidns.aliyuncs.com`, or a local fake).
    pub fn new(endpoint: &str) -> Result<Self, String> {
        Ok(AlidnsClient {
            rpc: RpcClient::new(
                endpoint,
                Duration::from_secs(5),
                Duration::from_secs(10),
                concat!("regdns/", env!("CARGO_PKG_VERSION")),
            )?,
        })
    }

    /// Replaces the clock used for `x-acs-date` (tests).
    pub fn with_clock(mut self, clock: crate::aliyun::credentials::Clock) -> Self {
        self.rpc = self.rpc.with_clock(clock);
        self
    }

    async fn call(
        &self,
        creds: &Credentials,
        action: &str,
        params: &[(&str, String)],
    ) -> Result<Value, PublishError> {
        let mut all: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        all.push(("Lang".into(), "en".into()));
        self.rpc
            .call(SERVICE, creds, action, API_VERSION, &all)
            .await
            .map_err(|f| map_error(f, action))
    }

    fn invalid(action: &str, v: &Value, e: impl std::fmt::Display) -> PublishError {
        PublishError {
            request_id: field(v, "RequestId").map(Into::into),
            http_status: Some(200),
            action: action.into(),
            ..PublishError::local(
                ErrorKind::Transient,
                "InvalidResponse",
                format!("unexpected response shape: {e}"),
            )
            .of(&SERVICE_INFO)
        }
    }

    fn change(&self, action: &str, v: &Value, fallback_id: &str) -> Change {
        let record_id = v
            .get("RecordId")
            .map(id_string)
            .unwrap_or_else(|| fallback_id.to_string());
        let request_id = field(v, "RequestId").unwrap_or("").to_string();
        tracing::info!(action, record_id = %record_id, request_id = %request_id, "Alidns change applied");
        Change {
            record_id,
            request_id,
        }
    }

    /// `DescribeDomainInfo`.
    pub async fn describe_domain_info(
        &self,
        creds: &Credentials,
        domain: &str,
    ) -> Result<DomainInfo, PublishError> {
        let action = "DescribeDomainInfo";
        let v = self
            .call(
                creds,
                action,
                &[
                    ("DomainName", domain.into()),
                    ("NeedDetailAttributes", "true".into()),
                ],
            )
            .await?;
        DomainInfo::deserialize(&v).map_err(|e| Self::invalid(action, &v, e))
    }

    /// Every record at `rr` of `domain`: `DescribeSubDomainRecords` with `DomainName` (so
    /// the service does not split the name itself), all pages, filtered on `RR`.
    pub async fn describe_sub_domain_records(
        &self,
        creds: &Credentials,
        domain: &str,
        rr: &str,
    ) -> Result<Vec<RecordInfo>, PublishError> {
        let action = "DescribeSubDomainRecords";
        let sub = if rr == "@" {
            domain.to_string()
        } else {
            format!("{rr}.{domain}")
        };
        let mut out = Vec::new();
        let mut seen = 0u64;
        for page in 1..=MAX_PAGES {
            let v = self
                .call(
                    creds,
                    action,
                    &[
                        ("SubDomain", sub.clone()),
                        ("DomainName", domain.into()),
                        ("PageNumber", page.to_string()),
                        ("PageSize", PAGE_SIZE.to_string()),
                    ],
                )
                .await?;
            let p = RecordsPage::deserialize(&v).map_err(|e| Self::invalid(action, &v, e))?;
            let records = p.domain_records.unwrap_or_default().record;
            let n = records.len() as u64;
            seen += n;
            out.extend(
                records
                    .into_iter()
                    .filter(|r| r.rr.eq_ignore_ascii_case(rr))
                    .map(|r| RecordInfo {
                        record_id: id_string(&r.record_id),
                        rr: r.rr,
                        rtype: r.rtype,
                        value: r.value,
                        ttl: r.ttl.unwrap_or(600),
                        status: r.status,
                        line: r.line,
                        weight: r.weight,
                        priority: r.priority,
                    }),
            );
            if n < u64::from(PAGE_SIZE) || p.total_count.is_some_and(|t| seen >= t) {
                break;
            }
        }
        Ok(out)
    }

    /// `AddDomainRecord` (Line `default`).
    pub async fn add_domain_record(
        &self,
        creds: &Credentials,
        domain: &str,
        rr: &str,
        rtype: &str,
        value: &str,
        ttl: u32,
    ) -> Result<Change, PublishError> {
        let action = "AddDomainRecord";
        let v = self
            .call(
                creds,
                action,
                &[
                    ("DomainName", domain.into()),
                    ("RR", rr.into()),
                    ("Type", rtype.into()),
                    ("Value", value.into()),
                    ("TTL", ttl.to_string()),
                    ("Line", "default".into()),
                ],
            )
            .await?;
        Ok(self.change(action, &v, ""))
    }

    /// `UpdateDomainRecord` in place (a CNAME ⇄ A switch is one call, `docs/providers/alibaba-cloud-api.md#switching-cname-and-a-in-place`).
    pub async fn update_domain_record(
        &self,
        creds: &Credentials,
        record_id: &str,
        rr: &str,
        rtype: &str,
        value: &str,
        ttl: u32,
    ) -> Result<Change, PublishError> {
        let action = "UpdateDomainRecord";
        let v = self
            .call(
                creds,
                action,
                &update_params(record_id, rr, rtype, value, ttl),
            )
            .await?;
        Ok(self.change(action, &v, record_id))
    }

    /// `DeleteDomainRecord`.
    pub async fn delete_domain_record(
        &self,
        creds: &Credentials,
        record_id: &str,
    ) -> Result<Change, PublishError> {
        let action = "DeleteDomainRecord";
        let v = self
            .call(creds, action, &[("RecordId", record_id.into())])
            .await?;
        Ok(self.change(action, &v, record_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: &str, status: u16) -> RpcFailure {
        RpcFailure {
            kind: crate::aliyun::rpc::classify(code, Some(status), None),
            code: code.into(),
            message: "m".into(),
            request_id: Some("R".into()),
            http_status: Some(status),
        }
    }

    /// `docs/providers/alibaba-cloud-api.md#5-test-vectors`, vector AD-1: the parameters regdns sends for an update, signed with
    /// the shared V3 signer (`docs/providers/alibaba-cloud-api.md#5-test-vectors` key, date and nonce).
    #[test]
    fn ad_1_signing_vector() {
        use crate::aliyun::sign::{SignInput, parse_acs_date, sha256_hex, sign_v3};
        let mut params: Vec<(String, String)> =
            update_params("1234567890123456", "@", "A", "192.0.2.10", 600)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        params.push(("Lang".into(), "en".into()));
        let s = sign_v3(&SignInput {
            method: "POST",
            path: "/",
            host: "alidns.aliyuncs.com",
            action: "UpdateDomainRecord",
            version: API_VERSION,
            params: &params,
            body: b"",
            access_key_id: "testid",
            access_key_secret: "testsecret",
            security_token: None,
            date: parse_acs_date("2026-01-02T03:04:05Z").unwrap(),
            nonce: "6a1c4b7e2f3d4a5b9c8d7e6f5a4b3c2d",
            extra_headers: &[],
        });
        assert_eq!(
            s.query_string,
            "Lang=en&Line=default&RR=%40&RecordId=1234567890123456&TTL=600&Type=A&Value=192.0.2.10"
        );
        assert_eq!(
            sha256_hex(s.canonical_request.as_bytes()),
            "b814394a7eb9a10967aebcfbbaad72f0647e44285da251139f212843c056bb8b"
        );
        assert!(
            s.authorization.ends_with(
                "Signature=91ddde3b309529c09bf68f4b121a9f92279b91fd640f717410873fd70ee2b3f1"
            ),
            "{}",
            s.authorization
        );
    }

    #[test]
    fn error_mapping() {
        let e = map_error(failure("Throttling.User", 400), "AddDomainRecord");
        assert!(matches!(e.kind, ErrorKind::Throttled { .. }) && !e.reread);
        let e = map_error(failure("DomainRecordDuplicate", 400), "AddDomainRecord");
        assert!(e.reread && e.kind == ErrorKind::Config);
        let e = map_error(failure("DomainRecordConflict", 400), "AddDomainRecord");
        assert!(!e.reread && e.kind == ErrorKind::Config);
        assert!(e.to_string().contains("cannot share its RR"), "{e}");
        let e = map_error(failure("QuotaExceeded.TTL", 400), "UpdateDomainRecord");
        assert!(
            !e.reread && e.to_string().contains("raise endpoint.ttl"),
            "{e}"
        );
        let e = map_error(failure("InternalError", 500), "UpdateDomainRecord");
        assert_eq!(e.kind, ErrorKind::Transient);
        let e = map_error(
            failure("InvalidAccessKeyId.NotFound", 404),
            "DescribeSubDomainRecords",
        );
        assert!(
            e.to_string()
                .contains("RAM policy allows alidns:DescribeSubDomainRecords"),
            "{e}"
        );
    }
}
