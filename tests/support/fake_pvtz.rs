//! A strict fake of Alibaba Cloud PrivateZone, STS (AssumeRoleWithOIDC) and ECS instance
//! metadata, per `docs/providers/alibaba-cloud-api.md#10-test-fakes`.
//!
//! - Verifies V3 signatures, the timestamp window (15 minutes) against an injectable clock,
//!   nonce reuse and STS tokens with the shared [`Verifier`](super::acs_verify::Verifier).
//! - In-memory zones and records with the service's rules (CNAME exclusivity, duplicates,
//!   TTL set, MX priority, paging, Keyword/SearchMode, unknown ids, ClientToken replay).
//! - Fault injection after authentication, switchable at run time.
//! - A request log and record dump for assertions (Rust methods, plus `GET /_fake/dump` and
//!   `POST /_fake/reset` on the pvtz listener).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use regdns::aliyun::sign::{format_acs_date, parse_acs_date};

pub use super::acs_faults::FaultKind;
use super::acs_faults::Faults;
use super::acs_gateway::{self, AcsFake, AcsRequest, Answer};
use super::acs_verify::{
    self, ApiErr, Key, Verifier, WINDOW, api_err, header_str, json_response, parse_query,
};

/// TTLs the API documents.
pub const TTLS: [u32; 6] = [5, 30, 60, 3600, 43200, 86400];
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FakeRecord {
    pub record_id: u64,
    pub zone_id: String,
    pub rr: String,
    pub rtype: String,
    pub value: String,
    pub ttl: u32,
    pub priority: Option<u32>,
    pub weight: u32,
    pub line: String,
    pub status: String,
    pub remark: String,
    pub create_ts: i64,
    pub update_ts: i64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct FakeZone {
    pub zone_id: String,
    pub zone_name: String,
    /// (region, vpc id)
    pub vpcs: Vec<(String, String)>,
    /// `ZONE` (the service's default: a name without a record is NXDOMAIN) or `RECORD`
    /// (recursive resolution proxy for subdomains: it resolves publicly).
    pub proxy_pattern: String,
}

/// One request as the fake saw it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LogEntry {
    pub action: String,
    pub key_id: Option<String>,
    /// `OK`, an error code, or `DROPPED`.
    pub code: String,
    pub client_token: Option<String>,
    pub params: BTreeMap<String, String>,
}

/// The STS fake's expectations.
#[derive(Clone, Debug)]
pub struct StsSetup {
    pub role_arn: String,
    pub provider_arn: String,
    /// Compared (trimmed) with the OIDCToken at each call.
    pub token_file: PathBuf,
    /// Lifetime of issued credentials.
    pub lifetime: Duration,
}

/// The metadata fake's behaviour.
#[derive(Clone, Debug)]
pub struct MetadataSetup {
    pub role_name: String,
    /// GETs without a valid token are refused (401).
    pub require_token: bool,
    /// When false, `PUT /latest/api/token` answers 404 (no IMDSv2).
    pub token_endpoint: bool,
    pub lifetime: Duration,
    /// While set, credential GETs answer 500.
    pub broken: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StsCall {
    pub method: String,
    pub session_name: String,
    pub ok: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataCall {
    pub path: String,
    pub method: String,
    pub with_token: bool,
    pub status: u16,
}

#[derive(Clone)]
struct Seed {
    zones: BTreeMap<String, FakeZone>,
    records: BTreeMap<u64, FakeRecord>,
    next_id: u64,
}

struct Inner {
    clock_fixed: Option<SystemTime>,
    clock_offset_secs: i64,
    /// Keys and nonces; checks `x-acs-version: 2018-01-01`.
    auth: Verifier,
    zones: BTreeMap<String, FakeZone>,
    records: BTreeMap<u64, FakeRecord>,
    next_id: u64,
    tokens: HashMap<(String, String), (BTreeMap<String, String>, Value)>,
    faults: Faults,
    log: Vec<LogEntry>,
    seed: Option<Seed>,
    sts: Option<StsSetup>,
    sts_calls: Vec<StsCall>,
    metadata: Option<MetadataSetup>,
    metadata_tokens: Vec<String>,
    metadata_calls: Vec<MetadataCall>,
    counter: u64,
}

impl Inner {
    fn now(&self) -> SystemTime {
        if let Some(t) = self.clock_fixed {
            return t;
        }
        let real = SystemTime::now();
        if self.clock_offset_secs >= 0 {
            real + Duration::from_secs(self.clock_offset_secs as u64)
        } else {
            real - Duration::from_secs((-self.clock_offset_secs) as u64)
        }
    }

    fn request_id(&mut self) -> String {
        self.counter += 1;
        format!(
            "FAKE-{:08X}-0000-4000-8000-{:012X}",
            self.counter, self.counter
        )
    }

    fn random_hex(&mut self, n: usize) -> String {
        let mut s = String::new();
        while s.len() < n {
            let b: [u8; 16] = rand::random();
            s.push_str(&hex::encode(b));
        }
        s.truncate(n);
        s
    }
}

type Shared = Arc<Mutex<Inner>>;

/// Handle to the running fakes. The servers stop when the test's runtime ends.
pub struct FakeCloud {
    state: Shared,
    pub pvtz_endpoint: String,
    pub sts_endpoint: String,
    pub metadata_endpoint: String,
    pub pvtz_addr: SocketAddr,
}

const HOST_ID: &str = "pvtz.aliyuncs.com";

fn error_response(request_id: &str, e: &ApiErr) -> Response {
    acs_verify::error_response(request_id, HOST_ID, e)
}

// ---- behaviour ----

fn required<'a>(p: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, ApiErr> {
    p.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            api_err(
                400,
                &format!("Missing{name}"),
                format!("{name} is mandatory for this action."),
            )
        })
}

