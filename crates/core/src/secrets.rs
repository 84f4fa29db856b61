//! What counts as a secret in a WorkOS body, decided once: an invitation's `token` and
//! `accept_invitation_url`, a domain's `verification_token`, a webhook endpoint's or
//! client's `secret`, anything named `*_secret`, `*_token` or `*private_key*` (old SSO
//! connection answers carried `oidc_client_secret`, `oauth_secret`,
//! `saml_relying_party_private_key`), a directory's or connection's `external_key`, and
//! an API key's full `value` (only `obfuscated_value` is kept; `value` elsewhere, a SCIM
//! e-mail's for one, is not a secret). The typed records never
//! have such fields; whatever keeps a body as JSON (the event archive) passes it through
//! [`redact`] first, which removes those keys at any depth.
//!
//! Failure model: none; a body that is not JSON is left to its caller.

use serde_json::Value;

/// True when a field of this name holds a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    matches!(
        k.as_str(),
        "token"
            | "secret"
            | "accept_invitation_url"
            | "external_key"
            | "password"
            | "password_hash"
    ) || k.ends_with("_secret")
        || k.ends_with("_token")
        || k.contains("private_key")
}

/// Removes every secret field (see [`is_secret_key`]) from `v`, at any depth.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("object").and_then(Value::as_str) == Some("api_key") {
                map.remove("value");
            }
            map.retain(|k, _| !is_secret_key(k));
            for child in map.values_mut() {
                redact(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_go_at_any_depth_and_the_rest_stays() {
        let mut v = serde_json::json!({
            "id": "event_1", "event": "invitation.created",
            "data": {"id": "invitation_1", "email": "a@b.c", "token": "T",
                     "accept_invitation_url": "https://x/?token=T",
                     "domains": [{"domain": "a.io", "verification_token": "V"}],
                     "oidc_client_secret": "S", "saml_relying_party_private_key": "K",
                     "key": {"object": "api_key", "obfuscated_value": "sk_…abcd",
                             "value": "sk_live_full"},
                     "emails": [{"type": "work", "value": "a@b.c"}]},
            "created_at": "2026-01-01T00:00:00.000Z"
        });
        redact(&mut v);
        let text = v.to_string();
        for gone in [
            "\"T\"",
            "token=T",
            "\"V\"",
            "\"S\"",
            "\"K\"",
            "sk_live_full",
        ] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
        assert_eq!(v["data"]["email"], "a@b.c");
        assert_eq!(v["data"]["domains"][0]["domain"], "a.io");
        assert_eq!(v["data"]["key"]["obfuscated_value"], "sk_…abcd");
        assert_eq!(v["data"]["emails"][0]["value"], "a@b.c");
        assert_eq!(v["event"], "invitation.created");
    }
}
