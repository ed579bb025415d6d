//! Signed PrivateZone API calls (`docs/providers/alibaba-cloud-api.md#2-privatezone-api`) and typed errors.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::aliyun::credentials::{Clock, Credentials};
pub use crate::aliyun::rpc::{ErrorKind, classify};
use crate::aliyun::rpc::{RpcClient, RpcFailure, field};
use crate::publish::engine::{PublishError, RecordInfo, Service};

/// `x-acs-version` of PrivateZone.
pub const API_VERSION: &str = "2018-01-01";
/// Production endpoint (`[privatezone] endpoint` overrides it).
pub const DEFAULT_ENDPOINT: &str = "https://pvtz.aliyuncs.com";
/// Largest `PageSize` the API accepts.
pub const PAGE_SIZE: u32 = 100;
const MAX_PAGES: u32 = 1000;

/// A failed PrivateZone call: the engine's classified error, with service `PrivateZone`.
pub type PvtzError = PublishError;

/// Service name of PrivateZone errors.
pub const SERVICE: &str = "PrivateZone";

/// PrivateZone, for errors (RAM code `pvtz`).
pub static SERVICE_INFO: Service = Service {
    name: SERVICE,
    ram: Some("pvtz"),
};

/// "Already exists"/conflict codes and unknown-record codes, after which a re-read tells
/// what happened.
pub fn is_reread_code(kind: &ErrorKind, code: &str) -> bool {
    let c = code.to_ascii_lowercase();
    (*kind == ErrorKind::Config
        && (c.contains("conflict") || c.contains("exist") || c.contains("duplicate")))
        || code.starts_with("Record.Invalid.Id")
        || code.contains("RecordNotExist")
}

fn local_error(kind: ErrorKind, code: &str, message: impl Into<String>) -> PvtzError {
    PublishError::local(kind, code, message).of(&SERVICE_INFO)
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `https://pvtz.aliyuncs.com`, or `http://127.0.0.1:PORT` for a fake.
    pub endpoint: String,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// `user-agent` header sent with every call.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            endpoint: DEFAULT_ENDPOINT.into(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            user_agent: concat!("regdns/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// A record to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSpec {
    /// Host record relative to the zone (`@` for the apex).
    pub rr: String,
    /// Record type (`CNAME`, `A`, `AAAA`, ...).
    pub rtype: String,
    /// Record value as sent.
    pub value: String,
    /// TTL in seconds.
    pub ttl: u32,
}

/// Result of a write: the record and the service's RequestId.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Id of the record that was changed.
    pub record_id: u64,
    /// `RequestId` of the call that made the change.
    pub request_id: String,
}

/// A VPC bound to a zone.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcInfo {
    #[serde(default)]
    /// VPC id.
    pub vpc_id: String,
    #[serde(default)]
    /// VPC name, when set.
    pub vpc_name: Option<String>,
    #[serde(default)]
    /// Region of the VPC.
    pub region_id: String,
    #[serde(default)]
    /// Region name, when reported.
    pub region_name: Option<String>,
    #[serde(default)]
    /// `STANDARD` or `EDS`.
    pub vpc_type: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
struct VpcList {
    #[serde(default, rename = "Vpc")]
    vpc: Vec<VpcInfo>,
}

/// `DescribeZoneInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ZoneInfo {
    /// Zone id.
    pub zone_id: String,
    /// Zone name (no trailing dot).
    pub zone_name: String,
    #[serde(default)]
    /// Number of records in the zone.
    pub record_count: Option<u64>,
    #[serde(default)]
    /// `AUTH_ZONE` (default) or another type.
    pub zone_type: Option<String>,
    #[serde(default)]
    /// `ZONE` or `RECORD` recursion proxy pattern.
    pub proxy_pattern: Option<String>,
    #[serde(default)]
    /// Reverse-lookup zone.
    pub is_ptr: Option<bool>,
    #[serde(default, rename = "BindVpcs", deserialize_with = "vpcs")]
    /// VPCs the zone is bound to.
    pub bind_vpcs: Vec<VpcInfo>,
    #[serde(default)]
    /// Last change (ms since epoch).
    pub update_timestamp: Option<i64>,
    #[serde(default)]
    /// `RequestId` of the call.
    pub request_id: String,
}

