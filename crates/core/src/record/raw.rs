//! The raw object: WorkOS's object as it was received (an event's `data`, a list item, a
//! get answer), minus its secrets, kept beside the typed fields so that every synced
//! table's `raw` column holds what WorkOS sent, a field added tomorrow included.
//!
//! A record's [`Raw`] is set by the one decoder ([`super::Record::from_raw`]); records
//! made any other way (stubs of deletions learnt by id, tests) have none and store `{}`.
//! Two records compare equal whatever their raw objects: the typed fields are what the
//! store's guards decide on, and the raw object only rides along.
//!
//! Cost: the text is copied once (no parse) unless it may hold a secret (a key named
//! like one occurs in it, see `core::secrets`): then it is parsed, redacted and written
//! again.
//!
//! Failure model: none; redaction of text that is not JSON keeps nothing.

use std::sync::Arc;

use serde_json::value::RawValue;

/// WorkOS's object as received, secrets removed (none: `{}` is stored).
#[derive(Clone, Default)]
pub struct Raw(Option<Arc<RawValue>>);

/// Substrings (lowercase) without which no key of `core::secrets` can occur in a body.
const SECRET_HINTS: [&str; 7] = [
    "token",
    "secret",
    "password",
    "private_key",
    "external_key",
    "accept_invitation_url",
    "api_key",
];

impl Raw {
    /// `object` as received, with every secret field removed (`core::secrets::redact`).
    pub fn of(object: &RawValue) -> Self {
        let text = object.get();
        if !may_hold_secret(text) {
            return Self(Some(Arc::from(object.to_owned())));
        }
        let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) else {
            return Self(None);
        };
        crate::secrets::redact(&mut v);
        Self(serde_json::value::to_raw_value(&v).ok().map(Arc::from))
    }

    /// The object, when the record was decoded from one.
    pub fn get(&self) -> Option<&RawValue> {
        self.0.as_deref()
    }
}

fn may_hold_secret(text: &str) -> bool {
    let bytes = text.as_bytes();
    SECRET_HINTS.iter().any(|hint| {
        bytes
            .windows(hint.len())
            .any(|w| w.eq_ignore_ascii_case(hint.as_bytes()))
    })
}

impl PartialEq for Raw {
    /// Always equal: see the module header.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Raw {}

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(r) => write!(f, "Raw({} bytes)", r.get().len()),
            None => f.write_str("Raw(none)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Raw {
        Raw::of(&serde_json::from_str::<Box<RawValue>>(text).unwrap())
    }

    #[test]
    fn keeps_the_object_byte_for_byte_without_secrets() {
        let text = r#"{"id":"user_1","future_field":{"a":[1,2]},"email":"a@b.c"}"#;
        assert_eq!(raw(text).get().unwrap().get(), text);
    }

    #[test]
    fn removes_secrets_and_keeps_the_rest() {
        let r = raw(
            r#"{"id":"invitation_1","Token":"T1","accept_invitation_url":"https://x/?token=T1",
                "domains":[{"domain":"a.io","verification_token":"V1"}],"email":"a@b.c"}"#,
        );
        let text = r.get().unwrap().get();
        assert!(!text.contains("T1") && !text.contains("V1"), "{text}");
        assert!(text.contains("a@b.c") && text.contains("a.io"), "{text}");
    }

    #[test]
    fn records_compare_equal_whatever_their_raw_objects() {
        assert_eq!(raw(r#"{"a":1}"#), Raw::default());
        assert_eq!(format!("{:?}", raw(r#"{"a":1}"#)), "Raw(7 bytes)");
    }
}
