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

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::json;

use super::acs_verify::{
    self, ApiErr, Key, Verifier, api_err, header_str, json_response, query_map,
};

/// The fake's clock (tests share one with the client to move time).
pub type FakeClock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

const HOST_ID: &str = "cr.cn-hangzhou.aliyuncs.com";
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

/// An error injected after authentication.
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
    faults: VecDeque<Fault>,
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

fn answer(
    inner: &mut Inner,
    method: &Method,
    uri: &Uri,
    action: &str,
    key_id: &str,
    params: &BTreeMap<String, String>,
) -> Result<serde_json::Value, ApiErr> {
    if *method != Method::POST || uri.path() != "/" {
        return Err(api_err(404, "InvalidAction.NotFound", "use POST / (RPC)"));
    }
    if action != "GetAuthorizationToken" {
        return Err(api_err(
            404,
            "InvalidAction.NotFound",
            format!("Specified api {action} is not found"),
        ));
    }
    if let Some(k) = params.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Err(api_err(
            400,
            "InvalidParameter",
            format!("unexpected parameter {k}"),
        ));
    }
    if let Some(fault) = inner.faults.pop_front() {
        return Err(match fault {
            Fault::Throttle => api_err(
                400,
                "Throttling.User",
                "Request was denied due to user flow control.",
            ),
            Fault::InternalError => api_err(
                500,
                "InternalError",
                "The request processing has failed due to some unknown error.",
            ),
            Fault::ServiceUnavailable => api_err(
                503,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server.",
            ),
        });
    }
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

async fn handler(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let action = header_str(&headers, "x-acs-action")
        .unwrap_or("")
        .to_string();
    let params = query_map(&uri);
    let mut inner = state.lock().unwrap();
    inner.counter += 1;
    let rid = format!("FAKE-CR-{:08X}", inner.counter);
    let mut call = CrCall {
        action: action.clone(),
        key_id: None,
        code: String::new(),
        params: params.clone(),
        with_security_token: headers.contains_key("x-acs-security-token"),
    };
    let now = (inner.clock)();
    let result = match inner.auth.authenticate(now, &method, &uri, &headers, &body) {
        Err((kid, e)) => {
            call.key_id = kid;
            Err(e)
        }
        Ok(kid) => {
            call.key_id = Some(kid.clone());
            answer(&mut inner, &method, &uri, &action, &kid, &params)
        }
    };
    match result {
        Ok(mut v) => {
            v["RequestId"] = json!(rid);
            call.code = "OK".into();
            inner.log.push(call);
            json_response(200, &v, &[])
        }
        Err(e) => {
            call.code = e.code.clone();
            inner.log.push(call);
            acs_verify::error_response(&rid, HOST_ID, &e)
        }
    }
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
            faults: VecDeque::new(),
            log: Vec::new(),
            issued: Vec::new(),
            counter: 0,
        }));
        let router = Router::new().fallback(handler).with_state(state.clone());
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
        self.with(|i| i.faults.extend(faults.iter().copied()));
    }

    pub fn calls(&self) -> Vec<CrCall> {
        self.with(|i| i.log.clone())
    }

    /// Tokens of the successful logins issued, in order.
    pub fn issued(&self) -> Vec<String> {
        self.with(|i| i.issued.clone())
    }
}
