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

/// The part of usertag allocation that reads the table (under the caller's locks).
mod allocate {
    use std::collections::HashSet;

    use diesel::{prelude::*, sql_types::Text};
    use diesel_async::{AsyncPgConnection, RunQueryDsl};
    use workos_sync_core::User;

    use super::{base, candidates};
    use crate::{StoreError, sql};

    #[derive(QueryableByName)]
    struct TagRow {
        #[diesel(sql_type = Text)]
        usertag: String,
    }

    /// Which of `tags` are in use.
    async fn taken_tags(
        c: &mut AsyncPgConnection,
        st: &sql::Statements,
        tags: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        if tags.is_empty() {
            return Ok(HashSet::new());
        }
        Ok(sql::TakenTags { st, tags }
            .load::<TagRow>(c)
            .await?
            .into_iter()
            .map(|r| r.usertag)
            .collect())
    }

    /// Picks a free usertag for each new user. The caller holds the lock of every base's
    /// root (taken with the user locks), so what is read here stays true until commit: read
    /// which candidates are taken, then hand out the first free one, never the same twice.
    pub(crate) async fn allocate_usertags(
        c: &mut AsyncPgConnection,
        st: &sql::Statements,
        new_users: &[&User],
    ) -> Result<Vec<String>, StoreError> {
        if new_users.is_empty() {
            return Ok(Vec::new());
        }
        let bases: Vec<String> = new_users.iter().map(|u| base(&u.email)).collect();
        let mut unique_bases: Vec<String> = bases.clone();
        unique_bases.sort();
        unique_bases.dedup();
        // Most bases are free: look up the bare bases first and the numbered candidates only
        // of the bases already taken. Asking for every candidate at once (50 per base) made
        // the planner scan the whole users table once per batch (measured: ~500 sequential
        // scans of users while draining 100k events).
        // A base shared by two new users of this batch needs its numbered candidates too
        // (the second user gets one), even when the base itself is free.
        let mut taken = taken_tags(c, st, &unique_bases).await?;
        let shared: HashSet<&String> = {
            let mut once = HashSet::new();
            bases.iter().filter(|b| !once.insert(*b)).collect()
        };
        let numbered: Vec<String> = unique_bases
            .iter()
            .filter(|b| taken.contains(*b) || shared.contains(b))
            .flat_map(|b| candidates(b).into_iter().skip(1))
            .collect();
        taken.extend(taken_tags(c, st, &numbered).await?);
        let mut out = Vec::with_capacity(bases.len());
        for (base, user) in bases.iter().zip(new_users) {
            let mut chosen = candidates(base).into_iter().find(|t| !taken.contains(t));
            if chosen.is_none() {
                // Every numbered candidate is taken: derive a suffix from the user id, and
                // make sure it is free (the root lock is held, so the answer holds). `-`
                // is never in a base, so no other root can hand out the same tag.
                let digest = workos_sync_core::event::body_hash_id(user.id.as_bytes());
                for n in 0..8usize {
                    let start = 7 + n * 6;
                    let suffix = digest.get(start..start + 6).unwrap_or("0");
                    let t = format!("{base}-{suffix}");
                    let exists = !taken_tags(c, st, std::slice::from_ref(&t))
                        .await?
                        .is_empty();
                    if !exists && !taken.contains(&t) {
                        chosen = Some(t);
                        break;
                    }
                }
            }
            let tag = chosen.unwrap_or_else(|| format!("{base}-{}", user.id.to_ascii_lowercase()));
            taken.insert(tag.clone());
            out.push(tag);
        }
        Ok(out)
    }
}

pub(crate) use allocate::allocate_usertags;

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