fn now_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

fn record_json(r: &FakeRecord) -> Value {
    let mut v = json!({
        "RecordId": r.record_id,
        "ZoneId": r.zone_id,
        "Rr": r.rr,
        "Type": r.rtype,
        "Value": r.value,
        "Ttl": r.ttl,
        "Line": r.line,
        "Status": r.status,
        "Weight": r.weight,
        "Remark": r.remark,
        "CreateTimestamp": r.create_ts,
        "UpdateTimestamp": r.update_ts,
    });
    if let Some(p) = r.priority {
        v["Priority"] = json!(p);
    }
    v
}

struct RecordInput {
    rr: String,
    rtype: String,
    value: String,
    ttl: u32,
    priority: Option<u32>,
}

fn validate(p: &BTreeMap<String, String>) -> Result<RecordInput, ApiErr> {
    let rr = required(p, "Rr")?.to_string();
    let rtype = required(p, "Type")?.to_string();
    let value = required(p, "Value")?.to_string();
    if rr.contains(char::is_whitespace) {
        return Err(api_err(
            400,
            "Record.Invalid.Rr",
            format!("invalid Rr {rr:?}"),
        ));
    }
    if !["A", "AAAA", "CNAME", "TXT", "MX", "PTR", "SRV"].contains(&rtype.as_str()) {
        return Err(api_err(
            400,
            "Record.Invalid.Type",
            format!("invalid Type {rtype:?}"),
        ));
    }
    let ttl = match p.get("Ttl") {
        None => 60,
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|t| TTLS.contains(t))
            .ok_or_else(|| {
                api_err(
                    400,
                    "Record.Invalid.Ttl",
                    format!("Ttl {t:?} is not one of {TTLS:?}"),
                )
            })?,
    };
    if let Some(line) = p.get("Line")
        && line != "default"
    {
        return Err(api_err(
            400,
            "Record.Invalid.Line",
            format!("Line {line:?} is not available"),
        ));
    }
    let bad_value = || {
        api_err(
            400,
            "Record.Invalid.Value",
            format!("invalid {rtype} value {value:?}"),
        )
    };
    let value = match rtype.as_str() {
        "A" => value
            .parse::<Ipv4Addr>()
            .map_err(|_| bad_value())?
            .to_string(),
        "AAAA" => value
            .parse::<Ipv6Addr>()
            .map_err(|_| bad_value())?
            .to_string(),
        "CNAME" | "MX" | "PTR" => {
            let v = value.trim_end_matches('.');
            if v.is_empty()
                || !v
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._*".contains(&c))
            {
                return Err(bad_value());
            }
            v.to_string()
        }
        "TXT" if value.len() > 255 => return Err(bad_value()),
        _ => value,
    };
    let priority = if rtype == "MX" {
        let pr = p
            .get("Priority")
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| (1..=99).contains(v))
            .ok_or_else(|| api_err(400, "Record.Invalid.Priority", "MX needs Priority 1-99"))?;
        Some(pr)
    } else {
        None
    };
    Ok(RecordInput {
        rr,
        rtype,
        value,
        ttl,
        priority,
    })
}

