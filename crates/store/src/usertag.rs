//! Usertags: a handle derived once, at creation, from the email's local part:
//! lowercase ASCII letters and digits, other characters folded to `_`, at most
//! [`MAX_BASE_LEN`] characters, `user` when nothing is left. Uniqueness comes from
//! numbered suffixes (`ada`, `ada2`, `ada3`, …) chosen under an advisory lock.
//!
//! The lock is not the base's but its [`lock_root`]'s (the base without trailing
//! digits): `ada`'s candidate `ada2` is also the base of `ada2@…`, and the candidates
//! of both (`ada`, `ada2`, `ada22`, …) all have root `ada`, so every allocation that
//! could hand out the same tag runs under the same lock. After
//! [`NUMBERED_CANDIDATES`] the suffix is `-` and six hex digits of a hash of the user
//! id: a `-` never appears in a base, so such a tag cannot be another root's candidate.

pub const MAX_BASE_LEN: usize = 24;
/// Numbered candidates tried before a hashed suffix.
pub const NUMBERED_CANDIDATES: u32 = 50;

/// The base tag of an email address.
pub fn base(email: &str) -> String {
    let local = email.split('@').next().unwrap_or("");
    // Drop a "+tag" sub-address: ada+test@x.io is ada.
    let local = local.split('+').next().unwrap_or(local);
    let mut out = String::with_capacity(local.len().min(MAX_BASE_LEN));
    for c in local.chars() {
        let c = c.to_ascii_lowercase();
        let mapped = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '_'
        };
        if mapped == '_' && (out.is_empty() || out.ends_with('_')) {
            continue;
        }
        out.push(mapped);
        if out.len() >= MAX_BASE_LEN {
            break;
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() {
        "user".to_owned()
    } else {
        out
    }
}

/// The key of the advisory lock under which tags of `base` are allocated: `base`
/// without its trailing digits (`ada2` → `ada`, `r2d2` → `r2d`, `1999` → ``).
pub fn lock_root(base: &str) -> &str {
    base.trim_end_matches(|c: char| c.is_ascii_digit())
}

/// Candidates in order of preference: `base`, `base2` … `base{NUMBERED_CANDIDATES}`.
pub fn candidates(base: &str) -> Vec<String> {
    std::iter::once(base.to_owned())
        .chain((2..=NUMBERED_CANDIDATES).map(|n| format!("{base}{n}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases() {
        assert_eq!(base("Marcelina.Davis@example.com"), "marcelina_davis");
        assert_eq!(base("ada+news@x.io"), "ada");
        assert_eq!(base("--__--@x.io"), "user");
        assert_eq!(base("Zoë.O'Brien@x.io"), "zo_o_brien");
        assert_eq!(
            base(&format!("{}@x.io", "a".repeat(100))).len(),
            MAX_BASE_LEN
        );
        assert_eq!(base("noatsign"), "noatsign");
    }

    #[test]
    fn candidates_share_their_base_root() {
        assert_eq!(lock_root("ada2"), "ada");
        assert_eq!(lock_root("r2d2"), "r2d");
        assert_eq!(lock_root("1999"), "");
        for b in ["ada", "ada2", "r2d2", "1999", "t7q"] {
            for c in candidates(b) {
                assert_eq!(lock_root(&c), lock_root(b), "{c} of {b}");
            }
        }
    }

    #[test]
    fn candidate_list() {
        let c = candidates("ada");
        assert_eq!(c[0], "ada");
        assert_eq!(c[1], "ada2");
        assert_eq!(c.len() as u32, NUMBERED_CANDIDATES);
    }
}
