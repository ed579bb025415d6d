//! Wall-clock time as the rest of regdns counts it: milliseconds since the Unix epoch.
//!
//! The pure layers (`decide`, `publish::engine::plan`, the cluster rules) never read the
//! clock: their callers pass `now`, taken here.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (the unit of every timestamp in state and journal).
pub type UnixMillis = u64;

/// Milliseconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