fn same_value(t: &str, a: &str, b: &str) -> bool {
    if t == "CNAME" || t == "MX" || t == "PTR" {
        a.trim_end_matches('.')
            .eq_ignore_ascii_case(b.trim_end_matches('.'))
    } else {
        a == b
    }
}

fn check_rules(
    inner: &Inner,
    zone_id: &str,
    rec: &RecordInput,
    exclude: Option<u64>,
) -> Result<(), ApiErr> {
    let others: Vec<&FakeRecord> = inner
        .records
        .values()
        .filter(|r| {
            r.zone_id == zone_id
                && r.rr.eq_ignore_ascii_case(&rec.rr)
                && Some(r.record_id) != exclude
        })
        .collect();
    if rec.rtype == "CNAME" && !others.is_empty() {
        return Err(api_err(
            400,
            "Record.Invalid.Conflict",
            format!(
                "a CNAME record cannot coexist with other records at {}",
                rec.rr
            ),
        ));
    }
    if others.iter().any(|r| r.rtype == "CNAME") {
        return Err(api_err(
            400,
            "Record.Invalid.Conflict",
            format!("a CNAME record already exists at {}", rec.rr),
        ));
    }
    if others
        .iter()
        .any(|r| r.rtype == rec.rtype && same_value(&rec.rtype, &r.value, &rec.value))
    {
        return Err(api_err(
            400,
            "Record.Invalid.Conflict",
            "the record already exists",
        ));
    }
    Ok(())
}

