//! Wall-clock time in the two forms records and metrics use.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, as RFC 3339 with milliseconds (`created_at`, `loaded_at`).
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Now, as Unix milliseconds (0 if the clock is before 1970).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Now, as Unix seconds (0 if the clock is before 1970).
pub(crate) fn unix_secs() -> u64 {
    unix_ms() / 1000
}

/// Unix seconds as RFC 3339 (seconds precision).
pub(crate) fn rfc3339_of_unix(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(unix)).to_string()
}