fn vpcs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<VpcInfo>, D::Error> {
    Ok(Option::<VpcList>::deserialize(d)?.unwrap_or_default().vpc)
}

fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom("RecordId is not a u64")),
        Value::String(s) => s.parse().map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom("RecordId is not a number")),
    }
}

fn lenient_opt_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_u64().and_then(|v| u32::try_from(v).ok()),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawRecord {
    #[serde(deserialize_with = "lenient_u64")]
    record_id: u64,
    rr: String,
    #[serde(rename = "Type")]
    rtype: String,
    value: String,
    #[serde(default, deserialize_with = "lenient_opt_u32")]
    ttl: Option<u32>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    line: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_u32")]
    weight: Option<u32>,
    #[serde(default, deserialize_with = "lenient_opt_u32")]
    priority: Option<u32>,
}

#[derive(Deserialize, Default)]
struct RawRecordList {
    #[serde(default, rename = "Record")]
    record: Vec<RawRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordsPage {
    #[serde(default)]
    total_items: Option<u64>,
    #[serde(default)]
    total_pages: Option<u64>,
    #[serde(default)]
    records: Option<RawRecordList>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChangeResponse {
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    record_id: Option<u64>,
}

fn lenient_opt_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    })
}

/// The PrivateZone API client. Holds one HTTP client (connection pool); credentials are
/// passed per call so a [`CredentialProvider`](crate::aliyun::credentials::CredentialProvider) can
/// rotate them.
#[derive(Clone)]
pub struct PvtzClient {
    rpc: RpcClient,
}

impl fmt::Debug for PvtzClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PvtzClient")
            .field("endpoint", &self.rpc.endpoint())
            .finish_non_exhaustive()
    }
}

impl PvtzClient {
    /// Builds the client (and its connection pool) once.
    pub fn new(cfg: &ClientConfig) -> Result<Self, PvtzError> {
        let rpc = RpcClient::new(
            &cfg.endpoint,
            cfg.connect_timeout,
            cfg.timeout,
            &cfg.user_agent,
        )
        .map_err(|why| local_error(ErrorKind::Config, "Regdns.Endpoint", why))?;
        Ok(PvtzClient { rpc })
    }