fn dispatch(
    inner: &mut Inner,
    action: &str,
    p: &BTreeMap<String, String>,
) -> Result<Value, ApiErr> {
    if let Some(lang) = p.get("Lang")
        && lang != "en"
        && lang != "zh"
    {
        return Err(api_err(
            400,
            "InvalidParameter.Lang",
            format!("Lang {lang:?}"),
        ));
    }
    let now = inner.now();
    match action {
        "DescribeZoneInfo" => {
            let zid = required(p, "ZoneId")?;
            let z = inner.zones.get(zid).ok_or_else(|| {
                api_err(400, "Zone.Invalid.Id", format!("zone {zid} does not exist"))
            })?;
            let count = inner.records.values().filter(|r| r.zone_id == zid).count();
            Ok(json!({
                "ZoneId": z.zone_id,
                "ZoneName": z.zone_name,
                "RecordCount": count,
                "ZoneType": "AUTH_ZONE",
                "ProxyPattern": z.proxy_pattern,
                "IsPtr": false,
                "BindVpcs": {"Vpc": z.vpcs.iter().map(|(region, vpc)| json!({
                    "VpcId": vpc, "VpcName": vpc, "RegionId": region, "RegionName": region, "VpcType": "STANDARD"
                })).collect::<Vec<_>>()},
                "UpdateTimestamp": now_ms(now),
            }))
        }
        "DescribeZoneRecords" => {
            let zid = required(p, "ZoneId")?;
            if !inner.zones.contains_key(zid) {
                return Err(api_err(
                    400,
                    "Zone.Invalid.Id",
                    format!("zone {zid} does not exist"),
                ));
            }
            let page: u64 = match p.get("PageNumber") {
                None => 1,
                Some(v) => v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    api_err(
                        400,
                        "InvalidParameter.PageNumber",
                        format!("PageNumber {v:?}"),
                    )
                })?,
            };
            let size: u64 = match p.get("PageSize") {
                None => 20,
                Some(v) => v
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| {
                        api_err(
                            400,
                            "InvalidParameter.PageSize",
                            format!("PageSize {v:?} (1-100)"),
                        )
                    })?,
            };
            let mode = p.get("SearchMode").map(String::as_str).unwrap_or("EXACT");
            if mode != "EXACT" && mode != "LIKE" {
                return Err(api_err(
                    400,
                    "InvalidParameter.SearchMode",
                    format!("SearchMode {mode:?}"),
                ));
            }
            let kw = p
                .get("Keyword")
                .filter(|k| !k.is_empty())
                .map(|k| k.to_ascii_lowercase());
            let matching: Vec<&FakeRecord> = inner
                .records
                .values()
                .filter(|r| r.zone_id == zid)
                .filter(|r| match &kw {
                    None => true,
                    Some(k) if mode == "EXACT" => r.rr.to_ascii_lowercase() == *k,
                    Some(k) => r.rr.to_ascii_lowercase().contains(k.as_str()),
                })
                .collect();
            let total = matching.len() as u64;
            let pages = total.div_ceil(size);
            let items: Vec<Value> = matching
                .iter()
                .skip(((page - 1) * size) as usize)
                .take(size as usize)
                .map(|r| record_json(r))
                .collect();
            Ok(json!({
                "TotalItems": total,
                "TotalPages": pages,
                "PageNumber": page,
                "PageSize": size,
                "Records": {"Record": items},
            }))
        }
        "AddZoneRecord" => {
            let zid = required(p, "ZoneId")?.to_string();
            let rec = validate(p)?;
            if !inner.zones.contains_key(&zid) {
                return Err(api_err(
                    400,
                    "Zone.Invalid.Id",
                    format!("zone {zid} does not exist"),
                ));
            }
            check_rules(inner, &zid, &rec, None)?;
            let id = inner.next_id;
            inner.next_id += 1;
            let ts = now_ms(now);
            inner.records.insert(
                id,
                FakeRecord {
                    record_id: id,
                    zone_id: zid,
                    rr: rec.rr,
                    rtype: rec.rtype,
                    value: rec.value,
                    ttl: rec.ttl,
                    priority: rec.priority,
                    weight: 1,
                    line: "default".into(),
                    status: "ENABLE".into(),
                    remark: String::new(),
                    create_ts: ts,
                    update_ts: ts,
                },
            );
            Ok(json!({"RecordId": id, "Success": true}))
        }
        "UpdateZoneRecord" => {
            let id = record_id(p)?;
            let rec = validate(p)?;
            let zid = inner
                .records
                .get(&id)
                .map(|r| r.zone_id.clone())
                .ok_or_else(|| {
                    api_err(
                        400,
                        "Record.Invalid.Id",
                        format!("record {id} does not exist"),
                    )
                })?;
            check_rules(inner, &zid, &rec, Some(id))?;
            let r = inner.records.get_mut(&id).unwrap();
            r.rr = rec.rr;
            r.rtype = rec.rtype;
            r.value = rec.value;
            r.ttl = rec.ttl;
            r.priority = rec.priority;
            r.update_ts = now_ms(now);
            Ok(json!({"RecordId": id}))
        }
        "DeleteZoneRecord" => {
            let id = record_id(p)?;
            inner.records.remove(&id).ok_or_else(|| {
                api_err(
                    400,
                    "Record.Invalid.Id",
                    format!("record {id} does not exist"),
                )
            })?;
            Ok(json!({"RecordId": id}))
        }
        "SetZoneRecordStatus" => {
            let id = record_id(p)?;
            let status = required(p, "Status")?.to_string();
            if status != "ENABLE" && status != "DISABLE" {
                return Err(api_err(
                    400,
                    "InvalidParameter.Status",
                    format!("Status {status:?}"),
                ));
            }
            let r = inner.records.get_mut(&id).ok_or_else(|| {
                api_err(
                    400,
                    "Record.Invalid.Id",
                    format!("record {id} does not exist"),
                )
            })?;
            r.status = status.clone();
            Ok(json!({"RecordId": id, "Status": status}))
        }
        other => Err(api_err(
            404,
            "InvalidAction.NotFound",
            format!("action {other:?} not found"),
        )),
    }
}

fn record_id(p: &BTreeMap<String, String>) -> Result<u64, ApiErr> {
    let v = required(p, "RecordId")?;
    v.parse().map_err(|_| {
        api_err(
            400,
            "Record.Invalid.Id",
            format!("RecordId {v:?} is not a record id"),
        )
    })
}

const WRITES: [&str; 4] = [
    "AddZoneRecord",
    "UpdateZoneRecord",
    "DeleteZoneRecord",
    "SetZoneRecordStatus",
];

/// The ClientToken replay key of a write (action, token) and the parameters it must repeat.
fn replay_key(req: &AcsRequest) -> Option<((String, String), BTreeMap<String, String>)> {
    let token = req.params.get("ClientToken")?;
    if !WRITES.contains(&req.action.as_str()) {
        return None;
    }
    let mut fingerprint = req.params.clone();
    fingerprint.remove("Lang");
    Some(((req.action.clone(), token.clone()), fingerprint))
}

