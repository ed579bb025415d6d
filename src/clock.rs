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

/// `HH:MM:SS` (UTC) of a time in ms since the epoch.
pub fn clock_time(ms: UnixMillis) -> String {
    let s = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_time_is_utc_hours_minutes_seconds() {
        assert_eq!(clock_time(1_767_322_801_000), "03:00:01");
        assert_eq!(clock_time(0), "00:00:00");
    }
}
