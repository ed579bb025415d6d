//! A strict fake of Container Registry `GetAuthorizationToken` (API 2018-12-01,
//! `docs/providers/alibaba-cloud-api.md#9-container-registry-getauthorizationtoken`) on plain HTTP, loopback.
//!
//! - Authentication by the shared [`Verifier`](super::acs_verify::Verifier): V3 signature,
//!   timestamp window, nonce reuse, STS tokens; `x-acs-version` must be `2018-12-01`.
//! - Only `POST /` with the action `GetAuthorizationToken`; only the documented parameters
//!   (`InstanceId`, `ExpiresInHours`, `RegionId`): a `Lang` is refused.
//! - Answers the documented JSON (`IsSuccess`, `Code`, `TempUsername`, `AuthorizationToken`
//!   with a `:` in it, `ExpireTime` in ms = clock + lifetime), or a switchable bad answer.
//! - Denied keys (`Forbidden.RAM`), unknown instances, and injected throttling / 5xx after
//!   authentication. A request log for assertions.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::Method;
use serde_json::json;

use super::acs_faults::{FaultKind, Faults};
use super::acs_gateway::{self, AcsFake, AcsRequest};
use super::acs_verify::{ApiErr, Key, Verifier, api_err};

/// The fake's clock (tests share one with the client to move time).
pub type FakeClock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

const PARAMS: [&str; 3] = ["InstanceId", "ExpiresInHours", "RegionId"];

/// What a successful call answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The documented success body.
    Normal,
    /// HTTP 200 with `IsSuccess: false`.
    NotSuccess,
    /// HTTP 200, `IsSuccess: true`, empty `AuthorizationToken`.
    EmptyToken,
    /// HTTP 200 with an `ExpireTime` one minute in the past.
    Expired,
}

/// An error injected after authentication (and the route checks): one
/// [`FaultKind`] of the shared gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 400 `Throttling.User`.
    Throttle,
    /// 500 `InternalError`.
    InternalError,
    /// 503 `ServiceUnavailable`.
    ServiceUnavailable,
}

/// One request as the fake saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrCall {
    pub action: String,
    pub key_id: Option<String>,
    /// `OK` or the error code answered.
    pub code: String,
    pub params: BTreeMap<String, String>,
    pub with_security_token: bool,
}

struct Inner {
    auth: Verifier,
    clock: FakeClock,
    instances: BTreeSet<String>,
    denied: HashSet<String>,
    lifetime: Duration,
    reply: Reply,
    faults: Faults,
    log: Vec<CrCall>,
    issued: Vec<String>,
    counter: u64,
}

type Shared = Arc<Mutex<Inner>>;

/// Handle to the running fake. The server stops when the test's runtime ends.
#[derive(Clone)]
pub struct FakeCr {
    state: Shared,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub addr: SocketAddr,
}

