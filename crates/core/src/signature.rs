//! WorkOS webhook signature verification: a pure function of
//! (header, raw body, secrets, now, tolerance). No I/O, no JSON.
//!
//! Header: `WorkOS-Signature: t=<ms since epoch>, v1=<hex>`. Parsed leniently: split on
//! `,`, trim, `key=value` in any order, unknown keys ignored, up to [`MAX_SIGNATURES`]
//! `v1` entries. A `t`
//! below 10^11 is taken as seconds (WorkOS's local emulator sends seconds). The MAC is
//! HMAC-SHA256 keyed by the secret's UTF-8 bytes over `t + "." + body` (the `t` exactly as
//! sent), lowercase hex, compared in constant time (`Mac::verify_slice`). [`Secrets`]
//! keys each secret once, so a request costs the body's hashing and no key schedule; a
//! parsed header holds its `v1` values inline, so a check allocates nothing.
//!
//! Failure model: every rejection is a distinct [`SignatureError`] variant so that the
//! receiver can map it to a status code (400 for unreadable input, 401 for a failed
//! check) and a metric label. Nothing here logs or panics.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Most `v1` entries one header may carry. A sender rotating secrets signs with two or
/// three; each entry costs an HMAC comparison per configured secret, so an unbounded
/// list would let an unauthenticated client buy CPU with header bytes.
pub const MAX_SIGNATURES: usize = 8;

/// Timestamps below this are seconds, not milliseconds (10^11 ms is March 1973, 10^11 s
/// is the year 5138), so the two ranges cannot be confused.
const SECONDS_THRESHOLD: u64 = 100_000_000_000;

/// Why a signature was rejected. The variant decides the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing WorkOS-Signature header")]
    MissingHeader,
    #[error("malformed WorkOS-Signature header: {0}")]
    MalformedHeader(&'static str),
    #[error("timestamp is {age_secs} s old, tolerance is {tolerance_secs} s")]
    Stale { age_secs: u64, tolerance_secs: u64 },
    #[error("timestamp is {ahead_secs} s in the future, tolerance is {tolerance_secs} s")]
    Future {
        ahead_secs: u64,
        tolerance_secs: u64,
    },
    #[error("signature does not match any configured secret")]
    Mismatch,
    #[error("no webhook secret configured")]
    NoSecret,
}

impl SignatureError {
    /// A short stable label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_signature",
            Self::MalformedHeader(_) => "malformed_signature",
            Self::Stale { .. } => "stale_timestamp",
            Self::Future { .. } => "future_timestamp",
            Self::Mismatch => "bad_signature",
            Self::NoSecret => "no_secret",
        }
    }

    /// True when the request was readable but failed authentication (401); false when
    /// the header itself was unusable (400).
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            Self::MissingHeader | Self::Stale { .. } | Self::Future { .. } | Self::Mismatch
        )
    }
}

/// Bytes of one `v1` value: a SHA-256 MAC.
pub const MAC_BYTES: usize = 32;

/// The configured webhook secrets, each already keyed into an HMAC: the key schedule
/// (two SHA-256 blocks per secret) is done here once instead of on every request.
#[derive(Clone)]
pub struct Secrets {
    keyed: Vec<HmacSha256>,
}

impl Secrets {
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Self {
        Self {
            // An HMAC takes a key of any length, so no secret is ever skipped.
            keyed: secrets
                .iter()
                .filter_map(|s| HmacSha256::new_from_slice(s.as_ref()).ok())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keyed.is_empty()
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} keyed, redacted)", self.keyed.len())
    }
}

/// A parsed `WorkOS-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader<'a> {
    /// `t` exactly as sent; the MAC covers these bytes.
    pub timestamp_raw: &'a str,
    /// `t` normalised to milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// The `v1` values, decoded from hex; the first `count` are set.
    decoded: [[u8; MAC_BYTES]; MAX_SIGNATURES],
    count: usize,
}

impl SignatureHeader<'_> {
    /// Every `v1` value of the header, decoded, in the order sent.
    pub fn signatures(&self) -> &[[u8; MAC_BYTES]] {
        &self.decoded[..self.count]
    }
}