impl AcsFake for Inner {
    const HOST_ID: &'static str = HOST_ID;
    const COMMITTED_AND_DROPPED: &'static str = "OK+DROPPED";
    const ONE_ID_PER_CALL: bool = false;

    fn verifier(&mut self) -> &mut Verifier {
        &mut self.auth
    }

    fn faults(&mut self) -> &mut Faults {
        &mut self.faults
    }

    fn now(&self) -> SystemTime {
        Inner::now(self)
    }

    fn request_id(&mut self) -> String {
        Inner::request_id(self)
    }

    fn log(&mut self, req: &AcsRequest, code: String) {
        self.log.push(LogEntry {
            action: req.action.clone(),
            key_id: req.key_id.clone(),
            code,
            client_token: req.params.get("ClientToken").cloned(),
            params: req.params.clone(),
        });
    }

    /// ClientToken replay: the first answer again, or a mismatch.
    fn before_dispatch(&mut self, req: &AcsRequest) -> Option<Answer> {
        let (key, fingerprint) = replay_key(req)?;
        let (fp, first) = self.tokens.get(&key)?;
        if *fp != fingerprint {
            return Some(Answer::Error(api_err(
                400,
                "IdempotentParameterMismatch",
                "the ClientToken was used with different parameters",
            )));
        }
        Some(Answer::Body {
            body: first.clone(),
            code: "OK(replay)".into(),
        })
    }

    fn dispatch(&mut self, req: &AcsRequest) -> Result<Value, ApiErr> {
        dispatch(self, &req.action, &req.params)
    }

    /// Remembers the answer of a write with a ClientToken.
    fn after_dispatch(&mut self, req: &AcsRequest, body: &Value) {
        if let Some((key, fingerprint)) = replay_key(req) {
            self.tokens.insert(key, (fingerprint, body.clone()));
        }
    }
}

async fn dump_handler(State(state): State<Shared>) -> Response {
    let inner = state.lock().unwrap();
    json_response(
        200,
        &json!({
            "zones": inner.zones.values().collect::<Vec<_>>(),
            "records": inner.records.values().collect::<Vec<_>>(),
            "log": inner.log,
        }),
        &[],
    )
}

async fn reset_handler(State(state): State<Shared>) -> Response {
    reset_inner(&mut state.lock().unwrap());
    json_response(200, &json!({"ok": true}), &[])
}

fn reset_inner(inner: &mut Inner) {
    if let Some(seed) = inner.seed.clone() {
        inner.zones = seed.zones;
        inner.records = seed.records;
        inner.next_id = seed.next_id;
    }
    inner.log.clear();
    inner.faults.clear();
    inner.auth.nonces.clear();
    inner.tokens.clear();
    inner.clock_fixed = None;
    inner.clock_offset_secs = 0;
}

// ---- STS ----