    /// Replaces the clock used for `x-acs-date` (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.rpc = self.rpc.with_clock(clock);
        self
    }

    /// `scheme://host[:port]`.
    pub fn endpoint(&self) -> &str {
        self.rpc.endpoint()
    }

    /// One signed call: `POST /?<params>` with an empty body. Returns the JSON body.
    pub async fn call_raw(
        &self,
        creds: &Credentials,
        action: &str,
        params: &[(&str, String)],
    ) -> Result<Value, PvtzError> {
        let mut all: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        if !all.iter().any(|(k, _)| k == "Lang") {
            all.push(("Lang".into(), "en".into()));
        }
        self.rpc
            .call("PrivateZone", creds, action, API_VERSION, &all)
            .await
            .map_err(|f: RpcFailure| PvtzError {
                reread: is_reread_code(&f.kind, &f.code),
                kind: f.kind,
                code: f.code,
                message: f.message,
                request_id: f.request_id.map(Into::into),
                http_status: f.http_status,
                action: action.into(),
                attempts: 0,
                service: &SERVICE_INFO,
            })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        creds: &Credentials,
        action: &str,
        params: &[(&str, String)],
    ) -> Result<(T, String), PvtzError> {
        let v = self.call_raw(creds, action, params).await?;
        let request_id = field(&v, "RequestId").unwrap_or("").to_string();
        let parsed = T::deserialize(&v).map_err(|e| PvtzError {
            request_id: Some(request_id.as_str().into()),
            http_status: Some(200),
            action: action.into(),
            ..local_error(
                ErrorKind::Transient,
                "InvalidResponse",
                format!("unexpected response shape: {e}"),
            )
        })?;
        Ok((parsed, request_id))
    }

    /// `DescribeZoneInfo`: name, bound VPCs, ...
    pub async fn describe_zone_info(
        &self,
        creds: &Credentials,
        zone_id: &str,
    ) -> Result<ZoneInfo, PvtzError> {
        let (mut z, rid): (ZoneInfo, String) = self
            .call(creds, "DescribeZoneInfo", &[("ZoneId", zone_id.into())])
            .await?;
        z.request_id = rid;
        Ok(z)
    }

    /// `DescribeZoneRecords` for one host record: all pages of 100, `Keyword=<rr>` with
    /// `SearchMode=EXACT`, and filtered again client-side on `Rr` (case-insensitive). For
    /// the apex `@` no keyword is sent (whether `Keyword=@` matches the apex is unverified)
    /// and the filter alone selects the records.
    pub async fn describe_zone_records(
        &self,
        creds: &Credentials,
        zone_id: &str,
        rr: &str,
    ) -> Result<Vec<RecordInfo>, PvtzError> {
        let mut out = Vec::new();
        let mut page: u32 = 1;
        loop {
            let mut params = vec![
                ("ZoneId", zone_id.to_string()),
                ("PageNumber", page.to_string()),
                ("PageSize", PAGE_SIZE.to_string()),
            ];
            if rr != "@" {
                params.push(("Keyword", rr.to_string()));
                params.push(("SearchMode", "EXACT".to_string()));
            }
            let (p, _rid): (RecordsPage, String) =
                self.call(creds, "DescribeZoneRecords", &params).await?;
            let records = p.records.unwrap_or_default().record;
            let n = records.len() as u64;
            out.extend(
                records
                    .into_iter()
                    .filter(|r| r.rr.eq_ignore_ascii_case(rr))
                    .map(|r| RecordInfo {
                        record_id: r.record_id.to_string(),
                        rr: r.rr,
                        rtype: r.rtype,
                        value: r.value,
                        ttl: r.ttl.unwrap_or(60),
                        status: r.status,
                        line: r.line,
                        weight: r.weight,
                        priority: r.priority,
                    }),
            );
            let total_pages = p.total_pages.unwrap_or_else(|| {
                p.total_items
                    .map(|t| t.div_ceil(u64::from(PAGE_SIZE)))
                    .unwrap_or(1)
            });
            if n == 0 || u64::from(page) >= total_pages || page >= MAX_PAGES {
                break;
            }
            page += 1;
        }
        Ok(out)
    }

    fn log_change(&self, action: &str, change: &Change, what: &str) {
        tracing::info!(
            action,
            record_id = change.record_id,
            request_id = %change.request_id,
            "PrivateZone change applied: {what}"
        );
    }

    /// `AddZoneRecord` (Line `default`, Weight default).
    pub async fn add_zone_record(
        &self,
        creds: &Credentials,
        zone_id: &str,
        rec: &RecordSpec,
        client_token: &str,
    ) -> Result<Change, PvtzError> {
        let (r, request_id): (ChangeResponse, String) = self
            .call(
                creds,
                "AddZoneRecord",
                &[
                    ("ZoneId", zone_id.into()),
                    ("Rr", rec.rr.clone()),
                    ("Type", rec.rtype.clone()),
                    ("Value", rec.value.clone()),
                    ("Ttl", rec.ttl.to_string()),
                    ("Line", "default".into()),
                    ("ClientToken", client_token.into()),
                ],
            )
            .await?;
        let change = Change {
            record_id: r.record_id.unwrap_or(0),
            request_id,
        };
        self.log_change(
            "AddZoneRecord",
            &change,
            &format!(
                "{zone_id} {} {} {} ttl {}",
                rec.rr, rec.rtype, rec.value, rec.ttl
            ),
        );
        Ok(change)
    }

    /// `UpdateZoneRecord` in place (type, value, TTL; a CNAME ⇄ A switch is one call).
    pub async fn update_zone_record(
        &self,
        creds: &Credentials,
        record_id: u64,
        rec: &RecordSpec,
        client_token: &str,
    ) -> Result<Change, PvtzError> {
        let (r, request_id): (ChangeResponse, String) = self
            .call(
                creds,
                "UpdateZoneRecord",
                &[
                    ("RecordId", record_id.to_string()),
                    ("Rr", rec.rr.clone()),
                    ("Type", rec.rtype.clone()),
                    ("Value", rec.value.clone()),
                    ("Ttl", rec.ttl.to_string()),
                    ("Line", "default".into()),
                    ("ClientToken", client_token.into()),
                ],
            )
            .await?;
        let change = Change {
            record_id: r.record_id.unwrap_or(record_id),
            request_id,
        };
        self.log_change(
            "UpdateZoneRecord",
            &change,
            &format!("{} {} {} ttl {}", rec.rr, rec.rtype, rec.value, rec.ttl),
        );
        Ok(change)
    }

    /// `DeleteZoneRecord`.
    pub async fn delete_zone_record(
        &self,
        creds: &Credentials,
        record_id: u64,
        client_token: &str,
    ) -> Result<Change, PvtzError> {
        let (r, request_id): (ChangeResponse, String) = self
            .call(
                creds,
                "DeleteZoneRecord",
                &[
                    ("RecordId", record_id.to_string()),
                    ("ClientToken", client_token.into()),
                ],
            )
            .await?;
        let change = Change {
            record_id: r.record_id.unwrap_or(record_id),
            request_id,
        };
        self.log_change("DeleteZoneRecord", &change, &format!("record {record_id}"));
        Ok(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let ms = Some(Duration::from_millis(300));
        assert_eq!(
            classify("Throttling.User", Some(400), None),
            ErrorKind::Throttled { retry_after: None }
        );
        assert_eq!(
            classify("Throttling", Some(503), None),
            ErrorKind::Throttled { retry_after: None }
        );
        assert_eq!(
            classify("Whatever", Some(200), ms),
            ErrorKind::Throttled { retry_after: ms }
        );
        assert_eq!(
            classify("InternalError", Some(500), None),
            ErrorKind::Transient
        );
        assert_eq!(
            classify("ServiceUnavailable", Some(503), None),
            ErrorKind::Transient
        );
        assert_eq!(
            classify("UnknownError", Some(400), None),
            ErrorKind::Transient
        );
        assert_eq!(classify("", Some(502), None), ErrorKind::Transient);
        assert_eq!(
            classify("InvalidAccessKeyId.NotFound", Some(404), None),
            ErrorKind::Auth
        );
        assert_eq!(
            classify("SignatureDoesNotMatch", Some(400), None),
            ErrorKind::Auth
        );
        assert_eq!(
            classify("InvalidSecurityToken.Expired", Some(400), None),
            ErrorKind::Auth
        );
        assert_eq!(classify("Forbidden.RAM", Some(403), None), ErrorKind::Auth);
        assert_eq!(classify("NoPermission", Some(403), None), ErrorKind::Auth);
        assert_eq!(
            classify("InvalidTimeStamp.Expired", Some(400), None),
            ErrorKind::Clock
        );
        assert_eq!(
            classify("SignatureNonceUsed", Some(400), None),
            ErrorKind::Clock
        );
        assert_eq!(
            classify("Zone.Invalid.Id", Some(400), None),
            ErrorKind::Config
        );
        assert_eq!(
            classify("Record.Invalid.Conflict", Some(400), None),
            ErrorKind::Config
        );
        assert_eq!(
            classify("InvalidParameter", Some(400), None),
            ErrorKind::Config
        );
        assert_eq!(
            classify("MissingZoneId", Some(400), None),
            ErrorKind::Config
        );
        // "InternalErrorX" is not InternalError.
        assert_eq!(
            classify("InternalErrorX", Some(400), None),
            ErrorKind::Config
        );
    }

    #[test]
    fn endpoint_host() {
        let c = PvtzClient::new(&ClientConfig {
            endpoint: "http://127.0.0.1:8080".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.rpc.host(), "127.0.0.1:8080");
        let c = PvtzClient::new(&ClientConfig::default()).unwrap();
        assert_eq!(c.rpc.host(), "pvtz.aliyuncs.com");
        let c = PvtzClient::new(&ClientConfig {
            endpoint: "https://pvtz.aliyuncs.com:443/".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.rpc.host(), "pvtz.aliyuncs.com");
        assert!(
            PvtzClient::new(&ClientConfig {
                endpoint: "ftp://x".into(),
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn error_display() {
        let e = PvtzError {
            request_id: Some("RID".into()),
            http_status: Some(404),
            action: "DescribeZoneRecords".into(),
            attempts: 2,
            ..local_error(
                ErrorKind::Auth,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            )
        };
        let s = e.to_string();
        assert!(s.contains("InvalidAccessKeyId.NotFound"), "{s}");
        assert!(s.contains("RequestId RID") && s.contains("HTTP 404"), "{s}");
        assert!(s.contains("check the PrivateZone credentials"), "{s}");
    }
}
