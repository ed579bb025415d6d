//! How a failed call to a remote service is handled: the retry classes that the cloud
//! clients (`aliyun::rpc`) and the RFC 2136 client map their errors onto, and that the
//! publish engine's retry policy reads. Knows no service.

use std::time::Duration;

/// How an error should be handled (Alibaba Cloud error codes and RFC 2136 RCODEs are both
/// mapped onto these kinds: `docs/providers/alibaba-cloud-api.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `Throttling*` or an `x-acs-retry-after` header: back off and retry.
    Throttled {
        /// Delay the service asked for (`x-acs-retry-after`, milliseconds).
        retry_after: Option<Duration>,
    },
    /// `InternalError`, `UnknownError`, `ServiceUnavailable`, other 5xx: retry.
    Transient,
    /// Bad or unauthorised credentials: refresh once, then report.
    Auth,
    /// Timestamp or nonce rejected: retry once with a new date and nonce, then report skew.
    Clock,
    /// The request itself is wrong (unknown zone or record, invalid parameter, conflict):
    /// report with the binding, no retry.
    Config,
    /// No usable HTTP answer (connect error, reset, timeout): retry.
    Transport,
}

impl ErrorKind {
    /// Throttled, Transient and Transport errors are retried with backoff.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ErrorKind::Throttled { .. } | ErrorKind::Transient | ErrorKind::Transport
        )
    }

    /// Short name for messages (`throttled`, `auth`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            ErrorKind::Throttled { .. } => "throttled",
            ErrorKind::Transient => "transient",
            ErrorKind::Auth => "auth",
            ErrorKind::Clock => "clock",
            ErrorKind::Config => "config",
            ErrorKind::Transport => "transport",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttled_transient_and_transport_are_retried() {
        let retried: Vec<&str> = [
            ErrorKind::Throttled { retry_after: None },
            ErrorKind::Transient,
            ErrorKind::Auth,
            ErrorKind::Clock,
            ErrorKind::Config,
            ErrorKind::Transport,
        ]
        .iter()
        .filter(|k| k.is_retryable())
        .map(ErrorKind::label)
        .collect();
        assert_eq!(retried, ["throttled", "transient", "transport"]);
    }
}
