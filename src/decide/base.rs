//! The base target of one view: what the automatic rules (priority, failover, fail-static,
//! drains, failback) give before operator forces are layered on top. Shared by
//! [`super::rules`], [`super::failback`] and [`super::overrides`].

use super::{Cause, FailbackConfirmation, UnixMillis};

/// What the automatic rules give for one view.
pub(super) struct BaseResult<'a> {
    /// The base target.
    pub(super) base: String,
    /// Human-readable explanation of the base.
    pub(super) reason: String,
    /// Manual failback: the higher-priority instance waiting for confirmation.
    pub(super) pending: Option<String>,
    /// The confirmation that caused a manual failback.
    pub(super) confirmed_by: Option<&'a FailbackConfirmation>,
    /// When an auto-failback hold ends.
    pub(super) wakeup: Option<UnixMillis>,
    /// Why the base is what it is, should it differ from the previous one.
    pub(super) cause: Cause,
}

impl BaseResult<'_> {
    /// `base` for `reason`, with no pending failback or wake-up, caused by health.
    pub(super) fn plain(base: &str, reason: String) -> Self {
        BaseResult {
            base: base.to_string(),
            reason,
            pending: None,
            confirmed_by: None,
            wakeup: None,
            cause: Cause::Health,
        }
    }

    /// The same result with `cause` as its cause.
    pub(super) fn because(mut self, cause: Cause) -> Self {
        self.cause = cause;
        self
    }
}
