//! Property-based fuzzing of the three parsers that face untrusted or operator input:
//! the signature header, the event decoder and the settings loader. cargo-fuzz needs a
//! nightly toolchain, which our machines do not have, so these run under proptest: a
//! few hundred cases per property in the normal test run, millions with
//! `scripts/fuzz.sh` (FUZZ_CASES sets the count per property).
//!
//! Properties: no input panics; a correctly signed header always verifies; any change to
//! a signed body fails verification; real-shaped fixtures decode, and their mutations
//! fail cleanly or decode.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::{collections::HashMap, time::Duration};

use proptest::prelude::*;
use workos_sync_core::{Envelope, Event, Settings, signature};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const FIXTURES: &[&str] = &[
    include_str!("../../../tests/fixtures/workos/user.created.sdk-fixture.json"),
    include_str!("../../../tests/fixtures/workos/user.updated.sdk-fixture.json"),
    include_str!("../../../tests/fixtures/workos/user.deleted.sdk-fixture.json"),
    include_str!("../../../tests/fixtures/workos/user.updated.context-null.dotnet-fixture.json"),
    include_str!("../../../tests/fixtures/workos/user.created.legacy-kotlin.json"),
    include_str!("../../../tests/fixtures/workos/organization_membership.created.sdk-fixture.json"),
];

/// Header-like strings: fragments of real headers recombined, plus noise.
fn header_strategy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("t=".to_string()),
        Just("v1=".to_string()),
        Just(",".to_string()),
        Just(", ".to_string()),
        Just("=".to_string()),
        "[0-9]{0,20}",
        "[0-9a-f]{0,80}",
        ".{0,12}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn header_parser_never_panics(h in header_strategy(), body in prop::collection::vec(any::<u8>(), 0..64), now in any::<u64>()) {
        let _ = signature::parse_header(&h);
        let _ = signature::verify(Some(&h), &body, &["s1", "s2"], now, Duration::from_secs(180));
    }

    #[test]
    fn signed_bodies_verify_and_changed_bodies_do_not(
        body in prop::collection::vec(any::<u8>(), 0..512),
        secret in "[!-~]{1,64}",
        skew in -179_000i64..179_000,
        seconds_format in any::<bool>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let now: u64 = 1_764_000_000_000;
        let t_ms = (now as i64 + skew) as u64;
        let t = if seconds_format { (t_ms / 1000).to_string() } else { t_ms.to_string() };
        let v1 = signature::sign(secret.as_bytes(), &t, &body);
        let header = if seconds_format { format!("t={t},v1={v1}") } else { format!("t={t}, v1={v1}") };
        prop_assert!(signature::verify(Some(&header), &body, &[secret.as_str()], now, Duration::from_secs(180)).is_ok());
        if !body.is_empty() {
            let mut changed = body.clone();
            let i = flip.index(changed.len());
            changed[i] ^= 0x01;
            prop_assert_eq!(
                signature::verify(Some(&header), &changed, &[secret.as_str()], now, Duration::from_secs(180)),
                Err(workos_sync_core::SignatureError::Mismatch)
            );
        }
    }

    #[test]
    fn decoder_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Envelope::decode(&body);
        let _ = Event::decode(&body);
    }

    #[test]
    fn decoder_handles_mutated_fixtures(
        which in 0..FIXTURES.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut body = FIXTURES[which].as_bytes().to_vec();
        for (at, byte, op) in edits {
            if body.is_empty() { break; }
            let i = at.index(body.len());
            match op {
                0 => body[i] = byte,
                1 => { body.remove(i); }
                _ => body.insert(i, byte),
            }
        }
        if let Ok(env) = Envelope::decode(&body) {
            prop_assert!(!env.id.is_empty());
            prop_assert!(!env.event_type.trim().is_empty());
        }
        let _ = Event::decode(&body);
    }

    #[test]
    fn settings_loader_never_panics(
        values in prop::collection::vec((0usize..12, ".{0,40}"), 0..6),
    ) {
        const KEYS: [&str; 12] = [
            "WORKOS_SYNC__RECEIVER__BIND", "WORKOS_SYNC__RECEIVER__TOLERANCE_SECS",
            "WORKOS_SYNC__RECEIVER__MAX_BODY_BYTES", "WORKOS_SYNC__RECEIVER__ALLOWED_IPS",
            "WORKOS_SYNC__RECEIVER__PATH", "WORKOS_SYNC__AMQP__PREFIX",
            "WORKOS_SYNC__AMQP__RETRY_DELAYS_SECS", "WORKOS_SYNC__WORKER__PREFETCH",
            "WORKOS_WEBHOOK_SECRET", "AMQP_URL", "WORKOS_SYNC__LOG__FORMAT",
            "WORKOS_SYNC__RECEIVER__TRUSTED_PROXIES",
        ];
        let env: HashMap<String, String> = values.into_iter().map(|(k, v)| (KEYS[k].to_string(), v)).collect();
        if let Ok(s) = Settings::load_from(None, env) {
            let _ = s.validate_receiver();
            prop_assert!(!s.amqp.prefix.is_empty());
        }
    }
}

#[test]
fn fixtures_decode() {
    for f in FIXTURES {
        Envelope::decode(f.as_bytes()).unwrap();
        Event::decode(f.as_bytes()).unwrap();
    }
}
