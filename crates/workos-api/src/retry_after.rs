//! `Retry-After` as RFC 9110 defines it: delay-seconds or an HTTP-date. WorkOS sends
//! seconds; a proxy or gateway in front of it may send a date.
//!
//! Failure model: a value that is neither is ignored (`None`: the client's own backoff
//! applies); a date in the past is no wait. Capped at [`MAX`], so a broken header never
//! parks a caller for hours.

use std::time::{Duration, SystemTime};

/// The longest wait a `Retry-After` can ask of us.
pub const MAX: Duration = Duration::from_secs(120);

/// The wait `value` asks for, as of `now`.
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    let wait = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(v)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
        assert_eq!(parse("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse("Thu, 01 Jan 2026 00:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse("Wed, 31 Dec 2025 23:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse("86400", now), Some(MAX));
        assert_eq!(parse("soon", now), None);
        assert_eq!(parse("-5", now), None);
    }
}
