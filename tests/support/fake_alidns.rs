//! A strict fake of Alibaba Cloud DNS (Alidns, API 2015-01-09), per `docs/providers/alibaba-cloud-api.md#10-test-fakes`:
//!
//! - V3 signatures, timestamp window, nonce reuse and STS tokens verified by the SAME
//!   [`Verifier`](super::acs_verify::Verifier) as the PrivateZone fake.
//! - Domains with an edition minimum TTL; records with the service's rules: `RR` relative to
//!   the domain, `Line`, CNAME exclusivity per RR (`DomainRecordConflict`), identical
//!   records and no-op updates (`DomainRecordDuplicate`), unknown ids
//!   (`DomainRecordNotBelongToUser`), TTL range (`QuotaExceeded.TTL`), unknown domains
//!   (`InvalidDomainName.NoExist`), paging (PageSize ≤ 100), string record ids, `Lang=en`.
//! - Fault injection after authentication ([`FaultKind`], shared with the PrivateZone fake).
//! - A request log and record dump for assertions.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use serde_json::{Value, json};

pub use super::acs_faults::FaultKind;
use super::acs_faults::Faults;
use super::acs_gateway::{self, AcsFake, AcsRequest};
use super::acs_verify::{ApiErr, Key, Verifier, api_err};

/// One record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub id: String,
    pub domain: String,
    pub rr: String,
    pub rtype: String,
    pub value: String,
    pub ttl: u32,
    pub line: String,
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub action: String,
    /// `OK`, an error code, or `DROPPED`.
    pub code: String,
    pub params: BTreeMap<String, String>,
}

struct Inner {
    auth: Verifier,
    /// domain → edition minimum TTL.
    domains: BTreeMap<String, u32>,
    records: Vec<Rec>,
    next_id: u64,
    faults: Faults,
    log: Vec<LogEntry>,
    counter: u64,
}

type Shared = Arc<Mutex<Inner>>;

/// The running fake.
pub struct FakeAlidns {
    state: Shared,
    pub endpoint: String,
}

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

fn record_json(r: &Rec) -> Value {
    json!({
        "RecordId": r.id, "DomainName": r.domain, "RR": r.rr, "Type": r.rtype,
        "Value": r.value, "TTL": r.ttl, "Line": r.line, "Status": "ENABLE",
        "Locked": false, "Weight": 1,
    })
}

/// The record fields of an Add/Update, validated.
fn input(
    i: &Inner,
    domain: &str,
    p: &BTreeMap<String, String>,
) -> Result<(String, String, String, u32, String), ApiErr> {
    let rr = required(p, "RR")?.to_ascii_lowercase();
    let rtype = required(p, "Type")?.to_ascii_uppercase();
    let value = required(p, "Value")?.to_string();
    if rr.ends_with('.') || rr.contains(char::is_whitespace) {
        return Err(api_err(
            400,
            "SubDomainInvalid.Value",
            "The DNS record is invalid or in the wrong format.",
        ));
    }
    let bad = || {
        api_err(
            400,
            "InvalidParameter.Value",
            format!("invalid {rtype} value {value:?}"),
        )
    };
    let value = match rtype.as_str() {
        "A" => value.parse::<Ipv4Addr>().map_err(|_| bad())?.to_string(),
        "AAAA" => value.parse::<Ipv6Addr>().map_err(|_| bad())?.to_string(),
        "CNAME" | "TXT" | "MX" | "NS" => {
            if rtype == "CNAME" && value.ends_with('.') {
                // The service stores names without the final dot; accept and strip.
                value.trim_end_matches('.').to_string()
            } else {
                value
            }
        }
        _ => {
            return Err(api_err(
                400,
                "InvalidParameter.Type",
                format!("invalid Type {rtype:?}"),
            ));
        }
    };
    let min = i.domains.get(domain).copied().unwrap_or(600);
    let ttl = match p.get("TTL") {
        None => 600,
        Some(t) => t
            .parse::<u32>()
            .map_err(|_| api_err(400, "InvalidParameter.TTL", "bad TTL"))?,
    };
    if ttl < min || ttl > 86400 {
        return Err(api_err(
            400,
            "QuotaExceeded.TTL",
            format!(
                "The specified TTL is invalid. A valid TTL must be in the range of {min} to 86400."
            ),
        ));
    }
    let line = p.get("Line").cloned().unwrap_or_else(|| "default".into());
    Ok((rr, rtype, value, ttl, line))
}

/// CNAME exclusivity at one RR (all lines), ignoring the record `except`.
fn conflict(
    i: &Inner,
    domain: &str,
    rr: &str,
    rtype: &str,
    except: Option<&str>,
) -> Result<(), ApiErr> {
    let others: Vec<&Rec> = i
        .records
        .iter()
        .filter(|r| r.domain == domain && r.rr == rr && Some(r.id.as_str()) != except)
        .collect();
    let clash = if rtype == "CNAME" {
        !others.is_empty()
    } else {
        others.iter().any(|r| r.rtype == "CNAME")
    };
    if clash {
        return Err(api_err(
            400,
            "DomainRecordConflict",
            "The DNS record is conflict with other records.",
        ));
    }
    Ok(())
}

