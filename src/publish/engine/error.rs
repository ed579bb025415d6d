//! The error every provider returns, classified for the engine's retry policy: the engine
//! retries on the [`ErrorKind`], re-reads on [`PublishError::reread`], and reports the rest.
//! Never contains a secret.

use std::fmt;

pub use crate::retry::ErrorKind;

/// Who answered: names the service in messages and selects the advice on auth errors.
#[derive(Debug, PartialEq, Eq)]
pub struct Service {
    /// Service name for messages: `PrivateZone`, `Alidns`, `RFC 2136`.
    pub name: &'static str,
    /// RAM product code when the service is an Alibaba Cloud API (`pvtz`, `alidns`): auth
    /// errors then advise on the credential chain and the RAM policy; otherwise on the TSIG
    /// key and the primary's ACL.
    pub ram: Option<&'static str>,
}

/// Failures of regdns itself (no service involved).
pub static LOCAL: Service = Service {
    name: "regdns",
    ram: None,
};

/// A failed provider call (or a local failure of one binding).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct PublishError {
    /// How the engine should handle it.
    pub kind: ErrorKind,
    /// The service's code (e.g. `Throttling.User`, `NOTAUTH/BADSIG`), or a regdns code for
    /// local failures (`Transport`, `Timeout`, `InvalidResponse`, `Regdns.Credentials`,
    /// `Regdns.Conflict`).
    pub code: String,
    /// Message from the service (or a local description).
    pub message: String,
    /// `RequestId` (APIs) or DNS message id, when the service answered.
    pub request_id: Option<Box<str>>,
    /// HTTP status, when the service answered over HTTP.
    pub http_status: Option<u16>,
    /// The action, e.g. `UpdateZoneRecord` or `UPDATE` (empty for local failures).
    pub action: String,
    /// How many attempts were made (set by the retry loop; 0 when not retried).
    pub attempts: u16,
    /// The service that failed.
    pub service: &'static Service,
    /// The change may or may not have happened, or the records changed under us ("already
    /// exists", "no such record", a failed DNS UPDATE prerequisite): re-read and re-plan.
    pub reread: bool,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.action.is_empty() {
            write!(f, "{} {} failed: ", self.service.name, self.action)?;
        }
        write!(f, "{}: {}", self.code, self.message)?;
        let mut extra = vec![self.kind.label().to_string()];
        if let Some(s) = self.http_status {
            extra.push(format!("HTTP {s}"));
        }
        if let Some(r) = &self.request_id {
            extra.push(format!("RequestId {r}"));
        }
        if self.attempts > 1 {
            extra.push(if self.kind.is_retryable() {
                format!("gave up after {} attempts", self.attempts)
            } else {
                format!("{} attempts", self.attempts)
            });
        }
        write!(f, " ({})", extra.join(", "))?;
        match (&self.kind, self.service.ram) {
            (ErrorKind::Auth, Some(ram)) => write!(
                f,
                "; check the {} credentials (environment, credentials file, ECS RAM role or RRSA) and that the RAM policy allows {ram}:{}",
                self.service.name,
                if self.action.is_empty() {
                    "*"
                } else {
                    &self.action
                }
            ),
            (ErrorKind::Auth, None) => write!(
                f,
                "; check the TSIG key (name, algorithm, secret) and the primary's update ACL"
            ),
            (ErrorKind::Clock, _) => write!(f, "; check that the host clock is NTP-synchronised"),
            _ => Ok(()),
        }
    }
}

impl PublishError {
    /// A local error (no exchange with the service).
    pub fn local(kind: ErrorKind, code: &str, message: impl Into<String>) -> Self {
        PublishError {
            kind,
            code: code.into(),
            message: message.into(),
            request_id: None,
            http_status: None,
            action: String::new(),
            attempts: 0,
            service: &LOCAL,
            reread: false,
        }
    }

    /// A failure to obtain credentials for `service` (its credential chain, cache or
    /// refresh): a local auth error (`Regdns.Credentials`), reported, not retried.
    pub fn credentials(service: &'static Service, reason: impl fmt::Display) -> Self {
        PublishError::local(ErrorKind::Auth, "Regdns.Credentials", reason.to_string()).of(service)
    }

    /// Sets the service.
    pub fn of(mut self, service: &'static Service) -> Self {
        self.service = service;
        self
    }

    /// "Already exists"/conflict/vanished errors, after which a re-read tells what happened.
    pub fn is_conflict(&self) -> bool {
        self.reread
    }

    /// A local failure of regdns itself (credentials, config): no refresh or retry helps.
    pub fn is_local(&self) -> bool {
        self.code.starts_with("Regdns.")
    }
}