fn random_hex(n: usize) -> String {
    let mut s = String::new();
    while s.len() < n {
        let b: [u8; 16] = rand::random();
        s.push_str(&hex::encode(b));
    }
    s.truncate(n);
    s
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

impl From<Fault> for FaultKind {
    fn from(f: Fault) -> FaultKind {
        match f {
            Fault::Throttle => FaultKind::Throttle {
                status: 400,
                retry_after_ms: None,
            },
            Fault::InternalError => FaultKind::InternalError,
            Fault::ServiceUnavailable => FaultKind::ServiceUnavailable,
        }
    }
}

impl AcsFake for Inner {
    const HOST_ID: &'static str = "cr.cn-hangzhou.aliyuncs.com";
    /// Not used: [`Fault`] has no drop.
    const COMMITTED_AND_DROPPED: &'static str = "OK+DROPPED";
    const ONE_ID_PER_CALL: bool = true;

    fn verifier(&mut self) -> &mut Verifier {
        &mut self.auth
    }

    fn faults(&mut self) -> &mut Faults {
        &mut self.faults
    }

    fn now(&self) -> SystemTime {
        (self.clock)()
    }

    fn request_id(&mut self) -> String {
        self.counter += 1;
        format!("FAKE-CR-{:08X}", self.counter)
    }

    fn log(&mut self, req: &AcsRequest, code: String) {
        self.log.push(CrCall {
            action: req.action.clone(),
            key_id: req.key_id.clone(),
            code,
            params: req.params.clone(),
            with_security_token: req.headers.contains_key("x-acs-security-token"),
        });
    }

    /// Only `POST /`, the one action and its documented parameters; faults come after.
    fn route(&mut self, req: &AcsRequest) -> Result<(), ApiErr> {
        if req.method != Method::POST || req.uri.path() != "/" {
            return Err(api_err(404, "InvalidAction.NotFound", "use POST / (RPC)"));
        }
        if req.action != "GetAuthorizationToken" {
            return Err(api_err(
                404,
                "InvalidAction.NotFound",
                format!("Specified api {} is not found", req.action),
            ));
        }
        if let Some(k) = req.params.keys().find(|k| !PARAMS.contains(&k.as_str())) {
            return Err(api_err(
                400,
                "InvalidParameter",
                format!("unexpected parameter {k}"),
            ));
        }
        Ok(())
    }

    fn dispatch(&mut self, req: &AcsRequest) -> Result<serde_json::Value, ApiErr> {
        answer(self, req.key_id.as_deref().unwrap_or_default(), &req.params)
    }
}

fn answer(
    inner: &mut Inner,
    key_id: &str,
    params: &BTreeMap<String, String>,
) -> Result<serde_json::Value, ApiErr> {
    if inner.denied.contains(key_id) {
        return Err(api_err(
            403,
            "Forbidden.RAM",
            "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
        ));
    }
    let instance = params
        .get("InstanceId")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            api_err(
                400,
                "MissingInstanceId",
                "InstanceId is mandatory for this action.",
            )
        })?;
    if !inner.instances.contains(instance) {
        return Err(api_err(
            404,
            "INSTANCE_NOT_EXIST",
            format!("instance {instance} does not exist"),
        ));
    }
    let now = (inner.clock)();
    let token = format!("{}:{}", random_hex(12), random_hex(40));
    let mut expire = millis(now + inner.lifetime);
    let mut body = json!({
        "IsSuccess": true,
        "Code": "success",
        "TempUsername": "temp_user_cr",
        "AuthorizationToken": token,
    });
    match inner.reply {
        Reply::Normal => inner.issued.push(token),
        Reply::NotSuccess => {
            body["IsSuccess"] = json!(false);
            body["Code"] = json!("CR_INTERNAL_ERROR");
        }
        Reply::EmptyToken => body["AuthorizationToken"] = json!(""),
        Reply::Expired => expire = millis(now - Duration::from_secs(60)),
    }
    body["ExpireTime"] = json!(expire);
    Ok(body)
}

impl FakeCr {
    /// Starts the fake on a loopback port with `clock`; issued logins last one hour.
    pub async fn start(clock: FakeClock) -> FakeCr {
        let state: Shared = Arc::new(Mutex::new(Inner {
            auth: Verifier::new("2018-12-01"),
            clock,
            instances: BTreeSet::new(),
            denied: HashSet::new(),
            lifetime: Duration::from_secs(3600),
            reply: Reply::Normal,
            faults: Faults::default(),
            log: Vec::new(),
            issued: Vec::new(),
            counter: 0,
        }));
        let router = Router::new()
            .fallback(acs_gateway::handler::<Inner>)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeCr {
            state,
            endpoint: format!("http://{addr}"),
            addr,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    pub fn add_instance(&self, id: &str) {
        self.with(|i| i.instances.insert(id.into()));
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
    pub fn add_sts_key(&self, id: &str, secret: &str, token: &str) {
        self.with(|i| {
            i.auth.keys.insert(
                id.into(),
                Key {
                    secret: secret.into(),
                    token: Some(token.into()),
                    expires: None,
                },
            )
        });
    }

    /// Calls with this key are answered `Forbidden.RAM`.
    pub fn deny(&self, key_id: &str) {
        self.with(|i| i.denied.insert(key_id.into()));
    }

    /// Lifetime of the logins issued from now on.
    pub fn set_lifetime(&self, d: Duration) {
        self.with(|i| i.lifetime = d);
    }

    pub fn set_reply(&self, r: Reply) {
        self.with(|i| i.reply = r);
    }

    /// The next authenticated calls get these faults, in order.
    pub fn inject(&self, faults: &[Fault]) {
        self.with(|i| {
            for f in faults {
                i.faults.push((*f).into(), 1, &[]);
            }
        });
    }

    pub fn calls(&self) -> Vec<CrCall> {
        self.with(|i| i.log.clone())
    }

    /// Tokens of the successful logins issued, in order.
    pub fn issued(&self) -> Vec<String> {
        self.with(|i| i.issued.clone())
    }
}
