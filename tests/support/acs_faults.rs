//! Faults the Alibaba Cloud API fakes (PrivateZone, Alidns, Container Registry) inject after
//! authentication, as the real gateway fails: throttling, 5xx, dropped connections, a drop
//! after the change was committed, latency. One queue per fake, drawn by the shared gateway
//! (`acs_gateway`); the same kinds and the same error bodies for all.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;

use super::acs_verify::{ApiErr, api_err};

/// What an injected fault does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// `Throttling.User` with this status and optional `x-acs-retry-after` (ms).
    Throttle {
        status: u16,
        retry_after_ms: Option<u64>,
    },
    /// 500 `InternalError`.
    InternalError,
    /// 503 `ServiceUnavailable`.
    ServiceUnavailable,
    /// Connection dropped before the request is executed.
    Drop,
    /// The request is executed, then the connection is dropped (the client cannot know).
    DropAfterCommit,
    /// Delay, then normal handling.
    Latency(Duration),
}

#[derive(Clone, Debug)]
struct Fault {
    kind: FaultKind,
    remaining: u32,
    actions: Option<Vec<String>>,
}

/// Faults waiting for the calls they apply to.
#[derive(Debug, Default)]
pub struct Faults(Vec<Fault>);

impl Faults {
    /// The next `count` calls (of `actions`, or any when empty) get `kind`.
    pub fn push(&mut self, kind: FaultKind, count: u32, actions: &[&str]) {
        self.0.push(Fault {
            kind,
            remaining: count,
            actions: if actions.is_empty() {
                None
            } else {
                Some(actions.iter().map(|a| a.to_string()).collect())
            },
        });
    }

    /// Forgets every fault.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The fault for this call of `action`, if one is waiting (counted down).
    pub fn take(&mut self, action: &str) -> Option<FaultKind> {
        let i = self.0.iter().position(|f| {
            f.remaining > 0
                && f.actions
                    .as_ref()
                    .is_none_or(|a| a.iter().any(|x| x == action))
        })?;
        self.0[i].remaining -= 1;
        let kind = self.0[i].kind.clone();
        self.0.retain(|f| f.remaining > 0);
        Some(kind)
    }
}

/// The error the gateway answers for a fault that fails the call before it runs; `None` for
/// the faults that do not answer an error (a dropped connection, latency, a drop after the
/// commit).
pub fn gateway_error(kind: &FaultKind) -> Option<ApiErr> {
    match kind {
        FaultKind::Throttle {
            status,
            retry_after_ms,
        } => {
            let mut e = api_err(
                *status,
                "Throttling.User",
                "Request was denied due to user flow control.",
            );
            if let Some(ms) = retry_after_ms {
                e.headers.push(("x-acs-retry-after".into(), ms.to_string()));
            }
            Some(e)
        }
        FaultKind::InternalError => Some(api_err(
            500,
            "InternalError",
            "The request processing has failed due to some unknown error.",
        )),
        FaultKind::ServiceUnavailable => Some(api_err(
            503,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server.",
        )),
        FaultKind::Drop | FaultKind::DropAfterCommit | FaultKind::Latency(_) => None,
    }
}

/// A response whose body fails at once: hyper aborts the connection.
pub fn dropped_connection() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fake: connection dropped",
        ))
    });
    Response::builder()
        .status(200)
        .body(Body::from_stream(stream))
        .unwrap()
}
