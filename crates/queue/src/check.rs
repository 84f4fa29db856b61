//! Whether the broker holds the topology as [`Topology::plan`] declares it, without
//! creating anything: each exchange and queue is declared passively (a 404 says it is
//! missing), then each queue that exists is declared again with our arguments, which
//! RabbitMQ answers with 406 when the existing queue was made with others (it changes
//! nothing either way). A quorum queue's initial group size may differ (a cluster sizes
//! it); that is not a difference. Bindings cannot be read over AMQP and are not checked.
//!
//! Failure model: a failed or closed connection is the `QueueError`; everything the
//! broker answered about the topology is a [`Finding`].

use lapin::{
    Connection, ErrorKind,
    options::{ExchangeDeclareOptions, QueueDeclareOptions},
    types::FieldTable,
};

use crate::{QueueError, Topology};

/// One difference between the broker and the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    MissingExchange(String),
    MissingQueue(String),
    /// The queue exists with other arguments; RabbitMQ's reason.
    QueueDiffers {
        queue: String,
        reason: String,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingExchange(x) => write!(f, "exchange {x} is missing"),
            Self::MissingQueue(q) => write!(f, "queue {q} is missing"),
            Self::QueueDiffers { queue, reason } => {
                write!(f, "queue {queue} has other arguments ({reason})")
            }
        }
    }
}

/// Depth and consumers of one queue that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueState {
    pub queue: String,
    pub messages: u32,
    pub consumers: u32,
}

/// What [`check`] found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub queues: Vec<QueueState>,
}

fn refused(e: &lapin::Error) -> Option<(u16, String)> {
    match e.kind() {
        ErrorKind::ProtocolError(amqp) => {
            Some((amqp.get_id(), amqp.get_message().as_str().to_owned()))
        }
        _ => None,
    }
}

/// Opens a connection that declares nothing (unlike [`crate::Broker`], which declares
/// the topology on connect), within `timeout`.
pub async fn connect(url: &str, timeout: std::time::Duration) -> Result<Connection, QueueError> {
    let uri = crate::broker::parse_url(url)?;
    let props =
        lapin::ConnectionProperties::default().with_connection_name("workos-sync-doctor".into());
    tokio::time::timeout(timeout, Connection::connect_uri(uri, props))
        .await
        .map_err(|_| QueueError::Timeout(timeout))?
        .map_err(QueueError::from)
}

/// Compares the broker with `topology`'s plan (see the module header).
pub async fn check(topology: &Topology, conn: &Connection) -> Result<Report, QueueError> {
    let plan = topology.plan();
    let mut report = Report::default();
    let mut ch = conn.create_channel().await?;
    let passive_x = ExchangeDeclareOptions {
        passive: true,
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    for (name, kind) in plan.exchanges {
        if let Err(e) = ch
            .exchange_declare(name.as_str().into(), kind, passive_x, FieldTable::default())
            .await
        {
            // A refusal closes the channel.
            refused(&e).ok_or(e)?;
            report.findings.push(Finding::MissingExchange(name));
            ch = conn.create_channel().await?;
        }
    }
    let passive_q = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    for (name, args) in plan.queues {
        match ch
            .queue_declare(name.as_str().into(), passive_q, FieldTable::default())
            .await
        {
            Ok(q) => report.queues.push(QueueState {
                queue: name.clone(),
                messages: q.message_count(),
                consumers: q.consumer_count(),
            }),
            Err(e) => {
                refused(&e).ok_or(e)?;
                report.findings.push(Finding::MissingQueue(name));
                ch = conn.create_channel().await?;
                continue;
            }
        }
        // It exists, so this declares nothing: RabbitMQ only compares the arguments.
        if let Err(e) = ch
            .queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), args)
            .await
        {
            let (_, reason) = refused(&e).ok_or(e)?;
            if !reason.contains(crate::topology::GROUP_SIZE_ARG) {
                report.findings.push(Finding::QueueDiffers {
                    queue: name,
                    reason,
                });
            }
            ch = conn.create_channel().await?;
        }
    }
    let _ = ch.close(200, "topology checked".into()).await;
    Ok(report)
}
