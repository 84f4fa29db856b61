//! The body of a 200: `{"status":"accepted","id":"<event id>"}`, written from a
//! template (the id escaped as JSON) instead of building a `serde_json::Value` per
//! request. Cannot fail.

/// The JSON body answering an accepted webhook.
pub fn accepted_body(id: &str) -> Vec<u8> {
    const HEAD: &[u8] = br#"{"status":"accepted","id":"#;
    let mut out = Vec::with_capacity(HEAD.len() + id.len() + 3);
    out.extend_from_slice(HEAD);
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, id);
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::accepted_body;

    #[test]
    fn the_template_is_the_json_it_replaces() {
        for id in ["event_01ABC", "with \"quotes\" and \\ and \u{1}", "ünïcode"] {
            let body: serde_json::Value = serde_json::from_slice(&accepted_body(id)).unwrap();
            assert_eq!(body, serde_json::json!({"status": "accepted", "id": id}));
        }
    }
}
