//! What a WorkOS object id can look like, decided once for every entry point that takes
//! one from outside (the lazy sync endpoint, `sync-user`, `tombstones remove`).
//!
//! WorkOS ids are a lowercase type prefix, `_`, and a ULID (`user_01H…`,
//! `org_01E…`); older and test objects use other alphanumeric tails. We accept what
//! could be one: 1 to [`MAX_ID_LEN`] bytes of ASCII letters, digits and `_`, starting
//! with a letter. Anything else is refused before it reaches the WorkOS API or the
//! store: it could change the request path (`../events`), and WorkOS's answer for it
//! would say nothing about a real object.

/// Longest id accepted (WorkOS ids are about 30 bytes).
pub const MAX_ID_LEN: usize = 100;

/// Why a string cannot be a WorkOS id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("id is empty")]
    Empty,
    #[error("id is longer than {MAX_ID_LEN} bytes")]
    TooLong,
    #[error("id must start with a letter and hold only ASCII letters, digits and '_'")]
    BadCharacters,
}

/// Checks that `id` can be a WorkOS object id.
pub fn check_object_id(id: &str) -> Result<(), IdError> {
    let first = id.bytes().next().ok_or(IdError::Empty)?;
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if !first.is_ascii_alphabetic() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(IdError::BadCharacters);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(check_object_id("user_01E4ZCR3C56J083X43JQXF3JK5"), Ok(()));
        assert_eq!(check_object_id("org_01EHZNVPK3SFK441A1RGBFSHRT"), Ok(()));
        assert_eq!(check_object_id(""), Err(IdError::Empty));
        for bad in [
            "../events",
            "user 1",
            "user%2F1",
            "_user",
            "1user",
            "us\u{e9}r",
            "a/b",
        ] {
            assert_eq!(check_object_id(bad), Err(IdError::BadCharacters), "{bad}");
        }
        assert_eq!(check_object_id(&"a".repeat(101)), Err(IdError::TooLong));
        assert_eq!(check_object_id(&"a".repeat(100)), Ok(()));
    }
}