/// Parses the header leniently (see the module docs).
pub fn parse_header(header: &str) -> Result<SignatureHeader<'_>, SignatureError> {
    let mut timestamp_raw = None;
    let mut decoded = [[0u8; MAC_BYTES]; MAX_SIGNATURES];
    let mut count = 0;
    for part in header.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((key, value)) = part.split_once('=') else {
            return Err(SignatureError::MalformedHeader("element without '='"));
        };
        match key.trim() {
            "t" => {
                if timestamp_raw.is_some() {
                    return Err(SignatureError::MalformedHeader("more than one t"));
                }
                timestamp_raw = Some(value.trim());
            }
            "v1" => {
                let value = value.trim();
                // A SHA-256 MAC is 32 bytes; anything else cannot match and is not hex we
                // want to decode at length (bounds work on hostile headers).
                if value.len() != 2 * MAC_BYTES {
                    return Err(SignatureError::MalformedHeader("v1 is not 64 hex digits"));
                }
                let Some(slot) = decoded.get_mut(count) else {
                    return Err(SignatureError::MalformedHeader("too many v1 entries"));
                };
                hex::decode_to_slice(value, slot)
                    .map_err(|_| SignatureError::MalformedHeader("v1 is not hex"))?;
                count += 1;
            }
            _ => {}
        }
    }
    let timestamp_raw = timestamp_raw.ok_or(SignatureError::MalformedHeader("no t"))?;
    if timestamp_raw.is_empty()
        || timestamp_raw.len() > 16
        || !timestamp_raw.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(SignatureError::MalformedHeader("t is not a number"));
    }
    let t: u64 = timestamp_raw
        .parse()
        .map_err(|_| SignatureError::MalformedHeader("t is not a number"))?;
    if count == 0 {
        return Err(SignatureError::MalformedHeader("no v1"));
    }
    let timestamp_ms = if t < SECONDS_THRESHOLD {
        t.saturating_mul(1000)
    } else {
        t
    };
    Ok(SignatureHeader {
        timestamp_raw,
        timestamp_ms,
        decoded,
        count,
    })
}

/// Verifies a webhook. `header` is `None` when the request had no signature header.
/// `now_ms` is the receiver's clock in milliseconds since the epoch.
pub fn verify<S: AsRef<[u8]>>(
    header: Option<&str>,
    body: &[u8],
    secrets: &[S],
    now_ms: u64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let secrets = Secrets::new(secrets);
    let parsed = precheck(header, &secrets, now_ms, tolerance)?;
    verify_body(&parsed, body, &secrets)
}

/// Every check that needs no body: the header is there and well-formed, a secret is
/// configured, and the timestamp is within `tolerance` of `now_ms`. The receiver runs
/// it before reading a byte of the body, so a request that cannot pass costs no
/// buffer.
pub fn precheck<'h>(
    header: Option<&'h str>,
    secrets: &Secrets,
    now_ms: u64,
    tolerance: Duration,
) -> Result<SignatureHeader<'h>, SignatureError> {
    let header = header.ok_or(SignatureError::MissingHeader)?;
    let parsed = parse_header(header)?;
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let tolerance_ms = u64::try_from(tolerance.as_millis()).unwrap_or(u64::MAX);
    let tolerance_secs = tolerance.as_secs();
    if parsed.timestamp_ms > now_ms {
        let ahead = parsed.timestamp_ms - now_ms;
        if ahead > tolerance_ms {
            return Err(SignatureError::Future {
                ahead_secs: ahead / 1000,
                tolerance_secs,
            });
        }
    } else {
        let age = now_ms - parsed.timestamp_ms;
        if age > tolerance_ms {
            return Err(SignatureError::Stale {
                age_secs: age / 1000,
                tolerance_secs,
            });
        }
    }
    Ok(parsed)
}

