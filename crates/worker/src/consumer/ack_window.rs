//! Acks in delivery order, whatever order the partitions finish in.

use std::time::Instant;

use lapin::{Channel, options::BasicAckOptions};

/// Acknowledges one channel's deliveries in tag order, whatever order the partitions
/// finish them in: a delivery is acked (with `multiple`) only once every delivery before
/// it is resolved too. One ack frame per advance instead of one per message, and never
/// an ack of an unknown tag (which would close the channel): the state lock is held while
/// the frame is sent, so acks leave in increasing order.
pub struct AckWindow {
    channel: Channel,
    state: tokio::sync::Mutex<AckState>,
}

#[derive(Default)]
struct AckState {
    /// Unacked deliveries and when each was received.
    outstanding: std::collections::BTreeMap<u64, Instant>,
    done: std::collections::BTreeSet<u64>,
}

impl AckState {
    /// Marks `tags` resolved; returns the highest tag of the resolved prefix, if it grew.
    pub(super) fn resolve(&mut self, tags: &[u64]) -> Option<u64> {
        self.done.extend(tags.iter().copied());
        let mut upto = None;
        while let Some((&first, _)) = self.outstanding.first_key_value() {
            if !self.done.remove(&first) {
                break;
            }
            self.outstanding.pop_first();
            upto = Some(first);
        }
        upto
    }

    /// When the oldest unacked delivery was received (tags arrive in order).
    fn oldest(&self) -> Option<Instant> {
        self.outstanding.first_key_value().map(|(_, at)| *at)
    }
}

impl AckWindow {
    pub(super) fn new(channel: Channel) -> Self {
        Self {
            channel,
            state: tokio::sync::Mutex::new(AckState::default()),
        }
    }

    /// Records a delivery as received (call in delivery order).
    pub(super) async fn track(&self, tag: u64) {
        self.state
            .lock()
            .await
            .outstanding
            .insert(tag, Instant::now());
    }

    /// When the oldest delivery not acked yet was received.
    pub(super) async fn oldest_unacked(&self) -> Option<Instant> {
        self.state.lock().await.oldest()
    }

    /// Marks deliveries as resolved and acks the longest resolved prefix.
    pub(super) async fn resolve(&self, tags: &[u64]) -> Result<(), lapin::Error> {
        let mut st = self.state.lock().await;
        if let Some(tag) = st.resolve(tags) {
            self.channel
                .basic_ack(tag, BasicAckOptions { multiple: true })
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn ack_window_acks_only_resolved_prefixes_in_order() {
        let mut st = AckState::default();
        let t0 = Instant::now();
        st.outstanding.extend((1..=6).map(|t| (t, t0)));
        // Partition B finishes first: nothing can be acked yet.
        assert_eq!(st.resolve(&[2, 4]), None);
        // Partition A resolves 1 and 3: the prefix 1..=4 is complete.
        assert_eq!(st.resolve(&[1, 3]), Some(4));
        assert_eq!(st.resolve(&[6]), None);
        assert_eq!(st.resolve(&[5]), Some(6));
        assert!(st.outstanding.is_empty() && st.done.is_empty());
        // Tags arriving after a gap keep waiting for it.
        let t7 = t0 + Duration::from_secs(7);
        st.outstanding
            .extend([(7, t7), (8, t7 + Duration::from_secs(1))]);
        assert_eq!(st.resolve(&[8]), None);
        // 8 is resolved but not acked: 7 is still the oldest unacked delivery.
        assert_eq!(st.oldest(), Some(t7));
        assert_eq!(st.resolve(&[7]), Some(8));
        assert_eq!(st.oldest(), None);
    }
}