async fn sts_handler(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params: BTreeMap<String, String> = parse_query(uri.query().unwrap_or(""))
        .map(|v| v.into_iter().collect())
        .unwrap_or_default();
    let is_form = header_str(&headers, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if is_form && let Ok(form) = parse_query(&String::from_utf8_lossy(&body)) {
        params.extend(form);
    }
    let mut inner = state.lock().unwrap();
    let rid = inner.request_id();
    let mut call = StsCall {
        method: method.to_string(),
        session_name: params.get("RoleSessionName").cloned().unwrap_or_default(),
        ok: false,
    };
    let result = sts_issue(&mut inner, &params);
    match result {
        Ok(v) => {
            call.ok = true;
            inner.sts_calls.push(call);
            let mut v = v;
            v["RequestId"] = json!(rid);
            json_response(200, &v, &[])
        }
        Err(e) => {
            inner.sts_calls.push(call);
            error_response(&rid, &e)
        }
    }
}

fn sts_issue(inner: &mut Inner, p: &BTreeMap<String, String>) -> Result<Value, ApiErr> {
    let req = |n: &str| required(p, n).map(str::to_string);
    if req("Action")? != "AssumeRoleWithOIDC" {
        return Err(api_err(
            400,
            "InvalidAction.NotFound",
            "only AssumeRoleWithOIDC",
        ));
    }
    if req("Version")? != "2015-04-01" {
        return Err(api_err(400, "InvalidVersion", "Version must be 2015-04-01"));
    }
    if !req("Format")?.eq_ignore_ascii_case("json") {
        return Err(api_err(
            400,
            "InvalidParameter.Format",
            "Format must be JSON",
        ));
    }
    let ts = req("Timestamp")?;
    let t = parse_acs_date(&ts)
        .ok_or_else(|| api_err(400, "InvalidTimeStamp.Format", "bad Timestamp"))?;
    let now = inner.now();
    if now.duration_since(t).unwrap_or_else(|e| e.duration()) > WINDOW {
        return Err(api_err(
            400,
            "InvalidTimeStamp.Expired",
            "Timestamp expired",
        ));
    }
    let role = req("RoleArn")?;
    let provider = req("OIDCProviderArn")?;
    let token = req("OIDCToken")?;
    let _session = req("RoleSessionName")?;
    if let Some(d) = p.get("DurationSeconds")
        && d.parse::<u64>().ok().is_none_or(|d| d < 900)
    {
        return Err(api_err(
            400,
            "InvalidParameter.DurationSeconds",
            "DurationSeconds must be >= 900",
        ));
    }
    let setup = inner
        .sts
        .clone()
        .ok_or_else(|| api_err(500, "InternalError", "fake STS not configured"))?;
    if role != setup.role_arn {
        return Err(api_err(
            404,
            "EntityNotExist.Role",
            "The role does not exist.",
        ));
    }
    if provider != setup.provider_arn {
        return Err(api_err(
            404,
            "EntityNotExist.OIDCProvider",
            "The OIDC provider does not exist.",
        ));
    }
    let expected = std::fs::read_to_string(&setup.token_file).unwrap_or_default();
    if expected.trim().is_empty() || token.trim() != expected.trim() {
        return Err(api_err(
            400,
            "AuthenticationFail.OIDCToken.Invalid",
            "The OIDC token is invalid.",
        ));
    }
    let (id, secret, tok) = (
        format!("STS.{}", inner.random_hex(20)),
        inner.random_hex(30),
        format!("CAIS{}", inner.random_hex(60)),
    );
    let exp = now + setup.lifetime;
    inner.auth.keys.insert(
        id.clone(),
        Key {
            secret: secret.clone(),
            token: Some(tok.clone()),
            expires: Some(exp),
        },
    );
    Ok(json!({
        "Credentials": {
            "AccessKeyId": id,
            "AccessKeySecret": secret,
            "SecurityToken": tok,
            "Expiration": format_acs_date(exp),
        },
        "AssumedRoleUser": {"Arn": format!("{role}/session"), "AssumedRoleId": "300:session"},
        "OIDCTokenInfo": {"Issuer": "https://oidc.example", "Subject": "system:serviceaccount:regdns:regdns"},
    }))
}

// ---- ECS metadata ----

async fn metadata_handler(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut inner = state.lock().unwrap();
    let path = uri.path().to_string();
    let token = header_str(&headers, "x-aliyun-ecs-metadata-token").map(str::to_string);
    let mut call = MetadataCall {
        path: path.clone(),
        method: method.to_string(),
        with_token: token.is_some(),
        status: 200,
    };
    let resp = metadata_respond(&mut inner, &method, &path, &headers, token);
    call.status = resp.0;
    inner.metadata_calls.push(call);
    Response::builder()
        .status(resp.0)
        .body(Body::from(resp.1))
        .unwrap()
}

fn metadata_respond(
    inner: &mut Inner,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    token: Option<String>,
) -> (u16, String) {
    let Some(setup) = inner.metadata.clone() else {
        return (404, "not found".into());
    };
    const PREFIX: &str = "/latest/meta-data/ram/security-credentials/";
    if path == "/latest/api/token" {
        if *method != Method::PUT || !setup.token_endpoint {
            return (404, "not found".into());
        }
        let ok_ttl = header_str(headers, "x-aliyun-ecs-metadata-token-ttl-seconds")
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|v| (1..=21600).contains(&v));
        if !ok_ttl {
            return (
                400,
                "missing or bad X-aliyun-ecs-metadata-token-ttl-seconds".into(),
            );
        }
        let t = inner.random_hex(40);
        inner.metadata_tokens.push(t.clone());
        return (200, t);
    }
    if *method != Method::GET {
        return (405, "method not allowed".into());
    }
    match &token {
        Some(t) if !inner.metadata_tokens.contains(t) => return (401, "invalid token".into()),
        None if setup.require_token => return (401, "token required".into()),
        _ => {}
    }
    if path == PREFIX {
        return (200, setup.role_name.clone());
    }
    let Some(role) = path.strip_prefix(PREFIX) else {
        return (404, "not found".into());
    };
    if role != setup.role_name {
        return (404, "not found".into());
    }
    if setup.broken {
        return (500, "internal error".into());
    }
    let now = inner.now();
    let exp = now + setup.lifetime;
    let (id, secret, tok) = (
        format!("STS.{}", inner.random_hex(20)),
        inner.random_hex(30),
        format!("CAIS{}", inner.random_hex(60)),
    );
    inner.auth.keys.insert(
        id.clone(),
        Key {
            secret: secret.clone(),
            token: Some(tok.clone()),
            expires: Some(exp),
        },
    );
    (
        200,
        json!({
            "Code": "Success",
            "AccessKeyId": id,
            "AccessKeySecret": secret,
            "SecurityToken": tok,
            "Expiration": format_acs_date(exp),
            "LastUpdated": format_acs_date(now),
        })
        .to_string(),
    )
}

