//! Usertags: a handle derived once, at creation, from the email's local part:
//! lowercase ASCII letters and digits, other characters folded to `_`, at most
//! [`MAX_BASE_LEN`] characters, `user` when nothing is left. Uniqueness comes from
//! suffixes (`ada`, `ada2`, `ada3`, …) chosen under a per-base advisory lock.

pub const MAX_BASE_LEN: usize = 24;
/// Numbered candidates tried before a random suffix.
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
    fn candidate_list() {
        let c = candidates("ada");
        assert_eq!(c[0], "ada");
        assert_eq!(c[1], "ada2");
        assert_eq!(c.len() as u32, NUMBERED_CANDIDATES);
    }
}