fn handle(i: &mut Inner, action: &str, p: &BTreeMap<String, String>) -> Result<Value, ApiErr> {
    if p.get("Lang").map(String::as_str) != Some("en") {
        return Err(api_err(400, "Fake.LangMissing", "regdns must send Lang=en"));
    }
    let domain_of = |i: &Inner, d: &str| -> Result<String, ApiErr> {
        let d = d.trim_end_matches('.').to_ascii_lowercase();
        if i.domains.contains_key(&d) {
            Ok(d)
        } else {
            Err(api_err(
                400,
                "InvalidDomainName.NoExist",
                "The specified domain name does not exist. Refresh the page and try again.",
            ))
        }
    };
    match action {
        "DescribeDomainInfo" => {
            let d = domain_of(i, required(p, "DomainName")?)?;
            let mut v = json!({"DomainName": d, "VersionName": "Free", "VersionCode": "mianfei"});
            if p.get("NeedDetailAttributes").map(String::as_str) == Some("true") {
                v["MinTtl"] = json!(i.domains[&d]);
            }
            Ok(v)
        }
        "DescribeSubDomainRecords" => {
            let sub = required(p, "SubDomain")?
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let d = domain_of(i, p.get("DomainName").map(String::as_str).unwrap_or(""))?;
            let rr = if sub == d {
                "@".to_string()
            } else {
                sub.strip_suffix(&format!(".{d}"))
                    .ok_or_else(|| {
                        api_err(400, "SubDomainInvalid.Value", "SubDomain not in DomainName")
                    })?
                    .to_string()
            };
            let size: usize = p
                .get("PageSize")
                .map(|s| s.parse().unwrap_or(0))
                .unwrap_or(20);
            if size == 0 || size > 100 {
                return Err(api_err(
                    400,
                    "InvalidParameter.PageSize",
                    "PageSize must be 1..=100",
                ));
            }
            let page: usize = p
                .get("PageNumber")
                .map(|s| s.parse().unwrap_or(0))
                .unwrap_or(1);
            if page == 0 {
                return Err(api_err(
                    400,
                    "InvalidParameter.PageNumber",
                    "PageNumber starts at 1",
                ));
            }
            // Newest first.
            let all: Vec<Value> = i
                .records
                .iter()
                .rev()
                .filter(|r| r.domain == d && r.rr == rr)
                .map(record_json)
                .collect();
            let items: Vec<Value> = all
                .iter()
                .skip((page - 1) * size)
                .take(size)
                .cloned()
                .collect();
            Ok(
                json!({"TotalCount": all.len(), "PageNumber": page, "PageSize": size,
                      "DomainRecords": {"Record": items}}),
            )
        }
        "AddDomainRecord" => {
            let d = domain_of(i, required(p, "DomainName")?)?;
            let (rr, rtype, value, ttl, line) = input(i, &d, p)?;
            if i.records.iter().any(|r| {
                r.domain == d
                    && r.rr == rr
                    && r.rtype == rtype
                    && r.value.eq_ignore_ascii_case(&value)
                    && r.line == line
            }) {
                return Err(api_err(
                    400,
                    "DomainRecordDuplicate",
                    "The DNS record already exists.",
                ));
            }
            conflict(i, &d, &rr, &rtype, None)?;
            i.next_id += 1;
            let id = format!("{}", 900_000_000_000_000u64 + i.next_id);
            i.records.push(Rec {
                id: id.clone(),
                domain: d,
                rr,
                rtype,
                value,
                ttl,
                line,
            });
            Ok(json!({"RecordId": id}))
        }
        "UpdateDomainRecord" => {
            let id = required(p, "RecordId")?.to_string();
            let Some(pos) = i.records.iter().position(|r| r.id == id) else {
                return Err(api_err(
                    400,
                    "DomainRecordNotBelongToUser",
                    "The DNS record does not exist in your account.",
                ));
            };
            let d = i.records[pos].domain.clone();
            let (rr, rtype, value, ttl, line) = input(i, &d, p)?;
            let cur = &i.records[pos];
            if cur.rr == rr
                && cur.rtype == rtype
                && cur.value.eq_ignore_ascii_case(&value)
                && cur.line == line
                && cur.ttl == ttl
            {
                return Err(api_err(
                    400,
                    "DomainRecordDuplicate",
                    "The DNS record already exists.",
                ));
            }
            if i.records.iter().any(|r| {
                r.id != id
                    && r.domain == d
                    && r.rr == rr
                    && r.rtype == rtype
                    && r.value.eq_ignore_ascii_case(&value)
                    && r.line == line
            }) {
                return Err(api_err(
                    400,
                    "DomainRecordDuplicate",
                    "The DNS record already exists.",
                ));
            }
            conflict(i, &d, &rr, &rtype, Some(&id))?;
            i.records[pos] = Rec {
                id: id.clone(),
                domain: d,
                rr,
                rtype,
                value,
                ttl,
                line,
            };
            Ok(json!({"RecordId": id}))
        }
        "DeleteDomainRecord" => {
            let id = required(p, "RecordId")?.to_string();
            let n = i.records.len();
            i.records.retain(|r| r.id != id);
            if i.records.len() == n {
                return Err(api_err(
                    400,
                    "DomainRecordNotBelongToUser",
                    "The DNS record does not exist in your account.",
                ));
            }
            Ok(json!({"RecordId": id}))
        }
        other => Err(api_err(
            400,
            "InvalidAction.NotFound",
            format!("unknown action {other:?}"),
        )),
    }
}