async fn serve(router: Router) -> (SocketAddr, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (addr, format!("http://{addr}"))
}

impl FakeCloud {
    /// Starts the three fakes on loopback ports.
    pub async fn start() -> FakeCloud {
        let state: Shared = Arc::new(Mutex::new(Inner {
            clock_fixed: None,
            clock_offset_secs: 0,
            auth: Verifier::new("2018-01-01"),
            zones: BTreeMap::new(),
            records: BTreeMap::new(),
            next_id: 100_000,
            tokens: HashMap::new(),
            faults: Faults::default(),
            log: Vec::new(),
            seed: None,
            sts: None,
            sts_calls: Vec::new(),
            metadata: None,
            metadata_tokens: Vec::new(),
            metadata_calls: Vec::new(),
            counter: 0,
        }));
        let pvtz = Router::new()
            .route("/_fake/dump", get(dump_handler))
            .route("/_fake/reset", post(reset_handler))
            .fallback(acs_gateway::handler::<Inner>)
            .with_state(state.clone());
        let sts = Router::new()
            .fallback(sts_handler)
            .with_state(state.clone());
        let md = Router::new()
            .fallback(metadata_handler)
            .with_state(state.clone());
        let (pvtz_addr, pvtz_endpoint) = serve(pvtz).await;
        let (_, sts_endpoint) = serve(sts).await;
        let (_, metadata_endpoint) = serve(md).await;
        FakeCloud {
            state,
            pvtz_endpoint,
            sts_endpoint,
            metadata_endpoint,
            pvtz_addr,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// A long-lived AccessKey.
    pub fn add_key(&self, id: &str, secret: &str) {
        self.with(|i| {
            i.auth.keys.insert(
                id.into(),
                Key {
                    secret: secret.into(),
                    token: None,
                    expires: None,
                },
            )
        });
    }

    /// An STS key that requires `token`.
    pub fn add_sts_key(&self, id: &str, secret: &str, token: &str, expires: Option<SystemTime>) {
        self.with(|i| {
            i.auth.keys.insert(
                id.into(),
                Key {
                    secret: secret.into(),
                    token: Some(token.into()),
                    expires,
                },
            )
        });
    }

    /// Makes a key expire now (STS) or disappear (plain).
    pub fn expire_key(&self, id: &str) {
        self.with(|i| {
            let now = i.now();
            if let Some(k) = i.auth.keys.get_mut(id) {
                if k.token.is_some() {
                    k.expires = Some(now - Duration::from_secs(1));
                } else {
                    i.auth.keys.remove(id);
                }
            }
        });
    }

    pub fn add_zone(&self, zone_id: &str, name: &str, vpcs: &[(&str, &str)]) {
        self.with(|i| {
            i.zones.insert(
                zone_id.into(),
                FakeZone {
                    zone_id: zone_id.into(),
                    zone_name: name.into(),
                    vpcs: vpcs
                        .iter()
                        .map(|(r, v)| (r.to_string(), v.to_string()))
                        .collect(),
                    proxy_pattern: "ZONE".into(),
                },
            )
        });
    }

    /// Sets a zone's `ProxyPattern` (`ZONE` or `RECORD`), as `SetProxyPattern` does.
    pub fn set_proxy_pattern(&self, zone_id: &str, pattern: &str) {
        self.with(|i| {
            if let Some(z) = i.zones.get_mut(zone_id) {
                z.proxy_pattern = pattern.into();
            }
        });
    }

    /// Seeds a record (bypassing the API rules); returns its id.
    pub fn add_record(&self, zone_id: &str, rr: &str, rtype: &str, value: &str, ttl: u32) -> u64 {
        let id = self.with(|i| i.next_id);
        self.add_record_with_id(id, zone_id, rr, rtype, value, ttl);
        id
    }

    pub fn add_record_with_id(
        &self,
        id: u64,
        zone_id: &str,
        rr: &str,
        rtype: &str,
        value: &str,
        ttl: u32,
    ) {
        self.with(|i| {
            let ts = now_ms(i.now());
            i.records.insert(
                id,
                FakeRecord {
                    record_id: id,
                    zone_id: zone_id.into(),
                    rr: rr.into(),
                    rtype: rtype.into(),
                    value: value.into(),
                    ttl,
                    priority: if rtype == "MX" { Some(10) } else { None },
                    weight: 1,
                    line: "default".into(),
                    status: "ENABLE".into(),
                    remark: String::new(),
                    create_ts: ts,
                    update_ts: ts,
                },
            );
            if id >= i.next_id {
                i.next_id = id + 1;
            }
        });
    }

    /// Records of a zone, by id.
    pub fn records(&self, zone_id: &str) -> Vec<FakeRecord> {
        self.with(|i| {
            i.records
                .values()
                .filter(|r| r.zone_id == zone_id)
                .cloned()
                .collect()
        })
    }

    /// `(type, value, ttl)` of the records at `rr`, sorted.
    pub fn answers(&self, zone_id: &str, rr: &str) -> Vec<(String, String, u32)> {
        let mut v: Vec<_> = self
            .records(zone_id)
            .into_iter()
            .filter(|r| r.rr == rr)
            .map(|r| (r.rtype, r.value, r.ttl))
            .collect();
        v.sort();
        v
    }

    /// Remembers the current zones and records as what [`reset`](Self::reset) restores.
    pub fn save_seed(&self) {
        self.with(|i| {
            i.seed = Some(Seed {
                zones: i.zones.clone(),
                records: i.records.clone(),
                next_id: i.next_id,
            })
        });
    }

    /// Back to the seed; clears log, faults, nonces, tokens and the clock setting.
    pub fn reset(&self) {
        self.with(reset_inner);
    }

    pub fn set_clock(&self, t: SystemTime) {
        self.with(|i| i.clock_fixed = Some(t));
    }

    pub fn set_clock_offset(&self, secs: i64) {
        self.with(|i| {
            i.clock_fixed = None;
            i.clock_offset_secs = secs;
        });
    }

    pub fn now(&self) -> SystemTime {
        self.with(|i| i.now())
    }

    pub fn forget_nonces(&self) {
        self.with(|i| i.auth.nonces.clear());
    }

    /// The next `count` authenticated calls (of `actions`, or any when empty) get `kind`.
    pub fn inject(&self, kind: FaultKind, count: u32, actions: &[&str]) {
        self.with(|i| i.faults.push(kind, count, actions));
    }

    pub fn clear_faults(&self) {
        self.with(|i| i.faults.clear());
    }

    pub fn log(&self) -> Vec<LogEntry> {
        self.with(|i| i.log.clone())
    }

    pub fn clear_log(&self) {
        self.with(|i| i.log.clear());
    }

    /// Log entries of one action.
    pub fn calls(&self, action: &str) -> Vec<LogEntry> {
        self.log()
            .into_iter()
            .filter(|e| e.action == action)
            .collect()
    }

    pub fn configure_sts(&self, setup: StsSetup) {
        self.with(|i| i.sts = Some(setup));
    }

    pub fn sts_calls(&self) -> Vec<StsCall> {
        self.with(|i| i.sts_calls.clone())
    }

    pub fn configure_metadata(&self, setup: MetadataSetup) {
        self.with(|i| i.metadata = Some(setup));
    }

    pub fn update_metadata(&self, f: impl FnOnce(&mut MetadataSetup)) {
        self.with(|i| f(i.metadata.as_mut().expect("metadata configured")));
    }

    pub fn metadata_calls(&self) -> Vec<MetadataCall> {
        self.with(|i| i.metadata_calls.clone())
    }
}
