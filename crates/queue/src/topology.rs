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
//! Every queue asks for `x-quorum-initial-group-size` replicas (`amqp.quorum_group_size`),
//! so on a cluster each is replicated to that many nodes and survives the loss of a
//! minority of them.
//!
//! Declaring is idempotent. A declaration that conflicts with an existing queue (other
//! arguments) fails with PRECONDITION_FAILED, which closes the channel: declare on
//! channels of our own, never on the publishing one. The one conflict that is tolerated
//! is the group size, which only matters when a queue is created: a queue made before
//! it was asked for (or with another size) is declared again without it, so every other
//! argument is still checked (RabbitMQ compares the group size before them), and kept
//! with a warning.

use std::time::Duration;

use lapin::{
    Channel, Connection, ErrorKind, ExchangeKind,
    options::{
        ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable, LongString},
};

use crate::QueueError;

/// What [`Topology::declare`] creates.
pub struct Plan {
    /// Durable exchanges and their kind.
    pub exchanges: Vec<(String, ExchangeKind)>,
    /// Durable queues and their arguments.
    pub queues: Vec<(String, FieldTable)>,
    /// (exchange, queue, routing key).
    pub bindings: Vec<(String, String, String)>,
}

/// Names and arguments of the topology.
#[derive(Debug, Clone)]
pub struct Topology {
    pub prefix: String,
    pub delivery_limit: u32,
    pub retry_delays: Vec<Duration>,
    /// `x-quorum-initial-group-size` (0: not sent, the broker's default).
    pub quorum_group_size: u32,
}

/// The group size argument, by name (its conflicts are the tolerated ones).
pub(crate) const GROUP_SIZE_ARG: &str = "x-quorum-initial-group-size";

/// True for a PRECONDITION_FAILED about the group size of an existing queue.
fn is_group_size_conflict(e: &lapin::Error) -> bool {
    matches!(e.kind(), ErrorKind::ProtocolError(amqp)
        if amqp.get_id() == 406 && amqp.get_message().as_str().contains(GROUP_SIZE_ARG))
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
            quorum_group_size: 3,
        }
    }

    pub fn from_settings(s: &workos_sync_core::settings::AmqpSettings) -> Self {
        let mut t = Self::new(s.prefix.clone(), s.delivery_limit, &s.retry_delays_secs);
        t.quorum_group_size = s.quorum_group_size;
        t
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
    /// quorum wrote the message; the recommended type for data safety) and the number
    /// of replicas.
    fn quorum_args(&self) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), long_str("quorum"));
        if self.quorum_group_size > 0 {
            args.insert(
                GROUP_SIZE_ARG.into(),
                AMQPValue::LongInt(i32::try_from(self.quorum_group_size).unwrap_or(i32::MAX)),
            );
        }
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
        let mut args = self.quorum_args();
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
        let mut args = self.quorum_args();
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

    /// Everything the topology consists of, in declaration order: the one list that
    /// [`Topology::declare`] creates and [`Topology::describe`] prints.
    pub fn plan(&self) -> Plan {
        let mut queues = vec![
            (self.dead_queue(), self.quorum_args()),
            (self.events_queue(), self.events_queue_args()),
        ];
        for (i, delay) in self.retry_delays.iter().enumerate() {
            if let Some(name) = self.retry_queue(i) {
                queues.push((name, self.retry_queue_args(*delay)));
            }
        }
        Plan {
            exchanges: vec![
                (self.events_exchange(), ExchangeKind::Topic),
                (self.dead_exchange(), ExchangeKind::Fanout),
            ],
            queues,
            bindings: vec![
                (self.dead_exchange(), self.dead_queue(), String::new()),
                (self.events_exchange(), self.events_queue(), "#".to_owned()),
            ],
        }
    }

    /// Declares everything on channels of its own. Idempotent; run on every (re)connect.
    pub async fn declare(&self, conn: &Connection) -> Result<(), QueueError> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let plan = self.plan();
        let mut ch = conn.create_channel().await?;
        for (name, kind) in plan.exchanges {
            ch.exchange_declare(name.into(), kind, durable, FieldTable::default())
                .await?;
        }
        let queue_opts = lapin::options::QueueDeclareOptions::durable();
        for (name, args) in plan.queues {
            match ch
                .queue_declare(name.as_str().into(), queue_opts, args.clone())
                .await
            {
                Ok(_) => {}
                Err(e) if is_group_size_conflict(&e) => {
                    // The failure closed the channel.
                    ch = conn.create_channel().await?;
                    ch = declare_existing(conn, ch, &name, args).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        for (exchange, queue, key) in plan.bindings {
            ch.queue_bind(
                queue.into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        let _ = ch.close(200, "topology declared".into()).await;
        Ok(())
    }

    /// The topology as JSON, as `workos-sync debug topology` prints it (and
    /// `scripts/validate-deploy.sh` compares `deploy/rabbitmq/definitions.json` with):
    /// `{"exchanges": {name: kind}, "queues": {name: {argument: value}},
    /// "bindings": [[exchange, queue, routing key]]}`.
    pub fn describe(&self) -> serde_json::Value {
        let plan = self.plan();
        let kind = |k: &ExchangeKind| match k {
            ExchangeKind::Topic => "topic",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Direct => "direct",
            ExchangeKind::Headers => "headers",
            ExchangeKind::Custom(_) => "custom",
        };
        let value = |v: &AMQPValue| match v {
            AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into(),
            AMQPValue::ShortString(s) => s.as_str().into(),
            AMQPValue::Boolean(b) => (*b).into(),
            other => crate::amqp_i64(other).map_or(serde_json::Value::Null, Into::into),
        };
        serde_json::json!({
            "exchanges": plan.exchanges.iter().map(|(n, k)| (n.clone(), kind(k).into()))
                .collect::<serde_json::Map<_, _>>(),
            "queues": plan.queues.iter().map(|(n, args)| {
                let args: serde_json::Map<_, _> =
                    args.inner().iter().map(|(k, v)| (k.to_string(), value(v))).collect();
                (n.clone(), args.into())
            }).collect::<serde_json::Map<_, _>>(),
            "bindings": plan.bindings,
        })
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

/// Declares a queue that exists with another group size: without the argument (which
/// checks every other one), and if it was made with a size of its own, passively.
/// Returns the channel to go on with.
async fn declare_existing(
    conn: &Connection,
    ch: Channel,
    name: &str,
    args: FieldTable,
) -> Result<Channel, QueueError> {
    let wanted = args.inner().get(GROUP_SIZE_ARG).cloned();
    let args: FieldTable = args
        .inner()
        .iter()
        .filter(|(k, _)| k.as_str() != GROUP_SIZE_ARG)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into();
    let opts = lapin::options::QueueDeclareOptions::durable();
    let ch = match ch.queue_declare(name.into(), opts, args).await {
        Ok(_) => ch,
        Err(e) if is_group_size_conflict(&e) => {
            let ch = conn.create_channel().await?;
            let passive = lapin::options::QueueDeclareOptions {
                passive: true,
                ..opts
            };
            ch.queue_declare(name.into(), passive, FieldTable::default())
                .await?;
            ch
        }
        Err(e) => return Err(e.into()),
    };
    tracing::warn!(
        queue = name,
        wanted = ?wanted,
        "queue exists with another x-quorum-initial-group-size; kept as it is (rabbitmq-queues grow/shrink changes its replicas)"
    );
    Ok(ch)
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
