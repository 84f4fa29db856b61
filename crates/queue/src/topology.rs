//! The RabbitMQ topology (docs/architecture.md), every name under one prefix `{p}`:
//!
//! - `{p}.events`: topic exchange, durable; the receiver publishes with routing key = event
//!   type.
//! - `{p}.events`: quorum queue bound with `#`; `x-delivery-limit` as a crash-loop guard;
//!   dead-letters to `{p}.dead` (never back into the retry loop: RabbitMQ drops a
//!   dead-letter cycle that contains no rejection).
//! - `{p}.retry.<delay>`: one quorum queue per delay tier, no consumers, `x-message-ttl`
//!   and dead-lettering back to `{p}.events`. The worker republishes into them through the
//!   default exchange.
//! - `{p}.dead`: fanout exchange + quorum queue, the DLQ.
//!
//! Declaring is idempotent. A declaration that conflicts with an existing queue (other
//! arguments) fails with PRECONDITION_FAILED, which closes the channel: declare on a
//! channel of its own, never on the publishing one.

use std::time::Duration;

use lapin::{
    Channel, ExchangeKind,
    options::{
        ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable, LongString},
};

use crate::QueueError;

/// Names and arguments of the topology.
#[derive(Debug, Clone)]
pub struct Topology {
    pub prefix: String,
    pub delivery_limit: u32,
    pub retry_delays: Vec<Duration>,
}

fn long_str(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// `5s`, `2m`, `1h`, `90s`: the tier suffix for a delay.
pub fn delay_label(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

impl Topology {
    pub fn new(prefix: impl Into<String>, delivery_limit: u32, retry_delays_secs: &[u64]) -> Self {
        Self {
            prefix: prefix.into(),
            delivery_limit,
            retry_delays: retry_delays_secs
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
        }
    }

    pub fn from_settings(s: &workos_sync_core::settings::AmqpSettings) -> Self {
        Self::new(s.prefix.clone(), s.delivery_limit, &s.retry_delays_secs)
    }

    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }
    pub fn events_queue(&self) -> String {
        format!("{}.events", self.prefix)
    }
    pub fn dead_exchange(&self) -> String {
        format!("{}.dead", self.prefix)
    }
    pub fn dead_queue(&self) -> String {
        format!("{}.dead", self.prefix)
    }
    /// The queue of retry tier `tier` (0-based), if there is such a tier.
    pub fn retry_queue(&self, tier: usize) -> Option<String> {
        self.retry_delays
            .get(tier)
            .map(|d| format!("{}.retry.{}", self.prefix, delay_label(*d)))
    }
    pub fn retry_queues(&self) -> Vec<String> {
        (0..self.retry_delays.len())
            .filter_map(|i| self.retry_queue(i))
            .collect()
    }

    /// Arguments every queue shares: quorum type (Raft-replicated, confirms after a
    /// quorum wrote the message; the recommended type for data safety).
    fn quorum_args() -> FieldTable {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), long_str("quorum"));
        args
    }

    /// At-least-once dead-lettering (quorum queues, RabbitMQ 3.10+): a dead-lettered
    /// message stays in its source queue until the target queue confirmed it, so a
    /// crash-looping message or an expiring retry is never lost in transit. It requires
    /// `overflow = reject-publish` (with `drop-head` RabbitMQ silently falls back to
    /// at-most-once).
    fn at_least_once(args: &mut FieldTable) {
        args.insert("x-dead-letter-strategy".into(), long_str("at-least-once"));
        args.insert("x-overflow".into(), long_str("reject-publish"));
    }

    pub fn events_queue_args(&self) -> FieldTable {
        let mut args = Self::quorum_args();
        // Crash-loop guard: a message whose processing kills the worker every time is
        // redelivered at most this often, then dead-lettered with reason
        // `delivery_limit`. RabbitMQ 3.10 has no default (4.x defaults to 20), so set it.
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(i32::try_from(self.delivery_limit).unwrap_or(i32::MAX)),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            long_str(&self.dead_exchange()),
        );
        Self::at_least_once(&mut args);
        args
    }

    pub fn retry_queue_args(&self, delay: Duration) -> FieldTable {
        let mut args = Self::quorum_args();
        // One TTL per queue (not per message): per-message TTLs expire only at the head
        // of the queue, so a long delay would hold back short ones.
        args.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            long_str(&self.events_exchange()),
        );
        Self::at_least_once(&mut args);
        args
    }

    /// Declares everything. Idempotent; run on every (re)connect.
    pub async fn declare(&self, ch: &Channel) -> Result<(), QueueError> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        ch.exchange_declare(
            self.events_exchange().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
        ch.exchange_declare(
            self.dead_exchange().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
        let queue_opts = lapin::options::QueueDeclareOptions::durable();
        ch.queue_declare(self.dead_queue().into(), queue_opts, Self::quorum_args())
            .await?;
        ch.queue_bind(
            self.dead_queue().into(),
            self.dead_exchange().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        ch.queue_declare(
            self.events_queue().into(),
            queue_opts,
            self.events_queue_args(),
        )
        .await?;
        ch.queue_bind(
            self.events_queue().into(),
            self.events_exchange().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        for (i, delay) in self.retry_delays.iter().enumerate() {
            if let Some(name) = self.retry_queue(i) {
                ch.queue_declare(name.into(), queue_opts, self.retry_queue_args(*delay))
                    .await?;
            }
        }
        Ok(())
    }

    /// Deletes everything (tests clean up with this).
    pub async fn delete(&self, ch: &Channel) -> Result<(), QueueError> {
        let mut queues = vec![self.events_queue(), self.dead_queue()];
        queues.extend(self.retry_queues());
        for q in queues {
            ch.queue_delete(q.into(), QueueDeleteOptions::default())
                .await?;
        }
        for x in [self.events_exchange(), self.dead_exchange()] {
            ch.exchange_delete(x.into(), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let t = Topology::new("p", 10, &[5, 30, 120, 600, 3600, 90]);
        assert_eq!(
            t.retry_queues(),
            vec![
                "p.retry.5s",
                "p.retry.30s",
                "p.retry.2m",
                "p.retry.10m",
                "p.retry.1h",
                "p.retry.90s"
            ]
        );
        assert_eq!(t.retry_queue(6), None);
        assert_eq!(t.events_queue(), "p.events");
        assert_eq!(t.dead_queue(), "p.dead");
    }
}