/// The MAC check of a header that passed [`precheck`]: some `v1` must be the HMAC of
/// `t.body` under some secret.
pub fn verify_body(
    parsed: &SignatureHeader<'_>,
    body: &[u8],
    secrets: &Secrets,
) -> Result<(), SignatureError> {
    for keyed in &secrets.keyed {
        let mut mac = keyed.clone();
        mac.update(parsed.timestamp_raw.as_bytes());
        mac.update(b".");
        mac.update(body);
        for sig in parsed.signatures() {
            // verify_slice is constant-time; clone so each candidate gets a fresh MAC.
            if mac.clone().verify_slice(sig).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

/// Computes the `v1` value for `timestamp` and `body` (lowercase hex). Used by the
/// test kit, the load generator and `send-test-event`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    // An HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A complete header value as WorkOS sends it: `t=<ms>, v1=<hex>`.
pub fn signature_header(secret: &[u8], now_ms: u64, body: &[u8]) -> String {
    let t = now_ms.to_string();
    let v1 = sign(secret, &t, body);
    format!("t={t}, v1={v1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const NOW: u64 = 1_764_000_000_000;
    const TOL: Duration = Duration::from_secs(180);
    const BODY: &[u8] = br#"{"id":"event_1","event":"user.created","data":{}}"#;

    fn check(header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
        verify(header, body, &[SECRET], NOW, TOL)
    }

    #[test]
    fn accepts_a_computed_signature() {
        let h = signature_header(SECRET.as_bytes(), NOW, BODY);
        assert_eq!(check(Some(&h), BODY), Ok(()));
    }

    #[test]
    fn known_vector() {
        // printf '1700000000000.{}' | openssl dgst -sha256 -hmac 'secret'
        assert_eq!(
            sign(b"secret", "1700000000000", b"{}"),
            "8399216d111287e3bb28e25c0f4f31dffdf831c68c9ee2b96c2f67c9b81d341b"
        );
    }

    #[test]
    fn emulator_format_seconds_without_space() {
        let t = (NOW / 1000).to_string();
        let v1 = sign(SECRET.as_bytes(), &t, BODY);
        let h = format!("t={t},v1={v1}");
        assert_eq!(check(Some(&h), BODY), Ok(()));
    }

    #[test]
    fn any_order_unknown_keys_and_several_v1() {
        let t = NOW.to_string();
        let good = sign(SECRET.as_bytes(), &t, BODY);
        let bad = "0".repeat(64);
        let h = format!(" v0=zzz , v1={bad},  v1={good} ,t={t}, foo=bar");
        assert_eq!(check(Some(&h), BODY), Ok(()));
    }

    #[test]
    fn at_most_max_signatures_v1_entries() {
        let t = NOW.to_string();
        let good = sign(SECRET.as_bytes(), &t, BODY);
        let bad = format!("v1={}", "0".repeat(64));
        let with = |n_bad: usize| {
            let mut parts = vec![bad.as_str(); n_bad];
            let last = format!("v1={good}");
            parts.push(&last);
            format!("t={t}, {}", parts.join(", "))
        };
        assert_eq!(check(Some(&with(MAX_SIGNATURES - 1)), BODY), Ok(()));
        assert_eq!(
            check(Some(&with(MAX_SIGNATURES)), BODY),
            Err(SignatureError::MalformedHeader("too many v1 entries"))
        );
    }

    #[test]
    fn keyed_secrets_verify_under_any_of_them_and_keep_the_v1_order() {
        let t = NOW.to_string();
        let old = sign(b"whsec_old", &t, BODY);
        let new = sign(b"whsec_new", &t, BODY);
        let secrets = Secrets::new(&["whsec_new", "whsec_old"]);
        assert_eq!(format!("{secrets:?}"), "Secrets(2 keyed, redacted)");
        let h = format!("t={t}, v1={old}, v1={new}");
        let parsed = precheck(Some(&h), &secrets, NOW, TOL).unwrap();
        let decoded: Vec<String> = parsed.signatures().iter().map(hex::encode).collect();
        assert_eq!(decoded, [old.clone(), new]);
        assert_eq!(verify_body(&parsed, BODY, &secrets), Ok(()));
        let only_other = Secrets::new(&["whsec_other"]);
        assert_eq!(
            verify_body(&parsed, BODY, &only_other),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            precheck(Some(&h), &Secrets::new::<&str>(&[]), NOW, TOL),
            Err(SignatureError::NoSecret)
        );
    }

    #[test]
    fn missing_header() {
        assert_eq!(check(None, BODY), Err(SignatureError::MissingHeader));
    }

    #[test]
    fn malformed_headers() {
        let v1 = sign(SECRET.as_bytes(), &NOW.to_string(), BODY);
        for h in [
            "",
            "garbage",
            &format!("v1={v1}"),
            &format!("t=, v1={v1}"),
            &format!("t=12a, v1={v1}"),
            &format!("t=-5, v1={v1}"),
            &format!("t=99999999999999999999, v1={v1}"),
            &format!("t={NOW}"),
            &format!("t={NOW}, v1=xyz"),
            &format!("t={NOW}, v1={}", "g".repeat(64)),
            &format!("t={NOW}, t={NOW}, v1={v1}"),
        ] {
            let r = check(Some(h), BODY);
            assert!(
                matches!(r, Err(SignatureError::MalformedHeader(_))),
                "{h:?} gave {r:?}"
            );
        }
    }

    #[test]
    fn stale_and_future() {
        let old = NOW - 181_000;
        let h = signature_header(SECRET.as_bytes(), old, BODY);
        assert!(matches!(
            check(Some(&h), BODY),
            Err(SignatureError::Stale { .. })
        ));
        let future = NOW + 181_000;
        let h = signature_header(SECRET.as_bytes(), future, BODY);
        assert!(matches!(
            check(Some(&h), BODY),
            Err(SignatureError::Future { .. })
        ));
        // Just inside the window in both directions.
        for t in [NOW - 179_000, NOW + 179_000] {
            let h = signature_header(SECRET.as_bytes(), t, BODY);
            assert_eq!(check(Some(&h), BODY), Ok(()));
        }
    }

    #[test]
    fn stale_in_seconds_format() {
        let t = ((NOW - 600_000) / 1000).to_string();
        let v1 = sign(SECRET.as_bytes(), &t, BODY);
        let h = format!("t={t},v1={v1}");
        assert!(matches!(
            check(Some(&h), BODY),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn wrong_secret_and_tampered_body() {
        let h = signature_header(b"other", NOW, BODY);
        assert_eq!(check(Some(&h), BODY), Err(SignatureError::Mismatch));
        let h = signature_header(SECRET.as_bytes(), NOW, BODY);
        assert_eq!(check(Some(&h), b"{}"), Err(SignatureError::Mismatch));
    }

    #[test]
    fn equal_json_different_bytes_fails() {
        let h = signature_header(SECRET.as_bytes(), NOW, BODY);
        let reformatted = br#"{ "id": "event_1", "event": "user.created", "data": {} }"#;
        let a: serde_json::Value = serde_json::from_slice(BODY).unwrap();
        let b: serde_json::Value = serde_json::from_slice(reformatted).unwrap();
        assert_eq!(a, b);
        assert_eq!(check(Some(&h), reformatted), Err(SignatureError::Mismatch));
        let reordered = br#"{"event":"user.created","id":"event_1","data":{}}"#;
        assert_eq!(check(Some(&h), reordered), Err(SignatureError::Mismatch));
    }

    #[test]
    fn rotation_accepts_previous_secret() {
        let h = signature_header(b"old_secret", NOW, BODY);
        assert_eq!(
            verify(Some(&h), BODY, &["new_secret", "old_secret"], NOW, TOL),
            Ok(())
        );
        assert_eq!(
            verify(Some(&h), BODY, &["new_secret"], NOW, TOL),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn no_secret_configured() {
        let h = signature_header(SECRET.as_bytes(), NOW, BODY);
        let none: [&str; 0] = [];
        assert_eq!(
            verify(Some(&h), BODY, &none, NOW, TOL),
            Err(SignatureError::NoSecret)
        );
    }

    #[test]
    fn signature_uses_t_as_sent() {
        // The MAC covers the t string as sent, even in seconds.
        let t = (NOW / 1000).to_string();
        let signed_over_ms = sign(SECRET.as_bytes(), &NOW.to_string(), BODY);
        let h = format!("t={t}, v1={signed_over_ms}");
        assert_eq!(check(Some(&h), BODY), Err(SignatureError::Mismatch));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,300}") {
            let _ = parse_header(&s);
        }
    }
}