impl AcsFake for Inner {
    const HOST_ID: &'static str = "alidns.aliyuncs.com";
    const COMMITTED_AND_DROPPED: &'static str = "DROPPED";
    const ONE_ID_PER_CALL: bool = false;

    fn verifier(&mut self) -> &mut Verifier {
        &mut self.auth
    }

    fn faults(&mut self) -> &mut Faults {
        &mut self.faults
    }

    /// The real clock.
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn request_id(&mut self) -> String {
        self.counter += 1;
        format!(
            "ALIDNS-{:08X}-0000-4000-8000-{:012X}",
            self.counter, self.counter
        )
    }

    fn log(&mut self, req: &AcsRequest, code: String) {
        self.log.push(LogEntry {
            action: req.action.clone(),
            code,
            params: req.params.clone(),
        });
    }

    fn dispatch(&mut self, req: &AcsRequest) -> Result<Value, ApiErr> {
        handle(self, &req.action, &req.params)
    }
}

impl FakeAlidns {
    /// Starts the fake on a loopback port.
    pub async fn start() -> FakeAlidns {
        let state: Shared = Arc::new(Mutex::new(Inner {
            auth: Verifier::new("2015-01-09"),
            domains: BTreeMap::new(),
            records: Vec::new(),
            next_id: 0,
            faults: Faults::default(),
            log: Vec::new(),
            counter: 0,
        }));
        let router = Router::new()
            .fallback(acs_gateway::handler::<Inner>)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeAlidns {
            state,
            endpoint: format!("http://{addr}"),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    pub fn add_key(&self, id: &str, secret: &str) {
        self.with(|i| {
            i.auth.keys.insert(
                id.into(),
                Key {
                    secret: secret.into(),
                    token: None,
                    expires: None,
                },
            );
        })
    }

    /// A domain of the account whose edition allows TTLs from `min_ttl`.
    pub fn add_domain(&self, domain: &str, min_ttl: u32) {
        self.with(|i| {
            i.domains.insert(domain.into(), min_ttl);
        })
    }

    /// Adds a record directly (a manual edit); returns its id.
    pub fn add_record(
        &self,
        domain: &str,
        rr: &str,
        rtype: &str,
        value: &str,
        ttl: u32,
        line: &str,
    ) -> String {
        self.with(|i| {
            i.next_id += 1;
            let id = format!("{}", 900_000_000_000_000u64 + i.next_id);
            i.records.push(Rec {
                id: id.clone(),
                domain: domain.into(),
                rr: rr.into(),
                rtype: rtype.into(),
                value: value.into(),
                ttl,
                line: line.into(),
            });
            id
        })
    }

    /// Replaces the value of a record (a manual edit).
    pub fn edit_record(&self, id: &str, rtype: &str, value: &str) {
        self.with(|i| {
            let r = i.records.iter_mut().find(|r| r.id == id).expect("record");
            r.rtype = rtype.into();
            r.value = value.into();
        })
    }

    pub fn records(&self, domain: &str) -> Vec<Rec> {
        self.with(|i| {
            i.records
                .iter()
                .filter(|r| r.domain == domain)
                .cloned()
                .collect()
        })
    }

    /// `(type, value, ttl)` at `rr` on the default line, sorted.
    pub fn answers(&self, domain: &str, rr: &str) -> Vec<(String, String, u32)> {
        let mut v: Vec<_> = self
            .records(domain)
            .into_iter()
            .filter(|r| r.rr == rr && r.line == "default")
            .map(|r| (r.rtype, r.value, r.ttl))
            .collect();
        v.sort();
        v
    }

    /// The next `count` calls (of `actions`, or any) get `kind`.
    pub fn inject(&self, kind: FaultKind, count: u32, actions: &[&str]) {
        self.with(|i| i.faults.push(kind, count, actions))
    }

    pub fn clear_faults(&self) {
        self.with(|i| i.faults.clear())
    }

    pub fn log(&self) -> Vec<LogEntry> {
        self.with(|i| i.log.clone())
    }

    pub fn clear_log(&self) {
        self.with(|i| i.log.clear())
    }

    /// `"Action CODE"` of every write call, in order.
    pub fn writes(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|e| !e.action.starts_with("Describe"))
            .map(|e| format!("{} {}", e.action, e.code))
            .collect()
    }
}
