//! The request preamble the strict fakes of Alibaba Cloud RPC services (`fake_pvtz`,
//! `fake_alidns`, `fake_cr`) share, in the real gateway's order: verify the V3 signature
//! ([`Verifier`]), the fake's route checks, a queued fault ([`Faults`]), the fake's hook
//! before the dispatch, then the dispatch `action → handler`. Every call is logged once,
//! with how it ended; each fake provides only what differs through [`AcsFake`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::acs_faults::{FaultKind, Faults, dropped_connection, gateway_error};
use super::acs_verify::{ApiErr, Verifier, error_response, header_str, json_response, query_map};

/// One call as the gateway parsed it.
pub struct AcsRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `x-acs-action` (empty when absent).
    pub action: String,
    /// The query (empty when malformed).
    pub params: BTreeMap<String, String>,
    /// The AccessKey id: set once verified, and on the verification failures that name it.
    pub key_id: Option<String>,
}

/// What the hook before the dispatch answers instead of dispatching.
pub enum Answer {
    /// HTTP 200 with this body as it is (no new `RequestId`), logged as `code`.
    Body { body: Value, code: String },
    /// The error body.
    Error(ApiErr),
}

/// What one fake adds to the shared gateway.
pub trait AcsFake: Send + 'static {
    /// `HostId` of its error bodies.
    const HOST_ID: &'static str;
    /// The log code of a call executed, then dropped (`FaultKind::DropAfterCommit`).
    const COMMITTED_AND_DROPPED: &'static str;
    /// `true`: the request id drawn when the call arrives answers it whatever the step;
    /// `false`: the fault's error and the dispatch each draw a new one.
    const ONE_ID_PER_CALL: bool;

    fn verifier(&mut self) -> &mut Verifier;
    fn faults(&mut self) -> &mut Faults;
    /// The fake's clock, for the timestamp window.
    fn now(&self) -> SystemTime;
    /// A new `RequestId`.
    fn request_id(&mut self) -> String;
    /// Records a call that ended with `code` (`OK`, an error code, `DROPPED`, ...).
    fn log(&mut self, req: &AcsRequest, code: String);

    /// Checks of a verified call before the fault step (method, path, known action).
    fn route(&mut self, _req: &AcsRequest) -> Result<(), ApiErr> {
        Ok(())
    }
    /// Between the fault step and the dispatch: `Some` answers instead of dispatching.
    fn before_dispatch(&mut self, _req: &AcsRequest) -> Option<Answer> {
        None
    }
    /// The action's handler: the body of the answer (without `RequestId`) or the error.
    fn dispatch(&mut self, req: &AcsRequest) -> Result<Value, ApiErr>;
    /// After a successful dispatch, with the body answered (`RequestId` included).
    fn after_dispatch(&mut self, _req: &AcsRequest, _body: &Value) {}
}

fn reject<F: AcsFake>(fake: &mut F, req: &AcsRequest, rid: &str, e: ApiErr) -> Response {
    fake.log(req, e.code.clone());
    error_response(rid, F::HOST_ID, &e)
}

fn step_id<F: AcsFake>(fake: &mut F, first: String) -> String {
    if F::ONE_ID_PER_CALL {
        first
    } else {
        fake.request_id()
    }
}

/// The axum handler of a fake's RPC listener.
pub async fn handler<F: AcsFake>(
    State(state): State<Arc<Mutex<F>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let action = header_str(&headers, "x-acs-action")
        .unwrap_or("")
        .to_string();
    let params = query_map(&uri);
    let mut req = AcsRequest {
        method,
        uri,
        headers,
        body,
        action,
        params,
        key_id: None,
    };
    // Verification, the route, then faults, as the real gateway.
    let (first_id, fault) = {
        let mut fake = state.lock().unwrap();
        let rid = fake.request_id();
        let now = fake.now();
        let checked =
            match fake
                .verifier()
                .authenticate(now, &req.method, &req.uri, &req.headers, &req.body)
            {
                Err((kid, e)) => {
                    req.key_id = kid;
                    Err(e)
                }
                Ok(kid) => {
                    req.key_id = Some(kid);
                    fake.route(&req)
                }
            };
        if let Err(e) = checked {
            return reject(&mut *fake, &req, &rid, e);
        }
        let fault = fake.faults().take(&req.action);
        (rid, fault)
    };
    let mut drop_after = false;
    match fault {
        None => {}
        Some(FaultKind::Latency(d)) => tokio::time::sleep(d).await,
        Some(FaultKind::DropAfterCommit) => drop_after = true,
        Some(kind) => {
            let mut fake = state.lock().unwrap();
            let rid = step_id(&mut *fake, first_id);
            let Some(e) = gateway_error(&kind) else {
                fake.log(&req, "DROPPED".into());
                return dropped_connection();
            };
            return reject(&mut *fake, &req, &rid, e);
        }
    }
    let mut fake = state.lock().unwrap();
    let rid = step_id(&mut *fake, first_id);
    match fake.before_dispatch(&req) {
        None => {}
        Some(Answer::Body { body, code }) => {
            fake.log(&req, code);
            return json_response(200, &body, &[]);
        }
        Some(Answer::Error(e)) => return reject(&mut *fake, &req, &rid, e),
    }
    match fake.dispatch(&req) {
        Ok(mut v) => {
            v["RequestId"] = json!(rid);
            fake.after_dispatch(&req, &v);
            if drop_after {
                fake.log(&req, F::COMMITTED_AND_DROPPED.into());
                return dropped_connection();
            }
            fake.log(&req, "OK".into());
            json_response(200, &v, &[])
        }
        Err(e) => reject(&mut *fake, &req, &rid, e),
    }
}
