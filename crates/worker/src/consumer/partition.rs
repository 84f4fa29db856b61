//! Which applier of a worker handles an event: a hash of its user id, so one user's
//! events always go to the same applier, in delivery order.

/// Which partition handles `key` (a user id, or the event id for non-user events).
pub(super) fn partition_of(key: &str, n: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    usize::try_from(h.finish() % n.max(1) as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        let n = 4;
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            let key = format!("user_{i:06}");
            let p = partition_of(&key, n);
            assert_eq!(p, partition_of(&key, n), "same user, same partition");
            counts[p] += 1;
        }
        assert!(counts.iter().all(|c| *c > 800), "{counts:?}");
        assert_eq!(partition_of("x", 1), 0);
    }
}
